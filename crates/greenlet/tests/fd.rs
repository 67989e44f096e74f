//! `fd`: waiting for a descriptor's readiness with a deadline, through the hub's loop.

use greenlet::fd::{Interest, wait_fd, wait_readable, wait_writable};
use greenlet::{hub_loop, spawn, yield_now};
use std::io::{ErrorKind, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

fn pair() -> (UnixStream, UnixStream) {
    UnixStream::pair().unwrap()
}

#[test]
fn readiness_says_which_direction_fired() {
    let (a, b) = pair();
    // Nothing to read yet: only writable.
    let r = wait_fd(a.as_raw_fd(), Interest::BOTH, None).unwrap();
    assert!(r.is_writable() && !r.is_readable(), "{r:?}");
    // Readable once the other end wrote; only what was asked is reported.
    (&b).write_all(b"x").unwrap();
    let r = wait_fd(a.as_raw_fd(), Interest::READABLE, None).unwrap();
    assert!(r.is_readable() && !r.is_writable(), "{r:?}");
    let r = wait_fd(a.as_raw_fd(), Interest::BOTH, None).unwrap();
    assert!(r.is_readable() && r.is_writable(), "{r:?}");
}

#[test]
fn a_reader_waits_while_other_greenlets_run_until_data_comes() {
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    let reader = spawn(move || {
        wait_readable(fd, None).unwrap();
        let mut buf = [0u8; 4];
        (&a).read_exact(&mut buf).unwrap();
        buf
    });
    yield_now().unwrap();
    assert!(!reader.is_dead(), "it waits");
    (&b).write_all(b"ping").unwrap();
    assert_eq!(&reader.join().unwrap(), b"ping");
}

#[test]
fn readiness_from_another_thread_wakes_the_waiter() {
    let (a, b) = pair();
    let (started_tx, started_rx) = std::sync::mpsc::channel::<()>();
    let writer = std::thread::spawn(move || {
        started_rx.recv().unwrap();
        (&b).write_all(b"!").unwrap();
        b
    });
    let fd = a.as_raw_fd();
    let waiter = spawn(move || wait_readable(fd, Some(generous(Duration::from_secs(20)))));
    yield_now().unwrap(); // the waiter is in its wait
    started_tx.send(()).unwrap();
    waiter.join().unwrap().unwrap();
    drop(writer.join().unwrap());
}

#[test]
fn the_deadline_ends_the_wait_no_earlier_than_asked() {
    let (_a, b) = pair();
    let start = Instant::now();
    let deadline = start + ms(50);
    let e = wait_fd(b.as_raw_fd(), Interest::READABLE, Some(deadline)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= ms(50) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    // A deadline already past still looks once: a ready fd is reported, not timed out.
    let past = Instant::now() - ms(10);
    assert!(
        wait_fd(b.as_raw_fd(), Interest::WRITABLE, Some(past))
            .unwrap()
            .is_writable()
    );
    let e = wait_readable(b.as_raw_fd(), Some(ms(5))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    wait_writable(b.as_raw_fd(), Some(ms(5))).unwrap();
}

#[test]
fn bad_descriptors_are_errors_not_hangs() {
    let e = wait_fd(-1, Interest::READABLE, None).unwrap_err();
    match e.get_ref().and_then(|e| e.downcast_ref::<ev_loop::Error>()) {
        Some(ev_loop::Error::BadFd { fd: -1, source }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EBADF))
        }
        _ => panic!("expected BadFd for fd -1, got {e:?}"),
    }
    let (a, _b) = pair();
    let fd = a.as_raw_fd();
    drop(a);
    assert!(wait_readable(fd, Some(ms(5))).is_err());
}

#[test]
fn a_kill_while_waiting_leaves_no_watcher_behind() {
    let lp = hub_loop();
    let watchers = lp.watcher_count();
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    let g = spawn(move || wait_readable(fd, None));
    yield_now().unwrap();
    assert!(!g.is_dead(), "it waits");
    assert_eq!(lp.watcher_count(), watchers + 1, "its io watcher");
    g.kill();
    assert!(g.join().is_err(), "killed, not finished");
    assert_eq!(lp.watcher_count(), watchers, "the io watcher is gone");
    // The descriptor is still usable: a new wait on it works.
    (&b).write_all(b"x").unwrap();
    wait_readable(fd, None).unwrap();
    drop(a);
}

#[test]
fn nothing_else_that_could_wake_it_is_not_a_reason_to_fail() {
    // An fd wait keeps the loop alive by its watcher: a reader with no deadline on an fd that
    // becomes ready later, from a timer, is not told it would block forever.
    let (a, b) = pair();
    let fd = a.as_raw_fd();
    let t = greenlet::spawn_later(ms(10), move || (&b).write_all(b"late"));
    wait_readable(fd, None).unwrap();
    t.join().unwrap().unwrap();
}
