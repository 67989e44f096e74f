//! Scoped greenlets against the real hub: borrowing, the wait at the end of the scope, and
//! what happens to the greenlets when the scope's owner is killed, times out or would block
//! forever.

use greenlet::{Error, Event, JoinError, Timeout, hub_stats, scope, sleep, spawn, yield_now};
use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

mod support;
use support::{eventually, generous, ms};

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
    // Had the kill waited for the scoped greenlet's sleep, it would have taken `long`.
    let long = generous(Duration::from_secs(20));
    for owner_waits_in_the_closure in [true, false] {
        let unwound = std::rc::Rc::new(Cell::new(false));
        let started = std::rc::Rc::new(Cell::new(false));
        let owner_done = std::rc::Rc::new(Cell::new(false));
        let never = Event::new();
        let (u, st, done) = (unwound.clone(), started.clone(), owner_done.clone());
        let owner = spawn(move || {
            scope(|s| {
                s.spawn(|| {
                    let _guard = SetOnDrop(&u);
                    st.set(true);
                    sleep(long).unwrap();
                });
                if owner_waits_in_the_closure {
                    never.wait().unwrap();
                }
            });
            done.set(true);
        });
        // The scoped greenlet blocks in its sleep right after it says it started; the owner
        // blocked before it (it spawned it).
        assert!(eventually(Duration::from_secs(10), || started.get()));
        let start = Instant::now();
        owner.kill();
        assert!(start.elapsed() < long, "the greenlet slept on");
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
    // Had the scope waited for its greenlet's sleep, it would have taken `long`.
    let long = generous(Duration::from_secs(20));
    let t = Timeout::start(ms(20));
    let start = Instant::now();
    let v = scope(|s| {
        s.spawn(|| {
            let _guard = SetOnDrop(&unwound);
            sleep(long).unwrap();
        });
        7
    });
    assert_eq!(v, 7);
    assert!(unwound.get());
    assert!(start.elapsed() < long);
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

// The two tests below come from a review that attacked the scope with safe code: both read
// borrowed memory after the scope had ended (valgrind: invalid read of a freed block).

thread_local! {
    /// Set as the frame that called `scope` ends (see `ScopeOver`).
    static SCOPE_OVER: Cell<bool> = const { Cell::new(false) };
    /// Set when a `Reader` reads its borrow after that.
    static READ_LATE: Cell<bool> = const { Cell::new(false) };
}

/// Declared after the borrowed data, so it is dropped as the frame that called `scope` ends.
struct ScopeOver;

impl Drop for ScopeOver {
    fn drop(&mut self) {
        SCOPE_OVER.with(|c| c.set(true));
    }
}

/// Reads its borrow when dropped (after a sleep, if `.1`).
struct Reader<'a>(&'a Vec<u64>, bool);

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if self.1 {
            let _ = sleep(ms(20));
        }
        if SCOPE_OVER.with(|c| c.get()) {
            READ_LATE.with(|c| c.set(true));
        }
        assert_eq!(self.0.iter().sum::<u64>(), 448);
    }
}

struct PanicOnDrop;

impl Drop for PanicOnDrop {
    fn drop(&mut self) {
        panic!("PanicOnDrop");
    }
}

#[test]
fn a_panic_while_the_scope_stops_its_greenlets_waits_for_them() {
    // The Timeout expires, so the scope kills its greenlets; killing the one that never
    // started drops its closure, whose destructor panics. The panic must wait until the
    // first greenlet has unwound (reading `data` as it does).
    let r = panic::catch_unwind(|| {
        let data = vec![7u64; 64];
        let _over = ScopeOver;
        let t = Timeout::start(Duration::ZERO);
        scope(|s| {
            s.spawn(|| {
                let _r = Reader(&data, false);
                loop {
                    let _ = sleep(ms(5));
                }
            });
            while !t.expired() {
                yield_now().unwrap(); // the first greenlet starts; the expiry is pending
            }
            let p = PanicOnDrop;
            s.spawn(move || drop(p)); // never starts
        });
    });
    assert_eq!(
        r.unwrap_err().downcast_ref::<&str>(),
        Some(&"PanicOnDrop"),
        "the destructor's panic comes out of the scope, after the wait"
    );
    for _ in 0..3 {
        let _ = yield_now();
    }
    assert!(
        !READ_LATE.with(|c| c.get()),
        "a borrow was used after the scope"
    );
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn a_greenlet_killed_before_it_started_is_not_dead_until_its_closure_is_dropped() {
    // A killer outside the scope (through a `'static` clone of the handle) kills a greenlet
    // that never ran; dropping its closure blocks (a destructor that sleeps). The scope must
    // wait for that drop, which still reads `data`.
    let handle: std::rc::Rc<RefCell<Option<greenlet::Greenlet<()>>>> = Default::default();
    let h = handle.clone();
    {
        let data = vec![7u64; 64];
        let _over = ScopeOver;
        scope(|s| {
            let _killer = spawn(move || h.borrow_mut().take().unwrap().kill());
            let r = Reader(&data, true);
            let g = s.spawn(move || drop(r));
            *handle.borrow_mut() = Some((*g).clone());
        });
    }
    // Had the scope not waited, the closure's drop would still be asleep: wait for it to end.
    assert!(eventually(Duration::from_secs(10), || {
        hub_stats().live_greenlets == 0
    }));
    assert!(
        !READ_LATE.with(|c| c.get()),
        "a borrow was used after the scope"
    );
}

#[test]
fn a_result_nobody_joined_that_panics_when_dropped_does_not_abort() {
    drop(spawn(|| PanicOnDrop));
    scope(|s| drop(s.spawn(|| PanicOnDrop)));
    yield_now().unwrap();
    assert_eq!(hub_stats().live_greenlets, 0);
}

#[test]
fn scoped_greenlets_can_be_waited_for_with_wait_any() {
    let never = Event::new();
    scope(|s| {
        let g = s.spawn(|| sleep(ms(5)));
        assert_eq!(greenlet::wait_any(&[&never, &g], None).unwrap(), Some(1));
    });
}
