//! `hub`: the public wait API (`Waiter`, `Waker`) and the side-effect-free hub queries.

use greenlet::hub::{Waiter, has_hub, in_greenlet};
use greenlet::{Error, Timeout, run_callback, spawn, yield_now};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

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
