//! The TechEmpower hello world on `gevent::http`: HTTP/1.1 with keep-alive and pipelining, one
//! greenlet per connection.
//!
//! * `GET /plaintext`: `Hello, World!` as `text/plain`;
//! * `GET /json`: `{"message":"Hello, World!"}` as `application/json`, serialized for every
//!   request;
//! * anything else: `404 Not Found`.
//!
//! Every response carries `Server: gevent` (and the `Date` the server adds).
//!
//! ```sh
//! cargo run --release --example http_hello -- 127.0.0.1:8080
//! curl -i http://127.0.0.1:8080/plaintext
//! curl -i http://127.0.0.1:8080/json
//! ```
//!
//! It takes the address to listen on as its first argument (default `127.0.0.1:8080`, port 0
//! picks a free one), prints `listening on ADDR` once it listens, then serves until killed.

use gevent::http::ResponseBody;
use gevent::http::http::{HeaderValue, Request, Response, StatusCode, header};
use serde::Serialize;

/// The content types, checked once at compile time rather than per response.
const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// The `/json` answer, serialized afresh for every request.
#[derive(Serialize)]
struct Message {
    message: &'static str,
}

/// The answer to one request (also compiled into the bench program).
pub(crate) fn handle(req: Request<gevent::http::Body>) -> Response<ResponseBody> {
    let (status, content_type, body) = match req.uri().path() {
        "/plaintext" => (
            StatusCode::OK,
            TEXT_PLAIN,
            ResponseBody::Static(b"Hello, World!"),
        ),
        "/json" => (
            StatusCode::OK,
            APPLICATION_JSON,
            ResponseBody::Full(
                serde_json::to_vec(&Message {
                    message: "Hello, World!",
                })
                .expect("a struct of one string serializes"),
            ),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            TEXT_PLAIN,
            ResponseBody::Static(b"Not Found"),
        ),
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    resp
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let server = gevent::http::Server::builder()
        .addr(addr.as_str())
        .server_header(Some("gevent".into()))
        .serve(handle)?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
