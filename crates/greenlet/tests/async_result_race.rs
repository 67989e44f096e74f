//! A delivery from another thread that lands while a waiter registers with an `AsyncResult`
//! must not be lost. The window between the waiter's look at the value and its count of the
//! setters was a few instructions wide; to hit it, the hub thread is stopped at random points
//! by a signal whose handler holds it while the other thread sets the value and drops its
//! setter. (From a review: the old code lost a delivery within a few thousand rounds.)
//!
//! Runs for `GEVENT_RACE_SECS` seconds (default 2). Not run under valgrind (it relies on
//! timing between two threads).

use greenlet::{AsyncResult, AsyncSetter};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU32, Ordering::*};
use std::time::{Duration, Instant};

/// 0: idle; 1: the handler holds the hub thread; 2: the setter thread is done.
static HELD: AtomicU32 = AtomicU32::new(0);

/// The next setter for the other thread to use (a leaked box, taken back by that thread).
static SLOT: AtomicPtr<AsyncSetter<u32>> = AtomicPtr::new(std::ptr::null_mut());

extern "C" fn hold(_: libc::c_int) {
    HELD.store(1, SeqCst);
    let start = Instant::now();
    // Bounded: the hub may hold the result's mutex right now (the setter then waits for us).
    while HELD.load(SeqCst) == 1 && start.elapsed() < Duration::from_micros(200) {
        std::hint::spin_loop();
    }
    HELD.store(0, SeqCst);
}

fn seconds() -> u64 {
    std::env::var("GEVENT_RACE_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2)
}

#[test]
fn a_delivery_between_the_look_and_the_setter_count_is_not_lost() {
    // SAFETY: installs a handler for SIGUSR2, which nothing else in this test binary uses;
    // the handler only touches atomics and the clock (async-signal-safe in practice: a vDSO
    // read).
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = hold as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        assert_eq!(libc::sigaction(libc::SIGUSR2, &sa, std::ptr::null_mut()), 0);
    }
    // SAFETY: pthread_self has no preconditions.
    let hub_thread = unsafe { libc::pthread_self() } as usize;
    let stop = Arc::new(AtomicBool::new(false));
    let st = stop.clone();
    let worker = std::thread::spawn(move || {
        while !st.load(Relaxed) {
            let p = SLOT.swap(std::ptr::null_mut(), Acquire);
            if p.is_null() {
                std::hint::spin_loop();
                continue;
            }
            // SAFETY: `p` came from `Box::into_raw` below and the swap made this thread its
            // only owner.
            let setter = unsafe { Box::from_raw(p) };
            // SAFETY: the test thread outlives this thread (it joins it before returning).
            unsafe { libc::pthread_kill(hub_thread as libc::pthread_t, libc::SIGUSR2) };
            let t = Instant::now();
            while HELD.load(SeqCst) != 1 && t.elapsed() < Duration::from_millis(5) {
                std::hint::spin_loop();
            }
            setter.set(7);
            drop(setter);
            let _ = HELD.compare_exchange(1, 2, SeqCst, SeqCst);
        }
    });
    let deadline = Instant::now() + Duration::from_secs(seconds());
    let mut n = 0u64;
    let mut seed = 0x2545_F491_4F6C_DD1Du64;
    let mut lost = None;
    while Instant::now() < deadline {
        n += 1;
        let r: AsyncResult<u32> = AsyncResult::new();
        SLOT.store(Box::into_raw(Box::new(r.setter())), Release);
        // The signal lands a few microseconds after the store: start the wait at a random
        // point within that span.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        for _ in 0..seed % 3000 {
            std::hint::spin_loop();
        }
        let got = r.wait(None);
        if got != Ok(true) {
            lost = Some((got, r.is_ready()));
            break;
        }
    }
    stop.store(true, Relaxed);
    worker.join().unwrap();
    // A setter the worker did not take in time: reclaim it.
    let p = SLOT.swap(std::ptr::null_mut(), Acquire);
    if !p.is_null() {
        // SAFETY: as above; the worker has stopped, so this thread owns it.
        drop(unsafe { Box::from_raw(p) });
    }
    assert_eq!(
        lost, None,
        "after {n} deliveries: the wait returned {lost:?} (value ready: the wake-up was lost)"
    );
}
