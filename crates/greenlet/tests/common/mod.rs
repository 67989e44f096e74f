//! Set-up shared by several test binaries.

use greenlet::park::{GreenletRef, switch_to};
use greenlet::{sleep, spawn};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Two greenlets that only ever switch to each other with `park::switch_to`, until a third
/// stops them after `d` from a timer (so the hub must get to poll). Returns how many times the
/// first switched. Fails, rather than hangs, if the hub is starved for 20 s.
pub fn switch_pair_for(d: Duration) -> u64 {
    let stop = Rc::new(Cell::new(false));
    let rounds = Rc::new(Cell::new(0u64));
    let b_ref: Rc<RefCell<Option<GreenletRef>>> = Rc::new(RefCell::new(None));
    let (s, r, br) = (stop.clone(), rounds.clone(), b_ref.clone());
    let start = Instant::now();
    let a = spawn(move || {
        let b = br.borrow().clone().unwrap();
        while !s.get() {
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "the hub was starved"
            );
            r.set(r.get() + 1);
            switch_to(&b).unwrap();
        }
        b.unpark();
    });
    let a_ref = a.handle();
    let s = stop.clone();
    let b = spawn(move || {
        while !s.get() {
            switch_to(&a_ref).unwrap();
        }
        a_ref.unpark();
    });
    *b_ref.borrow_mut() = Some(b.handle());
    let s = stop.clone();
    spawn(move || {
        sleep(d).unwrap();
        s.set(true);
    })
    .join()
    .unwrap();
    a.join().unwrap();
    b.join().unwrap();
    rounds.get()
}
