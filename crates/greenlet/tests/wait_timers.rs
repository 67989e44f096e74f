//! The timers of timed waits and `Timeout` scopes, which the hub keeps in a pool: a timer ends
//! only the wait or scope it was armed for (an earlier one's expiry never ends a later one, on
//! the same timer or not), every timed wait and scope gives its timer back however it ends, and
//! the pool stays bounded.
//!
//! Each test runs on its own thread, so with its own hub and pool.

use ev_loop::Timer;
use greenlet::hub::Waiter;
use greenlet::{Error, Event, Timeout, hub_loop, hub_stats, spawn, wait, yield_now};
use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

mod support;
use support::{FOREVER, generous, ms};

/// The most idle timers a hub keeps (documented on `HubStats::pooled_timers`).
const MAX_IDLE: usize = 64;

fn pooled() -> usize {
    hub_stats().pooled_timers
}

/// A wait whose timeout has passed but which its waker ended first; then at once a long wait,
/// which only its own waker ends, after the hub has polled past the first wait's expiry.
#[test]
fn an_expired_timer_of_an_earlier_wait_never_ends_a_later_one() {
    let first = Waiter::new("first").unwrap();
    let wake_first = first.waker();
    // Ends the first wait once that wait's 5 ms have passed, before the hub polls again: the
    // timer has expired but libev has not looked at it yet.
    let late_waker = spawn(move || {
        std::thread::sleep(ms(30));
        wake_first.wake()
    });
    assert_eq!(
        first.wait_for(Some(ms(5))),
        Ok(true),
        "woken, not timed out"
    );
    assert!(late_waker.join().unwrap(), "its wake-up ended the wait");
    assert_eq!(pooled(), 1, "the first wait's timer is back");

    let second = Waiter::new("second").unwrap();
    let wake_second = second.waker();
    // Wakes the second wait only after a timer event (which needs polls past the first
    // wait's expiry): a stale expiry would have ended the wait by then.
    let waker = spawn(move || {
        greenlet::sleep(ms(20)).unwrap();
        wake_second.wake()
    });
    assert_eq!(pooled(), 1, "not taken yet");
    assert_eq!(
        second.wait_for(Some(FOREVER)),
        Ok(true),
        "woken, not timed out"
    );
    assert!(waker.join().unwrap(), "the waker ended the second wait");
}

/// The first wait's timer fires in the same loop iteration as the wake-up that ends the wait
/// (queued to resume, not resumed yet): the expiry is dropped, and the next wait, given the
/// same timer, is ended by its waker only.
#[test]
fn a_timer_firing_after_its_wait_was_woken_is_dropped() {
    let first = Waiter::new("first").unwrap();
    let wake_first = first.waker();
    let woke = Rc::new(Cell::new(false));
    let lp = hub_loop();
    lp.update_now();
    let w = woke.clone();
    // Due 1 ms from now, the first wait's timer 5 ms from now (or later): both have expired
    // at the next poll (the thread is blocked for 30 ms before it), and libev runs expired
    // timers in the order they expire, so this one wakes the wait before its timer fires.
    let t0 = Timer::new(&lp, ms(1), Duration::ZERO, move |_, _| {
        w.set(wake_first.wake())
    });
    t0.start();
    let blocker = spawn(|| std::thread::sleep(ms(30)));
    assert_eq!(
        first.wait_for(Some(ms(5))),
        Ok(true),
        "woken, not timed out"
    );
    assert!(woke.get(), "the early timer's wake-up ended the wait");
    blocker.join().unwrap();
    assert_eq!(pooled(), 1);

    let second = Waiter::new("second").unwrap();
    let wake_second = second.waker();
    let waker = spawn(move || {
        greenlet::sleep(ms(20)).unwrap();
        wake_second.wake()
    });
    assert_eq!(
        second.wait_for(Some(FOREVER)),
        Ok(true),
        "woken, not timed out"
    );
    assert!(waker.join().unwrap(), "the waker ended the second wait");
    // The first wait's timer served the second, and the waker's sleep (during the second
    // wait) took another.
    assert_eq!(pooled(), 2);
}

#[test]
fn a_timed_out_wait_reports_its_own_timeout_and_gives_its_timer_back() {
    let w = Waiter::new("nothing").unwrap();
    let keep = w.waker();
    assert_eq!(w.wait_for(Some(ms(2))), Ok(false));
    assert!(!keep.wake(), "that wait is over");
    assert_eq!(pooled(), 1);
    // The next timed wait on the same timer times out in its turn, with its own duration.
    let w = Waiter::new("again").unwrap();
    let _keep = w.waker();
    assert_eq!(pooled(), 1);
    assert_eq!(w.wait_for(Some(ms(2))), Ok(false));
    assert_eq!(pooled(), 1);
}

#[test]
fn the_pool_stays_bounded_after_many_concurrent_timed_waits() {
    let lp = hub_loop();
    let watchers = lp.watcher_count();
    let go = Event::new();
    let n = 1000;
    let waiting: Vec<_> = (0..n)
        .map(|_| {
            let go = go.clone();
            spawn(move || go.wait_timeout(FOREVER))
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(pooled(), 0, "every timer is taken");
    assert_eq!(lp.watcher_count(), watchers + n, "one timer per wait");
    go.set();
    for g in waiting {
        assert_eq!(g.join().unwrap(), Ok(true), "woken by the event");
    }
    assert_eq!(pooled(), MAX_IDLE, "the rest were dropped");
    assert_eq!(
        lp.watcher_count(),
        watchers + MAX_IDLE,
        "only the pooled ones are left"
    );
    // A later burst takes the pooled ones first and leaves the same bound behind.
    let go = Event::new();
    let waiting: Vec<_> = (0..100)
        .map(|_| {
            let go = go.clone();
            spawn(move || go.wait_timeout(FOREVER))
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(pooled(), 0);
    go.set();
    for g in waiting {
        assert_eq!(g.join().unwrap(), Ok(true));
    }
    assert_eq!(pooled(), MAX_IDLE);
    assert_eq!(lp.watcher_count(), watchers + MAX_IDLE);
    assert_eq!(runs_dry(), Ok(true), "none of them runs");
}

/// Run the hub until its loop has nothing left to do: `Ok(true)`, unless something (a timer
/// left running) keeps it alive for longer than any test runs.
fn runs_dry() -> greenlet::Result<bool> {
    wait(Some(generous(Duration::from_secs(10))))
}

#[test]
fn a_timed_wait_ended_by_a_kill_gives_its_timer_back() {
    let watchers = hub_loop().watcher_count();
    let g = spawn(|| Event::new().wait_timeout(FOREVER));
    yield_now().unwrap();
    assert!(!g.is_dead(), "it waits");
    assert_eq!(pooled(), 0);
    assert_eq!(hub_loop().watcher_count(), watchers + 1, "its timer");
    g.kill();
    assert!(g.join().is_err(), "killed");
    assert_eq!(pooled(), 1, "the timer is back");
    assert_eq!(
        hub_loop().watcher_count(),
        watchers + 1,
        "kept, not dropped"
    );
    assert_eq!(runs_dry(), Ok(true), "and stopped");
}

#[test]
fn a_timed_wait_ended_by_an_enclosing_timeout_gives_its_timer_back() {
    let t = Timeout::start(ms(5));
    let r = Event::new().wait_timeout(FOREVER);
    assert_eq!(
        r,
        Err(Error::Timeout(t.id())),
        "the scope's, not the wait's own"
    );
    assert_eq!(
        pooled(),
        1,
        "the wait's timer is back, the scope's still taken"
    );
    drop(t);
    assert_eq!(pooled(), 2, "and the scope's too");
    assert_eq!(runs_dry(), Ok(true), "both are stopped");
}

/// A running wait timer keeps the loop alive (the wait ends by its timeout, not because
/// nothing is left), as a timed wait always did; pooled, it keeps nothing alive.
#[test]
fn only_a_running_wait_timer_keeps_the_loop_alive() {
    let w = Waiter::new("x").unwrap();
    let _keep = w.waker();
    assert_eq!(
        w.wait_for(Some(ms(5))),
        Ok(false),
        "timed out, not deadlocked"
    );
    assert_eq!(pooled(), 1);
    assert_eq!(runs_dry(), Ok(true), "the pooled timer keeps nothing alive");
}

/// A scope takes its timer from the pool and gives it back when it ends, expired or not, and
/// the timers it gave back keep nothing running.
#[test]
fn a_timeout_scope_takes_a_pooled_timer_and_gives_it_back() {
    {
        let w = Waiter::new("warm").unwrap();
        let _keep = w.waker();
        assert_eq!(w.wait_for(Some(ms(1))), Ok(false));
    }
    assert_eq!(pooled(), 1);
    let t = Timeout::start(FOREVER);
    assert!(t.is_armed());
    assert_eq!(pooled(), 0, "the scope took the idle timer");
    drop(t);
    assert_eq!(pooled(), 1, "back when the scope ended unexpired");

    let t = Timeout::start(ms(5));
    assert_eq!(pooled(), 0);
    assert_eq!(
        Event::new().wait_timeout(FOREVER),
        Err(Error::Timeout(t.id()))
    );
    assert!(t.expired() && !t.is_armed());
    assert_eq!(pooled(), 1, "the wait's own timer is back");
    drop(t);
    assert_eq!(pooled(), 2, "and the scope's, expired");
    assert_eq!(runs_dry(), Ok(true), "nothing left running");
}

/// A scope that ends in the same loop iteration as its timer fires (queued by libev, not run
/// yet) drops that expiry with it: the same timer, given at once to a new scope, does not
/// make the new scope expire.
#[test]
fn an_expiry_due_when_its_scope_ended_never_reaches_the_next_scope() {
    type Slot = Rc<std::cell::RefCell<Option<Timeout>>>;
    let scope: Slot = Rc::new(std::cell::RefCell::new(None));
    let lp = hub_loop();
    lp.update_now();
    let done = Event::new();
    let (s, d) = (scope.clone(), done.clone());
    // Due 1 ms from now, the scope's timer 5 ms from now: both have expired at the next poll
    // (the thread is blocked for 30 ms before it), and libev runs expired timers in the order
    // they expire, so this one runs first, with the scope's expiry pending behind it.
    let t0 = Timer::new(&lp, ms(1), Duration::ZERO, move |_, _| {
        let first = s.borrow_mut().take().expect("the first scope");
        assert!(!first.expired(), "its expiry has not run yet");
        drop(first);
        assert_eq!(pooled(), 1, "its timer is back");
        // The new scope takes the very timer whose expiry was pending.
        *s.borrow_mut() = Some(Timeout::start(FOREVER));
        assert_eq!(pooled(), 0);
        d.set();
    });
    t0.start();
    // Started after that timer, so due after it however long this thread stalls in between.
    *scope.borrow_mut() = Some(Timeout::start(ms(5)));
    let blocker = spawn(|| std::thread::sleep(ms(30)));
    assert_eq!(done.wait_timeout(FOREVER), Ok(true));
    blocker.join().unwrap();
    // Let the rest of that iteration's events run, if any were left.
    yield_now().unwrap();
    let second = scope.borrow_mut().take().expect("the second scope");
    assert!(
        !second.expired(),
        "the first scope's expiry reached the second"
    );
    assert!(second.is_armed());
}

/// A scope dropped on a thread whose hub has gone (a thread-local destroyed after the hub's)
/// drops its timer without asking for a hub, which could not be made any more.
#[test]
fn a_scope_outliving_its_hub_is_dropped_quietly() {
    use std::sync::{Arc, Mutex};
    /// Drops its scope when the thread's locals are destroyed, noting whether the hub was
    /// gone by then and whether dropping the scope panicked.
    struct Kept {
        scope: Option<Timeout>,
        seen: Arc<Mutex<Option<(bool, bool)>>>,
    }
    impl Drop for Kept {
        fn drop(&mut self) {
            let hub_there = greenlet::hub::has_hub();
            let scope = self.scope.take();
            let panicked =
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(scope))).is_err();
            *self.seen.lock().unwrap() = Some((hub_there, panicked));
        }
    }
    thread_local! {
        static KEPT: std::cell::RefCell<Option<Kept>> = const { std::cell::RefCell::new(None) };
    }
    let seen = Arc::new(Mutex::new(None));
    let s = seen.clone();
    std::thread::spawn(move || {
        // Touched before the hub exists, so destroyed after it (thread-locals are destroyed in
        // the reverse order of their first use).
        KEPT.with(|_| {});
        let scope = Some(Timeout::start(FOREVER));
        assert_eq!(pooled(), 0);
        KEPT.with(|k| *k.borrow_mut() = Some(Kept { scope, seen: s }));
    })
    .join()
    .unwrap();
    assert_eq!(
        *seen.lock().unwrap(),
        Some((false, false)),
        "dropped after the hub, without a panic"
    );
}
