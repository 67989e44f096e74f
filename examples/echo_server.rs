//! A TCP echo server: one greenlet per connection, written in blocking style.
//!
//! `cargo run --release --example echo_server -- 127.0.0.1:9000`
//!
//! Prints one line when it listens, then runs until killed.
//!
//! What a connection costs: its greenlet (one touched stack page plus the runtime's
//! bookkeeping, about 4.6 KB resident in all while idle; BENCHMARKS.md measures it at 10,000
//! connections) and the buffer below. The buffer is 4 KiB, as in tokio's and mio's examples:
//! a 64-byte echo touches one page of it, and a bigger buffer only helps bulk transfers.

use gevent::net::TcpListener;
use std::io::{Read, Write};

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (mut conn, _peer) = match listener.accept() {
            Ok(c) => c,
            Err(e) => {
                eprintln!("accept failed: {e}");
                gevent::sleep(std::time::Duration::from_millis(10)).ok();
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
