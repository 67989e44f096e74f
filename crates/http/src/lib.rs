//! HTTP/1.1 server for greenlets (gevent's `pywsgi`): handlers written in blocking style, one
//! greenlet per connection, on the [`http`] crate's types.
//!
//! Strict against request smuggling: a request two parsers could read two ways (bare LF,
//! obs-fold, conflicting `Content-Length`, `Transfer-Encoding` with `Content-Length`, odd
//! chunk sizes…) is refused or closes the connection; a body the handler did not read is
//! drained or the connection closed, never parsed as the next request.
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
//! server.stop();
//! ```
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use http;

mod decode;
mod encode;
mod parse;
mod server;

pub use server::{
    Body, Builder, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_KEEP_ALIVE_TIMEOUT, DEFAULT_MAX_DRAIN,
    IntoBody, ResponseBody, Server, StreamBody,
};
