//! C code built with `-O2 -D_FORTIFY_SOURCE=2` (`csrc/fortify_probe.c`), which calls
//! `__read_chk`, `__recv_chk`, `__poll_chk` and `usleep`, cooperates like Rust code.

use std::cell::Cell;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;

unsafe extern "C" {
    fn gevent_monkey_probe_read(fd: i32, out: *mut u8, n: usize) -> isize;
    fn gevent_monkey_probe_recv(fd: i32, out: *mut u8, n: usize) -> isize;
    fn gevent_monkey_probe_poll(fd: i32, timeout_ms: i32, nfds: usize) -> i32;
    fn gevent_monkey_probe_usleep(us: u32) -> i32;
}

/// A wait that did not cooperate would block the thread for good: fail instead of hanging.
fn watchdog() {
    std::thread::spawn(|| {
        std::thread::sleep(std::time::Duration::from_secs(120));
        eprintln!("fortify: a C call blocked the thread instead of cooperating");
        std::process::abort();
    });
}

/// A greenlet that writes `msg` to `to` once it runs (only while the caller waits).
fn writer(to: UnixStream, msg: &'static [u8]) -> greenlet::Greenlet<UnixStream> {
    greenlet::spawn(move || {
        (&to).write_all(msg).unwrap();
        to
    })
}

#[test]
fn fortified_read_recv_and_poll_wait_through_the_hub() {
    gevent_monkey::patch_all();
    watchdog();
    let (a, b) = UnixStream::pair().unwrap();
    let w = writer(b, b"read");
    let mut out = [0u8; 64];
    // SAFETY: `out` has room for the 64 bytes the probe may copy.
    let n = unsafe { gevent_monkey_probe_read(a.as_raw_fd(), out.as_mut_ptr(), 16) };
    assert_eq!(&out[..n as usize], b"read");
    let b = w.join().unwrap();

    let w = writer(b, b"recv");
    // SAFETY: as above.
    let n = unsafe { gevent_monkey_probe_recv(a.as_raw_fd(), out.as_mut_ptr(), 16) };
    assert_eq!(&out[..n as usize], b"recv");
    let b = w.join().unwrap();

    let w = writer(b, b"poll");
    // SAFETY: plain arguments; one pollfd.
    let n = unsafe { gevent_monkey_probe_poll(a.as_raw_fd(), 60_000, 1) };
    assert_eq!(n, 1);
    drop(w.join().unwrap());
}

#[test]
fn a_c_usleep_lets_the_other_greenlets_run() {
    gevent_monkey::patch_all();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let other = greenlet::spawn(move || r.set(true));
    // SAFETY: a plain call.
    assert_eq!(unsafe { gevent_monkey_probe_usleep(20_000) }, 0);
    assert!(ran.get(), "the other greenlet ran during the C usleep");
    other.join().unwrap();
}
