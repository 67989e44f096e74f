//! gevent's hub and greenlet semantics (shared/gevent-semantics.md), each against the real hub.

use greenlet::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{eventually, generous, ms};

/// A 200 ms timeout returns after 100 ms (the timer counts from the loop's time, which may lag
/// the caller's clock) and within seconds.
fn assert_about_200ms(took: Duration) {
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(2)),
        "took {took:?}"
    );
}

/// Far longer than any test runs: a greenlet sleeping this long is still asleep when the test
/// kills it.
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn spawn_does_not_run_before_the_spawner_yields() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn(move || r.set(true));
    assert!(!ran.get());
    assert!(!g.is_started() && !g.is_dead());
    yield_now().unwrap();
    assert!(ran.get());
    assert!(g.is_dead() && g.successful());
}

#[test]
fn a_finished_greenlet_is_dead_successful_and_its_links_ran_once() {
    let count = Rc::new(Cell::new(0));
    let g = spawn(|| 5);
    for _ in 0..2 {
        let c = count.clone();
        g.link(move || c.set(c.get() + 1));
    }
    assert!(g.wait(None).unwrap());
    assert!(g.is_dead() && g.successful() && !g.was_killed());
    // Linked after it finished: still runs exactly once.
    let c = count.clone();
    g.link(move || c.set(c.get() + 10));
    idle().unwrap();
    assert_eq!(count.get(), 12);
    assert_eq!(g.join().unwrap(), 5);
}

#[test]
fn a_panic_is_stored_reported_and_the_hub_continues() {
    let g = Builder::new()
        .name("doomed")
        .spawn(|| -> u8 { panic!("kaboom") })
        .unwrap();
    let linked = Rc::new(Cell::new(false));
    let l = linked.clone();
    g.link(move || l.set(true));
    let err = g.join().unwrap_err();
    assert_eq!(err.panic_message(), Some("kaboom"));
    idle().unwrap();
    assert!(linked.get());
    // The hub keeps going: a later 100 ms sleep still takes 100 ms (and not seconds).
    let start = Instant::now();
    sleep(ms(100)).unwrap();
    let took = start.elapsed();
    assert!(
        took >= ms(99) && took < generous(Duration::from_secs(2)),
        "{took:?}"
    );
}

#[test]
fn killing_an_unstarted_greenlet_means_it_never_runs() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let g = spawn(move || r.set(true));
    let links = Rc::new(Cell::new(0));
    let l = links.clone();
    g.link(move || l.set(l.get() + 1));
    g.kill();
    // A kill is a clean finish (gevent's GreenletExit); the join result says it was killed.
    assert!(g.is_dead() && g.was_killed() && g.successful());
    g.kill(); // repeatable, never fails
    idle().unwrap();
    assert!(!ran.get());
    assert_eq!(links.get(), 1);
    assert!(matches!(g.join(), Err(JoinError::Killed)));
}

#[test]
fn killing_a_sleeping_greenlet_unwinds_its_stack() {
    struct Guard(Rc<Cell<bool>>);
    impl Drop for Guard {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let after_sleep = Rc::new(Cell::new(false));
    let (d, a) = (dropped.clone(), after_sleep.clone());
    // Had the kill waited for the sleep to end, it would have taken `long` at least.
    let long = generous(Duration::from_secs(10));
    let g = spawn(move || {
        let _guard = Guard(d);
        let _ = sleep(long);
        a.set(true);
    });
    yield_now().unwrap();
    assert!(g.is_started());
    let start = Instant::now();
    g.kill();
    assert!(start.elapsed() < long);
    assert!(g.is_dead() && g.was_killed());
    assert!(
        dropped.get(),
        "destructors on the killed greenlet's stack must run"
    );
    assert!(
        !after_sleep.get(),
        "the killed greenlet must not continue after its sleep"
    );
    assert!(matches!(g.join(), Err(JoinError::Killed)));
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn a_greenlet_may_kill_itself_and_another_may_kill_with_timeout() {
    let slot: Rc<RefCell<Option<Greenlet<()>>>> = Rc::new(RefCell::new(None));
    let (s, after) = (slot.clone(), Rc::new(Cell::new(false)));
    let a = after.clone();
    let g = spawn(move || {
        let me = s.borrow_mut().take().unwrap();
        me.kill(); // unwinds at once
        a.set(true);
    });
    *slot.borrow_mut() = Some(g.clone());
    assert!(matches!(g.join(), Err(JoinError::Killed)));
    assert!(!after.get());
    let sleeper = spawn(|| sleep(FOREVER));
    yield_now().unwrap();
    assert!(sleeper.kill_timeout(Some(generous(Duration::from_secs(10)))));
    assert!(sleeper.was_killed());
}

#[test]
fn join_on_yourself_is_an_error() {
    let slot: Rc<RefCell<Option<Greenlet<String>>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let g = spawn(move || {
        let me = s.borrow_mut().take().unwrap();
        me.join_timeout(ms(10)).unwrap_err().to_string()
    });
    *slot.borrow_mut() = Some(g.clone());
    let msg = g.join().unwrap();
    assert!(msg.contains("cannot wait for itself"), "{msg}");
}

#[test]
fn joinall_returns_finish_order_and_stops_early_on_timeout() {
    // They finish in the order 1, 2, 0 by waiting for each other (not by racing timers): 1
    // after a sleep, 2 when 1 has set `first`, 0 when 2 has set `second`.
    let (first, second) = (Event::new(), Event::new());
    let (f, s) = (first.clone(), second.clone());
    let g0 = spawn(move || {
        s.wait().unwrap();
        0
    });
    let g1 = spawn(move || {
        sleep(ms(10)).unwrap();
        f.set();
        1
    });
    let (f, s) = (first.clone(), second.clone());
    let g2 = spawn(move || {
        f.wait().unwrap();
        s.set();
        2
    });
    let gs: Vec<Greenlet<u32>> = vec![g0, g1, g2];
    assert_eq!(joinall(&gs, None).unwrap(), vec![1, 2, 0]);

    let slow = vec![spawn(|| sleep(FOREVER)), spawn(|| Ok(()))];
    let start = Instant::now();
    let done = joinall(&slow, Some(ms(200))).unwrap();
    assert_about_200ms(start.elapsed());
    assert_eq!(done, vec![1]);
    slow[0].kill();

    // The late failure comes seconds after the first (which is at once): had joinall waited
    // past the first failure, it would have seen the second.
    let failing = vec![
        spawn(|| sleep(generous(Duration::from_secs(5))).map(|_| panic!("late failure"))),
        spawn(|| -> Result<()> { panic!("first failure") }),
        spawn(|| sleep(FOREVER)),
    ];
    let done = joinall_with(&failing, JoinAll::default().raise_error(true)).unwrap();
    assert_eq!(done, vec![1]);
    for g in &failing {
        g.kill();
    }
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
fn timeouts_fire_only_for_their_greenlet_and_nest() {
    let t = Timeout::start(ms(200));
    let start = Instant::now();
    let err = sleep(Duration::from_secs(5)).unwrap_err();
    assert_about_200ms(start.elapsed());
    assert!(t.is_mine(&err));
    drop(t);

    // Nested: the shorter fires; the outer stays armed and fires later. (The inner one is
    // due first unless the thread stalled for over 100 ms between arming the two: then
    // either may fire first.)
    let armed = Instant::now();
    let outer = Timeout::start(ms(150));
    {
        let inner = Timeout::start(ms(20));
        let stalled = armed.elapsed() >= ms(100);
        let err = sleep(Duration::from_secs(5)).unwrap_err();
        assert!(
            inner.is_mine(&err) || (stalled && outer.is_mine(&err)),
            "{err:?}"
        );
    }
    assert!(outer.is_armed());
    assert!(outer.is_mine(&sleep(Duration::from_secs(5)).unwrap_err()));
    drop(outer);

    // Leaving the scope cancels it.
    {
        let _t = Timeout::start(ms(10));
    }
    sleep(ms(30)).unwrap();

    // None never fires; zero fires on the next pass.
    let never = Timeout::start_opt(None);
    sleep(ms(5)).unwrap();
    drop(never);
    let zero = Timeout::start(Duration::ZERO);
    assert!(zero.is_mine(&sleep(Duration::from_secs(1)).unwrap_err()));

    // Another greenlet's timeout does not touch us.
    // We keep sleeping (1 ms at a time, each must succeed) until the other's has fired.
    let other = spawn(|| {
        let t = Timeout::start(ms(10));
        t.is_mine(&sleep(Duration::from_secs(1)).unwrap_err())
    });
    assert!(eventually(Duration::from_secs(10), || other.is_dead()));
    assert!(other.join().unwrap());
}

#[test]
fn cpu_bound_code_sees_its_timeout_only_when_it_blocks() {
    let t = Timeout::start(ms(10));
    let start = Instant::now();
    while start.elapsed() < ms(30) {
        std::hint::spin_loop();
    }
    // The spin was not interrupted; the expiry is seen at the next blocking call.
    assert!(start.elapsed() >= ms(30));
    assert!(t.is_mine(&sleep(ms(1)).unwrap_err()));
    assert!(t.expired());
}

#[test]
fn with_timeout_and_default() {
    assert_eq!(with_timeout(ms(100), || Ok(1)).unwrap(), 1);
    let start = Instant::now();
    assert!(
        with_timeout(ms(200), || sleep(Duration::from_secs(5)))
            .unwrap_err()
            .is_timeout()
    );
    assert_about_200ms(start.elapsed());
    assert_eq!(
        with_timeout_or(ms(5), 7, || sleep(Duration::from_secs(5)).map(|_| 0)).unwrap(),
        7
    );
    // An inner timeout is still an error for the outer scope.
    let r = with_timeout_or(Duration::from_secs(5), 7, || {
        with_timeout(ms(5), || sleep(Duration::from_secs(5)).map(|_| 0))
    });
    assert!(r.unwrap_err().is_timeout());
}

#[test]
fn event_wakes_every_waiter_in_fifo_order_even_if_cleared_at_once() {
    let ev = Event::new();
    let order = Rc::new(RefCell::new(Vec::new()));
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (ev, o) = (ev.clone(), order.clone());
            spawn(move || {
                let r = ev.wait_timeout(generous(Duration::from_secs(10))).unwrap();
                o.borrow_mut().push(i);
                r
            })
        })
        .collect();
    yield_now().unwrap();
    ev.set();
    ev.clear();
    for g in gs {
        assert!(
            g.join().unwrap(),
            "a waiter missed a set that was cleared at once"
        );
    }
    assert_eq!(*order.borrow(), vec![0, 1, 2, 3]);
    let keep = spawn(|| sleep(FOREVER));
    let start = Instant::now();
    assert!(!ev.wait_timeout(ms(200)).unwrap());
    assert_about_200ms(start.elapsed());
    keep.kill();
}

#[test]
fn async_result_from_another_thread_wakes_the_hub() {
    let r: AsyncResult<String> = AsyncResult::new();
    let setter = r.setter();
    let start = Instant::now();
    let t = std::thread::spawn(move || {
        std::thread::sleep(ms(50));
        assert!(setter.set("hello".into()));
        assert!(!setter.set("again".into()), "set once");
    });
    assert_eq!(r.get().unwrap(), "hello");
    assert!(start.elapsed() >= ms(45));
    t.join().unwrap();
    assert_eq!(r.get().unwrap(), "hello");

    let e: AsyncResult<u8, String> = AsyncResult::new();
    let s = e.setter();
    std::thread::spawn(move || s.set_error("bad".into()))
        .join()
        .unwrap();
    assert_eq!(e.get(), Err(AsyncError::Failed("bad".to_string())));

    // A setter that goes away without setting: the wait fails instead of hanging.
    let lost: AsyncResult<u8> = AsyncResult::new();
    let s = lost.setter();
    std::thread::spawn(move || {
        std::thread::sleep(ms(20));
        drop(s);
    });
    assert_eq!(lost.get(), Err(AsyncError::Wait(Error::WouldBlockForever)));

    // Timeout.
    let slow: AsyncResult<u8> = AsyncResult::new();
    let _s = slow.setter();
    let start = Instant::now();
    assert!(matches!(slow.get_timeout(ms(200)), Err(AsyncError::Wait(e)) if e.is_timeout()));
    assert_about_200ms(start.elapsed());
}

#[test]
fn spawn_later_starts_after_the_delay_and_can_be_killed_first() {
    let start = Instant::now();
    let g = spawn_later(ms(50), move || start.elapsed());
    assert!(g.join().unwrap() >= ms(45));
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    // Had its timer kept the loop alive, the wait would have lasted `delay` at least.
    let delay = generous(Duration::from_secs(5));
    let start = Instant::now();
    let g = spawn_later(delay, move || r.set(true));
    g.kill();
    assert!(
        wait(None).unwrap(),
        "a killed spawn_later must not keep the loop alive"
    );
    assert!(start.elapsed() < delay);
    assert!(!ran.get());
}

#[test]
fn many_greenlets_and_stack_reuse() {
    let n = 10_000;
    let count = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let c = count.clone();
            spawn(move || {
                yield_now().unwrap();
                c.set(c.get() + 1);
            })
        })
        .collect();
    assert_eq!(joinall(&gs, None).unwrap().len(), n);
    assert_eq!(count.get(), n);
    drop(gs);
    let stats = hub_stats();
    assert_eq!(stats.live_greenlets, 0);
    assert!(
        stats.pooled_stacks >= n.min(1000),
        "stacks were not pooled: {stats:?}"
    );
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

#[test]
fn canary_stacks_work_and_scale_past_guard_page_limits() {
    let ev = Event::new();
    let n = 40_000; // more than vm.max_map_count allows with guard pages (65530 / 2 mappings)
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let ev = ev.clone();
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || ev.wait())
                .unwrap()
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(hub_stats().live_greenlets, n);
    ev.set();
    for g in gs {
        g.join().unwrap().unwrap();
    }
}

#[test]
fn async_result_set_and_setter_dropped_before_the_wait_is_never_lost() {
    // A stress for the race a doctest once hit: the other thread sets the value and drops
    // its setter while the waiter is between its first check and arming the async watcher
    // (a window of nanoseconds, so this catches a regression only now and then; the fix is
    // the re-check after arming in `AsyncResult::wait_inner`).
    for _ in 0..2000 {
        let r: AsyncResult<u32> = AsyncResult::new();
        let s = r.setter();
        let t = std::thread::spawn(move || {
            s.set(42);
        });
        assert_eq!(r.get().unwrap(), 42);
        t.join().unwrap();
    }
    for _ in 0..200 {
        let r: AsyncResult<u32> = AsyncResult::new();
        let s = r.setter();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_micros(50));
            s.set(7);
        });
        assert_eq!(r.get().unwrap(), 7);
        t.join().unwrap();
    }
}

#[test]
fn an_enclosing_timeout_propagates_out_of_waits_with_their_own_timeout() {
    let g = spawn(|| sleep(FOREVER));
    let scope_expired = |r: &greenlet::Result<bool>, t: &Timeout| match r {
        Err(e @ Error::Timeout(_)) => t.is_mine(e),
        _ => false,
    };
    let t = Timeout::start(Duration::from_millis(10));
    let r = g.wait(Some(Duration::from_secs(5)));
    assert!(scope_expired(&r, &t), "Greenlet::wait: {r:?}");
    drop(t);
    let t = Timeout::start(Duration::from_millis(10));
    let r = greenlet::wait(Some(Duration::from_secs(5)));
    assert!(scope_expired(&r, &t), "greenlet::wait: {r:?}");
    drop(t);
    let t = Timeout::start(Duration::from_millis(10));
    match g.join_timeout(Duration::from_secs(5)) {
        Err(JoinError::Wait(e @ Error::Timeout(_))) => assert!(t.is_mine(&e)),
        other => panic!("join_timeout: {other:?}"),
    }
    drop(t);
    // Their own timeouts still read as such.
    assert!(!g.wait(Some(Duration::from_millis(5))).unwrap());
    assert!(!greenlet::wait(Some(Duration::from_millis(5))).unwrap());
    g.kill();
}

// From a review of the wait paths (a helper): each failed before its fix.

/// Event::wait_timeout inside a Timeout scope: the scope's expiry must come out as its error
/// (as Greenlet::wait does since 3e6bd6b), not as the call's own timeout.
#[test]
fn event_wait_timeout_lets_an_enclosing_timeout_through() {
    let keep = spawn(|| sleep(FOREVER));
    let e = Event::new();
    // Had the wait ended at its own timeout, it would have taken `own` at least.
    let own = generous(Duration::from_secs(5));
    let t = Timeout::start(ms(10));
    let start = Instant::now();
    let r = e.wait_timeout(own);
    assert!(start.elapsed() < own);
    assert_eq!(r, Err(Error::Timeout(t.id())));
    drop(t);
    keep.kill();
}

#[test]
fn async_result_wait_timeout_lets_an_enclosing_timeout_through() {
    let r: AsyncResult<u8> = AsyncResult::new();
    let _s = r.setter();
    let t = Timeout::start(ms(10));
    let got = r.wait(Some(Duration::from_secs(5)));
    assert_eq!(got, Err(Error::Timeout(t.id())));
}

/// A setter made after a greenlet started waiting: its delivery from another thread must wake
/// the waiter (the watcher was never started for it).
#[test]
fn a_setter_made_after_the_wait_started_wakes_the_waiter() {
    let r: AsyncResult<u8> = AsyncResult::new();
    let r2 = r.clone();
    // Had only its own timeout woken it, it would have waited `own` at least.
    let own = generous(Duration::from_secs(10));
    let waiter = spawn(move || {
        let start = Instant::now();
        let got = r2.wait(Some(own));
        (got, start.elapsed())
    });
    yield_now().unwrap(); // waiting, no setter yet: watcher stopped
    let s = r.setter();
    std::thread::spawn(move || s.set(1)).join().unwrap();
    let (got, waited) = waiter.join().unwrap();
    assert_eq!(got, Ok(true));
    assert!(
        waited < own,
        "woken only by its own timeout after {waited:?}"
    );
}

/// An AsyncResult wait with a timeout restarted the whole timeout after a spurious wake-up (its
/// setter going away without delivering): it waited up to twice as long as asked.
#[test]
fn async_result_wait_timeout_is_a_deadline() {
    let r: AsyncResult<u8> = AsyncResult::new();
    let s = r.setter();
    let asked = generous(Duration::from_secs(1));
    let start = Instant::now();
    // When the setter went away, from `start` (halfway through the wait, unless that thread
    // was late).
    let t = std::thread::spawn(move || {
        std::thread::sleep(asked / 2);
        let at = start.elapsed();
        drop(s);
        at
    });
    assert_eq!(r.wait(Some(asked)), Ok(false));
    let waited = start.elapsed();
    let woken_at = t.join().unwrap();
    assert!(waited >= asked, "asked for {asked:?}, waited {waited:?}");
    // Restarting the timeout at the wake-up would make it end `asked` after that wake-up.
    if woken_at < waited {
        assert!(
            waited < woken_at + asked,
            "asked for {asked:?}, woken after {woken_at:?}, waited {waited:?}"
        );
    }
}
