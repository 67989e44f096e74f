//! A WebSocket echo server on the HTTP server: the handler answers the upgrade request with
//! `101 Switching Protocols`, then runs the `tungstenite` crate over the upgraded cooperative
//! connection and sends every message back. One greenlet per client, blocking style.
//!
//! `cargo run --release --example websocket_echo -- 127.0.0.1:9001`
//!
//! Prints one line when it listens, then runs until killed. Any WebSocket client works, e.g.
//! Python's `websockets` or a browser's `new WebSocket("ws://127.0.0.1:9001/")`.

use gevent::http::http::{Request, Response, StatusCode, header};
use gevent::http::{Body, ResponseBody, Server, Upgraded};
use tungstenite::protocol::{Role, WebSocket};
use tungstenite::{Error, Message};

/// Answer a WebSocket handshake (RFC 6455 section 4.2) or refuse the request.
fn handler(req: Request<Body>) -> Response<ResponseBody> {
    let h = req.headers();
    let has = |name: header::HeaderName, token: &str| {
        h.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    let key = h.get(header::SEC_WEBSOCKET_KEY);
    let version_ok = h
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_some_and(|v| v.as_bytes() == b"13");
    let (Some(key), true, true, true) = (
        key,
        has(header::CONNECTION, "upgrade"),
        has(header::UPGRADE, "websocket"),
        version_ok,
    ) else {
        return Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .body(ResponseBody::Full(b"a WebSocket endpoint\n".to_vec()))
            .expect("valid response");
    };
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(ResponseBody::upgrade(echo))
        .expect("valid response")
}

/// Echo text and binary messages until the client closes (pings are answered by tungstenite).
fn echo(io: Upgraded) {
    let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
    loop {
        match ws.read() {
            Ok(m @ (Message::Text(_) | Message::Binary(_))) => {
                if ws.send(m).is_err() {
                    return;
                }
            }
            Ok(_) => {}
            Err(Error::ConnectionClosed | Error::AlreadyClosed) => return,
            Err(e) => {
                log::debug!("websocket: {e}");
                return;
            }
        }
    }
}

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let server = Server::builder().addr(addr).serve(handler)?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
