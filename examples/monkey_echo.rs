//! The echo server of `echo_server.rs` written with `std::net` only, made cooperative by
//! `gevent::monkey::patch_all()`: what monkey patching buys, plain blocking std code
//! (`std::net::TcpListener::accept`, `std::io::Read::read`, `Write::write_all`) serving
//! thousands of connections on one thread, one greenlet per connection, without a line of it
//! written against this runtime's own sockets.
//!
//! `cargo run --release --features monkey --example monkey_echo -- 127.0.0.1:9001`
//!
//! Prints one line when it listens, then runs until killed. Each connection costs its greenlet
//! and its 4 KiB buffer, as in `echo_server.rs`; the std calls go through the hooks, which wait
//! on the hub whenever a socket is not ready.

use std::io::{Read, Write};
use std::net::TcpListener;

fn main() -> std::io::Result<()> {
    // Before any socket exists: from here on, std's socket calls made in a greenlet (the main
    // one included) switch to the hub instead of blocking the thread.
    gevent::monkey::patch_all();
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (mut conn, _peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept failed: {e}");
                // Cooperative too: the connections keep being served meanwhile.
                std::thread::sleep(std::time::Duration::from_millis(10));
                continue;
            }
        };
        conn.set_nodelay(true).ok();
        gevent::spawn(move || {
            let mut buf = vec![0u8; 4096];
            loop {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        if conn.write_all(&buf[..n]).is_err() {
                            break;
                        }
                    }
                }
            }
        });
    }
}
