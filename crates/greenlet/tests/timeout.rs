//! `timeout`: `Timeout` scopes and `with_timeout`, and how an enclosing timeout comes out of
//! waits with a timeout of their own, against the real hub.

use greenlet::*;
use std::time::{Duration, Instant};

mod support;
use support::{FOREVER, assert_about_200ms, eventually, ms};

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
