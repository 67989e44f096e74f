//! Scoped greenlets against the real hub: borrowing, the wait at the end of the scope, and
//! what happens to the greenlets when the scope's owner is killed, times out or would block
//! forever.

use greenlet::{Error, Event, JoinError, Timeout, hub_stats, scope, sleep, spawn, yield_now};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Sets its flag when dropped: shows that a greenlet's stack was unwound.
struct SetOnDrop<'a>(&'a Cell<bool>);

impl Drop for SetOnDrop<'_> {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn greenlets_borrow_and_mutate_the_callers_data() {
    let mut counts = vec![0u64; 4];
    let log = RefCell::new(Vec::new());
    let total = scope(|s| {
        for (i, c) in counts.iter_mut().enumerate() {
            let log = &log;
            s.spawn(move || {
                for _ in 0..3 {
                    *c += i as u64;
                    log.borrow_mut().push(i);
                    yield_now().unwrap();
                }
            });
        }
        // A greenlet may spawn more into the same scope.
        s.spawn(|| {
            s.spawn(|| log.borrow_mut().push(99));
        });
        "done"
    });
    assert_eq!(total, "done");
    assert_eq!(counts, [0, 3, 6, 9]);
    let log = log.into_inner();
    // They ran interleaved: the first four entries are one round of the four greenlets.
    assert_eq!(&log[..4], &[0, 1, 2, 3]);
    assert!(log.contains(&99));
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn the_scope_waits_for_greenlets_nobody_joined() {
    let finished = Cell::new(false);
    let start = Instant::now();
    scope(|s| {
        s.spawn(|| {
            sleep(ms(40)).unwrap();
            finished.set(true);
        });
    });
    assert!(finished.get());
    assert!(start.elapsed() >= ms(39), "{:?}", start.elapsed());
}

#[test]
fn an_unjoined_panic_fails_the_scope_and_a_joined_one_does_not() {
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        scope(|s| {
            s.spawn(|| panic!("inside"));
        })
    }));
    let payload = r.unwrap_err();
    let msg = payload.downcast_ref::<&str>().copied().unwrap_or_default();
    assert_eq!(msg, "a scoped greenlet panicked");

    scope(|s| {
        let g = s.spawn(|| panic!("handled"));
        assert!(matches!(g.join(), Err(JoinError::Panicked(_))));
    });
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn a_panic_of_the_closure_comes_after_every_greenlet_finished() {
    let finished = Cell::new(false);
    let r = panic::catch_unwind(AssertUnwindSafe(|| {
        scope(|s| {
            s.spawn(|| {
                sleep(ms(20)).unwrap();
                finished.set(true);
            });
            panic!("the closure");
        })
    }));
    assert!(finished.get(), "the greenlet ran to its end first");
    let payload = r.unwrap_err();
    assert_eq!(payload.downcast_ref::<&str>(), Some(&"the closure"));
}

#[test]
fn killing_the_owner_kills_its_scoped_greenlets_first() {
    for owner_waits_in_the_closure in [true, false] {
        let unwound = Cell::new(false);
        let owner_done = Cell::new(false);
        // Leaked so that the owner's borrows are `'static` for `spawn`; the test checks the
        // order of events, not memory.
        let (unwound, owner_done): (&'static Cell<bool>, &'static Cell<bool>) = (
            Box::leak(Box::new(unwound)),
            Box::leak(Box::new(owner_done)),
        );
        let never = Event::new();
        let owner = spawn(move || {
            scope(|s| {
                s.spawn(|| {
                    let _guard = SetOnDrop(unwound);
                    sleep(Duration::from_secs(60)).unwrap();
                });
                if owner_waits_in_the_closure {
                    never.wait().unwrap();
                }
            });
            owner_done.set(true);
        });
        sleep(ms(10)).unwrap(); // the owner and its greenlet are blocked now
        let start = Instant::now();
        owner.kill();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the greenlet slept on"
        );
        assert!(owner.is_dead());
        assert!(unwound.get(), "the scoped greenlet was unwound");
        assert!(!owner_done.get(), "the kill went on unwinding the owner");
        assert!(matches!(owner.join(), Err(JoinError::Killed)));
        assert_eq!(hub_stats().live_greenlets, 0);
    }
}

#[test]
fn a_timeout_at_the_end_of_the_scope_stops_the_greenlets_and_is_reported_next() {
    let unwound = Cell::new(false);
    let t = Timeout::start(ms(20));
    let start = Instant::now();
    let v = scope(|s| {
        s.spawn(|| {
            let _guard = SetOnDrop(&unwound);
            sleep(Duration::from_secs(60)).unwrap();
        });
        7
    });
    assert_eq!(v, 7);
    assert!(unwound.get());
    assert!(start.elapsed() < Duration::from_secs(10));
    // The expiry was not lost: the next blocking call reports it.
    assert_eq!(sleep(ms(1)), Err(Error::Timeout(t.id())));
    drop(t);
    sleep(ms(1)).unwrap();
}

#[test]
fn greenlets_that_would_wait_forever_are_stopped() {
    let never = Event::new();
    let got = RefCell::new(None);
    scope(|s| {
        let g = s.spawn(|| never.wait());
        // Returning without joining: the scope's wait finds nothing that could wake `g`.
        *got.borrow_mut() = Some(g.handle());
    });
    assert!(got.into_inner().unwrap().is_dead());
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn a_scope_cannot_be_used_in_a_hub_callback() {
    let msg = std::rc::Rc::new(RefCell::new(String::new()));
    let m = msg.clone();
    greenlet::run_callback(move || {
        let r = panic::catch_unwind(|| scope(|_| ()));
        let payload = r.unwrap_err();
        *m.borrow_mut() = payload
            .downcast_ref::<String>()
            .cloned()
            .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
            .unwrap_or_default();
    });
    yield_now().unwrap();
    assert!(msg.borrow().contains("hub callback"), "{}", msg.borrow());
}
