//! `hub`: sleeping and yielding, the hub's wait and callbacks, one hub per thread (and what
//! becomes of its greenlets when the thread exits), the public wait API (`Waiter`, `Waker`)
//! and the side-effect-free hub queries.

use greenlet::hub::{Waiter, has_hub, in_greenlet};
use greenlet::{
    Error, Event, JoinError, Timeout, hub_loop, joinall, run_callback, sleep, spawn, wait,
    yield_now,
};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{FOREVER, assert_about_200ms, eventually, generous, ms};

#[test]
fn a_waker_from_another_greenlet_ends_the_wait() {
    let w = Waiter::new("reply").unwrap();
    let waker = w.waker();
    assert!(waker.is_waiting());
    let g = spawn(move || waker.wake());
    w.wait(Some(generous(Duration::from_secs(10)))).unwrap();
    assert!(
        g.join().unwrap(),
        "the wake-up was the one that ended the wait"
    );
}

#[test]
fn the_blocked_greenlet_is_listed_with_what_it_waits_on() {
    let g = spawn(|| {
        let w = Waiter::new("my reply").unwrap();
        w.wait(None)
    });
    yield_now().unwrap();
    let info = greenlet::run_info();
    let me = info.iter().find(|i| i.id == g.id()).unwrap();
    assert_eq!(
        me.state,
        greenlet::monitor::GreenletState::Blocked { on: "my reply" }
    );
    g.kill();
}

#[test]
fn a_wake_up_before_the_wait_is_not_lost_and_a_second_one_does_nothing() {
    let w = Waiter::new("x").unwrap();
    let waker = w.waker();
    assert!(waker.wake());
    assert!(!waker.wake());
    assert!(!waker.is_waiting());
    w.wait(None).unwrap();
}

#[test]
fn the_own_timeout_ends_the_wait_no_earlier_than_asked() {
    let w = Waiter::new("x").unwrap();
    let waker = w.waker();
    let start = Instant::now();
    let e = w.wait(Some(ms(30))).unwrap_err();
    let took = start.elapsed();
    assert!(e.is_timeout());
    assert!(
        took >= ms(30) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    assert!(!waker.wake(), "the wait is over");
    // `wait_for` tells its own timeout apart...
    let w = Waiter::new("x").unwrap();
    let _keep = w.waker();
    assert_eq!(w.wait_for(Some(ms(1))), Ok(false));
    // ... from an enclosing Timeout's, which propagates.
    let t = Timeout::start(ms(5));
    let w = Waiter::new("x").unwrap();
    let _keep = w.waker();
    match w.wait_for(Some(generous(Duration::from_secs(20)))) {
        Err(e) => assert!(t.is_mine(&e), "{e:?}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn nothing_left_to_wake_it_fails_at_once() {
    let w = Waiter::new("never").unwrap();
    assert_eq!(w.wait(None), Err(Error::WouldBlockForever));
    let e = std::io::Error::from(Error::WouldBlockForever);
    assert_eq!(e.kind(), std::io::ErrorKind::Deadlock);
}

#[test]
fn a_kill_while_waiting_unwinds_and_the_waker_is_stale_afterwards() {
    let slot: Rc<Cell<Option<greenlet::hub::Waker>>> = Rc::new(Cell::new(None));
    let s = slot.clone();
    let g = spawn(move || {
        let w = Waiter::new("x").unwrap();
        s.set(Some(w.waker()));
        w.wait(None)
    });
    yield_now().unwrap();
    let waker = slot.take().unwrap();
    assert!(waker.is_waiting());
    g.kill();
    assert!(g.join().is_err());
    assert!(!waker.is_waiting());
    assert!(!waker.wake());
}

#[test]
fn waiting_inside_the_hub_is_refused() {
    let got = Rc::new(Cell::new(None));
    let g = got.clone();
    run_callback(move || g.set(Some(Waiter::new("x").map(drop))));
    yield_now().unwrap();
    assert_eq!(got.take(), Some(Err(Error::BlockingInHub)));
}

#[test]
fn the_hub_queries_never_create_a_hub() {
    std::thread::spawn(|| {
        assert!(!has_hub());
        assert!(!in_greenlet());
        assert!(!has_hub(), "asking did not create one");
        yield_now().unwrap();
        assert!(has_hub());
        assert!(in_greenlet(), "the root greenlet");
        assert!(spawn(in_greenlet).join().unwrap(), "a spawned greenlet");
        let in_hub = Rc::new(Cell::new(None));
        let h = in_hub.clone();
        run_callback(move || h.set(Some((has_hub(), in_greenlet()))));
        yield_now().unwrap();
        assert_eq!(in_hub.get(), Some((true, false)), "inside the hub");
    })
    .join()
    .unwrap();
}

#[test]
fn sleep_zero_interleaves_ready_greenlets() {
    let log = Rc::new(RefCell::new(String::new()));
    let gs: Vec<_> = ["A", "B", "C"]
        .into_iter()
        .map(|name| {
            let l = log.clone();
            spawn(move || {
                for _ in 0..3 {
                    l.borrow_mut().push_str(name);
                    sleep(Duration::ZERO).unwrap();
                }
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    assert_eq!(*log.borrow(), "ABCABCABC");
}

#[test]
fn sleep_zero_runs_others_without_polling() {
    let lp = hub_loop();
    let before = lp.iteration();
    let g = spawn(|| ());
    yield_now().unwrap();
    assert!(g.is_dead());
    assert_eq!(
        lp.iteration(),
        before,
        "yield must not need a loop iteration"
    );
}

#[test]
fn sleep_takes_about_its_duration() {
    let start = Instant::now();
    sleep(ms(200)).unwrap();
    assert_about_200ms(start.elapsed());
}

#[test]
fn waiting_for_something_that_can_never_happen_fails_at_once() {
    let start = Instant::now();
    let ev = Event::new();
    assert_eq!(ev.wait(), Err(Error::WouldBlockForever));
    // A greenlet blocked forever: joining it cannot succeed either.
    let stuck = {
        let ev = ev.clone();
        spawn(move || ev.wait())
    };
    let err = stuck.clone().join().unwrap_err();
    assert!(
        matches!(err, JoinError::Wait(Error::WouldBlockForever)),
        "{err:?}"
    );
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    // The hub still works afterwards.
    ev.set();
    assert!(stuck.join().unwrap().is_ok());
}

#[test]
fn blocking_inside_the_hub_is_an_error() {
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    run_callback(move || *g.borrow_mut() = Some(sleep(ms(1))));
    yield_now().unwrap();
    assert_eq!(*got.borrow(), Some(Err(Error::BlockingInHub)));
}

#[test]
fn hub_wait_reports_whether_the_loop_ran_dry() {
    let _g = spawn(|| sleep(ms(20)));
    assert!(wait(None).unwrap());
    let _long = spawn(|| sleep(FOREVER));
    let start = Instant::now();
    assert!(!wait(Some(ms(200))).unwrap());
    assert_about_200ms(start.elapsed());
    _long.kill();
}

#[test]
fn each_thread_has_its_own_hub() {
    let handles: Vec<_> = (0..3)
        .map(|i| {
            std::thread::spawn(move || {
                let gs: Vec<_> = (0..10)
                    .map(|j| {
                        spawn(move || {
                            sleep(ms(5)).unwrap();
                            i * 100 + j
                        })
                    })
                    .collect();
                gs.into_iter().map(|g| g.join().unwrap()).sum::<i32>()
            })
        })
        .collect();
    let sums: Vec<i32> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(sums, vec![45, 1045, 2045]);
}

#[test]
fn thread_exit_kills_and_unwinds_every_remaining_greenlet() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    struct Counted(Arc<AtomicUsize>);
    impl Drop for Counted {
        fn drop(&mut self) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }
    let dropped = Arc::new(AtomicUsize::new(0));
    let d = dropped.clone();
    std::thread::spawn(move || {
        let ev = Event::new();
        for i in 0..10_000 {
            let (ev, d) = (ev.clone(), d.clone());
            spawn(move || {
                let _c = Counted(d);
                if i % 2 == 0 {
                    let _ = ev.wait();
                } else {
                    let _ = sleep(Duration::from_secs(3600));
                }
            });
        }
        // Let them all start and block; some are never started at all.
        yield_now().unwrap();
        for _ in 0..5 {
            let c = Counted(d.clone());
            spawn(move || {
                let _c = c;
            });
        }
        // The thread ends here with 10_005 greenlets alive.
    })
    .join()
    .unwrap();
    // Started ones unwound (destructor ran); never-started ones dropped their closure.
    assert_eq!(dropped.load(Ordering::SeqCst), 10_005);
}

#[test]
fn endless_sleep_zero_loops_do_not_starve_timers() {
    let stop = Rc::new(Cell::new(false));
    let spins = Rc::new(Cell::new(0u64));
    let (s, n) = (stop.clone(), spins.clone());
    let spinner = spawn(move || {
        while !s.get() {
            n.set(n.get() + 1);
            sleep(Duration::ZERO).unwrap();
        }
    });
    // A timer-based sleep still completes on time although a greenlet is always ready.
    let start = Instant::now();
    sleep(ms(200)).unwrap();
    assert_about_200ms(start.elapsed());
    // And the spinner keeps running while we sleep (1 ms at a time, each woken by a timer).
    assert!(
        eventually(Duration::from_secs(10), || spins.get() > 1000),
        "the spinner barely ran: {}",
        spins.get()
    );
    stop.set(true);
    spinner.join().unwrap();
}

#[test]
fn a_panicking_callback_in_the_hub_is_reported_and_the_hub_keeps_going() {
    // A raw watcher on the hub's loop whose callback panics.
    let lp = hub_loop();
    let t = gevent_timer(&lp);
    t.start();
    run_callback(|| panic!("callback failure"));
    let start = Instant::now();
    sleep(ms(100)).unwrap();
    let took = start.elapsed();
    assert!(
        took >= ms(99) && took < generous(Duration::from_secs(2)),
        "{took:?}"
    );
    assert!(!t.is_active(), "the panicking timer fired");
}

fn gevent_timer(lp: &ev_loop::Loop) -> ev_loop::Timer {
    ev_loop::Timer::new(lp, ms(10), Duration::ZERO, |_, _| {
        panic!("timer callback failure")
    })
}

/// How many times two greenlets that wake each other (working `work` between switches) ran
/// before a timer that was due at once fired, with the hub's switch interval set to
/// `interval`.
fn rounds_before_a_due_timer(interval: Duration, work: Duration) -> u64 {
    greenlet::set_switch_interval(interval);
    assert_eq!(greenlet::switch_interval(), interval);
    // Start from a fresh batch of the hub (it ran the sleep's wake-up).
    sleep(ms(1)).unwrap();
    let fired = Rc::new(Cell::new(None::<u64>));
    let rounds = Rc::new(Cell::new(0u64));
    let busy = || {
        let (fired, rounds) = (fired.clone(), rounds.clone());
        spawn(move || {
            while fired.get().is_none() {
                let t = Instant::now();
                while t.elapsed() < work {
                    std::hint::spin_loop();
                }
                rounds.set(rounds.get() + 1);
                yield_now().unwrap();
            }
        })
    };
    let gs = [busy(), busy()];
    let (f, r) = (fired.clone(), rounds.clone());
    let timer = ev_loop::Timer::new(&hub_loop(), Duration::ZERO, Duration::ZERO, move |_, _| {
        f.set(Some(r.get()));
    });
    timer.start();
    joinall(&gs, None).unwrap();
    fired.get().expect("the timer fired")
}

#[test]
fn a_smaller_switch_interval_lets_a_timer_fire_sooner_behind_busy_greenlets() {
    assert_eq!(
        greenlet::switch_interval(),
        greenlet::hub::DEFAULT_SWITCH_INTERVAL
    );
    let work = Duration::from_micros(100);
    // A long interval: many rounds of 100 µs before the hub polls (the 8192 direct switches
    // in a row are far off); with no interval, the first look at the (coarse, few-ms) clock
    // ends the batch. How many rounds fit depends on the machine's speed, so only the order
    // is asserted, with the long interval far longer than the clock's granularity (and below
    // the 100 ms bound that ends any batch).
    let long = rounds_before_a_due_timer(ms(80), work);
    let short = rounds_before_a_due_timer(Duration::ZERO, work);
    assert!(short < long, "short interval: {short} rounds, long: {long}");
    greenlet::set_switch_interval(greenlet::hub::DEFAULT_SWITCH_INTERVAL);
    assert_eq!(
        greenlet::switch_interval(),
        greenlet::hub::DEFAULT_SWITCH_INTERVAL
    );
}

#[test]
fn each_thread_has_its_own_switch_interval() {
    greenlet::set_switch_interval(ms(1));
    let other = std::thread::spawn(greenlet::switch_interval)
        .join()
        .unwrap();
    assert_eq!(other, greenlet::hub::DEFAULT_SWITCH_INTERVAL);
    assert_eq!(greenlet::switch_interval(), ms(1));
}

/// Callbacks queued with `run_callback` run in the order they were queued, before the next
/// poll; a queued callback keeps the loop alive, so the hub runs it before it can run dry.
#[test]
fn run_callbacks_run_in_order_and_keep_the_loop_alive() {
    let order = Rc::new(RefCell::new(Vec::new()));
    for i in 0..5 {
        let o = order.clone();
        run_callback(move || o.borrow_mut().push(i));
    }
    assert!(order.borrow().is_empty(), "queued, not run");
    // Nothing else is alive: only the queued callbacks keep the loop from running dry.
    assert!(wait(None).unwrap());
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4]);
}
