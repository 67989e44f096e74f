//! Synchronization primitives against the real hub: locks, queues, pools/groups and
//! greenlet-local storage.

use greenlet::*;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

/// A 200 ms timeout returns after 100 ms (the timer counts from the loop's time, which may lag
/// the caller's clock) and within seconds.
fn assert_about_200ms(took: Duration) {
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(2)),
        "took {took:?}"
    );
}

/// Far longer than any test runs: a greenlet sleeping this long is still asleep when the test
/// kills it.
const FOREVER: Duration = Duration::from_secs(3600);

type Log<T> = Rc<RefCell<Vec<T>>>;

fn log<T>() -> Log<T> {
    Rc::new(RefCell::new(Vec::new()))
}

// ---------------------------------------------------------------------------------------------
// Semaphores and locks

#[test]
fn semaphore_waiters_are_served_in_fifo_order_and_a_release_cannot_be_stolen() {
    let sem = Semaphore::new(0);
    let order = log();
    let gs: Vec<_> = (0..4)
        .map(|i| {
            let (sem, order) = (sem.clone(), order.clone());
            spawn(move || {
                sem.acquire().unwrap();
                order.borrow_mut().push(i);
            })
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(sem.waiters(), 4);
    for _ in 0..4 {
        sem.release();
        // The permit was handed to the first waiter: a newcomer cannot take it.
        assert!(!sem.try_acquire());
        assert_eq!(sem.available(), 0);
    }
    joinall(&gs, None).unwrap();
    assert_eq!(*order.borrow(), [0, 1, 2, 3]);
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_timeout_expires_after_about_200ms() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert!(!sem.acquire_timeout(ms(200)).unwrap());
    assert_about_200ms(start.elapsed());
    assert_eq!(sem.waiters(), 0);
    // A release after the timeout is not lost to the expired waiter.
    sem.release();
    assert_eq!(sem.available(), 1);
}

#[test]
fn a_waiter_killed_after_being_granted_a_permit_passes_it_on() {
    let sem = Semaphore::new(0);
    let s = sem.clone();
    let first = spawn(move || s.acquire());
    let s = sem.clone();
    let second = spawn(move || s.acquire().map(|_| "second got it"));
    yield_now().unwrap();
    sem.release(); // granted to `first`, which has not run yet
    first.kill(); // dies before it can use it
    assert!(first.was_killed());
    assert_eq!(second.join().unwrap(), Ok("second got it"));
    assert_eq!(sem.available(), 0);
}

#[test]
fn semaphore_acquire_with_nothing_else_runnable_would_block_forever() {
    let sem = Semaphore::new(0);
    let start = Instant::now();
    assert_eq!(sem.acquire(), Err(Error::WouldBlockForever));
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
}

#[test]
fn bounded_semaphore_rejects_a_release_beyond_its_initial_count() {
    let sem = BoundedSemaphore::new(2);
    let err = sem.release().unwrap_err();
    assert_eq!(err.limit(), 2);
    assert!(err.to_string().contains("released too many times"));
    let as_error: &dyn std::error::Error = &err;
    assert!(as_error.source().is_none());
    assert_eq!(sem.available(), 2);

    sem.acquire().unwrap();
    sem.acquire().unwrap();
    sem.release().unwrap();
    sem.release().unwrap();
    assert_eq!(sem.available(), 2);
    assert!(sem.release().is_err());
    assert_eq!(sem.available(), 2);
}

#[test]
fn lock_gives_mutual_exclusion_in_fifo_order() {
    let lock = Lock::new();
    let events = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (lock, events) = (lock.clone(), events.clone());
            spawn(move || {
                let _g = lock.lock().unwrap();
                events.borrow_mut().push((i, "in"));
                sleep(ms(10)).unwrap();
                events.borrow_mut().push((i, "out"));
            })
        })
        .collect();
    joinall(&gs, None).unwrap();
    assert_eq!(
        *events.borrow(),
        [
            (0, "in"),
            (0, "out"),
            (1, "in"),
            (1, "out"),
            (2, "in"),
            (2, "out")
        ]
    );
    assert!(!lock.is_locked());
}

#[test]
fn lock_timeout_expires_after_about_200ms_while_another_greenlet_holds_it() {
    let lock = Lock::new();
    let l = lock.clone();
    let holder = spawn(move || {
        let _g = l.lock().unwrap();
        sleep(FOREVER)
    });
    yield_now().unwrap();
    assert!(lock.is_locked());
    assert!(lock.try_lock().is_none());
    let start = Instant::now();
    assert!(lock.lock_timeout(ms(200)).unwrap().is_none());
    assert_about_200ms(start.elapsed());
    holder.kill(); // unwinding drops its guard
    assert!(!lock.is_locked());
    assert!(lock.try_lock().is_some());
}

#[test]
fn rlock_is_reentrant_for_its_owner_only() {
    let lock = RLock::new();
    let a = lock.lock().unwrap();
    let b = lock.try_lock().unwrap();
    assert_eq!(lock.depth(), 2);
    let l = lock.clone();
    let other = spawn(move || {
        let start = Instant::now();
        let got = l.lock().unwrap();
        (start.elapsed(), l.is_owned(), l.depth(), drop(got))
    });
    yield_now().unwrap();
    let l = lock.clone();
    assert!(!spawn(move || l.try_lock().is_some()).join().unwrap());
    drop(b);
    assert!(lock.is_locked() && lock.is_owned());
    sleep(ms(20)).unwrap();
    drop(a); // the last guard: `other` gets it
    assert!(lock.is_locked() && !lock.is_owned());
    let (waited, owned, depth, ()) = other.join().unwrap();
    assert!(waited >= ms(19), "waited {waited:?}");
    assert!(owned);
    assert_eq!(depth, 1);
    assert!(!lock.is_locked());
}

// ---------------------------------------------------------------------------------------------
// Queues

#[test]
fn get_on_an_empty_queue_with_nothing_runnable_would_block_forever_at_once() {
    let q: Queue<u32> = Queue::unbounded();
    let start = Instant::now();
    assert_eq!(q.get(), Err(QueueError::Wait(Error::WouldBlockForever)));
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
}

#[test]
fn queue_items_come_out_in_fifo_order() {
    let q = Queue::unbounded();
    for i in 0..5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.len(), 5);
    assert!(!q.is_full());
    assert_eq!(q.capacity(), None);
    let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    assert!(q.is_empty());
}

#[test]
fn blocked_getters_are_served_in_fifo_order_one_item_each() {
    let q = Queue::unbounded();
    let got = log();
    let gs: Vec<_> = (0..3)
        .map(|i| {
            let (q, got) = (q.clone(), got.clone());
            spawn(move || {
                let item = q.get().unwrap();
                got.borrow_mut().push((i, item));
            })
        })
        .collect();
    yield_now().unwrap();
    q.put("a").unwrap();
    // Each put wakes exactly one getter: the item is that getter's, not the queue's.
    assert!(q.is_empty());
    assert_eq!(q.try_get(), Err(QueueError::Empty));
    q.put("b").unwrap();
    q.put("c").unwrap();
    joinall(&gs, None).unwrap();
    assert_eq!(*got.borrow(), [(0, "a"), (1, "b"), (2, "c")]);
}

#[test]
fn bounded_queue_blocks_the_extra_put_until_a_get() {
    let n = 3;
    let q = Queue::bounded(n);
    for i in 0..n {
        q.try_put(i).unwrap();
    }
    assert!(q.is_full());
    assert_eq!(q.try_put(99), Err(QueueError::Full(99)));
    let done = Rc::new(Cell::new(false));
    let (q2, d) = (q.clone(), done.clone());
    let putter = spawn(move || {
        q2.put(n).unwrap();
        d.set(true);
    });
    sleep(ms(20)).unwrap();
    assert!(
        !done.get(),
        "the (n+1)-th put returned while the queue was full"
    );
    assert_eq!(q.len(), n);
    assert_eq!(q.get(), Ok(0));
    // The blocked putter's item moved in at once, in order.
    assert_eq!(q.len(), n);
    putter.join().unwrap();
    assert!(done.get());
    let rest: Vec<usize> = (0..n).map(|_| q.get().unwrap()).collect();
    assert_eq!(rest, [1, 2, 3]);
}

#[test]
fn put_timeout_on_a_full_queue_returns_the_item_after_about_200ms() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    let start = Instant::now();
    assert_eq!(q.put_timeout(2, ms(200)), Err(QueueError::Full(2)));
    assert_about_200ms(start.elapsed());
    assert_eq!(q.len(), 1);
}

#[test]
fn get_timeout_expires_after_about_200ms_and_the_expired_getter_takes_no_later_item() {
    let q: Queue<&str> = Queue::unbounded();
    let start = Instant::now();
    assert_eq!(q.get_timeout(ms(200)), Err(QueueError::Empty));
    assert_about_200ms(start.elapsed());

    // A getter that expired while another greenlet was about to put.
    let q2 = q.clone();
    let expired = spawn(move || q2.get_timeout(ms(20)));
    let q3 = q.clone();
    let later = spawn(move || {
        sleep(ms(60)).unwrap();
        q3.put("late").unwrap();
    });
    assert_eq!(expired.join().unwrap(), Err(QueueError::Empty));
    later.join().unwrap();
    // The item stayed in the queue for the next getter.
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_get(), Ok("late"));
}

#[test]
fn a_getter_that_timed_out_but_has_not_run_yet_does_not_take_an_item() {
    // The getter's 30 ms timer and the putter's 20 ms sleep both expire while a busy greenlet
    // holds the thread, so the hub handles both in one loop iteration: the getter is woken
    // with its timeout, and the put may run before the getter does. The item must stay queued.
    let q: Queue<u32> = Queue::unbounded();
    let q2 = q.clone();
    let getter = spawn(move || q2.get_timeout(ms(30)));
    let q3 = q.clone();
    let putter = spawn(move || {
        sleep(ms(20)).unwrap();
        q3.put(5).unwrap();
        q3.len()
    });
    let busy = spawn(|| {
        let until = Instant::now() + ms(60);
        while Instant::now() < until {}
    });
    assert_eq!(getter.join().unwrap(), Err(QueueError::Empty));
    assert_eq!(putter.join().unwrap(), 1);
    busy.join().unwrap();
    assert_eq!(q.try_get(), Ok(5));
}

#[test]
fn a_killed_getter_that_was_handed_an_item_gives_it_back() {
    let q = Queue::unbounded();
    let q2 = q.clone();
    let victim = spawn(move || q2.get());
    let q3 = q.clone();
    let next = spawn(move || q3.get());
    yield_now().unwrap();
    q.put("precious").unwrap(); // handed to `victim`
    victim.kill();
    assert_eq!(next.join().unwrap(), Ok("precious"));
}

#[test]
fn channel_put_returns_only_after_a_getter_took_the_item() {
    let ch = Channel::new();
    let events = log();
    let (c, e) = (ch.clone(), events.clone());
    let putter = spawn(move || {
        c.put(42).unwrap();
        e.borrow_mut().push("put returned");
    });
    sleep(ms(30)).unwrap();
    assert!(events.borrow().is_empty(), "put returned without a getter");
    assert_eq!(ch.putters(), 1);
    assert_eq!(ch.get(), Ok(42));
    events.borrow_mut().push("got");
    putter.join().unwrap();
    assert_eq!(*events.borrow(), ["got", "put returned"]);

    // Nothing is buffered: without a getter, try_put fails and put_timeout times out.
    assert_eq!(ch.try_put(1), Err(QueueError::Full(1)));
    let start = Instant::now();
    assert_eq!(ch.put_timeout(2, ms(200)), Err(QueueError::Full(2)));
    assert_about_200ms(start.elapsed());
    assert_eq!(ch.try_get(), Err(QueueError::Empty));
}

#[test]
fn channel_with_a_waiting_getter_hands_over_directly() {
    let ch = Channel::new();
    let c = ch.clone();
    let getter = spawn(move || c.get());
    yield_now().unwrap();
    assert_eq!(ch.getters(), 1);
    ch.put("direct").unwrap();
    assert_eq!(getter.join().unwrap(), Ok("direct"));
}

#[test]
fn queue_bounded_zero_is_a_rendezvous() {
    let q = Queue::bounded(0);
    assert!(q.is_full());
    assert_eq!(q.try_put(1), Err(QueueError::Full(1)));
    let q2 = q.clone();
    let putter = spawn(move || q2.put(1));
    yield_now().unwrap();
    assert_eq!(q.len(), 0);
    assert_eq!(q.get(), Ok(1));
    putter.join().unwrap().unwrap();
}

#[test]
fn joinable_queue_join_waits_for_every_task_done() {
    let q = JoinableQueue::unbounded();
    let processed = log();
    let worker = {
        let (q, processed) = (q.clone(), processed.clone());
        spawn(move || {
            loop {
                match q.get() {
                    Ok(item) => {
                        sleep(ms(5)).unwrap();
                        processed.borrow_mut().push(item);
                        q.task_done().unwrap();
                    }
                    Err(QueueError::Shutdown) => return "shut down",
                    Err(e) => panic!("unexpected {e}"),
                }
            }
        })
    };
    for i in 0..4 {
        q.put(i).unwrap();
    }
    assert_eq!(q.unfinished_tasks(), 4);
    assert!(!q.join_timeout(ms(1)).unwrap());
    q.join().unwrap();
    assert_eq!(*processed.borrow(), [0, 1, 2, 3]);
    assert_eq!(q.unfinished_tasks(), 0);
    // One task_done too many is an error.
    assert_eq!(q.task_done(), Err(QueueError::TooManyTaskDone));
    assert!(
        QueueError::<()>::TooManyTaskDone
            .to_string()
            .contains("more times")
    );
    // Shutdown wakes the blocked worker with the Shutdown error.
    q.shutdown();
    assert_eq!(worker.join().unwrap(), "shut down");
    assert_eq!(q.put(9), Err(QueueError::Shutdown));
}

#[test]
fn joinable_queue_shutdown_lets_gets_drain_then_fail_and_wakes_blocked_putters() {
    let q = JoinableQueue::bounded(1);
    q.put("kept").unwrap();
    let q2 = q.clone();
    let blocked_putter = spawn(move || q2.put("blocked"));
    yield_now().unwrap();
    q.shutdown();
    assert!(q.is_shutdown());
    assert_eq!(blocked_putter.join().unwrap(), Err(QueueError::Shutdown));
    assert_eq!(q.try_put("new"), Err(QueueError::Shutdown));
    assert_eq!(q.get(), Ok("kept"));
    assert_eq!(q.get(), Err(QueueError::Shutdown));
    q.task_done().unwrap();
    assert!(q.join_timeout(ms(1)).unwrap());

    // Immediate shutdown discards what is queued and counts it as done.
    let q = JoinableQueue::unbounded();
    q.put(1).unwrap();
    q.put(2).unwrap();
    let q2 = q.clone();
    let joiner = spawn(move || q2.join());
    yield_now().unwrap();
    q.shutdown_immediate();
    joiner.join().unwrap().unwrap();
    assert_eq!(q.get(), Err(QueueError::Shutdown));
}

// ---------------------------------------------------------------------------------------------
// Groups and pools

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

// ---------------------------------------------------------------------------------------------
// Greenlet-local storage

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

#[test]
fn killed_waiters_leave_no_entries_behind() {
    use greenlet::AsyncResult;
    let e = Event::new();
    // A result whose setter another thread holds: while anyone waits, the hub keeps the loop
    // alive for that thread.
    let r: AsyncResult<u8> = AsyncResult::new();
    let setter = r.setter();
    let waiters: Vec<_> = (0..50)
        .map(|i| {
            let (e, r) = (e.clone(), r.clone());
            spawn(move || {
                if i % 2 == 0 {
                    e.wait().map(|_| 0)
                } else {
                    r.get().map_err(|_| Error::WouldBlockForever)
                }
            })
        })
        .collect();
    yield_now().unwrap(); // all wait now
    assert!(format!("{e:?}").contains("waiters: 25"), "{e:?}");
    for g in &waiters {
        g.kill();
    }
    assert!(format!("{e:?}").contains("waiters: 0"), "{e:?}");
    assert!(format!("{r:?}").contains("waiters: 0"), "{r:?}");
    // Nobody waits for the result any more: the loop is not held for its setter.
    assert!(
        greenlet::wait(Some(Duration::from_secs(5))).unwrap(),
        "the loop was held"
    );
    drop(setter);
}

#[test]
fn killing_many_waiters_of_one_event_takes_linear_time() {
    // Killed in an order that takes entries out of the middle of the event's list.
    let n = 40_000;
    let e = Event::new();
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let e = e.clone();
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || e.wait())
                .unwrap()
        })
        .collect();
    yield_now().unwrap(); // all wait
    let start = Instant::now();
    let (evens, odds): (Vec<_>, Vec<_>) = gs.iter().enumerate().partition(|(i, _)| i % 2 == 0);
    for (_, g) in odds.into_iter().chain(evens) {
        g.kill();
    }
    let took = start.elapsed();
    assert!(format!("{e:?}").contains("waiters: 0"), "{e:?}");
    // Quadratic removal took 22 s here (debug build); linear, 0.3 s.
    assert!(took < generous(Duration::from_secs(10)), "{took:?}");
    eprintln!("killed {n} waiters in {took:?}");
}

#[test]
fn many_greenlets_queued_on_a_semaphore_are_served_in_linear_time() {
    let n = 40_000;
    let sem = Semaphore::new(0);
    let done = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let (sem, done) = (sem.clone(), done.clone());
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || {
                    sem.acquire().unwrap();
                    done.set(done.get() + 1);
                    sem.release();
                })
                .unwrap()
        })
        .collect();
    yield_now().unwrap(); // all queue up
    let start = Instant::now();
    sem.release();
    for g in gs {
        g.join().unwrap();
    }
    let took = start.elapsed();
    assert_eq!(done.get(), n);
    // Each waiter removing its entry by a scan of the rest made this quadratic: 4.8 s here
    // (debug build); linear, 0.12 s.
    assert!(took < generous(Duration::from_secs(2)), "{took:?}");
    eprintln!("served {n} waiters in {took:?}");
}
