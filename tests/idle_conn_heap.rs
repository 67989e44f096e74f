//! The heap an idle connection of the echo server holds (the server of
//! `examples/echo_server.rs`: one greenlet per connection, blocked in `read`): counted by a
//! global allocator that keeps, per request size, how many blocks are live. The figure the
//! bench calls `idle_conn_rss_runtime_bytes` is one touched stack page plus this heap plus
//! malloc's overhead per block, so this test holds both the number of blocks and their bytes
//! to a ceiling.
//!
//! The test is alone in its binary: the allocator counts every thread's allocations.

use gevent::net::TcpListener;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Request sizes are counted in 8-byte classes up to this; bigger ones share the last class.
const CLASSES: usize = 1024;

struct Counting;

static LIVE: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

fn class(size: usize) -> usize {
    (size.div_ceil(8)).min(CLASSES - 1)
}

// SAFETY: every call is passed to the system allocator unchanged; the counters beside it
// allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE[class(new_size)].fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with `layout`; the caller checked `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn snapshot() -> Vec<isize> {
    LIVE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// Open `n` connections to the echo server at `addr`, send one byte on each and read its echo
/// (a hundred at a time: the listener's backlog is not unbounded).
fn connect(addr: std::net::SocketAddr, n: usize, into: &mut Vec<std::net::TcpStream>) {
    for k in (0..n).step_by(100) {
        let batch = (n - k).min(100);
        for _ in 0..batch {
            let mut c = std::net::TcpStream::connect(addr).unwrap();
            c.write_all(b"x").unwrap();
            c.set_nonblocking(true).unwrap();
            into.push(c);
        }
        // The server accepts and echoes while the root sleeps.
        let mut pending: Vec<&std::net::TcpStream> = into[into.len() - batch..].iter().collect();
        while !pending.is_empty() {
            gevent::sleep(std::time::Duration::from_millis(1)).unwrap();
            pending.retain(|c| {
                !matches!(
                    {
                        let mut s: &std::net::TcpStream = c;
                        s.read(&mut [0u8; 1])
                    },
                    Ok(1)
                )
            });
        }
    }
}

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
    connect(addr, warm, &mut clients);
    let before = snapshot();
    connect(addr, n, &mut clients);
    let after = snapshot();

    let mut blocks = 0.0;
    let mut bytes = 0.0;
    let mut malloc_bytes = 0.0;
    let mut lines = Vec::new();
    for (c, (a, b)) in after.iter().zip(&before).enumerate() {
        let per = (a - b) as f64 / n as f64;
        if c * 8 == BUF || per.abs() < 0.05 {
            continue;
        }
        let size = c * 8;
        // glibc's chunk for a request: the size plus an 8-byte header, in 16-byte steps,
        // at least 32.
        let chunk = ((size + 8).div_ceil(16) * 16).max(32) as f64;
        blocks += per;
        bytes += per * size as f64;
        malloc_bytes += per * chunk;
        lines.push(format!("  {per:6.2} x {size:5} B"));
    }
    println!(
        "per idle connection, beside its {BUF} B buffer: {blocks:.2} blocks, {bytes:.0} B \
         requested, about {malloc_bytes:.0} B of malloc chunks"
    );
    println!("{}", lines.join("\n"));
    drop(clients);
    // Today: the greenlet's record (192 B of chunk), its body-and-result (48 B) and the
    // socket, its io watcher and waiters included (144 B): 3 blocks, about 384 B of chunks.
    assert!(blocks < 3.5, "{blocks:.2} blocks per connection");
    assert!(malloc_bytes < 420.0, "{malloc_bytes:.0} B per connection");
}
