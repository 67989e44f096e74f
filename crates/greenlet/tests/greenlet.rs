//! `greenlet`: spawning, joining, killing and linking greenlets (`spawn`, `spawn_later`,
//! `Builder`, `joinall`) with gevent's semantics (shared/gevent-semantics.md), against the real
//! hub.

use greenlet::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{FOREVER, assert_about_200ms, generous, ms};

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
