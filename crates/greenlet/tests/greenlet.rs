//! `greenlet`: spawning, joining, killing and linking greenlets (`spawn`, `spawn_later`,
//! `Builder`, `joinall`) with gevent's semantics, against the real hub.

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
    assert!(
        g.is_started() && !g.is_dead(),
        "started (gevent's sense) before it runs"
    );
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

/// Counts how often the callbacks made by [`counting`] ran.
fn counting(c: &Rc<Cell<u32>>, by: u32) -> impl FnOnce() + 'static {
    let c = c.clone();
    move || c.set(c.get() + by)
}

#[test]
fn link_value_and_link_exception_fire_by_outcome_exactly_once() {
    let returned = spawn(|| 1);
    let panicked = spawn(|| -> i32 { panic!("expected failure") });
    let killed = spawn(|| {
        sleep(FOREVER).unwrap();
        2
    });
    let (values, exceptions, all) = (
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
        Rc::new(Cell::new(0)),
    );
    for (i, g) in [&returned, &panicked, &killed].into_iter().enumerate() {
        let bit = 1 << i;
        g.link_value(counting(&values, bit));
        g.link_exception(counting(&exceptions, bit));
        g.link(counting(&all, bit));
    }
    yield_now().unwrap(); // the first two finish, the third sleeps
    killed.kill();
    // Every link greenlet runs; then nothing is left.
    assert!(wait(None).unwrap());
    assert_eq!(values.get(), 0b001);
    assert_eq!(exceptions.get(), 0b110);
    assert_eq!(all.get(), 0b111);
    // On a finished greenlet they fire (or not) at once, by its outcome.
    returned.link_value(counting(&values, 8));
    returned.link_exception(counting(&exceptions, 8));
    panicked.link_value(counting(&values, 16));
    panicked.link_exception(counting(&exceptions, 16));
    assert!(wait(None).unwrap());
    assert_eq!(values.get(), 0b01001);
    assert_eq!(exceptions.get(), 0b10110);
    assert_eq!(returned.join().unwrap(), 1);
}

#[test]
fn unlinked_links_never_run_and_their_callbacks_are_dropped() {
    let runs = Rc::new(Cell::new(0));
    let g = spawn(|| ());
    let a = g.link(counting(&runs, 1));
    let b = g.rawlink(counting(&runs, 10));
    let c = g.link_value(counting(&runs, 100));
    let d = g.link_exception(counting(&runs, 1000));
    let kept = g.rawlink(counting(&runs, 10_000));
    assert!(g.unlink(a));
    assert!(b.unlink());
    assert!(g.unlink(c));
    assert!(d.unlink());
    // The callbacks went with the links: only `kept` still holds the counter.
    assert_eq!(Rc::strong_count(&runs), 2);
    g.clone().join().unwrap();
    assert!(wait(None).unwrap());
    assert_eq!(runs.get(), 10_000);
    // Fired: nothing left to remove.
    assert!(!kept.unlink());
    // Made on a finished greenlet: fired already.
    assert!(!g.rawlink(counting(&runs, 1)).unlink());
    assert_eq!(runs.get(), 10_001);
}

#[test]
fn a_handle_unlinks_only_its_own_greenlet_and_a_firing_link_cannot_be_unlinked() {
    let runs = Rc::new(Cell::new(0));
    let (g, other) = (spawn(|| ()), spawn(|| ()));
    let h = other.rawlink(counting(&runs, 1));
    assert!(!g.unlink(h), "another greenlet's handle removes nothing");
    // A link that tries to remove a later link of the same greenlet while the links fire:
    // the later one fires anyway, exactly once.
    let later: Rc<RefCell<Option<LinkHandle>>> = Rc::new(RefCell::new(None));
    let (l, r) = (later.clone(), runs.clone());
    g.rawlink(move || {
        let h = l.borrow_mut().take().expect("set before g finished");
        r.set(r.get() + if h.unlink() { 1000 } else { 10 });
    });
    *later.borrow_mut() = Some(g.rawlink(counting(&runs, 100)));
    joinall(&[g, other], None).unwrap();
    assert_eq!(runs.get(), 111);
}

#[test]
fn outcome_tells_how_a_greenlet_ended_without_taking_its_value() {
    let returned = spawn(|| String::from("kept"));
    let panicked = spawn(|| -> String { panic!("expected failure") });
    let killed = spawn(|| {
        sleep(FOREVER).unwrap();
        String::new()
    });
    assert_eq!(returned.outcome(), None, "not started");
    yield_now().unwrap();
    assert_eq!(killed.outcome(), None, "running");
    assert!(!killed.successful());
    killed.kill();
    assert_eq!(returned.outcome(), Some(Outcome::Returned));
    assert_eq!(panicked.outcome(), Some(Outcome::Panicked));
    assert_eq!(killed.outcome(), Some(Outcome::Killed));
    assert!(returned.successful() && killed.successful() && !panicked.successful());
    // Looking twice takes nothing.
    assert_eq!(returned.outcome(), Some(Outcome::Returned));
    assert_eq!(returned.join().unwrap(), "kept");
    assert!(matches!(panicked.join(), Err(JoinError::Panicked(_))));
    assert!(matches!(killed.join(), Err(JoinError::Killed)));
    // Killed before it started.
    let never = spawn(|| ());
    never.kill();
    assert_eq!(never.outcome(), Some(Outcome::Killed));
}

#[test]
fn a_created_greenlet_runs_only_once_started() {
    let ran = Rc::new(Cell::new(0));
    let r = ran.clone();
    let u = Builder::new()
        .name("created")
        .create(move || r.set(r.get() + 1))
        .unwrap();
    assert_eq!(u.name(), "created");
    yield_now().unwrap();
    assert_eq!(ran.get(), 0, "created, not started");
    let g = u.start();
    assert_eq!(g.name(), "created");
    assert!(g.is_started(), "start schedules it, as spawn does");
    g.join().unwrap();
    assert_eq!(ran.get(), 1);

    let start = Instant::now();
    let later = Builder::new()
        .create(move || start.elapsed())
        .unwrap()
        .start_later(ms(30));
    assert!(later.join().unwrap() >= ms(29));
}

#[test]
fn an_unstarted_greenlet_that_is_dropped_never_runs_and_frees_its_closure() {
    let before = hub_stats().live_greenlets;
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let u = Builder::new().create(move || r.set(true)).unwrap();
    assert_eq!(hub_stats().live_greenlets, before + 1);
    drop(u);
    assert_eq!(Rc::strong_count(&ran), 1, "the closure is dropped with it");
    assert_eq!(hub_stats().live_greenlets, before);
    assert!(wait(None).unwrap(), "nothing left to run");
    assert!(!ran.get());
    // Killed after start_later, before its delay: it never runs, nor keeps the loop alive.
    let r = ran.clone();
    let g = Builder::new()
        .create(move || r.set(true))
        .unwrap()
        .start_later(generous(Duration::from_secs(5)));
    g.kill();
    assert!(wait(None).unwrap());
    assert!(!ran.get() && g.was_killed());
}

#[test]
fn killall_kills_running_unstarted_and_finished_greenlets() {
    let finished = spawn(|| Ok(()));
    let sleepers: Vec<_> = (0..3).map(|_| spawn(|| sleep(FOREVER))).collect();
    yield_now().unwrap();
    let unstarted = spawn(|| sleep(FOREVER));
    let mut all = sleepers.clone();
    all.push(unstarted.clone());
    all.push(finished.clone());
    assert!(killall(&all, Some(generous(Duration::from_secs(10)))));
    assert!(all.iter().all(|g| g.is_dead()));
    assert!(sleepers.iter().all(|g| g.was_killed()) && unstarted.was_killed());
    assert!(!unstarted.is_started());
    assert!(finished.join().unwrap().is_ok());
    assert!(killall(&all, None), "repeating is harmless");
}

/// Blocks, while its greenlet unwinds, until `release` is set.
struct SlowUnwind(Event);

impl Drop for SlowUnwind {
    fn drop(&mut self) {
        // A second kill would end this wait early: the test does not send one.
        let _ = self.0.wait();
    }
}

#[test]
fn killall_returns_false_when_its_timeout_passes_first() {
    let release = Event::new();
    let stubborn = {
        let release = release.clone();
        spawn(move || {
            let _guard = SlowUnwind(release);
            sleep(FOREVER)
        })
    };
    let quick = spawn(|| sleep(FOREVER));
    yield_now().unwrap();
    let gs = [stubborn.clone(), quick.clone()];
    let start = Instant::now();
    // Only `release` can end the stubborn one's unwinding, and nobody sets it yet.
    assert!(!killall(&gs, Some(ms(20))));
    assert!(start.elapsed() >= ms(19));
    assert!(quick.is_dead() && !stubborn.is_dead());
    release.set();
    assert!(stubborn.wait(None).unwrap());
    assert!(stubborn.was_killed());
    assert!(killall(&gs, None));
}

/// A `link` callback runs in a greenlet of its own, so it may block; a `rawlink` callback runs
/// in the finishing greenlet's last moments, where a blocking call fails at once instead.
#[test]
fn link_callbacks_may_block_and_rawlink_callbacks_cannot() {
    let done = Event::new();
    let d = done.clone();
    let slept = Rc::new(Cell::new(None));
    let s = slept.clone();
    let g = spawn(|| 1);
    g.link(move || {
        let t = Instant::now();
        s.set(Some(sleep(ms(20)).map(|()| t.elapsed())));
        d.set();
    });
    assert!(done.wait_timeout(generous(Duration::from_secs(5))).unwrap());
    let elapsed = slept.take().unwrap().expect("the link's sleep succeeds");
    assert!(elapsed >= ms(19), "{elapsed:?}");

    let raw = Rc::new(RefCell::new(None));
    let r = raw.clone();
    let g = spawn(yield_now);
    g.rawlink(move || *r.borrow_mut() = Some(sleep(ms(20))));
    g.join().unwrap().unwrap();
    let r = raw
        .borrow_mut()
        .take()
        .expect("ran as the greenlet finished");
    assert_eq!(r, Err(Error::Dead));
}
