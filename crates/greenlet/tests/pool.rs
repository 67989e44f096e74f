//! `pool`: `Group` and `Pool` (spawn, join, kill, map, imap, imap_unordered, apply, apply_async)
//! against the real hub.

use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{FOREVER, assert_about_200ms, generous, log, ms};

#[test]
fn group_join_returns_when_every_member_finished() {
    let group = Group::new();
    let start = Instant::now();
    for i in 1..=3 {
        group.spawn(move || sleep(ms(10 * i)).unwrap());
    }
    let outside = spawn(|| ());
    group.add(&outside);
    assert_eq!(group.len(), 4);
    assert!(!group.join(Some(ms(5))).unwrap());
    assert!(group.join(None).unwrap());
    // The longest member slept 30 ms (measured from before the spawns: how long the first,
    // timed-out join took varies with the machine's load).
    assert!(start.elapsed() >= ms(30));
    assert!(group.is_empty());
    // A finished greenlet is not added.
    group.add(&outside);
    assert!(group.is_empty());
}

#[test]
fn group_join_with_a_timeout_returns_false_after_about_200ms() {
    let group = Group::new();
    let g = group.spawn(|| sleep(FOREVER));
    let start = Instant::now();
    assert!(!group.join(Some(ms(200))).unwrap());
    assert_about_200ms(start.elapsed());
    assert!(group.contains(&g));
    group.kill_all();
}

#[test]
fn group_kill_all_kills_every_member() {
    let group = Group::new();
    let cleaned = Rc::new(Cell::new(0));
    struct Cleanup(Rc<Cell<i32>>);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }
    let gs: Vec<_> = (0..3)
        .map(|_| {
            let c = cleaned.clone();
            group.spawn(move || {
                let _c = Cleanup(c);
                sleep(FOREVER)
            })
        })
        .collect();
    yield_now().unwrap();
    let unstarted = group.spawn(|| -> Result<()> { Ok(()) });
    group.kill_all();
    assert!(group.is_empty());
    assert!(gs.iter().all(|g| g.was_killed()));
    assert!(unstarted.was_killed());
    assert_eq!(cleaned.get(), 3);
    assert!(group.join(Some(ms(1))).unwrap());
}

#[test]
fn a_member_cannot_join_its_own_group() {
    let group = Group::new();
    let gr = group.clone();
    let g = group.spawn(move || gr.join(None));
    assert_eq!(g.join().unwrap(), Err(Error::JoinSelf));
}

#[test]
fn pool_of_two_never_runs_more_than_two_at_once() {
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let order = log();
    for i in 0..6 {
        let (running, peak, order) = (running.clone(), peak.clone(), order.clone());
        pool.spawn(move || {
            running.set(running.get() + 1);
            peak.set(peak.get().max(running.get()));
            order.borrow_mut().push(i);
            sleep(ms(5)).unwrap();
            running.set(running.get() - 1);
        })
        .unwrap();
        assert!(pool.len() <= 2);
    }
    assert!(pool.join(None).unwrap());
    assert_eq!(peak.get(), 2);
    // Spawners waiting for a slot were served in order.
    assert_eq!(*order.borrow(), [0, 1, 2, 3, 4, 5]);
}

#[test]
fn pool_try_spawn_fails_when_full_and_wait_available_waits_for_a_slot() {
    let pool = Pool::new(1);
    assert_eq!(pool.free_count(), 1);
    let start = Instant::now(); // `first` sleeps from a later time
    let first = pool.try_spawn(|| sleep(ms(30))).unwrap();
    assert_eq!(pool.free_count(), 0);
    assert!(pool.is_full());
    let err = pool.try_spawn(|| Ok::<(), Error>(())).unwrap_err();
    assert!(matches!(err, TrySpawnError::Full(_)));
    assert_eq!(err.to_string(), "the pool is full");
    assert!(!pool.wait_available(Some(ms(1))).unwrap());
    assert!(pool.wait_available(None).unwrap());
    assert!(start.elapsed() >= ms(29), "{:?}", start.elapsed());
    assert!(first.is_dead());
    assert_eq!(pool.free_count(), 1);
}

#[test]
fn pool_spawners_are_served_in_fifo_order() {
    let pool = Pool::new(1);
    let order = log();
    let blocker = pool.spawn(|| sleep(ms(20))).unwrap();
    let spawners: Vec<_> = (0..3)
        .map(|i| {
            let (pool, order) = (pool.clone(), order.clone());
            spawn(move || {
                let o = order.clone();
                pool.spawn(move || o.borrow_mut().push(i))
                    .unwrap()
                    .join()
                    .unwrap();
            })
        })
        .collect();
    joinall(&spawners, None).unwrap();
    assert!(blocker.is_dead());
    assert_eq!(*order.borrow(), [0, 1, 2]);
}

#[test]
fn map_keeps_input_order() {
    let pool = Pool::new(3);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let out = pool.map([80u64, 20, 60, 40, 0], move |d| {
        r.set(r.get() + 1);
        p.set(p.get().max(r.get()));
        sleep(ms(d)).unwrap();
        r.set(r.get() - 1);
        d * 2
    });
    let values: Vec<u64> = out.into_iter().map(|r| r.unwrap()).collect();
    assert_eq!(values, [160, 40, 120, 80, 0]);
    // Ran concurrently, as many at once as the pool has slots.
    assert_eq!(peak.get(), 3);
    assert!(pool.is_empty());
}

#[test]
fn map_with_a_panicking_item_gives_its_error_and_the_others_succeed() {
    let pool = Pool::new(2);
    let out = pool.map(1..=5, |n: i32| {
        sleep(ms(2)).unwrap();
        if n == 3 {
            panic!("item {n} failed");
        }
        n * 10
    });
    assert_eq!(out.len(), 5);
    for (i, r) in out.iter().enumerate() {
        if i == 2 {
            let e = r.as_ref().unwrap_err();
            assert!(matches!(e, JoinError::Panicked(_)));
            assert_eq!(e.panic_message(), Some("item 3 failed"));
        } else {
            assert_eq!(*r.as_ref().unwrap(), (i as i32 + 1) * 10);
        }
    }
}

#[test]
fn map_under_an_expiring_timeout_kills_the_rest() {
    let pool = Pool::new(2);
    // The first item finishes at once (a zero sleep is a yield); the others would sleep for
    // `long`, unless killed when the timeout expires.
    let long = generous(Duration::from_secs(5));
    let start = Instant::now();
    let out = {
        let _t = Timeout::start(ms(50));
        pool.map([Duration::ZERO, long, long, long], |d| sleep(d).map(|_| d))
    };
    assert!(start.elapsed() < long);
    assert_eq!(*out[0].as_ref().unwrap(), Ok(Duration::ZERO));
    for r in &out[1..] {
        assert!(r.as_ref().unwrap_err().is_timeout(), "{r:?}");
    }
    assert!(pool.is_empty());
}

#[test]
fn imap_unordered_yields_results_in_completion_order() {
    // All four run at once; each finishes after the one ten below it has (10 after a sleep),
    // so they complete in the order 10, 20, 30, 40 whatever the timing.
    let pool = Pool::new(4);
    let done: Rc<Vec<(u64, Event)>> = Rc::new([10, 20, 30, 40].map(|d| (d, Event::new())).into());
    let finished: Vec<u64> = pool
        .imap_unordered([40u64, 10, 30, 20], move |d| {
            let done_with = |d: u64| done.iter().find(|(e, _)| *e == d).map(|(_, ev)| ev);
            match done_with(d - 10) {
                Some(before) => before.wait().unwrap(),
                None => sleep(ms(d)).unwrap(),
            }
            done_with(d).unwrap().set();
            d
        })
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(finished, [10, 20, 30, 40]);

    // With fewer slots than items it still completes everything, at most 2 at a time.
    let pool = Pool::new(2);
    let running = Rc::new(Cell::new(0));
    let peak = Rc::new(Cell::new(0));
    let (r, p) = (running.clone(), peak.clone());
    let mut results: Vec<i32> = pool
        .imap_unordered(0..7, move |n: i32| {
            r.set(r.get() + 1);
            p.set(p.get().max(r.get()));
            sleep(ms(((7 - n) % 3) as u64 * 3)).unwrap();
            r.set(r.get() - 1);
            if n == 4 {
                panic!("four");
            }
            n
        })
        .map(|r| r.unwrap_or(-1))
        .collect();
    results.sort();
    assert_eq!(results, [-1, 0, 1, 2, 3, 5, 6]);
    assert_eq!(peak.get(), 2);
}

#[test]
fn imap_yields_in_input_order_when_calls_finish_out_of_order() {
    let n = 4;
    let release: Vec<Event> = (0..n).map(|_| Event::new()).collect();
    let finished: Vec<Event> = (0..n).map(|_| Event::new()).collect();
    let all_started = Event::new();
    let started = Rc::new(Cell::new(0));
    let finish_order = log();
    let controller = {
        let (release, finished, all_started) =
            (release.clone(), finished.clone(), all_started.clone());
        spawn(move || {
            all_started.wait().unwrap();
            for i in (0..n).rev() {
                release[i].set();
                finished[i].wait().unwrap();
            }
        })
    };
    let pool = Pool::new(n);
    let out: Vec<usize> = {
        let finish_order = finish_order.clone();
        pool.imap(0..n, move |i| {
            started.set(started.get() + 1);
            if started.get() == n {
                all_started.set();
            }
            release[i].wait().unwrap();
            finish_order.borrow_mut().push(i);
            finished[i].set();
            i * 10
        })
        .map(|r| r.unwrap())
        .collect()
    };
    controller.join().unwrap();
    assert_eq!(*finish_order.borrow(), [3, 2, 1, 0]);
    assert_eq!(out, [0, 10, 20, 30]);
    assert!(pool.join(None).unwrap());
}

#[test]
fn imap_pulls_its_input_lazily_and_runs_at_most_the_pool_size() {
    let size = 3;
    let pool = Pool::new(size);
    let pulled = Rc::new(Cell::new(0usize));
    let (running, peak) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let input = {
        let pulled = pulled.clone();
        (0..20).inspect(move |_| pulled.set(pulled.get() + 1))
    };
    let mut it = {
        let (running, peak) = (running.clone(), peak.clone());
        pool.imap(input, move |i: u32| {
            running.set(running.get() + 1);
            peak.set(peak.get().max(running.get()));
            yield_now().unwrap();
            running.set(running.get() - 1);
            i * 2
        })
    };
    assert_eq!(pulled.get(), 0, "imap pulled before the first next");
    let mut yielded = 0;
    for r in it.by_ref() {
        assert_eq!(r.unwrap(), yielded * 2);
        yielded += 1;
        // Never more than the pool's size ahead of what was yielded.
        assert!(
            pulled.get() <= yielded as usize - 1 + size,
            "pulled {} after {yielded} results",
            pulled.get()
        );
    }
    assert_eq!(yielded, 20);
    assert_eq!(pulled.get(), 20);
    assert_eq!(peak.get(), size);
    assert!(it.next().is_none());

    // An endless input is fine.
    let firsts: Vec<u64> = pool
        .imap(0.., |i: u64| i)
        .take(5)
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(firsts, [0, 1, 2, 3, 4]);
    assert!(pool.join(None).unwrap());
}

#[test]
fn imap_reports_a_panic_at_its_position_and_a_wait_failure_once() {
    let pool = Pool::new(2);
    let out: Vec<_> = pool
        .imap([1, 2, 3], |i: i32| {
            if i == 2 {
                panic!("two");
            }
            i
        })
        .collect();
    assert_eq!(out[0].as_ref().unwrap(), &1);
    assert_eq!(out[1].as_ref().unwrap_err().panic_message(), Some("two"));
    assert_eq!(out[2].as_ref().unwrap(), &3);

    // Nothing can ever finish the calls: one Wait error, then the end; the calls are killed.
    let never = Event::new();
    let mut it = {
        let never = never.clone();
        pool.imap(0..5, move |_: i32| never.wait())
    };
    match it.next() {
        Some(Err(JoinError::Wait(Error::WouldBlockForever))) => {}
        other => panic!("unexpected {other:?}"),
    }
    assert!(it.next().is_none());
    assert!(pool.is_empty());
}

#[test]
fn group_imap_runs_every_item_at_once_and_keeps_input_order() {
    let group = Group::new();
    let (running, peak) = (Rc::new(Cell::new(0usize)), Rc::new(Cell::new(0usize)));
    let out: Vec<usize> = {
        let (running, peak) = (running.clone(), peak.clone());
        group
            .imap((0..8).rev(), move |i| {
                running.set(running.get() + 1);
                peak.set(peak.get().max(running.get()));
                // Later inputs wait less, so they finish first.
                for _ in 0..i {
                    yield_now().unwrap();
                }
                running.set(running.get() - 1);
                i
            })
            .map(|r| r.unwrap())
            .collect()
    };
    assert_eq!(out, [7, 6, 5, 4, 3, 2, 1, 0]);
    assert_eq!(peak.get(), 8);
    assert!(group.is_empty());
}

#[test]
fn apply_runs_in_the_pool_and_returns_the_result_or_the_panic() {
    let pool = Pool::new(1);
    let inside = {
        let pool = pool.clone();
        move || (pool.len(), pool.free_count())
    };
    assert_eq!(pool.apply(inside).unwrap(), (1, 0));
    let err = pool.apply(|| -> u8 { panic!("boom") }).unwrap_err();
    assert_eq!(err.panic_message(), Some("boom"));
    assert!(pool.is_empty());

    // It waits for a slot, like spawn.
    let gate = Event::new();
    let order = log();
    let holder = {
        let (gate, order) = (gate.clone(), order.clone());
        pool.spawn(move || {
            gate.wait().unwrap();
            order.borrow_mut().push("holder done");
        })
        .unwrap()
    };
    let opener = {
        let gate = gate.clone();
        spawn(move || gate.set())
    };
    let r = {
        let order = order.clone();
        pool.apply(move || order.borrow_mut().push("applied"))
    };
    assert!(r.is_ok());
    assert_eq!(*order.borrow(), ["holder done", "applied"]);
    holder.join().unwrap();
    opener.join().unwrap();

    // From inside a full pool it runs directly instead of waiting for itself.
    let nested = {
        let p = pool.clone();
        pool.spawn(move || p.apply(|| 5)).unwrap()
    };
    assert_eq!(nested.join().unwrap().unwrap(), 5);

    let group = Group::new();
    assert_eq!(group.apply(|| "g").unwrap(), "g");
    let err = group.apply(|| -> u8 { panic!("gp") }).unwrap_err();
    assert_eq!(err.panic_message(), Some("gp"));
}

#[test]
fn apply_async_returns_a_handle_of_the_pool_at_once() {
    let pool = Pool::new(2);
    let gate = Event::new();
    let g = {
        let gate = gate.clone();
        pool.apply_async(move || {
            gate.wait().unwrap();
            7
        })
        .unwrap()
    };
    assert!(pool.contains(&g));
    assert!(!g.is_dead());
    let bad = pool.apply_async(|| -> u8 { panic!("async boom") }).unwrap();
    gate.set();
    assert_eq!(g.join().unwrap(), 7);
    assert_eq!(bad.join().unwrap_err().panic_message(), Some("async boom"));
    assert!(pool.join(None).unwrap());

    let group = Group::new();
    let h = group.apply_async(|| 8);
    assert!(group.contains(&h));
    assert_eq!(h.join().unwrap(), 8);
}
