//! HTTP/1.1 server for greenlets (gevent's `pywsgi`): handlers written in blocking style, one
//! greenlet per connection, on the [`http`] crate's types.
//!
//! A handler is `Fn(Request<Body>) -> Response<B>`: [`Body`] is a [`Read`](std::io::Read) over
//! the decoded request body, `B` anything [`IntoBody`] (bytes, a reader streamed out chunked,
//! a closure writing into the connection, or an [`upgrade`] to another protocol).
//! Handlers may block on anything cooperative; a handler that panics gets its client a 500.
//!
//! Strict against request smuggling: a request two parsers could read two ways (bare LF,
//! obs-fold, a missing, repeated or malformed `Host`, conflicting `Content-Length`,
//! `Transfer-Encoding` with `Content-Length`, odd chunk sizes, a target with a fragment or
//! bytes past ASCII…) is refused or closes the connection; a body the handler did not read is
//! drained or the connection closed, never parsed as the next request. The request's `Host`
//! is the target's authority when the target has one (absolute-form), and an `Upgrade` counts
//! only with `Connection: upgrade`, so that a proxy in front and the handler see one request.
//!
//! | module | what |
//! |---|---|
//! | [`Server`], [`Builder`], [`ThreadedServer`] | options, one hub or one hub per thread, graceful stop |
//! | [`Body`], [`ResponseBody`], [`IntoBody`], [`StreamBody`] | request and response bodies |
//! | [`RequestExt`] | the connection a request came on: the client's address, the server's, TLS |
//! | [`upgrade`] | `101 Switching Protocols`: the raw connection for WebSocket and the like |
//! | `tls` | HTTPS with rustls (feature `tls`), and TLS clients over the cooperative stream |
//!
//! ```
//! use std::io::{Read, Write};
//!
//! let server = gevent_http::Server::builder()
//!     .addr("127.0.0.1:0")
//!     .serve(|_req| http::Response::new("Hello, world!\n"))
//!     .unwrap();
//! let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
//! c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
//! let mut answer = String::new();
//! c.read_to_string(&mut answer).unwrap();
//! assert!(answer.ends_with("\r\n\r\nHello, world!\n"));
//! server.stop(None);
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use http;

mod body;
mod conn;
mod decode;
mod encode;
mod parse;
mod server;
#[cfg(test)]
mod testing;
#[cfg(feature = "tls")]
pub mod tls;
mod transport;
pub mod upgrade;

pub use body::{Body, IntoBody, RequestExt, ResponseBody, StreamBody, UpgradeFn, WriteFn};
pub use server::{
    Builder, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_DRAIN,
    DEFAULT_STOP_TIMEOUT, DEFAULT_WRITE_TIMEOUT, STACK_TRIM_INTERVAL, Server, ThreadedServer,
};
pub use upgrade::Upgraded;
