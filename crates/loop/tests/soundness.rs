//! The soundness promises of the safe loop, each against the real libev.

use ev_loop::{Break, Events, Idle, Loop, Prepare, Timer};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

#[test]
fn watchers_do_not_move_when_their_handles_move() {
    let lp = Loop::new().unwrap();
    let fired = Rc::new(RefCell::new(Vec::new()));
    // Handles are moved into a Vec that reallocates many times while the watchers are active.
    let mut timers = Vec::new();
    for i in 0..200u64 {
        let f = fired.clone();
        let t = Timer::new(&lp, ms(1 + i % 5), Duration::ZERO, move |_, _| {
            f.borrow_mut().push(i)
        });
        t.start();
        timers.push(t);
    }
    let moved: Vec<Timer> = timers.into_iter().rev().collect();
    let boxed = Box::new(moved);
    lp.run();
    let mut got = fired.borrow().clone();
    got.sort();
    assert_eq!(got, (0..200).collect::<Vec<_>>());
    assert!(boxed.iter().all(|t| !t.is_active()));
}

#[test]
fn dropping_an_active_watcher_stops_it() {
    let lp = Loop::new().unwrap();
    let after = generous(Duration::from_secs(5));
    let start = Instant::now();
    lp.update_now(); // the timer counts from no earlier than `start`
    let t = Timer::new(&lp, after, Duration::ZERO, |_, _| {
        panic!("dropped timer fired")
    });
    t.start();
    drop(t);
    assert!(!lp.run(), "no active watcher may remain");
    // Had it waited for the timer, it would have taken `after` at least.
    assert!(start.elapsed() < after, "run waited for a dropped timer");
}

#[test]
fn dropping_a_pending_watcher_discards_its_event() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {
        panic!("must not run")
    });
    t.feed(Events::CUSTOM);
    assert!(t.is_pending());
    assert_eq!(lp.pending_count(), 1);
    drop(t);
    // libev leaves a dummy in the pending queue (pending_count stays 1); what matters is that
    // the freed watcher's callback never runs.
    lp.run_nowait();
    assert_eq!(lp.pending_count(), 0);
}

#[test]
fn dropping_the_loop_while_watchers_exist_is_safe() {
    let lp = Loop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let t = Timer::new(&lp, ms(1), ms(1), move |w, _| {
        c.set(c.get() + 1);
        if c.get() == 3 {
            w.stop();
        }
    });
    t.start();
    drop(lp);
    // The watcher keeps the C loop alive and can still run it.
    t.event_loop().run();
    assert_eq!(count.get(), 3);
    drop(t); // the C loop is destroyed here, after its last watcher
}

#[test]
fn a_watcher_only_ever_runs_on_its_own_loop() {
    let a = Loop::new().unwrap();
    let b = Loop::new().unwrap();
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    // Running the other loop does not wait for a's timer: had it, it would have taken `after`.
    let after = generous(Duration::from_secs(5));
    let start = Instant::now();
    a.update_now(); // the timer counts from no earlier than `start`
    let t = Timer::new(&a, after, Duration::ZERO, move |_, _| f.set(true));
    t.start();
    assert_eq!(t.event_loop().as_raw(), a.as_raw());
    assert!(!b.run());
    b.run_nowait();
    assert!(start.elapsed() < after, "b waited for a's timer");
    assert!(!fired.get());
    // Nor does it fire a's timer once that is due.
    t.stop();
    t.set(ms(1), Duration::ZERO);
    t.start();
    std::thread::sleep(ms(5)); // due: a's loop time is older than this sleep
    assert!(!b.run());
    b.run_nowait();
    assert!(!fired.get());
    a.run();
    assert!(fired.get());
}

#[test]
fn a_callback_may_drop_its_own_watcher() {
    let lp = Loop::new().unwrap();
    let slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
    let dropped = Rc::new(Cell::new(false));
    struct Flag(Rc<Cell<bool>>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let flag = Flag(dropped.clone());
    let s = slot.clone();
    let t = Timer::new(&lp, ms(1), ms(1), move |w, _| {
        let _keep = &flag;
        assert!(w.is_active());
        // Drop the only handle to this very watcher while its callback runs.
        s.borrow_mut().take();
        // The watcher is still usable until the callback returns.
        assert!(w.is_active());
    });
    t.start();
    *slot.borrow_mut() = Some(t);
    assert!(!lp.run(), "the repeating timer must be stopped by the drop");
    assert!(
        dropped.get(),
        "the callback (and its captures) must be freed after it returned"
    );
}

#[test]
fn a_callback_may_drop_another_pending_watcher() {
    let lp = Loop::new().unwrap();
    let second: Rc<RefCell<Option<Idle>>> = Rc::new(RefCell::new(None));
    let s = second.clone();
    // Higher priority: runs first, while the second idle watcher is pending too.
    let first = Idle::new(&lp, move |w, _| {
        s.borrow_mut().take();
        w.stop();
    });
    first.set_priority(2).unwrap();
    let other = Idle::new(&lp, |_, _| panic!("a dropped pending watcher ran"));
    first.start();
    other.start();
    *second.borrow_mut() = Some(other);
    lp.run();
    assert!(second.borrow().is_none());
}

#[test]
fn a_callback_may_start_stop_and_restart_watchers() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let l = log.clone();
    let later = Rc::new(Timer::new(&lp, ms(1), Duration::ZERO, move |_, _| {
        l.borrow_mut().push("later")
    }));
    let l = log.clone();
    let lt = later.clone();
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let p = Prepare::new(&lp, move |w, _| {
        r.set(r.get() + 1);
        l.borrow_mut().push("prepare");
        lt.start(); // start another watcher
        w.stop(); // stop itself
        if r.get() == 1 {
            w.start(); // and restart itself once
        } else {
            w.stop();
        }
    });
    p.start();
    lp.run();
    assert_eq!(runs.get(), 2);
    // Each prepare run started the (one-shot) timer again, and it fired after each poll.
    assert_eq!(*log.borrow(), vec!["prepare", "later", "prepare", "later"]);
}

#[test]
fn a_panic_in_a_callback_breaks_the_loop_and_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let after = Rc::new(Cell::new(0));
    let a = after.clone();
    let boom = Timer::new(&lp, ms(1), Duration::ZERO, |_, _| {
        panic!("boom in a callback")
    });
    // Far off, so that only the break can end the run before it fires.
    let keep = Timer::new(
        &lp,
        generous(Duration::from_secs(10)),
        Duration::ZERO,
        move |_, _| a.set(a.get() + 1),
    );
    boom.start();
    keep.start();
    let err = panic::catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"boom in a callback"));
    // The loop broke before the other timer fired, and is still usable afterwards.
    assert_eq!(after.get(), 0);
    assert!(keep.is_active());
    keep.stop();
    keep.set(ms(1), Duration::ZERO);
    keep.start();
    lp.run();
    assert_eq!(after.get(), 1);
}

#[test]
fn a_panic_in_a_nested_run_reaches_the_outer_run() {
    let lp = Loop::new().unwrap();
    let inner = Rc::new(Timer::new(&lp, ms(1), Duration::ZERO, |_, _| {
        panic!("inner")
    }));
    let i = inner.clone();
    let outer = Idle::new(&lp, move |w, _| {
        w.stop();
        i.start();
        w.event_loop().run(); // nested: re-raises "inner" here, inside our callback
    });
    outer.start();
    let err = panic::catch_unwind(AssertUnwindSafe(|| lp.run())).unwrap_err();
    assert_eq!(err.downcast_ref::<&str>(), Some(&"inner"));
}

#[test]
fn keep_alive_false_watchers_do_not_keep_run_alive() {
    let lp = Loop::new().unwrap();
    // The run returns after one iteration, in which `bg` may fire once if it is already due.
    // Had `bg` kept it alive, it would fire again: the second time ends the run.
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    let bg = Timer::new(&lp, ms(20), ms(20), move |w, _| {
        h.set(h.get() + 1);
        if h.get() == 2 {
            w.event_loop().break_loop(Break::All);
        }
    });
    bg.set_keep_alive(false);
    bg.start();
    assert!(!lp.run());
    assert!(
        hits.get() <= 1,
        "an unref'd watcher kept the loop alive: it fired {} times",
        hits.get()
    );
    assert!(bg.is_active());

    // With a keep-alive watcher too, the background one still fires meanwhile: `fg` keeps
    // the run going until `bg` has fired twice (or, should it not fire, until `fg` fires).
    let fg = Rc::new(Timer::new(
        &lp,
        generous(Duration::from_secs(10)),
        Duration::ZERO,
        |_, _| {},
    ));
    let (h, f) = (hits.clone(), fg.clone());
    hits.set(0);
    bg.set_callback(move |_, _| {
        h.set(h.get() + 1);
        if h.get() == 2 {
            f.stop();
        }
    });
    fg.start();
    lp.run();
    assert!(!fg.is_active(), "only the keep-alive timer ended the run");
    assert_eq!(hits.get(), 2, "background timer fired {} times", hits.get());

    // Switching keep-alive back on makes it hold the loop again.
    bg.set_keep_alive(true);
    let stopper = Timer::new(&lp, ms(30), Duration::ZERO, |w, _| {
        w.event_loop().break_loop(Break::All)
    });
    stopper.start();
    assert!(
        lp.run(),
        "run must have been broken, not run out of watchers"
    );
}

#[test]
fn self_stopping_unrefd_watchers_keep_the_refcount_balanced() {
    let lp = Loop::new().unwrap();
    // A one-shot unref'd timer is stopped by libev itself when it fires.
    for _ in 0..5 {
        let once = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
        once.set_keep_alive(false);
        once.start();
        let fg = Timer::new(&lp, ms(5), Duration::ZERO, |_, _| {});
        fg.start();
        lp.run();
        assert!(!once.is_active());
    }
    // If the count had drifted, this run would either return too early or never.
    let fired = Rc::new(Cell::new(false));
    let f = fired.clone();
    let t = Timer::new(&lp, ms(5), Duration::ZERO, move |_, _| f.set(true));
    t.start();
    lp.run();
    assert!(fired.get());
    assert!(!lp.run());
}
