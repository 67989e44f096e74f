//! Helpers shared by the test binaries of `greenlet`.
//!
//! Tests decide from events, not from sleeps assumed long enough. Where a time bound is the
//! point, the lower bound is exact and the upper bound is generous and stretched by one factor,
//! [`time_scale`], which `scripts/memcheck.sh` raises for valgrind.
#![allow(dead_code)] // each test binary uses its own subset

use greenlet::park::{GreenletRef, switch_to};
use greenlet::{sleep, spawn};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

// The timing helpers are the loop's tests' own (one definition of the scale factor).
#[path = "../../../loop/tests/support/mod.rs"]
mod timing;
#[allow(unused_imports)] // each test binary uses its own subset
pub(crate) use timing::{generous, ms, time_scale};

/// Far longer than any test runs: a greenlet sleeping this long is still asleep when the test
/// kills it.
pub(crate) const FOREVER: Duration = Duration::from_secs(3600);

/// A 200 ms timeout returns after 100 ms (the timer counts from the loop's time, which may lag
/// the caller's clock) and within seconds.
pub(crate) fn assert_about_200ms(took: Duration) {
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(2)),
        "took {took:?}"
    );
}

/// A log of what greenlets did, shared between them.
pub(crate) type Log<T> = Rc<RefCell<Vec<T>>>;

/// An empty [`Log`].
pub(crate) fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

/// Runs the hub (in steps of 1 ms sleeps) until `cond` holds; false if it still does not after
/// `generous(limit)`.
pub(crate) fn eventually(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + generous(limit);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        sleep(ms(1)).unwrap();
    }
    true
}

/// Spins without yielding until `cond` holds or `generous(limit)` passes (a greenlet that keeps
/// the hub from running); returns whether `cond` held.
pub(crate) fn spin_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + generous(limit);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::hint::spin_loop();
    }
    true
}

/// Two greenlets that only ever switch to each other with `park::switch_to`, until a third
/// stops them from a timer (so the hub must get to poll) once `d` has passed and they have
/// switched more than 100 times (checked in 1 ms timer sleeps, each of which needs the hub to
/// poll again). Returns how many times the first switched. Fails, rather than hangs, if the
/// hub is starved for 20 s.
pub(crate) fn switch_pair_for(d: Duration) -> u64 {
    let stop = Rc::new(Cell::new(false));
    let rounds = Rc::new(Cell::new(0u64));
    let b_ref: Rc<RefCell<Option<GreenletRef>>> = Rc::new(RefCell::new(None));
    let (s, r, br) = (stop.clone(), rounds.clone(), b_ref.clone());
    let start = Instant::now();
    let a = spawn(move || {
        let b = br.borrow().clone().unwrap();
        while !s.get() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the hub was starved"
            );
            r.set(r.get() + 1);
            switch_to(&b).unwrap();
        }
        b.unpark();
    });
    let a_ref = a.handle();
    let s = stop.clone();
    let b = spawn(move || {
        while !s.get() {
            switch_to(&a_ref).unwrap();
        }
        a_ref.unpark();
    });
    *b_ref.borrow_mut() = Some(b.handle());
    let s = stop.clone();
    let r = rounds.clone();
    spawn(move || {
        sleep(d).unwrap();
        while r.get() <= 100 {
            sleep(ms(1)).unwrap();
        }
        s.set(true);
    })
    .join()
    .unwrap();
    a.join().unwrap();
    b.join().unwrap();
    rounds.get()
}
