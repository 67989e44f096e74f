//! Real signals, sent to the process with `kill(getpid(), …)` from other threads.
//!
//! Signals are process-wide and the tests of this binary run in parallel threads, each with
//! its own hub; libev lets one loop own a signal at a time. So every test uses its own signals,
//! and a signal whose default action terminates the process is only ever sent while a watcher
//! for it exists.

use gevent_io::signal::{self, SignalError};
use greenlet::{Event, getcurrent_name, sleep, spawn, yield_now};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering::SeqCst};
use std::sync::mpsc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{eventually, generous, ms};

/// Send `signum` to the whole process from another OS thread, after `delay`.
fn send_from_thread(signum: i32, delay: Duration) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        std::thread::sleep(delay);
        // SAFETY: kill(2) with our own pid; the caller keeps a watcher for `signum` alive.
        let r = unsafe { libc::kill(libc::getpid(), signum) };
        assert_eq!(r, 0);
    })
}

/// Cooperatively wait until `cond` holds (generously: the signal comes from another thread).
fn wait_until(cond: impl FnMut() -> bool) {
    assert!(
        eventually(Duration::from_secs(20), cond),
        "condition not reached"
    );
}

#[test]
fn wait_receives_a_signal_sent_from_another_thread() {
    let sent = Arc::new(AtomicBool::new(false));
    let s = sent.clone();
    let waiter = spawn(move || {
        signal::wait(libc::SIGUSR1, Some(generous(Duration::from_secs(30))))
            .map(|()| s.load(SeqCst))
    });
    // Let the waiter start watching; meanwhile the root greenlet keeps running.
    yield_now().unwrap();
    assert!(!waiter.is_dead());
    let ticks = Arc::new(AtomicU32::new(0));
    let t = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..5 {
            sleep(ms(5)).unwrap();
            t.fetch_add(1, SeqCst);
        }
    });
    // The signal is sent only once the ticker has ticked 5 times while the waiter waits, so
    // the hub was not blocked by the wait (or else, after a generous bound, the check below
    // fails).
    let (t, s) = (ticks.clone(), sent.clone());
    let sender = std::thread::spawn(move || {
        let deadline = Instant::now() + generous(Duration::from_secs(20));
        while t.load(SeqCst) < 5 && Instant::now() < deadline {
            std::thread::sleep(ms(1));
        }
        let ticked = t.load(SeqCst);
        s.store(true, SeqCst);
        // SAFETY: kill(2) with our own pid; the waiter watches SIGUSR1 until it arrives.
        assert_eq!(unsafe { libc::kill(libc::getpid(), libc::SIGUSR1) }, 0);
        ticked
    });
    let woke_after_send = waiter.join().unwrap().unwrap();
    let ticked = sender.join().unwrap();
    assert!(
        woke_after_send,
        "the waiter woke before the signal was sent"
    );
    assert_eq!(ticked, 5, "the ticker did not run while the waiter waited");
    ticker.join().unwrap();
}

#[test]
fn a_handler_runs_in_a_new_greenlet_that_may_block_and_cancel_stops_it() {
    let runs = Rc::new(RefCell::new(Vec::new()));
    let done = Event::new();
    let (r, d) = (runs.clone(), done.clone());
    let root = getcurrent_name();
    let handler = signal::handle(libc::SIGUSR2, move || {
        // Blocking inside a handler is fine: it is an ordinary greenlet.
        sleep(ms(10)).unwrap();
        r.borrow_mut().push(getcurrent_name());
        d.set();
    })
    .unwrap();
    assert!(handler.is_active());
    assert_eq!(handler.signum(), libc::SIGUSR2);

    for round in 1..=2 {
        done.clear();
        let sender = send_from_thread(libc::SIGUSR2, ms(5));
        assert!(
            done.wait_timeout(generous(Duration::from_secs(20)))
                .unwrap()
        );
        sender.join().unwrap();
        assert_eq!(runs.borrow().len(), round);
    }
    for name in runs.borrow().iter() {
        assert_ne!(*name, root);
        assert!(name.contains("signal handler"), "{name}");
    }

    // A second handler for the same signal keeps SIGUSR2 caught while the first is cancelled.
    let others = Rc::new(Cell::new(0u32));
    let o = others.clone();
    let second = signal::handle(libc::SIGUSR2, move || o.set(o.get() + 1)).unwrap();
    handler.cancel();
    assert!(!handler.is_active());
    let sender = send_from_thread(libc::SIGUSR2, ms(1));
    wait_until(|| others.get() == 1);
    sender.join().unwrap();
    // Give a (wrongly) still installed first handler time to run too: its 10 ms sleep would
    // have been started before this longer one, so it would end first.
    sleep(ms(50)).unwrap();
    assert_eq!(runs.borrow().len(), 2, "the cancelled handler ran");
    drop(second);
}

#[test]
fn dropping_the_handler_stops_it_and_signals_then_take_their_default_action() {
    // SIGURG is ignored by default, so sending it with no watcher left is harmless.
    let count = Rc::new(Cell::new(0u32));
    let c = count.clone();
    let handler = signal::handle(libc::SIGURG, move || c.set(c.get() + 1)).unwrap();
    let sender = send_from_thread(libc::SIGURG, ms(1));
    wait_until(|| count.get() == 1);
    sender.join().unwrap();
    drop(handler);

    // A waiter proves the next SIGURG really arrives; the dropped handler must not run.
    let waiter = spawn(|| signal::wait(libc::SIGURG, Some(generous(Duration::from_secs(20)))));
    // One pass of the hub: the waiter watches SIGURG before the signal is sent.
    yield_now().unwrap();
    assert!(!waiter.is_dead());
    let sender = send_from_thread(libc::SIGURG, ms(5));
    waiter.join().unwrap().unwrap();
    sender.join().unwrap();
    sleep(ms(30)).unwrap();
    assert_eq!(count.get(), 1);

    // With no watcher at all, SIGURG is back to its default disposition (ignored).
    let sender = send_from_thread(libc::SIGURG, ms(1));
    sender.join().unwrap();
    sleep(ms(30)).unwrap();
    assert_eq!(count.get(), 1);
}

#[test]
fn a_handler_does_not_keep_the_loop_alive() {
    let handler = signal::handle(libc::SIGWINCH, || {}).unwrap();
    let start = Instant::now();
    assert!(greenlet::wait(None).unwrap());
    // No bound in the wait: a handler that kept the loop alive would keep it for ever. The
    // elapsed time only shows the wait did not sit out some timeout.
    assert!(
        start.elapsed() < generous(Duration::from_secs(5)),
        "wait took {:?}",
        start.elapsed()
    );
    assert!(handler.is_active());
    // The handler still works when something else runs the loop.
    let hits = Rc::new(Cell::new(0u32));
    let h = hits.clone();
    let counting = signal::handle(libc::SIGWINCH, move || h.set(h.get() + 1)).unwrap();
    let sender = send_from_thread(libc::SIGWINCH, ms(1));
    wait_until(|| hits.get() == 1);
    sender.join().unwrap();
    drop((handler, counting));
}

#[test]
fn wait_times_out() {
    let start = Instant::now();
    let e = signal::wait(libc::SIGTTOU, Some(ms(50))).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let took = start.elapsed();
    assert!(
        took >= ms(50) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::TimedOut);
}

#[test]
fn invalid_signal_numbers_are_errors() {
    for n in [0, 65, -1, libc::SIGKILL, libc::SIGSTOP, i32::MAX, i32::MIN] {
        match signal::wait(n, Some(ms(10))) {
            Err(SignalError::Invalid(got)) => assert_eq!(got, n),
            other => panic!("wait({n}): {other:?}"),
        }
        match signal::handle(n, || {}) {
            Err(SignalError::Invalid(got)) => assert_eq!(got, n),
            other => panic!("handle({n}): {other:?}"),
        }
        let e = std::io::Error::from(SignalError::Invalid(n));
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
        assert!(e.to_string().contains(&n.to_string()));
    }
    // The failed calls left nothing registered.
    assert!(greenlet::wait(None).unwrap());
}

#[test]
fn a_signal_owned_by_another_threads_hub_is_in_use() {
    let (owned_tx, owned_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let other = std::thread::spawn(move || {
        let h = signal::handle(libc::SIGPWR, || {}).unwrap();
        owned_tx.send(()).unwrap();
        release_rx.recv().unwrap();
        drop(h);
    });
    owned_rx.recv().unwrap();
    match signal::handle(libc::SIGPWR, || {}) {
        Err(SignalError::InUse(n)) => assert_eq!(n, libc::SIGPWR),
        other => panic!("handle: {other:?}"),
    }
    let e = signal::wait(libc::SIGPWR, Some(ms(10))).unwrap_err();
    assert_eq!(e, SignalError::InUse(libc::SIGPWR));
    assert!(e.to_string().contains("another thread"), "{e}");
    assert_eq!(
        std::io::Error::from(e).kind(),
        std::io::ErrorKind::ResourceBusy
    );
    release_tx.send(()).unwrap();
    other.join().unwrap();
    // Released: this hub may take it now.
    let h = signal::handle(libc::SIGPWR, || {}).unwrap();
    assert!(h.is_active());
}
