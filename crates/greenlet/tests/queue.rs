//! `queue`: `Queue`, `JoinableQueue` and `Channel` against the real hub.

use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{assert_about_200ms, generous, log, ms};

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
