//! `gevent_io::select`: `select` and `poll` over several fds, answered by the hub's loop.

use gevent_io::select::{Interest, PollFd, poll, select};
use greenlet::{Event, hub_loop, spawn};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{generous, ms};

#[test]
fn select_reports_every_ready_fd_of_several() {
    let pairs: Vec<(UnixStream, UnixStream)> =
        (0..4).map(|_| UnixStream::pair().unwrap()).collect();
    let fds: Vec<_> = pairs.iter().map(|(_, b)| b.as_raw_fd()).collect();
    // Nothing readable yet; every fd writable.
    let (r, w) = select(&fds, &fds, None).unwrap();
    assert!(r.is_empty());
    assert_eq!(w, fds);
    // Another greenlet makes the 2nd and 4th readable while this one waits.
    let mut writers: Vec<_> = pairs.iter().map(|(a, _)| a.try_clone().unwrap()).collect();
    let g = spawn(move || {
        writers[3].write_all(b"x").unwrap();
        writers[1].write_all(b"y").unwrap();
    });
    let timeout = Some(generous(Duration::from_secs(20)));
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (r, w) = select(&fds, &[], timeout).unwrap();
        assert!(w.is_empty());
        assert!(!r.is_empty(), "timed out");
        seen = r;
    }
    assert_eq!(seen, [fds[1], fds[3]]);
    g.join().unwrap();
}

#[test]
fn poll_fills_revents_of_several_fds() {
    let (mut a1, b1) = UnixStream::pair().unwrap();
    let (a2, b2) = UnixStream::pair().unwrap();
    let mut fds = [
        PollFd::new(b1.as_raw_fd(), Interest::READABLE),
        PollFd::new(b2.as_raw_fd(), Interest::READABLE),
        PollFd::new(-1, Interest::READABLE),
    ];
    let g = spawn(move || {
        a1.write_all(b"z").unwrap();
        drop(a2); // b2: end of stream
        a1 // b1 stays open
    });
    let mut n = 0;
    while n < 2 {
        n = poll(&mut fds, Some(generous(Duration::from_secs(20)))).unwrap();
        assert!(n > 0, "timed out");
    }
    assert_eq!(n, 2);
    assert!(fds[0].revents().is_readable() && !fds[0].revents().is_hup());
    assert!(fds[1].revents().is_readable() && fds[1].revents().is_hup());
    assert!(fds[2].revents().is_empty()); // a negative fd is ignored
    let _a1 = g.join().unwrap();
    // An fd that is not open is reported as invalid at once. A number far above any
    // descriptor limit, not a just-closed one: tests running in parallel reuse those at once,
    // and a wait with no timeout on somebody else's socket would never end.
    let closed = 1 << 30;
    let mut bad = [PollFd::new(closed, Interest::READABLE)];
    assert_eq!(poll(&mut bad, None).unwrap(), 1);
    assert!(bad[0].revents().is_invalid());
    assert_eq!(
        select(&[closed], &[], None).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
}

#[test]
fn timeouts_are_no_earlier_than_asked() {
    let (_a, b) = UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let start = Instant::now();
    assert_eq!(select(&[fd], &[], Some(ms(200))).unwrap(), (vec![], vec![]));
    support::assert_about_200ms(start.elapsed());
    let mut fds = [PollFd::new(fd, Interest::READABLE)];
    let start = Instant::now();
    assert_eq!(poll(&mut fds, Some(ms(200))).unwrap(), 0);
    support::assert_about_200ms(start.elapsed());
    assert!(fds[0].revents().is_empty());
    // A zero timeout only looks.
    assert_eq!(poll(&mut fds, Some(Duration::ZERO)).unwrap(), 0);
}

#[test]
fn duplicates_are_watched_once_and_reported_once() {
    let (mut a, b) = UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let before = hub_loop().watcher_count();
    let max_watchers = std::rc::Rc::new(std::cell::Cell::new(0));
    let m = max_watchers.clone();
    let g = spawn(move || {
        m.set(hub_loop().watcher_count());
        a.write_all(b"d").unwrap();
    });
    // No timeout: the wait's only watchers are the io watchers.
    let (r, w) = select(&[fd, fd, fd], &[], None).unwrap();
    assert_eq!((r, w), (vec![fd], vec![]));
    // One watcher for the fd listed three times (counted while select waited).
    assert_eq!(max_watchers.get(), before + 1);
    g.join().unwrap();
    // In both sets: readable and writable, each once.
    assert_eq!(
        select(&[fd, fd], &[fd, fd], None).unwrap(),
        (vec![fd], vec![fd])
    );
    let mut fds = [
        PollFd::new(fd, Interest::READABLE),
        PollFd::new(fd, Interest::WRITABLE),
    ];
    assert_eq!(poll(&mut fds, None).unwrap(), 2);
    assert!(fds[0].revents().is_readable() && !fds[0].revents().is_writable());
    assert!(fds[1].revents().is_writable() && !fds[1].revents().is_readable());
    assert_eq!(hub_loop().watcher_count(), before);
}

#[test]
fn a_kill_during_a_wait_leaves_no_watcher() {
    let pairs: Vec<(UnixStream, UnixStream)> =
        (0..3).map(|_| UnixStream::pair().unwrap()).collect();
    let fds: Vec<_> = pairs.iter().map(|(_, b)| b.as_raw_fd()).collect();
    let before = hub_loop().watcher_count();
    let waiting = Event::new();
    let (w, f) = (waiting.clone(), fds.clone());
    let selecting = spawn(move || {
        w.set();
        let _ = select(&f, &[], None);
        unreachable!("the select is killed");
    });
    waiting.wait().unwrap();
    greenlet::yield_now().unwrap();
    assert_eq!(hub_loop().watcher_count(), before + 3); // one io watcher per fd
    selecting.kill();
    assert!(selecting.join().is_err());
    assert_eq!(hub_loop().watcher_count(), before);

    let (w, f) = (Event::new(), fds.clone());
    let w2 = w.clone();
    let polling = spawn(move || {
        w2.set();
        let mut p: Vec<_> = f
            .iter()
            .map(|&fd| PollFd::new(fd, Interest::READABLE))
            .collect();
        let _ = poll(&mut p, None);
        unreachable!("the poll is killed");
    });
    w.wait().unwrap();
    greenlet::yield_now().unwrap();
    assert_eq!(hub_loop().watcher_count(), before + 3);
    polling.kill();
    assert!(polling.join().is_err());
    assert_eq!(hub_loop().watcher_count(), before);
}
