//! `lock`: `Semaphore`, `BoundedSemaphore`, `Lock` and `RLock` against the real hub.

use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{FOREVER, assert_about_200ms, generous, log, ms};

#[test]
fn semaphore_waiters_are_served_in_fifo_order_and_a_release_cannot_be_stolen() {
    let sem = Semaphore::new(0);
    let order = log();
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            spawn(move || {
                sem.acquire().unwrap();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(sem.waiters(), 4);
    for _ in 0..4 {
        sem.release();
        // The permit was handed to the first waiter: a newcomer cannot take it.
        assert!(!sem.try_acquire());
        assert_eq!(sem.available(), 0);
    }
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2, 3]);
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_timeout_expires_after_about_200ms() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(ms(200)).unwrap());
    assert_about_200ms(start.elapsed());
    assert_eq!(sem.waiters(), 0);
    // A release after the timeout is not lost to the expired waiter.
    sem.release();
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_waiter_killed_after_being_granted_a_permit_passes_it_on() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let first = spawn(move || s.acquire());
    let s = sem.clone();
    let second = spawn(move || s.acquire().map(|_| "second got it"));
    yield_now().unwrap();
    sem.release(); // granted to `first`, which has not run yet
    first.kill(); // dies before it can use it
    assert!(first.was_killed());
    assert_eq!(second.join().unwrap(), Ok("second got it"));
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_with_nothing_else_runnable_would_block_forever() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert_eq!(sem.acquire(), Err(Error::WouldBlockForever));
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
}

#[test]
fn bounded_semaphore_rejects_a_release_beyond_its_initial_count() {
    let sem = BoundedSemaphore::new(2);
    let err = sem.release().unwrap_err();
    assert_eq!(err.limit(), 2);
    assert!(err.to_string().contains("released too many times"));
    let as_error: &dyn std::error::Error = &err;
    assert!(as_error.source().is_none());
    assert_eq!(sem.available(), 2);

    sem.acquire().unwrap();
    sem.acquire().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.available(), 2);
    assert!(sem.release().is_err());
    assert_eq!(sem.available(), 2);
}

#[test]
fn lock_gives_mutual_exclusion_in_fifo_order() {
    let lock = Lock::new();
    let events = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (lock, events) = (lock.clone(), events.clone());
            spawn(move || {
                let _g = lock.lock().unwrap();
                events.borrow_mut().push((i, "in"));
                sleep(ms(10)).unwrap();
                events.borrow_mut().push((i, "out"));
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    assert_eq!(
        *events.borrow(),
        [
            (0, "in"),
            (0, "out"),
            (1, "in"),
            (1, "out"),
            (2, "in"),
            (2, "out")
        ]
    );
    assert!(!lock.is_locked());
}

#[test]
fn lock_timeout_expires_after_about_200ms_while_another_greenlet_holds_it() {
    let lock = Lock::new();
    let l = lock.clone();
    let holder = spawn(move || {
        let _g = l.lock().unwrap();
        sleep(FOREVER)
    });
    yield_now().unwrap();
    assert!(lock.is_locked());
    assert!(lock.try_lock().is_none());
    let start = Instant::now();
    assert!(lock.lock_timeout(ms(200)).unwrap().is_none());
    assert_about_200ms(start.elapsed());
    holder.kill(); // unwinding drops its guard
    assert!(!lock.is_locked());
    assert!(lock.try_lock().is_some());
}

#[test]
fn rlock_is_reentrant_for_its_owner_only() {
    let lock = RLock::new();
    let a = lock.lock().unwrap();
    let b = lock.try_lock().unwrap();
    assert_eq!(lock.depth(), 2);
    let l = lock.clone();
    let other = spawn(move || {
        let start = Instant::now();
        let got = l.lock().unwrap();
        (start.elapsed(), l.is_owned(), l.depth(), drop(got))
    });
    yield_now().unwrap();
    let l = lock.clone();
    assert!(!spawn(move || l.try_lock().is_some()).join().unwrap());
    drop(b);
    assert!(lock.is_locked() && lock.is_owned());
    sleep(ms(20)).unwrap();
    drop(a); // the last guard: `other` gets it
    assert!(lock.is_locked() && !lock.is_owned());
    let (waited, owned, depth, ()) = other.join().unwrap();
    assert!(waited >= ms(19), "waited {waited:?}");
    assert!(owned);
    assert_eq!(depth, 1);
    assert!(!lock.is_locked());
}

#[test]
fn many_greenlets_queued_on_a_semaphore_are_served_in_linear_time() {
    let n = 40_000;
    let sem = Semaphore::new(0);
    let done = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let (sem, done) = (sem.clone(), done.clone());
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || {
                    sem.acquire().unwrap();
                    done.set(done.get() + 1);
                    sem.release();
                })
                .unwrap()
        })
        .collect();
    yield_now().unwrap(); // all queue up
    let start = Instant::now();
    sem.release();
    for g in gs {
        g.join().unwrap();
    }
    let took = start.elapsed();
    assert_eq!(done.get(), n);
    // Each waiter removing its entry by a scan of the rest made this quadratic: 4.8 s here
    // (debug build); linear, 0.12 s.
    assert!(took < generous(Duration::from_secs(2)), "{took:?}");
    eprintln!("served {n} waiters in {took:?}");
}

/// A guard moved into a scoped greenlet (the one way a guard can reach another greenlet) gives
/// up its level when dropped there; the lock stays its owner's until the owner's last guard
/// goes, and the scoped greenlet cannot re-enter it.
#[test]
fn an_rlock_guard_dropped_in_a_scoped_greenlet_gives_up_its_level() {
    let lock = RLock::new();
    let outer = lock.lock().unwrap();
    let inner = lock.lock().unwrap();
    let l = &lock;
    scope(|s| {
        s.spawn(move || {
            assert!(!l.is_owned(), "the scoped greenlet is not the owner");
            assert!(l.try_lock().is_none(), "and cannot re-enter");
            drop(inner);
            assert_eq!(l.depth(), 1);
            assert!(l.is_locked());
        });
    });
    assert!(lock.is_owned());
    assert_eq!(lock.depth(), 1);
    drop(outer);
    assert!(!lock.is_locked());
    let l = lock.clone();
    assert!(spawn(move || l.try_lock().is_some()).join().unwrap());
}
