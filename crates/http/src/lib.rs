//! HTTP/1.1 server for greenlets (gevent's `pywsgi`): handlers written in blocking style, one
//! greenlet per connection, on the [`http`] crate's types. Strict against request smuggling.
#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use http;

mod decode;
mod encode;
mod parse;
