//! The raw API against the real, vendored libev: version, backend, and one watcher of each kind
//! the upper layers depend on.

use libev_sys::macros::*;
use libev_sys::*;
use std::os::raw::c_int;
use std::ptr;
use std::time::{Duration, Instant};

// The time helpers of the ev-loop tests (only `std`): one definition of the time scale.
#[path = "../../loop/tests/support/mod.rs"]
mod support;
use support::generous;

struct OwnLoop(*mut ev_loop);
impl OwnLoop {
    fn new(flags: u32) -> Self {
        // SAFETY: ev_loop_new has no preconditions; it returns null on failure.
        let lp = unsafe { ev_loop_new(flags) };
        assert!(!lp.is_null(), "ev_loop_new({flags:#x}) failed");
        OwnLoop(lp)
    }
}
impl Drop for OwnLoop {
    fn drop(&mut self) {
        // SAFETY: the loop came from ev_loop_new and every watcher used with it has been
        // stopped (or lives no longer than the test function, which stops it).
        unsafe { ev_loop_destroy(self.0) }
    }
}

#[test]
fn version_is_4_33() {
    // SAFETY: plain getters.
    unsafe {
        assert_eq!(ev_version_major(), 4);
        assert_eq!(ev_version_minor(), 33);
    }
    assert_eq!(VENDORED_VERSION, (4, 33));
}

#[test]
fn epoll_is_the_default_backend() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    // SAFETY: valid loop.
    let backend = unsafe { ev_backend(lp.0) };
    assert_eq!(backend, EVBACKEND_EPOLL);
    // SAFETY: plain getters.
    let (supported, recommended) = unsafe { (ev_supported_backends(), ev_recommended_backends()) };
    for b in [EVBACKEND_EPOLL, EVBACKEND_POLL, EVBACKEND_SELECT] {
        assert_ne!(supported & b, 0, "backend {b:#x} not compiled in");
        assert_ne!(recommended & b, 0, "backend {b:#x} not recommended");
    }
    assert_ne!(
        supported & EVBACKEND_LINUXAIO,
        0,
        "linuxaio not compiled in"
    );
    // poll and select loops can be created explicitly too.
    for b in [EVBACKEND_POLL, EVBACKEND_SELECT] {
        let other = OwnLoop::new(b);
        // SAFETY: valid loop.
        assert_eq!(unsafe { ev_backend(other.0) }, b);
    }
}

unsafe extern "C" fn count_and_break(lp: *mut ev_loop, w: *mut ev_timer, _rev: c_int) {
    // SAFETY: `data` points at a u32 owned by the test, alive while the loop runs.
    unsafe {
        *((*w).data as *mut u32) += 1;
        ev_break(lp, EVBREAK_ALL as c_int);
    }
}

#[test]
fn a_timer_fires_after_its_delay() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    let mut fired = 0u32;
    let mut t = ev_timer::default();
    let start = Instant::now();
    // SAFETY: `t` and `fired` outlive the run; the one-shot timer is stopped by libev on expiry.
    unsafe {
        // The timer counts from the loop's time: make that no older than `start`.
        ev_now_update(lp.0);
        ev_timer_init(&mut t, Some(count_and_break), 0.05, 0.0);
        t.data = ptr::addr_of_mut!(fired).cast();
        ev_timer_start(lp.0, &mut t);
        assert!(ev_is_active(&t));
        ev_run(lp.0, 0);
        assert!(!ev_is_active(&t));
    }
    let took = start.elapsed();
    assert_eq!(fired, 1);
    assert!(
        took >= Duration::from_millis(49),
        "fired too early: {took:?}"
    );
    assert!(
        took < generous(Duration::from_secs(5)),
        "fired too late: {took:?}"
    );
}

unsafe extern "C" fn on_readable(lp: *mut ev_loop, w: *mut ev_io, revents: c_int) {
    // SAFETY: `data` points at the test's result slot; `w` is the started watcher.
    unsafe {
        *((*w).data as *mut c_int) = revents;
        ev_io_stop(lp, w);
    }
}

#[test]
fn an_io_watcher_sees_a_pipe_become_readable() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    let mut fds = [0 as c_int; 2];
    // SAFETY: valid out-array of two ints.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let mut got: c_int = 0;
    let mut io = ev_io::default();
    // SAFETY: watcher and slot outlive the run; the callback stops the watcher.
    unsafe {
        ev_io_init(&mut io, Some(on_readable), fds[0], EV_READ);
        io.data = ptr::addr_of_mut!(got).cast();
        ev_io_start(lp.0, &mut io);
        // Nothing written yet: a non-blocking iteration sees nothing.
        ev_run(lp.0, EVRUN_NOWAIT as c_int);
        assert_eq!(got, 0);
        assert_eq!(libc::write(fds[1], b"x".as_ptr().cast(), 1), 1);
        ev_run(lp.0, 0);
        assert_eq!(got & EV_READ, EV_READ);
        assert!(!ev_is_active(&io));
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
}

#[derive(Default)]
struct Trace {
    events: Vec<(char, u32)>,
}

unsafe extern "C" fn on_prepare(lp: *mut ev_loop, w: *mut ev_prepare, _: c_int) {
    // SAFETY: `data` points at the Trace owned by the test.
    unsafe {
        (*((*w).data as *mut Trace))
            .events
            .push(('P', ev_iteration(lp)))
    }
}
unsafe extern "C" fn on_check(lp: *mut ev_loop, w: *mut ev_check, _: c_int) {
    // SAFETY: as above.
    unsafe {
        (*((*w).data as *mut Trace))
            .events
            .push(('C', ev_iteration(lp)))
    }
}
unsafe extern "C" fn on_tick(lp: *mut ev_loop, w: *mut ev_timer, _: c_int) {
    // SAFETY: `data` points at the Trace; stopping the repeating timer after three ticks.
    unsafe {
        let trace = &mut *((*w).data as *mut Trace);
        trace.events.push(('T', ev_iteration(lp)));
        if trace.events.iter().filter(|e| e.0 == 'T').count() == 3 {
            ev_timer_stop(lp, w);
        }
    }
}

#[test]
fn prepare_runs_before_each_poll_and_check_after() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    let mut trace = Trace::default();
    let data: *mut Trace = &mut trace;
    let (mut p, mut c, mut t) = (
        ev_prepare::default(),
        ev_check::default(),
        ev_timer::default(),
    );
    // SAFETY: all watchers and the trace outlive the run; prepare and check are unref'd so the
    // loop ends when the timer stops, and they are stopped (after re-ref) before returning.
    unsafe {
        ev_prepare_init(&mut p, Some(on_prepare));
        ev_check_init(&mut c, Some(on_check));
        ev_timer_init(&mut t, Some(on_tick), 0.01, 0.01);
        p.data = data.cast();
        c.data = data.cast();
        t.data = data.cast();
        ev_prepare_start(lp.0, &mut p);
        ev_unref(lp.0);
        ev_check_start(lp.0, &mut c);
        ev_unref(lp.0);
        ev_timer_start(lp.0, &mut t);
        ev_run(lp.0, 0);
        ev_ref(lp.0);
        ev_prepare_stop(lp.0, &mut p);
        ev_ref(lp.0);
        ev_check_stop(lp.0, &mut c);
    }
    let kinds: String = trace.events.iter().map(|e| e.0).collect();
    // Every poll is bracketed by a prepare before it and a check after it, and timers are
    // dispatched after the check of their iteration.
    assert!(kinds.starts_with('P'), "{kinds}");
    let polls = kinds.matches('P').count();
    assert_eq!(polls, kinds.matches('C').count(), "{kinds}");
    assert!(polls >= 3, "{kinds}");
    let pcs: String = kinds.chars().filter(|k| *k != 'T').collect();
    assert_eq!(pcs, "PC".repeat(polls), "{kinds}");
    for w in trace.events.windows(2) {
        if w[1].0 == 'P' {
            assert!(
                w[0].0 != 'P',
                "two prepares without a poll between: {kinds}"
            );
        }
    }
}

struct SendPtr(*mut ev_loop, *mut ev_async);
// SAFETY: ev_async_send is documented as safe to call from any thread; the loop and watcher
// outlive the sending thread (it is joined before they are destroyed).
unsafe impl Send for SendPtr {}

unsafe extern "C" fn on_async(lp: *mut ev_loop, w: *mut ev_async, _: c_int) {
    // SAFETY: `data` points at the counter owned by the test.
    unsafe {
        *((*w).data as *mut u32) += 1;
        ev_break(lp, EVBREAK_ALL as c_int);
    }
}

#[test]
fn ev_async_wakes_the_loop_from_another_thread() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    let mut woken = 0u32;
    let mut a = ev_async::default();
    // SAFETY: the watcher and counter outlive the run and the sender thread is joined first.
    unsafe {
        ev_async_init(&mut a, Some(on_async));
        a.data = ptr::addr_of_mut!(woken).cast();
        ev_async_start(lp.0, &mut a);
    }
    let ptrs = SendPtr(lp.0, &mut a);
    let start = Instant::now();
    let sender = std::thread::spawn(move || {
        let p = ptrs;
        std::thread::sleep(Duration::from_millis(50));
        // SAFETY: see SendPtr.
        unsafe { ev_async_send(p.0, p.1) };
    });
    // Without the async watcher this loop would block forever: the async watcher keeps it
    // alive and the send from the other thread ends the wait.
    // SAFETY: valid loop, run on the thread that owns it.
    unsafe { ev_run(lp.0, 0) };
    sender.join().unwrap();
    assert_eq!(woken, 1);
    assert!(start.elapsed() >= Duration::from_millis(45));
    // SAFETY: stop before `a` goes out of scope.
    unsafe { ev_async_stop(lp.0, &mut a) };
}

#[test]
fn priority_range_matches_the_compiled_library() {
    let lp = OwnLoop::new(EVFLAG_AUTO);
    let cfg = |name: &str| -> i32 {
        CONFIG_DEFINES
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap()
            .1
            .parse()
            .unwrap()
    };
    assert_eq!((EV_MINPRI, EV_MAXPRI), (cfg("EV_MINPRI"), cfg("EV_MAXPRI")));
    // libev clamps an out-of-range priority into [EV_MINPRI, EV_MAXPRI] when it starts a
    // watcher, which reveals the range the C code was compiled with.
    for (asked, clamped) in [(100, EV_MAXPRI), (-100, EV_MINPRI), (1, 1)] {
        let mut idle = ev_idle::default();
        // SAFETY: the watcher lives on this frame and is stopped before it goes.
        unsafe {
            ev_idle_init(&mut idle, None);
            ev_set_priority(&mut idle, asked);
            ev_idle_start(lp.0, &mut idle);
            assert_eq!(ev_priority(&idle), clamped);
            ev_idle_stop(lp.0, &mut idle);
        }
    }
}
