//! `poll` hooks: `poll`, `ppoll` and `select` wait on watchers while other greenlets run; the
//! answers are the kernel's.

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

#[test]
fn poll_merges_duplicates_and_reports_the_kernels_revents() {
    gevent_monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let w = greenlet::spawn(move || {
        (&b).write_all(b"x").unwrap();
        b
    });
    // The same fd twice, for reading and for an error only.
    let mut fds = [
        libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd,
            events: 0,
            revents: 0,
        },
    ];
    // SAFETY: two valid pollfds.
    let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, 60_000) };
    assert_eq!(n, 1, "{fds:?}");
    assert_eq!(fds[0].revents, libc::POLLIN);
    assert_eq!(fds[1].revents, 0);
    drop(w.join().unwrap());
}

#[test]
fn a_poll_timeout_ends_the_wait_no_earlier_than_asked_and_others_run() {
    gevent_monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let other = greenlet::spawn(|| ());
    let mut p = libc::pollfd {
        fd: a.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let start = Instant::now();
    // SAFETY: one valid pollfd.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 50) }, 0);
    assert!(start.elapsed() >= Duration::from_millis(50));
    assert!(other.is_dead(), "the other greenlet ran during the poll");
    // A zero timeout goes straight to the kernel: no switch.
    let other = greenlet::spawn(|| ());
    // SAFETY: as above.
    assert_eq!(unsafe { libc::poll(&mut p, 1, 0) }, 0);
    assert!(!other.is_dead());
    other.join().unwrap();
}

#[test]
fn select_waits_cooperatively_and_returns_the_ready_sets() {
    gevent_monkey::patch_all();
    let (a, b) = UnixStream::pair().unwrap();
    let (c, _d) = UnixStream::pair().unwrap();
    let w = greenlet::spawn(move || {
        (&b).write_all(b"x").unwrap();
        b
    });
    let (fa, fc) = (a.as_raw_fd(), c.as_raw_fd());
    // SAFETY: fd_sets of ours, fds below FD_SETSIZE.
    unsafe {
        let mut r: libc::fd_set = std::mem::zeroed();
        libc::FD_ZERO(&mut r);
        libc::FD_SET(fa, &mut r);
        libc::FD_SET(fc, &mut r);
        let mut tv = libc::timeval {
            tv_sec: 60,
            tv_usec: 0,
        };
        let n = libc::select(
            fa.max(fc) + 1,
            &mut r,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut tv,
        );
        assert_eq!(n, 1);
        assert!(libc::FD_ISSET(fa, &r));
        assert!(!libc::FD_ISSET(fc, &r));
    }
    drop(w.join().unwrap());
}

#[test]
fn ppoll_with_a_timeout_cooperates() {
    gevent_monkey::patch_all();
    let (a, _b) = UnixStream::pair().unwrap();
    let other = greenlet::spawn(|| ());
    let mut p = libc::pollfd {
        fd: a.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 20_000_000,
    };
    // SAFETY: one valid pollfd and timespec; no signal mask.
    assert_eq!(unsafe { libc::ppoll(&mut p, 1, &ts, std::ptr::null()) }, 0);
    assert!(other.is_dead(), "the other greenlet ran during the ppoll");
}
