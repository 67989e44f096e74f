//! `queue`: `Queue`, `JoinableQueue`, `Channel`, `PriorityQueue` and `LifoQueue` against the
//! real hub.

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

/// An item ordered by `prio` alone, so equal priorities can be told apart by `tag`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Job {
    prio: u32,
    tag: (u32, u32),
}

impl PartialOrd for Job {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Job {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.prio.cmp(&other.prio)
    }
}

#[test]
fn priority_queue_smallest_first_fifo_among_equals_under_concurrent_puts_and_timed_out_getters() {
    let q: PriorityQueue<Job> = PriorityQueue::unbounded();
    // A getter that gives up before anything is put, and one that waits on.
    let short = {
        let q = q.clone();
        spawn(move || q.get_timeout(ms(10)))
    };
    let patient = {
        let q = q.clone();
        spawn(move || q.get())
    };
    assert_eq!(short.join().unwrap(), Err(QueueError::Empty));
    assert!(!patient.is_dead());
    // Three putters interleave their puts; `puts` records the order they happened in.
    let puts: support::Log<Job> = log();
    let putters: Vec<_> = (0..3u32)
        .map(|p| {
            let (q, puts) = (q.clone(), puts.clone());
            spawn(move || {
                for k in 0..6u32 {
                    let job = Job {
                        prio: (p * 7 + k * 3) % 4,
                        tag: (p, k),
                    };
                    q.put(job).unwrap();
                    puts.borrow_mut().push(job);
                    yield_now().unwrap();
                }
            })
        })
        .collect();
    for g in putters {
        g.join().unwrap();
    }
    let puts = puts.borrow().clone();
    assert_eq!(puts.len(), 18);
    // The first put went to the waiting getter, not to the one that timed out (which left
    // no entry behind); the rest were queued.
    let first = patient.join().unwrap().unwrap();
    assert_eq!(first.tag, puts[0].tag);
    assert_eq!(q.len(), 17);
    let mut expected: Vec<Job> = puts[1..].to_vec();
    expected.sort_by_key(|j| j.prio); // stable: FIFO among equals
    // A getter now takes the smallest, the first put among the smallest.
    assert_eq!(q.get_timeout(ms(5)).unwrap().tag, expected.remove(0).tag);
    let got: Vec<Job> = {
        q.shutdown();
        q.iter().collect()
    };
    assert_eq!(
        got.iter().map(|j| j.tag).collect::<Vec<_>>(),
        expected.iter().map(|j| j.tag).collect::<Vec<_>>()
    );
    assert!(got.windows(2).all(|w| w[0].prio <= w[1].prio));
    assert_eq!(q.get(), Err(QueueError::Shutdown));
}

#[test]
fn priority_queue_getters_that_time_out_leave_items_to_the_others() {
    let q = PriorityQueue::unbounded();
    let results = log();
    // Alternate short-timeout getters with waiting ones.
    let getters: Vec<_> = (0..6)
        .map(|i| {
            let (q, results) = (q.clone(), results.clone());
            spawn(move || {
                let r = if i % 2 == 0 {
                    q.get_timeout(ms(5))
                } else {
                    q.get()
                };
                results.borrow_mut().push((i, r));
            })
        })
        .collect();
    // Wait until every short getter has failed.
    for g in getters.iter().step_by(2) {
        g.wait(None).unwrap();
    }
    assert_eq!(results.borrow().len(), 3);
    assert!(
        results
            .borrow()
            .iter()
            .all(|(i, r)| i % 2 == 0 && *r == Err(QueueError::Empty))
    );
    // Three items, put from a greenlet: each goes to a waiting getter, in their order.
    let putter = {
        let q = q.clone();
        spawn(move || {
            for n in [30, 10, 20] {
                q.put(n).unwrap();
            }
        })
    };
    putter.join().unwrap();
    for g in getters {
        g.join().unwrap();
    }
    let got: Vec<_> = results.borrow()[3..].to_vec();
    assert_eq!(got, [(1, Ok(30)), (3, Ok(10)), (5, Ok(20))]);
    assert!(q.is_empty());
    // With nobody waiting, the items are queued and come out smallest first.
    for n in [30, 10, 20, 10] {
        q.put(n).unwrap();
    }
    assert_eq!(q.peek(), Ok(10));
    let drained: Vec<i32> = (0..4).map(|_| q.get().unwrap()).collect();
    assert_eq!(drained, [10, 10, 20, 30]);
}

#[test]
fn lifo_queue_returns_the_last_item_put_first() {
    let q = LifoQueue::unbounded();
    for i in 1..=5 {
        q.put(i).unwrap();
    }
    assert_eq!(q.peek(), Ok(5));
    assert_eq!(q.get(), Ok(5));
    assert_eq!(q.get(), Ok(4));
    q.put(6).unwrap();
    let rest: Vec<i32> = (0..4).map(|_| q.get().unwrap()).collect();
    assert_eq!(rest, [6, 3, 2, 1]);

    // Bounded: a blocked putter's item enters when room is made, on top.
    let q = LifoQueue::bounded(2);
    q.put(1).unwrap();
    q.put(2).unwrap();
    let putter = {
        let q = q.clone();
        spawn(move || q.put(3))
    };
    yield_now().unwrap();
    assert!(!putter.is_dead());
    assert_eq!(q.get(), Ok(2));
    assert_eq!(putter.join().unwrap(), Ok(()));
    assert_eq!(q.get(), Ok(3));
    assert_eq!(q.get(), Ok(1));
    assert_eq!(q.try_get(), Err(QueueError::Empty));
}

#[test]
fn peek_waits_for_an_item_and_does_not_remove_it() {
    let q = Queue::unbounded();
    let peeked = log();
    let peeker = {
        let (q, peeked) = (q.clone(), peeked.clone());
        spawn(move || {
            let r = q.peek();
            peeked.borrow_mut().push(r);
        })
    };
    yield_now().unwrap();
    assert!(peeked.borrow().is_empty(), "peek returned without an item");
    // An item put while a getter waits goes to the getter: the peeker waits on.
    let getter = {
        let q = q.clone();
        spawn(move || q.get())
    };
    yield_now().unwrap();
    q.put("taken").unwrap();
    assert_eq!(getter.join().unwrap(), Ok("taken"));
    assert!(peeked.borrow().is_empty());
    assert!(!peeker.is_dead());
    q.put("seen").unwrap();
    peeker.join().unwrap();
    assert_eq!(*peeked.borrow(), [Ok("seen")]);
    assert_eq!(q.len(), 1);
    assert_eq!(q.try_peek(), Ok("seen"));
    assert_eq!(q.get(), Ok("seen"));

    // Several peekers all see the same item; it stays for the getter.
    let peekers: Vec<_> = (0..3)
        .map(|_| {
            let q = q.clone();
            spawn(move || q.peek())
        })
        .collect();
    yield_now().unwrap();
    q.put("x").unwrap();
    for p in peekers {
        assert_eq!(p.join().unwrap(), Ok("x"));
    }
    assert_eq!(q.len(), 1);

    // Timeouts and shutdown.
    let empty: Queue<u8> = Queue::unbounded();
    assert_eq!(empty.peek_timeout(ms(20)), Err(QueueError::Empty));
    let waiting = {
        let empty = empty.clone();
        spawn(move || empty.peek())
    };
    yield_now().unwrap();
    empty.shutdown();
    assert_eq!(waiting.join().unwrap(), Err(QueueError::Shutdown));
    assert_eq!(
        Queue::<u8>::unbounded().peek(),
        Err(QueueError::Wait(Error::WouldBlockForever))
    );
}

#[test]
fn peek_is_woken_by_a_blocked_putter_entering_a_bounded_queue() {
    let q = Queue::bounded(1);
    q.put(1).unwrap();
    assert_eq!(q.get(), Ok(1));
    let peeker = {
        let q = q.clone();
        spawn(move || q.peek_timeout(generous(Duration::from_secs(30))))
    };
    let putter = {
        let q = q.clone();
        spawn(move || {
            q.put(2).unwrap();
            q.put(3).unwrap(); // waits: full
        })
    };
    assert_eq!(peeker.join().unwrap(), Ok(2));
    assert_eq!(q.get(), Ok(2)); // lets the putter's 3 in
    putter.join().unwrap();
    assert_eq!(q.peek(), Ok(3));
}

#[test]
fn iterating_a_queue_ends_at_shutdown_after_the_items_left() {
    let q = Queue::bounded(2);
    let consumed = log();
    let consumer = {
        let (q, consumed) = (q.clone(), consumed.clone());
        spawn(move || {
            for item in &q {
                consumed.borrow_mut().push(item);
            }
            // The loop ended because the queue was shut down and drained.
            q.get()
        })
    };
    for i in 0..5 {
        q.put(i).unwrap();
    }
    q.shutdown();
    assert_eq!(q.put(9), Err(QueueError::Shutdown));
    assert_eq!(consumer.join().unwrap(), Err(QueueError::Shutdown));
    assert_eq!(*consumed.borrow(), [0, 1, 2, 3, 4]);

    // A consumer blocked in the loop is ended by the shutdown.
    let q: LifoQueue<u8> = LifoQueue::unbounded();
    let blocked = {
        let q = q.clone();
        spawn(move || (&q).into_iter().count())
    };
    yield_now().unwrap();
    assert!(!blocked.is_dead());
    q.shutdown();
    assert_eq!(blocked.join().unwrap(), 0);

    // Items left at shutdown are still yielded, in the queue's order.
    let q = PriorityQueue::unbounded();
    for n in [3, 1, 2] {
        q.put(n).unwrap();
    }
    q.shutdown();
    let mut order = Vec::new();
    for n in &q {
        order.push(n);
    }
    assert_eq!(order, [1, 2, 3]);

    // JoinableQueue and SimpleQueue iterate the same way.
    let jq = JoinableQueue::unbounded();
    jq.put('a').unwrap();
    jq.shutdown();
    assert_eq!((&jq).into_iter().collect::<String>(), "a");
    let sq: SimpleQueue<u8> = SimpleQueue::unbounded();
    sq.put(1).unwrap();
    sq.shutdown();
    assert_eq!(sq.iter().collect::<Vec<_>>(), [1]);
}

/// Putters blocked on a full queue are served in the order they blocked, one slot each: the
/// items come out in that order, whichever putter the scheduler would run first.
#[test]
fn blocked_putters_are_served_in_fifo_order() {
    let q = Queue::bounded(1);
    q.try_put(0).unwrap();
    let putters: Vec<_> = (1..=4)
        .map(|i| {
            let q = q.clone();
            spawn(move || q.put(i).unwrap())
        })
        .collect();
    // Each blocks in turn, in spawn order.
    yield_now().unwrap();
    assert_eq!(q.len(), 1);
    let got: Vec<i32> = (0..5).map(|_| q.get().unwrap()).collect();
    assert_eq!(got, [0, 1, 2, 3, 4]);
    for p in putters {
        p.join().unwrap();
    }
    assert!(q.is_empty());
}
