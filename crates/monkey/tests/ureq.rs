//! The blocking HTTP client `ureq`, a crate nobody here wrote and unchanged: after
//! `patch_all()`, a hundred requests from greenlets of one thread are in flight at once against
//! a slow server.

use std::cell::Cell;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::generous;

/// Aborts the whole test process if it is still alive after `limit`: an uncooperative call
/// shows as a hang, and this turns it into a failure with a message.
struct Watchdog {
    _alive: mpsc::Sender<()>,
}

fn watchdog(what: &'static str, limit: Duration) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    // A plain thread: it has no hub, so its wait is a real one.
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{what}: still running after {limit:?}, a call did not cooperate; aborting");
            std::process::abort();
        }
    });
    Watchdog { _alive: tx }
}

/// A slow HTTP server on plain threads (no hub: their waits and reads are real ones), a thread
/// per connection, each answering only once all `n` requests are in its hands (or after a
/// generous limit): a client that sends them one at a time gets each answer only after that
/// limit. It serves `n` connections, then its accept thread ends. Returns its port and the
/// most requests it had in hand at once.
fn slow_server(n: usize) -> (u16, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepter = std::thread::spawn(move || {
        let in_hand = Arc::new(AtomicUsize::new(0));
        let max_in_hand = Arc::new(AtomicUsize::new(0));
        let all_in = Arc::new((std::sync::Mutex::new(0usize), std::sync::Condvar::new()));
        let handlers: Vec<_> = (0..n)
            .map(|_| {
                let (conn, _) = listener.accept().unwrap();
                let (in_hand, max_in_hand) = (in_hand.clone(), max_in_hand.clone());
                let all_in = all_in.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(&conn);
                    let mut request_line = String::new();
                    reader.read_line(&mut request_line).unwrap();
                    let now = in_hand.fetch_add(1, Ordering::SeqCst) + 1;
                    max_in_hand.fetch_max(now, Ordering::SeqCst);
                    let mut line = String::new();
                    while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
                        line.clear();
                    }
                    // Answer once every request has come in (the limit only bounds a failure).
                    let (arrived, cv) = &*all_in;
                    let mut a = arrived.lock().unwrap();
                    *a += 1;
                    cv.notify_all();
                    let limit = generous(Duration::from_secs(10));
                    let _ = cv.wait_timeout_while(a, limit, |a| *a < n).unwrap();
                    // "GET /item/17 HTTP/1.1" answers "item 17".
                    let path = request_line.split(' ').nth(1).unwrap_or("/");
                    let body = path.trim_start_matches('/').replace('/', " ");
                    in_hand.fetch_sub(1, Ordering::SeqCst);
                    write!(
                        &conn,
                        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
                         Connection: close\r\n\r\n{body}",
                        body.len()
                    )
                    .unwrap();
                })
            })
            .collect();
        for h in handlers {
            h.join().unwrap();
        }
        max_in_hand.load(Ordering::SeqCst)
    });
    (port, accepter)
}

#[test]
fn a_hundred_ureq_requests_from_greenlets_of_one_thread_are_in_flight_at_once() {
    let _watchdog = watchdog("ureq", generous(Duration::from_secs(60)));
    gevent_monkey::patch_all();
    let n = 100;
    let (port, server) = slow_server(n);
    let inside = Rc::new(Cell::new(0usize));
    let max_inside = Rc::new(Cell::new(0usize));
    let start = Instant::now();
    let greenlets: Vec<_> = (0..n)
        .map(|i| {
            let (inside, max_inside) = (inside.clone(), max_inside.clone());
            greenlet::spawn(move || {
                inside.set(inside.get() + 1);
                max_inside.set(max_inside.get().max(inside.get()));
                let mut response = ureq::get(format!("http://127.0.0.1:{port}/item/{i}"))
                    .call()
                    .unwrap();
                let body = response.body_mut().read_to_string().unwrap();
                inside.set(inside.get() - 1);
                (response.status().as_u16(), body)
            })
        })
        .collect();
    for (i, g) in greenlets.into_iter().enumerate() {
        assert_eq!(g.join().unwrap(), (200, format!("item {i}")));
    }
    let elapsed = start.elapsed();
    let max_in_hand = server.join().unwrap();
    eprintln!(
        "{n} requests to a server that answers once all are in: at most {} greenlets inside ureq at \
         once, at most {max_in_hand} requests in the server's hands at once, {elapsed:?} in all",
        max_inside.get()
    );
    assert_eq!(inside.get(), 0);
    assert_eq!(
        max_inside.get(),
        n,
        "every request was in flight at the same time"
    );
    // The server had them all in hand at once: uncooperative, it would have had one at a time
    // (and each answer would have waited for the limit).
    assert_eq!(max_in_hand, n);
}
