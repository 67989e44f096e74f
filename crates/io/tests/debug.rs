//! The debug endpoint: a plain client connecting to it gets the run info of every hub thread.

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;

use greenlet::{Builder, Event, sleep};
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use support::{generous, ms};

/// A thread whose hub has a greenlet named `greenlet_name` blocked on an event, idle in its
/// loop until `done` is set. Returns once the greenlet is blocked.
fn hub_thread(
    thread_name: &str,
    greenlet_name: &'static str,
    done: Arc<AtomicBool>,
) -> JoinHandle<()> {
    let (ready_tx, ready_rx) = mpsc::channel();
    let t = std::thread::Builder::new()
        .name(thread_name.into())
        .spawn(move || {
            let go = Event::new();
            let g = go.clone();
            let waiter = Builder::new()
                .name(greenlet_name)
                .spawn(move || g.wait())
                .unwrap();
            greenlet::yield_now().unwrap();
            ready_tx.send(()).unwrap();
            while !done.load(Ordering::Acquire) {
                sleep(ms(1)).unwrap();
            }
            go.set();
            waiter.join().unwrap().unwrap();
        })
        .unwrap();
    ready_rx.recv().unwrap();
    t
}

/// Connect, read to the end (as `nc` does) and return the answer.
fn ask_tcp(addr: std::net::SocketAddr) -> String {
    let mut text = String::new();
    let mut c = std::net::TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(generous(ms(30_000)))).unwrap();
    c.read_to_string(&mut text).unwrap();
    text
}

/// The lines of `thread`'s section of an answer: from its `thread "NAME"` line to the next.
fn section(text: &str, thread: &str) -> Option<String> {
    let head = format!("thread {thread:?} ");
    let mut lines = text.lines().skip_while(|l| !l.starts_with(&head));
    let first = lines.next()?;
    let rest: Vec<&str> = lines.take_while(|l| !l.starts_with("thread ")).collect();
    Some(format!("{first}\n{}", rest.join("\n")))
}

#[test]
fn tcp_endpoint_lists_the_greenlets_of_every_hub_thread() {
    let done = Arc::new(AtomicBool::new(false));
    let a = hub_thread("hub-alpha", "alpha-waiter", done.clone());
    let b = hub_thread("hub-beta", "beta-waiter", done.clone());
    let server = gevent_io::debug::serve("127.0.0.1:0").unwrap();
    // Short, so that hubs of the other test, busy on purpose, do not hold every answer up;
    // an idle hub that misses it (a loaded machine) is asked again.
    server.set_answer_timeout(ms(200));
    let addr = server.local_addr().unwrap();
    let start = std::time::Instant::now();
    let mut answered = 0;
    while answered < 2 {
        let text = ask_tcp(addr);
        assert!(text.starts_with("run info of "), "{text}");
        let alpha = section(&text, "hub-alpha").unwrap_or_else(|| panic!("{text}"));
        let beta = section(&text, "hub-beta").unwrap_or_else(|| panic!("{text}"));
        if alpha.contains("did not answer") || beta.contains("did not answer") {
            assert!(start.elapsed() < generous(ms(30_000)), "{text}");
            continue;
        }
        assert!(
            alpha.contains("\"alpha-waiter\" blocked on Event"),
            "{text}"
        );
        assert!(beta.contains("\"beta-waiter\" blocked on Event"), "{text}");
        assert!(!alpha.contains("beta-waiter"), "{text}");
        answered += 1;
    }
    server.stop();
    // Stopped: nobody listens any more.
    assert!(std::net::TcpStream::connect(addr).is_err());
    done.store(true, Ordering::Release);
    a.join().unwrap();
    b.join().unwrap();
}

#[test]
fn unix_endpoint_says_which_hub_is_too_busy_to_answer() {
    let release = Arc::new(AtomicBool::new(false));
    let (started_tx, started_rx) = mpsc::channel();
    let r = release.clone();
    let busy = std::thread::Builder::new()
        .name("hub-busy".into())
        .spawn(move || {
            let g = Builder::new()
                .name("spinner")
                .spawn(move || {
                    started_tx.send(()).unwrap();
                    while !r.load(Ordering::Acquire) {
                        std::hint::spin_loop();
                    }
                })
                .unwrap();
            g.join().unwrap();
        })
        .unwrap();
    started_rx.recv().unwrap();
    let path = std::env::temp_dir().join(format!("gevent-debug-test-{}", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let server = gevent_io::debug::serve_unix(&path).unwrap();
    // The spinner keeps its hub from answering whatever the timeout: a short one will do.
    server.set_answer_timeout(ms(50));
    let mut text = String::new();
    std::os::unix::net::UnixStream::connect(&path)
        .unwrap()
        .read_to_string(&mut text)
        .unwrap();
    let busy_section = section(&text, "hub-busy").unwrap_or_else(|| panic!("{text}"));
    assert!(busy_section.contains("did not answer"), "{text}");
    release.store(true, Ordering::Release);
    busy.join().unwrap();
    server.stop();
    assert!(!path.exists());
}
