//! `local`: greenlet-local storage (`Local`) against the real hub.

use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;

mod support;
use support::{FOREVER, ms};

#[test]
fn local_values_are_separate_per_greenlet() {
    let counter: Local<Cell<u32>> = Local::new(|| Cell::new(0));
    counter.with(|c| c.set(100));
    let gs: Vec<_> = (1..=3)
        .map(|i| {
            let counter = counter.clone();
            spawn(move || {
                for _ in 0..i {
                    counter.with(|c| c.set(c.get() + 1));
                    yield_now().unwrap(); // others run in between
                }
                counter.with(|c| c.get())
            })
        })
        .collect();
    let values: Vec<u32> = gs.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(values, [1, 2, 3]);
    assert_eq!(counter.with(|c| c.get()), 100);
    counter.set(Cell::new(5));
    assert_eq!(counter.with(|c| c.get()), 5);
}

#[test]
fn local_values_are_created_lazily_and_dropped_when_the_greenlet_exits() {
    struct Tracked(Rc<Cell<u32>>);
    impl Drop for Tracked {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let created = Rc::new(Cell::new(0));
    let dropped = Rc::new(Cell::new(0));
    let (c, d) = (created.clone(), dropped.clone());
    let local = Local::new(move || {
        c.set(c.get() + 1);
        Tracked(d.clone())
    });
    let unused = spawn(|| ());
    let l = local.clone();
    let user = spawn(move || {
        l.with(|_| ());
        l.with(|_| ()); // the same value
        sleep(ms(5)).unwrap();
    });
    let l = local.clone();
    let killed = spawn(move || {
        l.with(|_| ());
        sleep(FOREVER)
    });
    yield_now().unwrap();
    assert_eq!(created.get(), 2);
    assert_eq!(dropped.get(), 0);
    user.join().unwrap();
    assert_eq!(dropped.get(), 1);
    killed.kill();
    assert_eq!(dropped.get(), 2);
    unused.join().unwrap();
    assert_eq!(created.get(), 2);
}
