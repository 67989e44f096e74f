//! The heap an idle keep-alive connection holds after a large request and a large response:
//! no more than after a small exchange (the buffers they grew are let go before the idle
//! wait). Counted by a global allocator that keeps the live bytes; alone in its binary, since
//! the allocator counts every thread's allocations.

use gevent_io::net::TcpStream;
use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicIsize, Ordering};

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed to the system allocator unchanged; the counter beside it
// allocates nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: `ptr` came from `alloc` with `layout`; the caller checked `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Send `request` and read its response (framed by its Content-Length) whole; then let the
/// server's connection greenlet run until it waits for the next request.
fn exchange(c: &TcpStream, request: &[u8]) -> usize {
    let mut c = c;
    c.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let body = loop {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "the server closed the connection");
        got.extend_from_slice(&buf[..n]);
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .unwrap()
                .parse()
                .unwrap();
            if got.len() >= end + 4 + len {
                break len;
            }
        }
    };
    greenlet::idle().unwrap();
    body
}

#[test]
fn an_idle_connection_after_a_large_exchange_holds_what_one_after_a_small_one_does() {
    let server = gevent_http::Server::builder()
        .addr("127.0.0.1:0")
        .access_log(false)
        .serve(|req| {
            let n = if req.uri().path() == "/big" {
                1 << 20
            } else {
                2
            };
            http::Response::new(vec![b'x'; n])
        })
        .unwrap();
    let c = TcpStream::connect(server.local_addr().unwrap()).unwrap();
    // Twice, so that whatever a first exchange sets up once is there before the baseline.
    for _ in 0..2 {
        assert_eq!(exchange(&c, b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n"), 2);
    }
    let small = LIVE.load(Ordering::Relaxed);
    let big_head = format!(
        "GET /big HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
        "p".repeat(60 * 1024)
    );
    assert_eq!(exchange(&c, big_head.as_bytes()), 1 << 20);
    drop(big_head);
    let big = LIVE.load(Ordering::Relaxed);
    assert!(
        big - small < 16 * 1024,
        "idle after a 60 KiB head and a 1 MiB answer: {} bytes more than after a small exchange",
        big - small
    );
    // A head of long field names and a long target (all the connection could keep of a head
    // to parse the next one faster, and its request line for the logs).
    let mut named_head = format!("GET /big?{} HTTP/1.1\r\nHost: a\r\n", "t".repeat(7000));
    for i in 0..90 {
        named_head.push_str(&format!("X-{i:02}{}:\r\n", "n".repeat(596)));
    }
    named_head.push_str("\r\n");
    assert_eq!(exchange(&c, named_head.as_bytes()), 1 << 20);
    drop(named_head);
    let named = LIVE.load(Ordering::Relaxed);
    assert!(
        named - small < 16 * 1024,
        "idle after a head of 90 long names and a 7 KB target: {} bytes more than after a \
         small exchange",
        named - small
    );
    // And the connection still serves.
    assert_eq!(exchange(&c, b"GET /small HTTP/1.1\r\nHost: a\r\n\r\n"), 2);
    drop(c);
    server.stop(None);
}
