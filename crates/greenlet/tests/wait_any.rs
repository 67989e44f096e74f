//! `wait_any` and `iwait` over events, results, greenlets and thread-pool tasks, against the
//! real hub (and another OS thread for `AsyncResult`).

use greenlet::threadpool::spawn_blocking;
use greenlet::{
    AsyncResult, Error, Event, Timeout, Waitable, iwait, sleep, spawn, wait_any, yield_now,
};
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

/// Far longer than any test runs: a greenlet sleeping this long is still asleep when the test
/// kills it.
const FOREVER: Duration = Duration::from_secs(3600);

#[test]
fn the_first_ready_object_wins_and_ready_ones_return_at_once() {
    let (a, b, c) = (Event::new(), Event::new(), Event::new());
    b.set();
    c.set();
    let ran = std::rc::Rc::new(std::cell::Cell::new(false));
    let r = ran.clone();
    spawn(move || r.set(true));
    // Ready already: the lowest ready index, without a trip through the hub.
    assert_eq!(wait_any(&[&a, &b, &c], None).unwrap(), Some(1));
    assert!(!ran.get(), "returned without yielding");
    assert_eq!(wait_any(&[], Some(ms(1))).unwrap(), None);
    yield_now().unwrap();
}

#[test]
fn each_kind_of_object_wakes_the_wait() {
    // An event set by another greenlet.
    let e = Event::new();
    let never = Event::new();
    let s = e.clone();
    spawn(move || {
        sleep(ms(5)).unwrap();
        s.set();
    });
    assert_eq!(wait_any(&[&never, &e], None).unwrap(), Some(1));

    // A result delivered by another OS thread.
    let r: AsyncResult<u32> = AsyncResult::new();
    let setter = r.setter();
    let t = std::thread::spawn(move || {
        std::thread::sleep(ms(5));
        setter.set(7);
    });
    assert_eq!(wait_any(&[&never, &r], None).unwrap(), Some(1));
    assert_eq!(r.get().unwrap(), 7);
    t.join().unwrap();

    // A greenlet finishing, and a thread-pool job.
    let g = spawn(|| sleep(ms(5)));
    assert_eq!(wait_any(&[&never, &g], None).unwrap(), Some(1));
    let job = spawn_blocking(|| std::thread::sleep(ms(5)));
    assert_eq!(wait_any(&[&never, &job], None).unwrap(), Some(1));
    job.join().unwrap();
}

#[test]
fn a_timeout_returns_none_and_leaves_nothing_subscribed() {
    let e = Event::new();
    let keep_alive = spawn(|| sleep(FOREVER));
    let g = spawn(|| sleep(ms(100)));
    let start = Instant::now();
    assert_eq!(wait_any(&[&e, &g], Some(ms(20))).unwrap(), None);
    let waited = start.elapsed();
    assert!(
        waited >= ms(19) && waited < generous(Duration::from_secs(5)),
        "{waited:?}"
    );
    assert!(format!("{e:?}").contains("waiters: 0"), "{e:?}");
    g.join().unwrap().unwrap();
    // Many timed-out waits on a blocked greenlet: it still finishes and is joined normally.
    let go = Event::new();
    let go2 = go.clone();
    let blocked = spawn(move || go2.wait());
    for _ in 0..100 {
        assert_eq!(
            wait_any(&[&blocked], Some(Duration::from_micros(10))).unwrap(),
            None
        );
    }
    go.set();
    blocked.join().unwrap().unwrap();
    keep_alive.kill();
}

#[test]
fn nothing_that_could_become_ready_is_an_error_not_a_hang() {
    let (a, b) = (Event::new(), Event::new());
    assert_eq!(wait_any(&[&a, &b], None), Err(Error::WouldBlockForever));
    // An AsyncResult whose only setter on another thread went away without delivering.
    let r: AsyncResult<u8> = AsyncResult::new();
    let setter = r.setter();
    std::thread::spawn(move || drop(setter)).join().unwrap();
    assert_eq!(wait_any(&[&r], None), Err(Error::WouldBlockForever));
}

#[test]
fn an_enclosing_timeout_and_a_kill_end_the_wait() {
    let e = Event::new();
    let keep_alive = spawn(|| sleep(FOREVER));
    let t = Timeout::start(ms(10));
    assert_eq!(wait_any(&[&e], None), Err(Error::Timeout(t.id())));
    drop(t);

    let e2 = e.clone();
    let g = spawn(move || wait_any(&[&e2], None));
    yield_now().unwrap(); // g waits
    g.kill();
    assert!(g.was_killed());
    // The killed wait took its subscription with it.
    assert!(format!("{e:?}").contains("waiters: 0"), "{e:?}");
    keep_alive.kill();
}

#[test]
fn iwait_yields_in_the_order_things_become_ready() {
    // `slow` cannot finish before we release it, after the other two were yielded.
    let release = Event::new();
    let r = release.clone();
    let slow = spawn(move || r.wait());
    let ready = Event::new();
    ready.set();
    let fast = spawn(|| sleep(ms(5)));
    let objects: [&dyn Waitable; 3] = [&slow, &ready, &fast];
    let mut order = iwait(&objects, None).map(|r| r.unwrap());
    assert_eq!(order.next(), Some(1));
    assert_eq!(order.next(), Some(2));
    assert!(!slow.is_dead());
    release.set();
    assert_eq!(order.next(), Some(0));
    assert_eq!(order.next(), None);
    drop(order);

    // The timeout is for the whole iteration: what is not ready by then is not yielded.
    // (`soon` finishes in the hub's first pass, long before the timeout.)
    let never = Event::new();
    let soon = spawn(|| sleep(Duration::ZERO));
    let start = Instant::now();
    let got: Vec<usize> = iwait(&[&never, &soon], Some(ms(30)))
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(got, [1]);
    assert!(start.elapsed() >= ms(29));
}

#[test]
fn waiting_only_for_yourself_is_an_error_not_a_hang() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let me: Rc<RefCell<Option<greenlet::Greenlet<()>>>> = Default::default();
    let results = Rc::new(RefCell::new(Vec::new()));
    let (m, r) = (me.clone(), results.clone());
    let g = spawn(move || {
        yield_now().unwrap(); // the handle is in `me` now
        let me = m.borrow_mut().take().unwrap();
        r.borrow_mut().push(wait_any(&[&me], None));
        let other = Event::new();
        other.set();
        r.borrow_mut().push(wait_any(&[&me, &other], None));
    });
    *me.borrow_mut() = Some(g.clone());
    g.join().unwrap();
    assert_eq!(*results.borrow(), [Err(Error::JoinSelf), Ok(Some(1))]);
}

/// Event::wait reports a set that was cleared right away (documented); wait_any on the same
/// event does not: the wake-up is lost.
#[test]
fn wait_any_reports_an_event_set_and_cleared_during_the_wait() {
    let e = Event::new();
    let (e1, e2) = (e.clone(), e.clone());
    // Had the wake-up been lost, each would end at its own timeout.
    let own = generous(Duration::from_secs(2));
    let plain = spawn(move || e1.wait_timeout(own));
    let any = spawn(move || wait_any(&[&e2], Some(own)));
    yield_now().unwrap(); // both wait
    e.set();
    e.clear();
    assert_eq!(plain.join().unwrap(), Ok(true));
    assert_eq!(any.join().unwrap(), Ok(Some(0)));
}
