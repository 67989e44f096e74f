//! Faults and bad input: each item gives a clear error (asserted by kind or
//! variant) AND the hub keeps serving afterwards ([`assert_hub_serves`], or
//! [`assert_sockets_serve`] for the network items).
//!
//! Where each item of the issue is tested (`file::test`; files under `crates/greenlet/tests/`
//! unless marked ev-loop, which means `crates/loop/tests/`). Tests in this file are marked
//! "here".
//!
//! Faults
//! - [x] panic in a watcher callback: `hub.rs::a_panicking_callback_in_the_hub_is_reported_and_the_hub_keeps_going`;
//!   ev-loop `soundness.rs::a_panic_in_a_callback_breaks_the_loop_and_resumes_from_run`,
//!   `soundness.rs::a_panic_in_a_nested_run_reaches_the_outer_run`
//! - [x] panic in a greenlet: `greenlet.rs::a_panic_is_stored_reported_and_the_hub_continues`
//! - [x] panic in a link callback: `faults.rs::a_panicking_link_callback_does_not_stop_other_links_or_the_hub`
//! - [x] panic in a threadpool job: `threadpool.rs::a_panic_in_a_job_reaches_the_waiter`
//! - [x] kill during a read: `faults.rs::kill_during_a_socket_read_unwinds`; here
//!   `kill_during_a_read_leaves_the_socket_usable_and_nothing_registered`
//! - [x] kill during a sleep: `greenlet.rs::killing_a_sleeping_greenlet_unwinds_its_stack`; here
//!   `kill_during_a_sleep_leaves_no_timer_behind`
//! - [x] kill during a Queue get: `faults.rs::kill_during_a_queue_get_unwinds_and_loses_no_item`;
//!   here `kill_during_a_queue_get_leaves_nothing_registered`
//! - [x] dropping a hub with 10k live greenlets runs (and counts) their destructors:
//!   `hub.rs::thread_exit_kills_and_unwinds_every_remaining_greenlet`
//! - [x] stack overflow reports the greenlet's name (child process):
//!   `overflow.rs::stack_overflow_is_reported_with_the_greenlet_name`,
//!   `overflow.rs::canary_stack_overflow_is_reported_with_the_greenlet_name`
//! - [x] a greenlet that never yields is reported by the monitor thread:
//!   `monitor.rs::a_greenlet_that_does_not_yield_is_reported_by_name`
//!
//! Bad input
//! - [x] negative fd: ev-loop `watchers.rs::io_refuses_bad_fds_and_events`; here `negative_fd`
//! - [x] closed fd: ev-loop `watchers.rs::io_refuses_bad_fds_and_events`,
//!   ev-loop `closed_fd.rs::io_on_a_closed_fd_reports_an_error_event` (closed behind an
//!   active watcher's back), ev-loop `badinput.rs::closed_fd_number`;
//!   `net.rs::closing_a_socket_wakes_its_blocked_reader`; here `closed_fd_and_closed_sockets`
//! - [x] reused fd: ev-loop `badinput.rs::io_watcher_on_a_reused_fd_number`; here
//!   `reused_fd_number_is_waited_on_as_the_new_file`,
//!   `a_closed_socket_never_touches_a_socket_that_reuses_its_number`
//! - [x] zero durations: `hub.rs::sleep_zero_interleaves_ready_greenlets`,
//!   `timeout.rs::timeouts_fire_only_for_their_greenlet_and_nest` (`Timeout::start(ZERO)`); here
//!   `zero_durations_do_not_wait`, `zero_socket_timeouts`; ev-loop
//!   `badinput.rs::timer_with_zero_durations_fires_once_on_the_next_iteration`
//! - [x] huge durations: here `huge_durations_for_sleep_and_timeouts`,
//!   `huge_durations_for_joins_groups_and_pools`, `huge_durations_for_queues_events_and_locks`,
//!   `huge_socket_timeouts`, `huge_durations_for_processes_servers_signals_and_the_monitor`;
//!   ev-loop `badinput.rs::timer_with_huge_durations_neither_fires_nor_panics`
//! - [x] negative, NaN and infinite durations (only `ev_loop::Periodic` takes `f64` seconds;
//!   every greenlet API takes `Duration`): ev-loop
//!   `watchers.rs::periodic_fires_on_the_wall_clock_and_refuses_bad_times`,
//!   `badinput.rs::periodic_refuses_every_bad_time_and_survives_extremes`
//! - [x] join on self: `greenlet.rs::join_on_yourself_is_an_error`,
//!   `pool.rs::a_member_cannot_join_its_own_group`; here `join_on_self`
//! - [x] kill of a dead or unstarted greenlet: `greenlet.rs::killing_an_unstarted_greenlet_means_it_never_runs`,
//!   `faults.rs::bad_input_gives_clear_errors_and_the_hub_keeps_serving`; here
//!   `kill_of_a_dead_or_unstarted_greenlet`
//! - [x] a Queue of capacity 0: `queue.rs::queue_bounded_zero_is_a_rendezvous`; here
//!   `queue_of_capacity_zero`
//! - [x] releasing a BoundedSemaphore too often:
//!   `lock.rs::bounded_semaphore_rejects_a_release_beyond_its_initial_count`; here
//!   `bounded_semaphore_released_too_often`
//! - [x] a signal number out of range: `signal.rs::invalid_signal_numbers_are_errors`; ev-loop
//!   `watchers.rs::signals_are_delivered_and_bad_numbers_refused`; here
//!   `signal_number_out_of_range`
//! - [x] a port in use: `net.rs::connect_refused_and_port_in_use`; here `port_in_use`
//! - [x] a connection refused: `net.rs::connect_refused_and_port_in_use`,
//!   `server.rs::refused_before_start_served_while_running_refused_after_stop`; here
//!   `connection_refused`
//! - [x] a name that does not resolve: `threadpool.rs::dns_resolves_localhost_and_reports_unknown_names`;
//!   here `name_that_does_not_resolve`

use gevent_io::net::{self, TcpListener, TcpStream, UdpSocket, UnixListener, UnixStream};
use gevent_io::{dns, process, server, signal};
use greenlet::*;
use std::cell::{Cell, RefCell};
use std::io::{self, ErrorKind, Read, Write};
use std::os::fd::{AsRawFd, RawFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{generous, ms};

/// Much longer than any test may take: a wait this long that does not end early is a hang.
const LONG: Duration = Duration::from_secs(30);

/// The two largest durations a caller can pass.
const HUGE: [Duration; 2] = [Duration::MAX, Duration::from_secs(u64::MAX)];

/// The hub keeps serving: a new greenlet that sleeps 1 ms is run and joined, in time.
fn assert_hub_serves() {
    let start = Instant::now();
    let g = spawn(|| {
        sleep(ms(1)).unwrap();
        42
    });
    assert_eq!(g.join().unwrap(), 42);
    assert!(
        start.elapsed() < generous(Duration::from_secs(10)),
        "{:?}",
        start.elapsed()
    );
}

/// The hub keeps serving sockets: a listener accepts a connection and echoes one byte.
fn assert_sockets_serve() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let server = spawn(move || -> io::Result<()> {
        let (mut c, _) = l.accept()?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
        c.write_all(&b)
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(LONG)).unwrap();
    c.write_all(b"e").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"e");
    server.join().unwrap().unwrap();
    assert_hub_serves();
}

/// Nothing is left registered on the hub: the loop runs dry at once (a leaked active watcher
/// would keep it alive until the bound).
fn assert_nothing_registered(what: &str) {
    let start = Instant::now();
    assert!(
        greenlet::wait(Some(generous(Duration::from_secs(5)))).unwrap(),
        "{what}: something still keeps the hub's loop alive"
    );
    // ... nor a leaked timer that fires before the bound.
    assert!(start.elapsed() < generous(Duration::from_secs(4)), "{what}");
}

fn assert_timed_out<T: std::fmt::Debug>(r: Result<T>, what: &str) {
    match r {
        Err(Error::Timeout(_)) => {}
        other => panic!("{what}: expected a timeout, got {other:?}"),
    }
}

/// The `ev_loop::Error::BadFd` inside an `io::Error` from a wait on a bad descriptor.
fn bad_fd(e: &io::Error) -> i32 {
    match e.get_ref().and_then(|e| e.downcast_ref::<ev_loop::Error>()) {
        Some(ev_loop::Error::BadFd { fd, source }) => {
            assert_eq!(source.raw_os_error(), Some(libc::EBADF), "{e}");
            *fd
        }
        _ => panic!("expected ev_loop::Error::BadFd, got {e:?}"),
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

fn write_fd(fd: RawFd, data: &[u8]) {
    // SAFETY: `data` is valid for reads of its length; `fd` is a pipe end the caller owns.
    let n = unsafe { libc::write(fd, data.as_ptr().cast(), data.len()) };
    assert_eq!(n, data.len() as isize);
}

fn read_fd(fd: RawFd) -> Vec<u8> {
    let mut buf = [0u8; 64];
    // SAFETY: `buf` is valid for writes of its length; `fd` is a pipe end the caller owns.
    let n = unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
    assert!(n >= 0, "{}", io::Error::last_os_error());
    buf[..n as usize].to_vec()
}

fn close_fd(fd: RawFd) {
    // SAFETY: closing a descriptor the caller owns and no longer uses.
    assert_eq!(unsafe { libc::close(fd) }, 0);
}

fn temp_path(tag: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!(
        "greenlet-badinput-{tag}-{}.sock",
        std::process::id()
    ))
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn kill_during_a_read_leaves_the_socket_usable_and_nothing_registered() {
    let (a, b) = UnixStream::pair().unwrap();
    let a = Rc::new(a);
    let lp = hub_loop();
    idle().unwrap();
    let base = lp.active_watchers();
    let r = a.clone();
    let ran = Rc::new(Cell::new(false));
    let ran2 = ran.clone();
    let reader = spawn(move || {
        ran2.set(true);
        (&*r).read(&mut [0u8; 8])
    });
    yield_now().unwrap();
    assert!(
        ran.get() && !reader.is_dead(),
        "the reader is not blocked in its read"
    );
    reader.kill();
    assert!(matches!(reader.join(), Err(JoinError::Killed)));
    idle().unwrap();
    assert_eq!(
        lp.active_watchers(),
        base,
        "the killed reader's io watcher is still active"
    );
    assert_nothing_registered("after killing a reader");
    // The socket is not left "busy": a new reader is not refused and gets the data.
    let r = a.clone();
    let second = spawn(move || {
        let mut buf = [0u8; 1];
        (&*r).read_exact(&mut buf).map(|()| buf[0])
    });
    yield_now().unwrap();
    (&b).write_all(b"k").unwrap();
    assert_eq!(second.join().unwrap().unwrap(), b'k');
    assert_sockets_serve();
}

#[test]
fn kill_during_a_sleep_leaves_no_timer_behind() {
    for d in [ms(1), Duration::from_secs(3600), Duration::MAX] {
        let g = spawn(move || sleep(d));
        yield_now().unwrap();
        let start = Instant::now();
        g.kill();
        assert!(start.elapsed() < generous(Duration::from_secs(5)));
        assert!(matches!(g.join(), Err(JoinError::Killed)));
        assert_nothing_registered("after killing a sleeper");
    }
    assert_hub_serves();
}

#[test]
fn kill_during_a_queue_get_leaves_nothing_registered() {
    let q: Queue<u32> = Queue::bounded(1);
    let (q1, q2) = (q.clone(), q.clone());
    let getter = spawn(move || q1.get());
    let timed = spawn(move || q2.get_timeout(Duration::from_secs(3600)));
    yield_now().unwrap();
    getter.kill();
    timed.kill();
    assert!(getter.was_killed() && timed.was_killed());
    assert_nothing_registered("after killing queue getters");
    // Neither killed getter takes an item; a new one does.
    q.put(5).unwrap();
    assert_eq!(q.len(), 1);
    let q3 = q.clone();
    assert_eq!(spawn(move || q3.get()).join().unwrap(), Ok(5));
    assert_hub_serves();
}

// ---------------------------------------------------------------------------------------------
// Bad input: descriptors

#[test]
fn negative_fd() {
    let start = Instant::now();
    // No timeout: a bad fd must fail at once, never wait.
    assert_eq!(bad_fd(&net::wait_readable(-1, None).unwrap_err()), -1);
    assert_eq!(bad_fd(&net::wait_writable(-1, None).unwrap_err()), -1);
    let e = net::wait_readable(i32::MIN, Some(LONG)).unwrap_err();
    assert_eq!(bad_fd(&e), i32::MIN);
    assert!(e.to_string().contains("bad file descriptor"), "{e}");
    // From a spawned greenlet too.
    let g = spawn(|| net::wait_readable(-1, None).map_err(|e| bad_fd(&e)));
    assert_eq!(g.join().unwrap(), Err(-1));
    // ev-loop's Io on the hub's own loop.
    let lp = hub_loop();
    let e = ev_loop::Io::new(&lp, -1, ev_loop::Events::READ, |_, _| {}).unwrap_err();
    assert!(matches!(e, ev_loop::Error::BadFd { fd: -1, .. }), "{e}");
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    assert_nothing_registered("after waits on a negative fd");
    assert_hub_serves();
}

#[test]
fn closed_fd_and_closed_sockets() {
    // A descriptor number that cannot be open (far above any limit; a just-closed number could
    // be reused at once by tests running in parallel).
    let closed: RawFd = 1 << 30;
    assert_eq!(
        bad_fd(&net::wait_readable(closed, None).unwrap_err()),
        closed
    );
    assert_eq!(
        bad_fd(&net::wait_writable(closed, Some(LONG)).unwrap_err()),
        closed
    );

    // Closed cooperative sockets: every operation fails with EBADF, closing twice is fine.
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (peer, _) = l.accept().unwrap();
    s.close();
    s.close();
    let ebadf = |r: io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.raw_os_error(), Some(libc::EBADF), "{what}: {e}");
    };
    ebadf((&s).read(&mut [0u8; 4]).map(drop), "read");
    ebadf((&s).write(b"x").map(drop), "write");
    ebadf(s.peer_addr().map(drop), "peer_addr");
    ebadf(s.local_addr().map(drop), "local_addr");
    ebadf(s.shutdown(std::net::Shutdown::Both), "shutdown");
    ebadf(s.set_nodelay(true), "set_nodelay");
    l.close();
    ebadf(l.accept().map(drop), "accept");
    ebadf(l.local_addr().map(drop), "listener local_addr");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let to = u.local_addr().unwrap();
    u.close();
    ebadf(u.recv_from(&mut [0u8; 4]).map(drop), "recv_from");
    ebadf(u.send_to(b"x", to).map(drop), "send_to");
    let (ua, _ub) = UnixStream::pair().unwrap();
    ua.close();
    ebadf((&ua).read(&mut [0u8; 4]).map(drop), "unix read");
    ebadf(s.into_std().map(drop), "into_std");
    // The peer of the closed stream sees an orderly end of stream.
    let mut peer = peer;
    peer.set_read_timeout(Some(LONG)).unwrap();
    assert_eq!(peer.read(&mut [0u8; 4]).unwrap(), 0);
    assert_nothing_registered("after operations on closed sockets");
    assert_sockets_serve();
}

#[test]
fn reused_fd_number_is_waited_on_as_the_new_file() {
    // A descriptor number waited on, then made to refer to another file (`dup2` over a number
    // we own is atomic, so no other thread can grab the number in between).
    let (old_r, old_w) = pipe();
    let (new_r, new_w) = pipe();
    write_fd(old_w, b"old");
    net::wait_readable(old_r, Some(LONG)).unwrap(); // the hub's loop has seen `old_r`
    // SAFETY: `old_r` and `new_r` are pipe ends this test owns; `old_r` now names the new
    // pipe's read end and the old read end is closed.
    assert_eq!(unsafe { libc::dup2(new_r, old_r) }, old_r);
    close_fd(new_r);
    let fd = old_r;
    // The old pipe's pending data no longer counts: the new pipe is empty.
    let e = net::wait_readable(fd, Some(ms(50))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    // Data on the new pipe wakes a waiter on the reused number.
    let writer = spawn(move || {
        sleep(ms(10)).unwrap();
        write_fd(new_w, b"new");
    });
    net::wait_readable(fd, Some(LONG)).unwrap();
    assert_eq!(read_fd(fd), b"new");
    writer.join().unwrap();
    for fd in [fd, old_w, new_w] {
        close_fd(fd);
    }
    assert_nothing_registered("after waits on a reused fd");
    assert_hub_serves();
}

#[test]
fn a_closed_socket_never_touches_a_socket_that_reuses_its_number() {
    let (a, _a_peer) = UnixStream::pair().unwrap();
    let old_fd = a.as_raw_fd();
    // Wait on it once so that the hub's loop has an io watcher for the number.
    a.set_read_timeout(Some(ms(1))).unwrap();
    assert_eq!(
        (&a).read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    a.close();
    // The lowest free number is usually `old_fd` again (tests running in parallel may take
    // it first; the checks hold either way).
    let (b, b_peer) = UnixStream::pair().unwrap();
    let reused = b.as_raw_fd() == old_fd || b_peer.as_raw_fd() == old_fd;
    // The closed handle fails with EBADF instead of reaching the new socket.
    let e = (&a).write(b"stale").unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EBADF), "reused: {reused}");
    assert_eq!(
        (&a).read(&mut [0u8; 1]).unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
    // The new socket works, and nothing stale arrived on it.
    b_peer.set_read_timeout(Some(ms(50))).unwrap();
    assert_eq!(
        (&b_peer).read(&mut [0u8; 8]).unwrap_err().kind(),
        ErrorKind::TimedOut,
        "reused: {reused}"
    );
    b.set_read_timeout(Some(LONG)).unwrap();
    (&b_peer).write_all(b"fresh").unwrap();
    let mut got = [0u8; 5];
    (&b).read_exact(&mut got).unwrap();
    assert_eq!(&got, b"fresh");
    assert_sockets_serve();
}

// ---------------------------------------------------------------------------------------------
// Bad input: durations (every greenlet API takes `Duration`, which cannot be negative or NaN;
// see ev-loop's badinput.rs for the `f64` seconds of `Periodic`)

#[test]
fn zero_durations_do_not_wait() {
    let start = Instant::now();
    // sleep(ZERO) only yields.
    let g = spawn(|| 1);
    sleep(Duration::ZERO).unwrap();
    assert!(g.is_dead());
    // A zero Timeout fires at the next blocking call; code that does not block completes.
    assert_eq!(with_timeout(Duration::ZERO, || Ok(5)), Ok(5));
    assert_timed_out(
        with_timeout(Duration::ZERO, || sleep(LONG)),
        "with_timeout(ZERO)",
    );
    let t = Timeout::start(Duration::ZERO);
    assert!(t.is_mine(&sleep(LONG).unwrap_err()));
    drop(t);
    // Joins: a timeout for a running greenlet (which keeps running), the value for a dead one.
    // (Gated by events, not by sleeps, so that a stalled machine cannot change the outcome.)
    let gate = Event::new();
    let g2 = gate.clone();
    let slow = spawn(move || g2.wait().map(|()| 7));
    assert!(slow.join_timeout(Duration::ZERO).unwrap_err().is_timeout());
    assert_eq!(slow.wait(Some(Duration::ZERO)), Ok(false));
    assert_eq!(
        joinall(std::slice::from_ref(&slow), Some(Duration::ZERO)),
        Ok(vec![])
    );
    gate.set();
    assert_eq!(slow.join_timeout(LONG).unwrap(), Ok(7));
    let done = spawn(|| 8);
    yield_now().unwrap();
    assert_eq!(done.join_timeout(Duration::ZERO).unwrap(), 8);
    // spawn_later(ZERO) starts on the next pass.
    assert_eq!(spawn_later(Duration::ZERO, || 3).join().unwrap(), 3);
    // Queues, events, locks, results: a zero wait reports "not now".
    let q: Queue<u8> = Queue::bounded(1);
    assert_eq!(q.get_timeout(Duration::ZERO), Err(QueueError::Empty));
    q.put(1).unwrap();
    assert_eq!(q.put_timeout(2, Duration::ZERO), Err(QueueError::Full(2)));
    assert_eq!(q.get_timeout(Duration::ZERO), Ok(1));
    let ch: Channel<u8> = Channel::new();
    assert_eq!(ch.put_timeout(1, Duration::ZERO), Err(QueueError::Full(1)));
    let ev = Event::new();
    assert_eq!(ev.wait_timeout(Duration::ZERO), Ok(false));
    ev.set();
    assert_eq!(ev.wait_timeout(Duration::ZERO), Ok(true));
    let sem = Semaphore::new(0);
    assert_eq!(sem.acquire_timeout(Duration::ZERO), Ok(false));
    let lock = Rc::new(Lock::new());
    let (l2, release) = (lock.clone(), Event::new());
    let r2 = release.clone();
    let holder = spawn(move || {
        let _g = l2.lock().unwrap();
        r2.wait().unwrap();
    });
    yield_now().unwrap();
    assert!(lock.lock_timeout(Duration::ZERO).unwrap().is_none());
    release.set();
    holder.join().unwrap();
    assert!(lock.lock_timeout(Duration::ZERO).unwrap().is_some());
    let r: AsyncResult<u8> = AsyncResult::new();
    let _setter = r.setter();
    assert!(matches!(r.get_timeout(Duration::ZERO), Err(AsyncError::Wait(e)) if e.is_timeout()));
    let jq: JoinableQueue<u8> = JoinableQueue::unbounded();
    jq.put(1).unwrap();
    assert_eq!(jq.join_timeout(Duration::ZERO), Ok(false));
    let group = Group::new();
    let gate = Event::new();
    let g2 = gate.clone();
    let member = group.spawn(move || g2.wait());
    assert_eq!(group.join(Some(Duration::ZERO)), Ok(false));
    gate.set();
    member.join().unwrap().unwrap();
    let pool = Pool::new(1);
    let gate = Event::new();
    let g2 = gate.clone();
    let busy = pool.spawn(move || g2.wait()).unwrap();
    assert_eq!(pool.wait_available(Some(Duration::ZERO)), Ok(false));
    assert_eq!(pool.join(Some(Duration::ZERO)), Ok(false));
    gate.set();
    busy.join().unwrap().unwrap();
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let job = threadpool::spawn_blocking(move || rx.recv());
    assert_eq!(job.wait(Some(Duration::ZERO)), Ok(false));
    tx.send(()).unwrap();
    job.join().unwrap().unwrap();
    let e = signal::wait(libc::SIGURG, Some(Duration::ZERO)).unwrap_err();
    assert!(e.is_timeout(), "{e}");
    let keep = spawn(|| sleep(LONG));
    assert_eq!(greenlet::wait(Some(Duration::ZERO)), Ok(false));
    keep.kill();
    assert!(
        start.elapsed() < generous(Duration::from_secs(10)),
        "{:?}",
        start.elapsed()
    );
    assert_nothing_registered("after zero-duration waits");
    assert_hub_serves();
}

#[test]
fn zero_socket_timeouts() {
    // std refuses `Some(Duration::ZERO)` as a socket timeout (`InvalidInput`: it would be
    // ambiguous with "no timeout" at the OS level); the cooperative sockets do the same.
    let std_sock = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let std_err = std_sock.set_read_timeout(Some(Duration::ZERO)).unwrap_err();
    assert_eq!(std_err.kind(), ErrorKind::InvalidInput);
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    let invalid = |r: io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}");
    };
    invalid(s.set_read_timeout(Some(Duration::ZERO)), "tcp read");
    invalid(s.set_write_timeout(Some(Duration::ZERO)), "tcp write");
    assert_eq!(
        s.read_timeout().unwrap(),
        None,
        "a refused timeout is not set"
    );
    let (a, _b) = UnixStream::pair().unwrap();
    invalid(a.set_read_timeout(Some(Duration::ZERO)), "unix read");
    invalid(a.set_write_timeout(Some(Duration::ZERO)), "unix write");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    invalid(u.set_read_timeout(Some(Duration::ZERO)), "udp read");
    // As std::net::TcpStream::connect_timeout.
    let e = TcpStream::connect_timeout(l.local_addr().unwrap(), Duration::ZERO).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    // `wait_readable` with a zero timeout is a poll: not ready means TimedOut at once.
    let start = Instant::now();
    let e = net::wait_readable(a.as_raw_fd(), Some(Duration::ZERO)).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    // The sockets still work with a real timeout.
    s.set_read_timeout(Some(ms(20))).unwrap();
    assert_eq!(
        (&s).read(&mut [0u8; 1]).unwrap_err().kind(),
        ErrorKind::TimedOut
    );
    assert_sockets_serve();
}

#[test]
fn huge_durations_for_sleep_and_timeouts() {
    for huge in HUGE {
        // A huge sleep neither fires early nor hangs: an outer short Timeout ends it.
        let start = Instant::now();
        let outer = Timeout::start(ms(50));
        let e = sleep(huge).unwrap_err();
        assert!(outer.is_mine(&e), "{e:?}");
        let took = start.elapsed();
        assert!(
            took >= ms(50) && took < generous(Duration::from_secs(10)),
            "{took:?}"
        );
        drop(outer);
        assert_timed_out(with_timeout(ms(20), || sleep(huge)), "sleep(huge)");
        // A huge Timeout does not fire early.
        let t = Timeout::start(huge);
        sleep(ms(10)).unwrap();
        assert!(t.is_armed() && !t.expired());
        drop(t);
        assert_eq!(with_timeout(huge, || sleep(ms(5)).map(|()| 9)), Ok(9));
        assert_eq!(with_timeout_or(huge, 0, || Ok(1)), Ok(1));
        // A huge spawn_later does not run, and a kill releases its timer.
        let ran = Rc::new(Cell::new(false));
        let r = ran.clone();
        let later = spawn_later(huge, move || r.set(true));
        sleep(ms(10)).unwrap();
        assert!(!ran.get() && later.is_started() && !later.is_dead());
        later.kill();
        assert!(later.was_killed() && !ran.get());
        assert_nothing_registered("after killing a huge spawn_later");
    }
    assert_hub_serves();
}

#[test]
fn huge_durations_for_joins_groups_and_pools() {
    for huge in HUGE {
        let g = spawn(|| sleep(ms(5)).map(|()| 1));
        assert_eq!(g.join_timeout(huge).unwrap(), Ok(1));
        let g = spawn(|| sleep(ms(5)));
        assert_eq!(g.wait(Some(huge)), Ok(true));
        let gs = vec![spawn(|| sleep(ms(5))), spawn(|| sleep(ms(1)))];
        let mut done = joinall(&gs, Some(huge)).unwrap();
        done.sort();
        assert_eq!(done, [0, 1]);
        let gs = vec![spawn(|| sleep(ms(5)))];
        assert_eq!(
            joinall_with(&gs, JoinAll::default().timeout(huge).raise_error(true)),
            Ok(vec![0])
        );
        // ... and a huge join of something that never ends is ended by an outer Timeout.
        let forever = spawn(|| sleep(LONG));
        assert_timed_out(
            with_timeout(ms(20), || {
                joinall(std::slice::from_ref(&forever), Some(huge))
            }),
            "joinall(huge)",
        );
        assert!(forever.kill_timeout(Some(huge)));
        let group = Group::new();
        group.spawn(|| sleep(ms(5)));
        assert_eq!(group.join(Some(huge)), Ok(true));
        let pool = Pool::new(1);
        let busy = pool.spawn(|| sleep(ms(5))).unwrap();
        assert_eq!(pool.wait_available(Some(huge)), Ok(true));
        busy.join().unwrap().unwrap();
        pool.spawn(|| sleep(ms(5))).unwrap();
        assert_eq!(pool.join(Some(huge)), Ok(true));
        let job = threadpool::spawn_blocking(|| std::thread::sleep(ms(5)));
        assert_eq!(job.wait(Some(huge)), Ok(true));
        let keep = spawn(|| sleep(ms(5)));
        assert_eq!(greenlet::wait(Some(huge)), Ok(true));
        assert!(keep.is_dead());
    }
    assert_nothing_registered("after huge joins");
    assert_hub_serves();
}

#[test]
fn huge_durations_for_queues_events_and_locks() {
    for huge in HUGE {
        let q: Queue<u8> = Queue::bounded(1);
        let q2 = q.clone();
        let putter = spawn(move || {
            sleep(ms(5)).unwrap();
            q2.put_timeout(1, huge).unwrap();
            q2.put_timeout(2, huge) // waits until the first is taken
        });
        assert_eq!(q.get_timeout(huge), Ok(1));
        assert_eq!(q.get_timeout(huge), Ok(2));
        putter.join().unwrap().unwrap();
        // A huge get with nothing coming is ended by an outer Timeout, not by its own.
        let keep = spawn(|| sleep(LONG));
        let t = Timeout::start(ms(20));
        match q.get_timeout(huge) {
            Err(QueueError::Wait(e)) => assert!(t.is_mine(&e), "{e:?}"),
            other => panic!("get_timeout(huge): {other:?}"),
        }
        drop(t);
        keep.kill();
        let ch: Channel<u8> = Channel::new();
        let c2 = ch.clone();
        let getter = spawn(move || c2.get_timeout(huge));
        assert_eq!(ch.put_timeout(3, huge), Ok(()));
        assert_eq!(getter.join().unwrap(), Ok(3));
        let jq: JoinableQueue<u8> = JoinableQueue::unbounded();
        jq.put(1).unwrap();
        let j2 = jq.clone();
        let worker = spawn(move || {
            j2.get().unwrap();
            sleep(ms(5)).unwrap();
            j2.task_done().unwrap();
        });
        assert_eq!(jq.join_timeout(huge), Ok(true));
        worker.join().unwrap();
        let ev = Event::new();
        let e2 = ev.clone();
        let setter = spawn(move || {
            sleep(ms(5)).unwrap();
            e2.set();
        });
        assert_eq!(ev.wait_timeout(huge), Ok(true));
        setter.join().unwrap();
        let sem = Rc::new(Semaphore::new(0));
        let s2 = sem.clone();
        let releaser = spawn(move || {
            sleep(ms(5)).unwrap();
            s2.release();
        });
        assert_eq!(sem.acquire_timeout(huge), Ok(true));
        releaser.join().unwrap();
        let bsem = BoundedSemaphore::new(1);
        assert_eq!(bsem.acquire_timeout(huge), Ok(true));
        bsem.release().unwrap();
        let lock = Lock::new();
        assert!(lock.lock_timeout(huge).unwrap().is_some());
        let rlock = RLock::new();
        let outer = rlock.lock_timeout(huge).unwrap().unwrap();
        assert!(rlock.lock_timeout(huge).unwrap().is_some());
        drop(outer);
        let r: AsyncResult<u8> = AsyncResult::new();
        let s = r.setter();
        let t = std::thread::spawn(move || {
            std::thread::sleep(ms(5));
            s.set(4);
        });
        assert_eq!(r.get_timeout(huge), Ok(4));
        t.join().unwrap();
    }
    assert_nothing_registered("after huge queue, event and lock waits");
    assert_hub_serves();
}

#[test]
fn huge_socket_timeouts() {
    for huge in HUGE {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let s = TcpStream::connect_timeout(addr, huge).unwrap();
        let (peer, _) = l.accept().unwrap();
        s.set_read_timeout(Some(huge)).unwrap();
        s.set_write_timeout(Some(huge)).unwrap();
        assert_eq!(s.read_timeout().unwrap(), Some(huge));
        let writer = spawn(move || {
            sleep(ms(10)).unwrap();
            (&peer).write_all(b"late").map(|()| peer)
        });
        let mut got = [0u8; 4];
        (&s).read_exact(&mut got).unwrap();
        assert_eq!(&got, b"late");
        (&s).write_all(b"ok").unwrap();
        let _peer = writer.join().unwrap().unwrap(); // kept open: no end of stream
        // A huge read timeout does not fire early: an outer Timeout ends the read.
        let start = Instant::now();
        let r = with_timeout(ms(50), || Ok((&s).read(&mut [0u8; 1])));
        let e = r.unwrap().unwrap_err();
        assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
        assert!(start.elapsed() >= ms(50), "{:?}", start.elapsed());
        let (a, b) = UnixStream::pair().unwrap();
        a.set_read_timeout(Some(huge)).unwrap();
        let writer = spawn(move || {
            sleep(ms(5)).unwrap();
            (&b).write_all(b"u")
        });
        net::wait_readable(a.as_raw_fd(), Some(huge)).unwrap();
        net::wait_writable(a.as_raw_fd(), Some(huge)).unwrap();
        writer.join().unwrap().unwrap();
        let u = UdpSocket::bind("127.0.0.1:0").unwrap();
        u.set_read_timeout(Some(huge)).unwrap();
        u.send_to(b"d", u.local_addr().unwrap()).unwrap();
        assert_eq!(u.recv_from(&mut [0u8; 4]).unwrap().0, 1);
    }
    assert_nothing_registered("after huge socket timeouts");
    assert_sockets_serve();
}

#[test]
fn huge_durations_for_processes_servers_signals_and_the_monitor() {
    // A panic on the monitor thread would end it silently; catch it.
    let monitor_panicked = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = monitor_panicked.clone();
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name() == Some("greenlet-monitor") {
            flag.store(true, std::sync::atomic::Ordering::SeqCst);
        }
        previous(info);
    }));
    for huge in HUGE {
        let mut child = process::Command::new("true").spawn().unwrap();
        let status = child.wait_timeout(huge).unwrap().expect("exited");
        assert!(status.success());
        let server = server::StreamServer::new("127.0.0.1:0", |_, _| {}).stop_timeout(huge);
        server.start().unwrap();
        assert_eq!(server.stop(None), 0);
        let server = server::StreamServer::new("127.0.0.1:0", |_, _| {});
        server.start().unwrap();
        assert_eq!(server.stop(Some(huge)), 0);
        let e = with_timeout(ms(20), || {
            signal::wait(libc::SIGWINCH, Some(huge)).map_err(|e| match e {
                signal::SignalError::Hub(e) => e,
                other => panic!("signal::wait(huge): {other}"),
            })
        });
        assert_timed_out(e, "signal::wait(huge)");
        let monitor = monitor::start_monitor(huge);
        sleep(ms(20)).unwrap();
        assert!(monitor.stop().is_empty());
        assert!(
            !monitor_panicked.load(std::sync::atomic::Ordering::SeqCst),
            "the monitor thread panicked with a huge threshold"
        );
    }
    assert_nothing_registered("after huge process, server, signal and monitor waits");
    assert_sockets_serve();
}

// ---------------------------------------------------------------------------------------------
// Bad input: greenlets and primitives

#[test]
fn join_on_self() {
    let slot: Rc<RefCell<Option<Greenlet<Vec<String>>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let g = spawn(move || {
        let me = s.borrow_mut().take().unwrap();
        let mut out = vec![
            format!("{:?}", me.wait(None)),
            format!("{:?}", me.wait(Some(LONG))),
            format!("{:?}", me.join_timeout(LONG).map(drop)),
            format!("{:?}", greenlet::wait(None)),
            // joinall with the caller among the handles can never complete.
            format!(
                "{:?}",
                with_timeout(generous(Duration::from_secs(5)), || joinall(
                    std::slice::from_ref(&me),
                    None
                ))
            ),
        ];
        out.push(format!("{:?}", me.clone().join().map(drop)));
        out
    });
    *slot.borrow_mut() = Some(g.clone());
    let start = Instant::now();
    let out = g.join().unwrap();
    assert_eq!(
        out,
        [
            "Err(JoinSelf)",
            "Err(JoinSelf)",
            "Err(Wait(JoinSelf))",
            "Err(JoinSelf)",
            "Err(JoinSelf)",
            "Err(Wait(JoinSelf))",
        ]
    );
    assert!(
        start.elapsed() < generous(Duration::from_secs(4)),
        "a self-join waited"
    );
    assert_eq!(
        JoinError::Wait(Error::JoinSelf).to_string(),
        "join failed: a greenlet cannot wait for itself"
    );
    assert_hub_serves();
}

#[test]
fn kill_of_a_dead_or_unstarted_greenlet() {
    // Dead after returning: the kill is a no-op and the value stays.
    let ok = spawn(|| 5);
    assert!(ok.wait(None).unwrap());
    ok.kill();
    assert!(ok.kill_timeout(Some(Duration::ZERO)));
    assert!(ok.successful() && !ok.was_killed());
    assert_eq!(ok.join().unwrap(), 5);
    // Dead after a panic: the panic stays.
    let bad = spawn(|| -> u8 { panic!("dead already") });
    assert!(bad.wait(None).unwrap());
    bad.kill();
    assert!(!bad.successful() && !bad.was_killed());
    assert_eq!(
        bad.join().unwrap_err().panic_message(),
        Some("dead already")
    );
    // Killed twice.
    let twice = spawn(|| sleep(LONG));
    yield_now().unwrap();
    twice.kill();
    twice.kill();
    assert!(matches!(twice.join(), Err(JoinError::Killed)));
    // Unstarted: never runs; links run once; from a hub callback too.
    let ran = Rc::new(Cell::new(0));
    let links = Rc::new(Cell::new(0));
    let (r, l) = (ran.clone(), links.clone());
    let fresh = spawn(move || r.set(r.get() + 1));
    fresh.link(move || l.set(l.get() + 1));
    fresh.kill();
    fresh.kill();
    let r = ran.clone();
    let fresh2 = spawn_later(ms(50), move || r.set(r.get() + 1));
    let f2 = fresh2.clone();
    run_callback(move || f2.kill());
    let r = ran.clone();
    let later = spawn_later(ms(5), move || r.set(r.get() + 1));
    later.kill();
    sleep(ms(20)).unwrap();
    idle().unwrap();
    assert_eq!(ran.get(), 0);
    assert_eq!(links.get(), 1);
    for g in [fresh, fresh2, later] {
        assert!(g.is_dead() && g.was_killed());
        assert!(matches!(g.join(), Err(JoinError::Killed)));
    }
    assert_nothing_registered("after killing dead and unstarted greenlets");
    assert_hub_serves();
}

#[test]
fn queue_of_capacity_zero() {
    let q: Queue<u32> = Queue::bounded(0);
    assert_eq!(q.capacity(), Some(0));
    assert!(q.is_full() && q.is_empty());
    assert_eq!(q.try_put(1), Err(QueueError::Full(1)));
    assert_eq!(q.try_get(), Err(QueueError::Empty));
    // Nobody could ever take (or give) an item: a clear error at once, never a hang.
    let start = Instant::now();
    assert_eq!(q.put(2), Err(QueueError::Wait(Error::WouldBlockForever)));
    assert_eq!(q.get(), Err(QueueError::Wait(Error::WouldBlockForever)));
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    let keep = spawn(|| sleep(LONG));
    assert_eq!(q.put_timeout(3, ms(20)), Err(QueueError::Full(3)));
    assert_eq!(q.get_timeout(ms(20)), Err(QueueError::Empty));
    keep.kill();
    assert_eq!(q.len(), 0);
    // Still a rendezvous afterwards.
    let q2 = q.clone();
    let getter = spawn(move || q2.get());
    q.put(4).unwrap();
    assert_eq!(getter.join().unwrap(), Ok(4));
    let jq: JoinableQueue<u32> = JoinableQueue::bounded(0);
    assert_eq!(jq.try_put(1), Err(QueueError::Full(1)));
    assert_eq!(jq.put(1), Err(QueueError::Wait(Error::WouldBlockForever)));
    assert_eq!(jq.unfinished_tasks(), 0);
    assert_eq!(jq.task_done(), Err(QueueError::TooManyTaskDone));
    assert_eq!(jq.join_timeout(ms(1)), Ok(true));
    assert_nothing_registered("after capacity-0 queues");
    assert_hub_serves();
}

#[test]
fn bounded_semaphore_released_too_often() {
    let zero = BoundedSemaphore::new(0);
    let e = zero.release().unwrap_err();
    assert_eq!(e.limit(), 0);
    assert!(e.to_string().contains("released too many times"), "{e}");
    assert_eq!(zero.available(), 0);
    // Over-release after a hand-off to a waiter: refused, count unchanged, waiters unharmed.
    let sem = Rc::new(BoundedSemaphore::new(1));
    sem.acquire().unwrap();
    let s2 = sem.clone();
    let waiter = spawn(move || {
        s2.acquire().unwrap();
        s2.release()
    });
    yield_now().unwrap();
    sem.release().unwrap(); // goes to the waiter
    assert_eq!(waiter.join().unwrap(), Ok(()));
    assert_eq!(sem.available(), 1);
    assert_eq!(sem.release().unwrap_err().limit(), 1);
    assert_eq!(sem.available(), 1);
    // Refused from a hub callback as well (release never blocks).
    let got = Rc::new(Cell::new(None));
    let (g, s3) = (got.clone(), sem.clone());
    run_callback(move || g.set(Some(s3.release().is_err())));
    yield_now().unwrap();
    assert_eq!(got.get(), Some(true));
    assert!(sem.acquire_timeout(ms(1)).unwrap());
    assert!(!sem.try_acquire());
    sem.release().unwrap();
    assert_hub_serves();
}

#[test]
fn signal_number_out_of_range() {
    let start = Instant::now();
    for n in [
        0,
        -1,
        65,
        1000,
        i32::MIN,
        i32::MAX,
        libc::SIGKILL,
        libc::SIGSTOP,
    ] {
        // No timeout: refused at once, never a wait.
        assert_eq!(
            signal::wait(n, None),
            Err(signal::SignalError::Invalid(n)),
            "{n}"
        );
        assert!(matches!(signal::handle(n, || {}), Err(signal::SignalError::Invalid(m)) if m == n));
        let e = ev_loop::Signal::new(&hub_loop(), n, |_, _| {}).unwrap_err();
        assert!(
            matches!(e, ev_loop::Error::InvalidSignal(m) if m == n),
            "{e}"
        );
    }
    let g = spawn(|| signal::wait(65, Some(LONG)));
    assert_eq!(g.join().unwrap(), Err(signal::SignalError::Invalid(65)));
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    assert_nothing_registered("after invalid signal numbers");
    assert_hub_serves();
}

#[test]
fn port_in_use() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let in_use = |r: io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::AddrInUse, "{what}: {e}");
    };
    in_use(TcpListener::bind(addr).map(drop), "tcp bind");
    in_use(
        TcpListener::bind_reuse_port(addr).map(drop),
        "tcp bind_reuse_port",
    );
    let srv = server::StreamServer::new(addr, |_, _| {});
    in_use(srv.start(), "StreamServer::start");
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    let uaddr = u.local_addr().unwrap();
    in_use(UdpSocket::bind(uaddr).map(drop), "udp bind");
    in_use(
        server::DatagramServer::bind(uaddr, |_, _, _| {}).map(drop),
        "DatagramServer::bind",
    );
    let path = temp_path("inuse");
    let _ = std::fs::remove_file(&path);
    let ul = UnixListener::bind(&path).unwrap();
    in_use(UnixListener::bind(&path).map(drop), "unix bind");
    // The original listeners still serve.
    let server = spawn(move || -> io::Result<u8> {
        let (mut c, _) = l.accept()?;
        let mut b = [0u8; 1];
        c.read_exact(&mut b)?;
        c.write_all(&b)?;
        let mut uc = ul.accept()?;
        uc.read_exact(&mut b)?;
        Ok(b[0])
    });
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"p").unwrap();
    let mut b = [0u8; 1];
    c.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"p");
    let mut uc = UnixStream::connect(&path).unwrap();
    uc.write_all(b"q").unwrap();
    assert_eq!(server.join().unwrap().unwrap(), b'q');
    std::fs::remove_file(&path).unwrap();
    assert_sockets_serve();
}

#[test]
fn connection_refused() {
    let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = std_l.local_addr().unwrap();
    drop(std_l);
    let start = Instant::now();
    let refused = |r: io::Result<()>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.kind(), ErrorKind::ConnectionRefused, "{what}: {e}");
    };
    refused(TcpStream::connect(addr).map(drop), "connect");
    refused(
        TcpStream::connect_timeout(addr, LONG).map(drop),
        "connect_timeout",
    );
    let g = spawn(move || TcpStream::connect(addr).map(drop));
    refused(g.join().unwrap(), "connect in a greenlet");
    // A Unix socket file whose listener is gone.
    let path = temp_path("refused");
    let _ = std::fs::remove_file(&path);
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    refused(UnixStream::connect(&path).map(drop), "unix connect");
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert!(start.elapsed() < generous(Duration::from_secs(10)));
    assert_nothing_registered("after refused connections");
    assert_sockets_serve();
}

#[test]
fn name_that_does_not_resolve() {
    // RFC 6761: `.invalid` never resolves, and resolvers answer that without the network.
    let host = "no-such-host.invalid";
    let unresolved = |e: io::Error, what: &str| {
        assert!(
            e.to_string()
                .contains("failed to lookup address information"),
            "{what}: {e}"
        );
    };
    // While a lookup runs on the thread pool, another greenlet keeps ticking.
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..3 {
            sleep(ms(1)).unwrap();
            t.set(t.get() + 1);
        }
    });
    unresolved(dns::lookup_host(host).unwrap_err(), "lookup_host");
    ticker.join().unwrap();
    assert_eq!(ticks.get(), 3);
    unresolved(
        TcpStream::connect((host, 80)).map(drop).unwrap_err(),
        "connect",
    );
    unresolved(TcpListener::bind((host, 0)).map(drop).unwrap_err(), "bind");
    unresolved(
        server::StreamServer::try_new((host, 80), |_, _| {})
            .map(drop)
            .unwrap_err(),
        "StreamServer::try_new",
    );
    let u = UdpSocket::bind("127.0.0.1:0").unwrap();
    unresolved(u.send_to(b"x", (host, 9)).map(drop).unwrap_err(), "send_to");
    let g = spawn(move || dns::lookup_host(host).map(drop));
    unresolved(g.join().unwrap().unwrap_err(), "lookup_host in a greenlet");
    // A name that is not even syntactically a host.
    assert!(dns::lookup_host("").is_err());
    assert!(dns::lookup_host("bad name with spaces.invalid").is_err());
    assert_nothing_registered("after failed lookups");
    assert_sockets_serve();
}
