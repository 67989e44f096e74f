//! HTTP/1.1 hello world with keep-alive: one greenlet per connection, requests parsed with
//! httparse, written in blocking style.
//!
//! `cargo run --release --example http_hello -- 127.0.0.1:8080`
//!
//! Prints one line when it listens, then runs until killed. `curl http://127.0.0.1:8080/`.

use gevent::net::TcpStream;
use gevent::server::StreamServer;
use std::io::{self, Read, Write};

const BODY: &[u8] = b"Hello, world!\n";

/// Serve requests on one connection until the client closes it or asks to.
fn serve(mut conn: TcpStream) -> io::Result<()> {
    let mut buf = vec![0u8; 8192];
    let mut filled = 0;
    loop {
        // Parse whatever is buffered; read more while the request head is incomplete.
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut req = httparse::Request::new(&mut headers);
        let parsed = match req.parse(&buf[..filled]) {
            Ok(httparse::Status::Complete(n)) => Some(n),
            Ok(httparse::Status::Partial) => None,
            Err(_) => {
                conn.write_all(
                    b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )?;
                return Ok(());
            }
        };
        let Some(head_len) = parsed else {
            if filled == buf.len() {
                conn.write_all(b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")?;
                return Ok(());
            }
            let n = conn.read(&mut buf[filled..])?;
            if n == 0 {
                return Ok(());
            }
            filled += n;
            continue;
        };
        let close = req.version == Some(0)
            || req.headers.iter().any(|h| {
                h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close")
            });
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n{}\r\n",
            BODY.len(),
            if close { "connection: close\r\n" } else { "" }
        );
        conn.write_all(head.as_bytes())?;
        conn.write_all(BODY)?;
        // Keep any pipelined bytes after this request's head (bodies are not expected).
        buf.copy_within(head_len..filled, 0);
        filled -= head_len;
        if close {
            return Ok(());
        }
    }
}

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".into());
    let server = StreamServer::try_new(&addr, |conn, _peer| {
        conn.set_nodelay(true).ok();
        let _ = serve(conn);
    })?;
    server.start()?;
    println!("listening on {}", server.local_addr()?);
    server.serve_forever()
}
