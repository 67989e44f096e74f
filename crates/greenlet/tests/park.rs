//! `park`, `unpark` and direct `switch_to` against the real hub.

use greenlet::park::{GreenletRef, current, park, park_timeout, switch_to};
use greenlet::{Error, Event, Timeout, run_callback, sleep, spawn, yield_now};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{eventually, generous};

/// Far longer than any test runs: a greenlet sleeping this long is still asleep when the test
/// kills it.
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn unpark_before_park_is_kept_and_used_once() {
    let g = spawn(|| {
        current().unpark();
        park().unwrap(); // the token: returns at once
        let start = Instant::now();
        // No token any more: this one really parks, until the timeout.
        assert!(!park_timeout(Duration::from_millis(30)).unwrap());
        start.elapsed()
    });
    let waited = g.join().unwrap();
    assert!(waited >= Duration::from_millis(25), "{waited:?}");
}

#[test]
fn unpark_wakes_a_parked_greenlet() {
    let woke = Rc::new(Cell::new(false));
    let w = woke.clone();
    let g = spawn(move || {
        park().unwrap();
        w.set(true);
    });
    yield_now().unwrap();
    assert!(!woke.get(), "parked until unparked");
    let h = g.handle();
    h.unpark();
    h.unpark(); // a second one leaves a token; harmless
    g.join().unwrap();
    assert!(woke.get());
    h.unpark(); // a finished greenlet: nothing happens
}

#[test]
fn park_timeout_true_when_unparked_in_time() {
    let me = current();
    let g = spawn(move || {
        sleep(Duration::from_millis(5)).unwrap();
        me.unpark();
    });
    assert!(park_timeout(generous(Duration::from_secs(10))).unwrap());
    g.join().unwrap();
}

#[test]
fn an_enclosing_timeout_propagates_out_of_park_timeout() {
    let keep = spawn(|| sleep(FOREVER));
    let t = Timeout::start(Duration::from_millis(10));
    let r = park_timeout(Duration::from_secs(5));
    match r {
        Err(e @ Error::Timeout(_)) => assert!(t.is_mine(&e)),
        other => panic!("expected the scope's timeout, got {other:?}"),
    }
    keep.kill();
}

#[test]
fn park_with_nothing_left_would_block_forever() {
    assert_eq!(park(), Err(Error::WouldBlockForever));
}

#[test]
fn park_in_a_hub_callback_is_refused() {
    let got = Rc::new(RefCell::new(None));
    let g = got.clone();
    run_callback(move || *g.borrow_mut() = Some(park()));
    yield_now().unwrap();
    assert_eq!(got.borrow_mut().take(), Some(Err(Error::BlockingInHub)));
}

#[test]
fn kill_unwinds_a_parked_greenlet() {
    struct Dropped(Rc<Cell<bool>>);
    impl Drop for Dropped {
        fn drop(&mut self) {
            self.0.set(true);
        }
    }
    let dropped = Rc::new(Cell::new(false));
    let d = Dropped(dropped.clone());
    let main = current();
    let g = spawn(move || {
        let _d = d;
        let _ = switch_to(&main); // parks here; main is parked elsewhere, never switches back
        unreachable!("killed while parked");
    });
    park().unwrap(); // g's switch_to unparks us
    g.kill();
    assert!(dropped.get());
    assert!(g.was_killed());
}

#[test]
fn switch_to_alternates_in_strict_order() {
    let log = Rc::new(RefCell::new(Vec::new()));
    let main = current();
    let l = log.clone();
    let worker = spawn(move || {
        for i in 0..1000 {
            l.borrow_mut().push(2 * i + 1);
            switch_to(&main).unwrap();
        }
        main.unpark();
    });
    let w = worker.handle();
    for i in 0..1000 {
        switch_to(&w).unwrap();
        log.borrow_mut().push(2 * i + 2);
    }
    switch_to(&w).unwrap();
    worker.join().unwrap();
    let log = log.borrow();
    assert_eq!(*log, (1..=2000).collect::<Vec<_>>());
}

#[test]
fn a_greenlet_running_after_direct_switches_is_not_parked() {
    let main = current();
    // Had the token been lost, the park would have lasted `own` at least.
    let own = generous(Duration::from_secs(10));
    let g = spawn(move || {
        for _ in 0..3 {
            switch_to(&main).unwrap();
        }
        // Running again after direct switches: unparking ourselves leaves a token. It must not
        // wake us later, in the middle of another wait.
        current().unpark();
        let start = Instant::now();
        sleep(Duration::from_millis(20)).unwrap();
        let slept = start.elapsed();
        let token_used = park_timeout(own).unwrap();
        main.unpark();
        (slept, token_used, start.elapsed())
    });
    let h = g.handle();
    for _ in 0..4 {
        switch_to(&h).unwrap();
        if !h.is_dead() {
            // Parked by its direct switch back to us.
            let info = greenlet::run_info();
            let state = info.iter().find(|i| i.id == h.id()).unwrap().state;
            assert_eq!(
                state,
                greenlet::monitor::GreenletState::Blocked { on: "park" }
            );
        }
    }
    let (slept, token_used, total) = g.join().unwrap();
    assert!(
        slept >= Duration::from_millis(19),
        "sleep cut short: {slept:?}"
    );
    assert!(token_used);
    assert!(total < own, "the token was lost: {total:?}");
}

#[test]
fn direct_switching_greenlets_do_not_starve_the_hub() {
    // Two greenlets that only ever switch to each other; a third needs a timer (the hub must
    // poll) to stop them. Without the direct-switch budget this would never end.
    let rounds = support::switch_pair_for(Duration::from_millis(20));
    assert!(rounds > 100, "they did switch: {rounds}");
}

#[test]
fn switch_to_a_greenlet_blocked_elsewhere_only_leaves_a_token() {
    let ev = Event::new();
    let log = Rc::new(RefCell::new(Vec::new()));
    let main = current();
    let (e, l) = (ev.clone(), log.clone());
    let g = spawn(move || {
        e.wait().unwrap(); // not woken by the switch_to below
        l.borrow_mut().push("event");
        park().unwrap(); // the switch_to's token: returns at once
        l.borrow_mut().push("token");
        main.unpark();
    });
    yield_now().unwrap();
    let e = ev.clone();
    let setter = spawn(move || {
        sleep(Duration::from_millis(10)).unwrap();
        e.set();
    });
    switch_to(&g.handle()).unwrap();
    assert_eq!(*log.borrow(), ["event", "token"]);
    g.join().unwrap();
    setter.join().unwrap();
}

#[test]
fn switch_to_self_returns_and_to_a_dead_greenlet_fails() {
    switch_to(&current()).unwrap();
    let g = spawn(|| ());
    let h = g.handle();
    g.join().unwrap();
    assert_eq!(switch_to(&h), Err(Error::Dead));
    assert_eq!(Error::Dead.to_string(), "the greenlet has already finished");
}

#[test]
fn switch_to_an_unstarted_greenlet_starts_it_in_turn() {
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let main = current();
    let g = spawn(move || {
        r.set(true);
        main.unpark();
    });
    switch_to(&g.handle()).unwrap();
    assert!(ran.get());
    g.join().unwrap();
}

#[test]
fn greenlets_woken_by_each_other_do_not_starve_the_hub() {
    // A wait hands control straight to the next greenlet in the run queue; two greenlets that
    // wake each other forever must still let the hub run a timer.
    let stop = Rc::new(Cell::new(false));
    let rounds = Rc::new(Cell::new(0u64));
    let (ping, pong) = (Event::new(), Event::new());
    let start = Instant::now();
    let (s, r, pi, po) = (stop.clone(), rounds.clone(), ping.clone(), pong.clone());
    let a = spawn(move || {
        while !s.get() {
            assert!(
                start.elapsed() < generous(Duration::from_secs(20)),
                "the hub was starved"
            );
            r.set(r.get() + 1);
            pi.set();
            po.wait().unwrap();
            po.clear();
        }
        pi.set();
    });
    let (s, pi, po) = (stop.clone(), ping.clone(), pong.clone());
    let b = spawn(move || {
        while !s.get() {
            pi.wait().unwrap();
            pi.clear();
            po.set();
        }
        po.set();
    });
    // The stopper's 1 ms sleeps each need the hub to run a timer; it stops the pair once they
    // have gone round 100 times.
    let (s, r) = (stop.clone(), rounds.clone());
    let stopper = spawn(move || {
        let ran = eventually(Duration::from_secs(10), || r.get() > 100);
        s.set(true);
        ran
    });
    assert!(
        stopper.join().unwrap(),
        "they did not run: {}",
        rounds.get()
    );
    a.join().unwrap();
    b.join().unwrap();
}

/// Busy for `d` without yielding.
fn spin(d: Duration) {
    let s = Instant::now();
    while s.elapsed() < d {
        std::hint::spin_loop();
    }
}

/// Two greenlets that wake each other through Events and compute 20 us per turn; a 1 ms
/// sleeper must wake up soon (gevent's 5 ms switch interval), not after 64 * 1024 turns.
#[test]
fn timers_run_on_time_while_greenlets_wake_each_other() {
    let stop = Rc::new(Cell::new(false));
    let (ping, pong) = (Event::new(), Event::new());
    let (s, pi, po) = (stop.clone(), ping.clone(), pong.clone());
    let a = spawn(move || {
        while !s.get() {
            spin(Duration::from_micros(20));
            pi.set();
            po.wait().unwrap();
            po.clear();
        }
        pi.set();
    });
    let (s, pi, po) = (stop.clone(), ping.clone(), pong.clone());
    let b = spawn(move || {
        while !s.get() {
            pi.wait().unwrap();
            pi.clear();
            spin(Duration::from_micros(20));
            po.set();
        }
        po.set();
    });
    let s = stop.clone();
    let stopper = spawn(move || {
        let t = Instant::now();
        sleep(Duration::from_millis(1)).unwrap();
        s.set(true);
        t.elapsed()
    });
    let late = stopper.join().unwrap();
    a.join().unwrap();
    b.join().unwrap();
    // Starved, it would wait for 64 * 1024 turns: seconds.
    assert!(
        late < generous(Duration::from_millis(500)),
        "timer starved: {late:?}"
    );
}

/// A wait's own timeout counts from now, not from the loop's cached clock, which is stale after
/// a long chain of greenlets that ran without the hub.
#[test]
fn a_wait_timeout_after_a_long_chain_of_direct_switches_is_not_early() {
    let (ping, pong) = (Event::new(), Event::new());
    let (pi, po) = (ping.clone(), pong.clone());
    let a = spawn(move || {
        for _ in 0..2000 {
            spin(Duration::from_micros(50));
            pi.set();
            po.wait().unwrap();
            po.clear();
        }
        pi.set();
        let never = Event::new();
        let t = Instant::now();
        let set = never.wait_timeout(Duration::from_millis(50)).unwrap();
        (set, t.elapsed())
    });
    let (pi, po) = (ping.clone(), pong.clone());
    let b = spawn(move || {
        for _ in 0..2000 {
            pi.wait().unwrap();
            pi.clear();
            po.set();
        }
    });
    let (set, waited) = a.join().unwrap();
    assert!(!set);
    b.join().unwrap();
    assert!(
        waited >= Duration::from_millis(45),
        "fired early: {waited:?}"
    );
}

#[test]
fn a_greenlet_that_survives_a_kill_while_parked_is_not_reported_parked() {
    let g = spawn(|| {
        let caught = std::panic::catch_unwind(std::panic::AssertUnwindSafe(park));
        assert!(caught.is_err(), "the kill unwound out of park");
        // Still asleep whenever the test looks, however slowly it runs (it kills us at the end).
        sleep(FOREVER)
    });
    yield_now().unwrap(); // g parks
    assert!(
        !g.kill_timeout(Some(Duration::from_millis(20))),
        "it swallows the kill"
    );
    let info = greenlet::run_info();
    let state = &info.iter().find(|i| i.id == g.id()).unwrap().state;
    assert_eq!(
        *state,
        greenlet::monitor::GreenletState::Blocked { on: "sleep" },
        "{state:?}"
    );
    // A second kill ends the sleep.
    g.kill();
    assert!(matches!(g.join(), Err(greenlet::JoinError::Killed)));
}

#[test]
fn a_greenlet_local_destructor_cannot_block() {
    // Greenlet-local values are dropped as their greenlet finishes, when it can no longer be
    // switched back to: a blocking call there fails instead of suspending it for good.
    struct Blocks(Rc<RefCell<Option<Result<(), Error>>>>);
    impl Drop for Blocks {
        fn drop(&mut self) {
            *self.0.borrow_mut() = Some(sleep(Duration::from_millis(1)));
        }
    }
    let got = Rc::new(RefCell::new(None));
    let local: Rc<greenlet::Local<RefCell<Option<Blocks>>>> =
        Rc::new(greenlet::Local::new(|| RefCell::new(None)));
    let (l, g) = (local.clone(), got.clone());
    spawn(move || l.with(|slot| *slot.borrow_mut() = Some(Blocks(g))))
        .join()
        .unwrap();
    assert_eq!(got.borrow_mut().take(), Some(Err(Error::Dead)));
    // The hub goes on.
    spawn(|| sleep(Duration::from_millis(1)))
        .join()
        .unwrap()
        .unwrap();
}

#[test]
fn a_greenlet_local_destructor_cannot_switch_away_for_good() {
    // Like `sleep` in `a_greenlet_local_destructor_cannot_block`: a finished greenlet is never
    // switched back to, so `switch_to` from its local destructor must fail (Dead) instead of
    // parking it by a direct switch (its links would never run, its stack would leak).
    struct SwitchesAway(GreenletRef, Rc<RefCell<Option<Result<(), Error>>>>);
    impl Drop for SwitchesAway {
        fn drop(&mut self) {
            *self.1.borrow_mut() = Some(switch_to(&self.0));
        }
    }
    let partner = spawn(|| park().unwrap()); // parked (PARKED set) when the destructor runs
    yield_now().unwrap();
    let p = partner.handle();
    let got = Rc::new(RefCell::new(None));
    let local: Rc<greenlet::Local<RefCell<Option<SwitchesAway>>>> =
        Rc::new(greenlet::Local::new(|| RefCell::new(None)));
    let (l, gt) = (local.clone(), got.clone());
    let g = spawn(move || {
        l.with(|slot| *slot.borrow_mut() = Some(SwitchesAway(p, gt)));
        yield_now().unwrap(); // the joiner below blocks in `join` meanwhile
    });
    let gh = g.handle();
    // A joiner blocked before `g` finishes: woken through `g`'s links (after the locals die).
    let joined = spawn(move || g.join().is_ok());
    let joined = joined.join().expect("the joiner of `g` was never woken");
    assert_eq!(
        got.borrow_mut().take(),
        Some(Err(Error::Dead)),
        "switch_to from a finished greenlet's destructor"
    );
    assert!(joined, "the joiner of `g` was never woken");
    assert!(gh.is_dead());
    partner.handle().unpark();
    partner.join().unwrap();
    assert_eq!(greenlet::hub_stats().live_greenlets, 0);
}

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// Random mixes of direct switches, unparks, parks, kills and Timeout scopes: no internal
/// error, a Timeout error always belongs to a scope that is live and expired, no hang.
#[test]
fn stress_direct_switches_with_unpark_kill_and_timeouts() {
    for seed in 1..=40u64 {
        let handles: Rc<RefCell<Vec<GreenletRef>>> = Rc::new(RefCell::new(Vec::new()));
        let killable: Rc<RefCell<Vec<greenlet::Greenlet<()>>>> = Rc::new(RefCell::new(Vec::new()));
        let stop = Rc::new(Cell::new(false));
        let mut gs = Vec::new();
        for i in 0..5u64 {
            let (hs, st, ks) = (handles.clone(), stop.clone(), killable.clone());
            gs.push(spawn(move || {
                let mut rng = Rng(seed * 7919 + i * 104729 + 1);
                let mut ops = 0;
                while !st.get() && ops < 3000 {
                    ops += 1;
                    let n = hs.borrow().len();
                    let other = hs.borrow()[(rng.next() % n as u64) as usize].clone();
                    if rng.next().is_multiple_of(400) {
                        let k = ks.borrow()[(rng.next() % 5) as usize].clone();
                        k.kill();
                        continue;
                    }
                    let r = match rng.next() % 8 {
                        0..=2 => switch_to(&other),
                        3 => {
                            other.unpark();
                            Ok(())
                        }
                        4 => park_timeout(Duration::from_micros(200)).map(|_| ()),
                        5 => yield_now(),
                        6 => {
                            let t = Timeout::start(Duration::from_micros(rng.next() % 500));
                            let r = switch_to(&other);
                            if let Err(e @ Error::Timeout(_)) = &r {
                                assert!(t.is_mine(e) && t.expired(), "foreign timeout {e:?}");
                                continue;
                            }
                            r
                        }
                        _ => sleep(Duration::from_micros(rng.next() % 300)),
                    };
                    match r {
                        Ok(()) | Err(Error::Dead) => {}
                        Err(e) => panic!("unexpected {e:?}"),
                    }
                }
            }));
        }
        *killable.borrow_mut() = gs.clone();
        *handles.borrow_mut() = gs.iter().map(|g| g.handle()).chain([current()]).collect();
        let st = stop.clone();
        let stopper = spawn(move || {
            sleep(Duration::from_millis(30)).unwrap();
            st.set(true);
        });
        stopper.join().unwrap();
        // Wake whoever is still parked, until all are done.
        let start = std::time::Instant::now();
        while gs.iter().any(|g| !g.is_dead()) {
            assert!(
                start.elapsed() < generous(Duration::from_secs(10)),
                "hang (seed {seed})"
            );
            for g in &gs {
                g.handle().unpark();
            }
            sleep(Duration::from_millis(1)).unwrap();
        }
        killable.borrow_mut().clear();
        for g in gs {
            match g.join() {
                Ok(()) | Err(greenlet::JoinError::Killed) => {}
                Err(e) => panic!("seed {seed}: {e:?}"),
            }
        }
        assert_eq!(greenlet::hub_stats().live_greenlets, 0);
    }
}
