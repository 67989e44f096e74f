//! The heap an idle connection of the echo server holds (the server of
//! `examples/echo_server.rs`: one greenlet per connection, blocked in `read`): counted by a
//! global allocator that keeps, per request size, how many blocks are live. The figure the
//! bench calls `idle_conn_rss_runtime_bytes` is one touched stack page plus this heap plus
//! malloc's overhead per block, so this test holds both the number of blocks and their bytes
//! to a ceiling.
//!
//! The test is alone in its binary: the allocator counts every thread's allocations.

use gevent::net::TcpListener;
use std::io::{Read, Write};

#[path = "support/counting_alloc.rs"]
mod counting_alloc;
use counting_alloc::{Counting, PerConnection, snapshot};
#[path = "support/idle_clients.rs"]
mod idle_clients;

#[global_allocator]
static ALLOC: Counting = Counting;

#[test]
fn an_idle_echo_connection_holds_few_small_blocks() {
    const BUF: usize = 4096;
    let warm = 200;
    let n = 1000;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    gevent::spawn(move || {
        while let Ok((mut conn, _)) = listener.accept() {
            conn.set_nodelay(true).ok();
            gevent::spawn(move || {
                let mut buf = vec![0u8; BUF];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let mut clients = Vec::with_capacity(warm + n);
    // The first connections grow the tables that grow with the connections (the registry of
    // greenlets, the run queue, libev's arrays), so that the measured ones mostly do not.
    let echoed = |got: &[u8]| got == b"x";
    idle_clients::open(addr, warm, &mut clients, b"x", echoed);
    let before = snapshot();
    idle_clients::open(addr, n, &mut clients, b"x", echoed);
    let after = snapshot();

    let p = PerConnection::between(&before, &after, n, |size| size == BUF);
    let (blocks, bytes, malloc_bytes) = (p.blocks, p.bytes, p.malloc_bytes);
    println!(
        "per idle connection, beside its {BUF} B buffer: {blocks:.2} blocks, {bytes:.0} B \
         requested, about {malloc_bytes:.0} B of malloc chunks"
    );
    println!("{}", p.lines.join("\n"));
    drop(clients);
    // Today: the greenlet's record (192 B of chunk), its body-and-result (48 B) and the
    // socket, its io watcher and waiters included (144 B): 3 blocks, about 384 B of chunks.
    assert!(blocks < 3.5, "{blocks:.2} blocks per connection");
    assert!(malloc_bytes < 420.0, "{malloc_bytes:.0} B per connection");
}
