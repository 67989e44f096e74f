//! `Source`, the fd-readiness core: what its io watcher does between waits.

use gevent_io::source::Source;
use greenlet::hub::Waiter;
use greenlet::{Error, hub_loop, idle, spawn};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc;
use std::time::Duration;

/// A connected pair of sources.
fn pair() -> (Source, Source) {
    let (a, b) = UnixStream::pair().unwrap();
    (
        Source::new(a.into()).unwrap(),
        Source::new(b.into()).unwrap(),
    )
}

/// `b` reads one byte that `a` sends from another greenlet: the read waits, and readiness
/// ends the wait.
fn read_after_a_wait(a: &Source, b: &Source) {
    let a = a.clone();
    let writer = spawn(move || a.write(b"x"));
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    assert_eq!(writer.join().unwrap().unwrap(), 1);
}

#[test]
fn the_watcher_stays_started_after_a_read_until_the_socket_is_ready_with_nobody_waiting() {
    let (a, b) = pair();
    let lp = hub_loop();
    idle().unwrap();
    let base = lp.active_watchers();
    read_after_a_wait(&a, &b);
    // Kept for the next read, which then has nothing to start.
    assert_eq!(lp.active_watchers(), base + 1);
    read_after_a_wait(&a, &b);
    assert_eq!(lp.active_watchers(), base + 1);
    // Ready while nobody waits: reported once, then no longer watched (a level-triggered
    // poll would report it again and again until somebody reads).
    assert_eq!(a.write(b"y").unwrap(), 1);
    idle().unwrap();
    assert_eq!(lp.active_watchers(), base);
    // Nothing was taken from the socket meanwhile.
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    assert_eq!(&buf, b"y");
    // Closing stops it too.
    read_after_a_wait(&a, &b);
    assert_eq!(lp.active_watchers(), base + 1);
    b.close();
    assert_eq!(lp.active_watchers(), base);
    // A borrowed descriptor's watcher is not kept: the descriptor may be closed behind the
    // source's back.
    let (c, d) = UnixStream::pair().unwrap();
    d.set_nonblocking(true).unwrap();
    let (bc, bd) = (
        Source::borrow_raw(c.as_raw_fd()),
        Source::borrow_raw(d.as_raw_fd()),
    );
    read_after_a_wait(&bc, &bd);
    assert_eq!(lp.active_watchers(), base);
}

#[test]
fn a_watcher_kept_for_the_next_read_does_not_keep_the_hub_alive() {
    // On a thread of its own, whose hub has nothing else: were the watcher to keep the loop
    // running, the last wait below would sleep for ever instead of failing.
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (a, b) = pair();
        read_after_a_wait(&a, &b);
        let r = Waiter::new("nothing").unwrap().wait(None);
        tx.send(matches!(r, Err(Error::WouldBlockForever))).unwrap();
        drop((a, b));
    });
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)),
        Ok(true),
        "a wait that nothing can end was not told so"
    );
}

#[test]
fn a_wait_to_write_keeps_the_hub_alive_while_the_kept_read_watcher_does_not() {
    let (near, far) = UnixStream::pair().unwrap();
    let b = Source::new(near.into()).unwrap();
    // The read watcher is kept started after this read (the far end writes through a
    // borrowed source, which leaves the descriptor open).
    read_after_a_wait(&Source::borrow_raw(far.as_raw_fd()), &b);
    // A thread drains the far end, after making `b` readable with nobody reading it: the
    // only wait left on this hub is the write below, whatever the read watcher reports.
    const TOTAL: usize = 4 << 20;
    let (go, started) = mpsc::channel::<()>();
    let drain = std::thread::spawn(move || {
        use std::io::{Read, Write};
        started.recv().unwrap();
        (&far).write_all(b"z").unwrap();
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0;
        while got < TOTAL {
            got += (&far).read(&mut buf).unwrap();
        }
        got
    });
    go.send(()).unwrap();
    let data = vec![7u8; TOTAL];
    let mut sent = 0;
    while sent < TOTAL {
        sent += b
            .write(&data[sent..])
            .expect("the wait to write was not kept alive");
    }
    assert_eq!(drain.join().unwrap(), TOTAL);
    let mut buf = [0u8; 1];
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    assert_eq!(&buf, b"z");
}
