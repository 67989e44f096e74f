//! Bad input at the loop level: each case gives a specific [`Error`] (or a
//! documented, safe outcome) and the loop keeps serving afterwards ([`assert_loop_serves`]).
//!
//! Where each loop-level item is tested (`crates/loop/tests/`; the greenlet-level list is in
//! `crates/greenlet/tests/badinput.rs`):
//! - negative fd: `watchers.rs::io_refuses_bad_fds_and_events`; here `negative_fd`
//! - closed fd: `watchers.rs::io_refuses_bad_fds_and_events` (a number that cannot be open),
//!   `closed_fd.rs::io_on_a_closed_fd_reports_an_error_event` (closed behind an active
//!   watcher's back); here `closed_fd_number`
//! - reused fd: here `io_watcher_on_a_reused_fd_number`
//! - zero durations: here `timer_with_zero_durations_fires_once_on_the_next_iteration`
//! - huge durations: here `timer_with_huge_durations_neither_fires_nor_panics`
//! - negative, NaN and infinite durations: only `Periodic` takes `f64` seconds (`Timer` takes
//!   `Duration`; `Loop::now` only returns one):
//!   `watchers.rs::periodic_fires_on_the_wall_clock_and_refuses_bad_times`; here
//!   `periodic_refuses_every_bad_time_and_survives_extremes`
//! - signal number out of range: `watchers.rs::signals_are_delivered_and_bad_numbers_refused`

use ev_loop::{Break, Error, Events, Io, Loop, Periodic, Timer};
use std::cell::Cell;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

/// The two largest durations a caller can pass.
const HUGE: [Duration; 2] = [Duration::MAX, Duration::from_secs(u64::MAX)];

/// The loop keeps serving: a 1 ms timer fires, in time (within seconds).
fn assert_loop_serves(lp: &Loop) {
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let t = Timer::new(lp, ms(1), Duration::ZERO, move |_, _| f.set(true));
    t.start();
    let start = Instant::now();
    while !fired.get() {
        assert!(
            start.elapsed() < generous(Duration::from_secs(10)),
            "the timer never fired"
        );
        lp.run_once();
    }
}

/// Run `f` on a thread of its own and fail (instead of hanging the test) if it does not finish
/// within `generous(limit)`.
fn finishes_within(limit: Duration, f: fn()) {
    let limit = generous(limit);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        f();
        tx.send(()).unwrap();
    });
    match rx.recv_timeout(limit) {
        Ok(()) => {}
        Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("still running after {limit:?}"),
        Err(e) => panic!("the thread failed: {e}"),
    }
}

fn pipe() -> (RawFd, RawFd) {
    let mut fds = [0; 2];
    assert_eq!(
        // SAFETY: `fds` is a valid out array of two descriptors.
        unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
        0
    );
    (fds[0], fds[1])
}

fn close_fd(fd: RawFd) {
    // SAFETY: closing a descriptor the caller owns and no longer uses.
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

#[test]
fn negative_fd() {
    let lp = Loop::new().unwrap();
    for fd in [-1, -2, i32::MIN] {
        let e = Io::new(&lp, fd, Events::READ, |_, _| {}).unwrap_err();
        assert!(
            matches!(&e, Error::BadFd { fd: f, source } if *f == fd
            && source.raw_os_error() == Some(libc::EBADF)),
            "{e}"
        );
        assert!(e.to_string().contains("bad file descriptor"), "{e}");
    }
    // A refused `set` leaves an active watcher as it was, and it still fires.
    let (a, mut b) = UnixStream::pair().unwrap();
    let got = Rc::new(Cell::new(Events::default()));
    let g = got.clone();
    let io = Io::new(&lp, a.as_raw_fd(), Events::READ, move |w, ev| {
        g.set(ev);
        w.stop();
    })
    .unwrap();
    io.start();
    assert!(matches!(
        io.set(-1, Events::READ),
        Err(Error::BadFd { fd: -1, .. })
    ));
    assert!(io.is_active());
    assert_eq!(io.fd(), a.as_raw_fd());
    std::io::Write::write_all(&mut b, b"x").unwrap();
    lp.run();
    assert!(got.get().is_readable(), "{:?}", got.get());
    assert_loop_serves(&lp);
}

#[test]
fn closed_fd_number() {
    let lp = Loop::new().unwrap();
    // Numbers that cannot be open (a just-closed number could be reused at once by tests
    // running in parallel).
    for fd in [1 << 30, i32::MAX] {
        let e = Io::new(&lp, fd, Events::WRITE, |_, _| {}).unwrap_err();
        assert!(
            matches!(&e, Error::BadFd { fd: f, source } if *f == fd
            && source.raw_os_error() == Some(libc::EBADF)),
            "{e}"
        );
    }
    assert_loop_serves(&lp);
}

#[test]
fn io_watcher_on_a_reused_fd_number() {
    let lp = Loop::new().unwrap();
    let (old_r, old_w) = pipe();
    let (new_r, new_w) = pipe();
    let got = Rc::new(Cell::new(Events::default()));
    let g = got.clone();
    let io = Io::new(&lp, old_r, Events::READ, move |w, ev| {
        g.set(ev);
        w.stop();
    })
    .unwrap();
    io.start();
    lp.run_nowait(); // libev hands the fd to its backend
    // The number is reused behind the active watcher's back: `old_r` now names the new pipe's
    // read end, and the old read end is closed (`dup2` over a number we own is atomic, so no
    // other thread can take the number in between).
    // SAFETY: both are pipe ends this test owns.
    assert_eq!(unsafe { libc::dup2(new_r, old_r) }, old_r);
    close_fd(new_r);
    // SAFETY: writing our own buffer to our own pipe.
    assert_eq!(unsafe { libc::write(new_w, b"new".as_ptr().cast(), 3) }, 3);
    // libev's rule for a reused number: set the fd again, so the backend re-registers it.
    io.set(old_r, Events::READ).unwrap();
    // Bounded: if the watcher never fired, this guard would end the run.
    let guard = Timer::new(
        &lp,
        generous(Duration::from_secs(10)),
        Duration::ZERO,
        |w, _| w.event_loop().break_loop(Break::All),
    );
    guard.set_keep_alive(false);
    guard.start();
    lp.run();
    assert!(got.get().is_readable(), "{:?}", got.get());
    let mut buf = [0u8; 8];
    // SAFETY: reading into our own buffer from our own pipe.
    let n = unsafe { libc::read(old_r, buf.as_mut_ptr().cast(), buf.len()) };
    assert_eq!(&buf[..n.max(0) as usize], b"new");
    drop(io);
    for fd in [old_r, old_w, new_w] {
        close_fd(fd);
    }
    assert_loop_serves(&lp);
}

#[test]
fn timer_with_zero_durations_fires_once_on_the_next_iteration() {
    let lp = Loop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, move |_, _| {
        c.set(c.get() + 1)
    });
    assert_eq!(
        (t.repeat(), t.remaining()),
        (Duration::ZERO, Duration::ZERO)
    );
    t.start();
    let start = Instant::now();
    lp.run();
    assert_eq!(count.get(), 1, "a zero repeat means once");
    assert!(!t.is_active());
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    // again() with a zero repeat stops it instead of spinning.
    t.again();
    assert!(!t.is_active());
    t.set(Duration::ZERO, Duration::ZERO);
    t.start();
    lp.run();
    assert_eq!(count.get(), 2);
    assert_loop_serves(&lp);
}

#[test]
fn timer_with_huge_durations_neither_fires_nor_panics() {
    let at_least = Duration::from_secs(u64::MAX / 2);
    for huge in HUGE {
        let lp = Loop::new().unwrap();
        let t = Timer::new(&lp, huge, huge, |_, _| panic!("a huge timer fired"));
        // Read back saturated (the f64 libev keeps rounds up past `Duration::MAX`).
        assert!(t.repeat() >= at_least, "{:?}", t.repeat());
        t.start();
        assert!(t.remaining() >= at_least, "{:?}", t.remaining());
        t.set_repeat(huge);
        t.again();
        assert!(t.is_active() && t.remaining() >= at_least);
        t.set(huge, Duration::ZERO);
        assert!(t.is_active() && t.remaining() >= at_least);
        // It does not fire early, and does not keep this run going (keep_alive off).
        t.set_keep_alive(false);
        let fired = Rc::new(Cell::new(false));
        let f = fired.clone();
        let start = Instant::now();
        lp.update_now(); // the timer counts from now, not from a stale loop time
        let short = Timer::new(&lp, ms(20), Duration::ZERO, move |_, _| f.set(true));
        short.start();
        lp.run();
        assert!(fired.get());
        let took = start.elapsed();
        assert!(
            took >= ms(19) && took < generous(Duration::from_secs(10)),
            "{took:?}"
        );
        assert!(t.is_active());
        assert_loop_serves(&lp);
    }
}

#[test]
fn periodic_refuses_every_bad_time_and_survives_extremes() {
    let lp = Loop::new().unwrap();
    for (o, i) in [
        (f64::NAN, 1.0),
        (-f64::NAN, 1.0),
        (0.0, f64::NAN),
        (-1e-300, 1.0),
        (f64::MIN, 1.0),
        (0.0, -f64::MIN_POSITIVE),
        (f64::NEG_INFINITY, 0.0),
        (0.0, f64::INFINITY),
        (f64::INFINITY, 1.0),
    ] {
        let e = Periodic::new(&lp, o, i, |_, _| {}).unwrap_err();
        match e {
            Error::InvalidTime { value, .. } => {
                assert!(value.to_bits() == o.to_bits() || value.to_bits() == i.to_bits())
            }
            other => panic!("({o}, {i}): {other}"),
        }
    }
    assert_loop_serves(&lp);
    // Valid extremes neither hang libev nor fire early. An offset far beyond now used to send
    // libev stepping towards now one interval at a time, practically forever.
    finishes_within(Duration::from_secs(20), || {
        let lp = Loop::new().unwrap();
        let now = lp.now();
        for (o, i) in [
            (1e300, 0.5),
            (1e300, 1e-3),
            (f64::MAX, 1.0),
            (1e20, 1.0),
            (f64::MAX, 0.0),
            (0.0, f64::MAX),
            (-0.0, 1e6),
        ] {
            let p = Periodic::new(&lp, o, i, |_, _| {}).unwrap();
            p.start();
            let at = p.at();
            assert!(at > now, "({o}, {i}): at {at}, now {now}");
            if i > 0.0 {
                assert!(
                    at <= now + i.max(1.0) + 1.0,
                    "({o}, {i}): at {at}, now {now}"
                );
            }
        }
        // A tiny interval fires (often) without hanging the loop.
        let n = Rc::new(Cell::new(0));
        let c = n.clone();
        let p = Periodic::new(&lp, 0.0, 1e-300, move |w, _| {
            c.set(c.get() + 1);
            if c.get() == 3 {
                w.stop();
            }
        })
        .unwrap();
        p.start();
        lp.run_once();
        while p.is_active() {
            lp.run_once();
        }
        assert_eq!(n.get(), 3);
    });
}
