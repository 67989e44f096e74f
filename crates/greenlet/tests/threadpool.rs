//! The thread pool and DNS: blocking work off the hub, results waking the hub.

use greenlet::threadpool::{ThreadPool, spawn_blocking};
use greenlet::{joinall, sleep, spawn};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

/// Blocks this pool thread until `cond` holds or `generous(limit)` passes; whether it held.
fn block_until(limit: Duration, cond: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + generous(limit);
    while !cond() {
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(ms(1));
    }
    true
}

#[test]
fn a_hundred_greenlets_share_a_four_thread_pool() {
    let pool = Rc::new(ThreadPool::new(4).unwrap());
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    // The first jobs hold their threads until 4 run at once (so the peak is 4 when the pool
    // runs 4 at a time, however the threads are scheduled); job 0 holds its thread until the
    // ticker below has ticked 5 times, which it can only do if the hub keeps running while the
    // greenlets wait for the pool.
    let four_at_once = Arc::new(AtomicBool::new(false));
    let ticks = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let gs: Vec<_> = (0..100u64)
        .map(|i| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            let (four, ticks) = (four_at_once.clone(), ticks.clone());
            spawn(move || {
                pool.spawn(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    if now == 4 {
                        four.store(true, Ordering::SeqCst);
                    }
                    block_until(Duration::from_secs(20), || four.load(Ordering::SeqCst));
                    let ticked = i != 0
                        || block_until(Duration::from_secs(20), || {
                            ticks.load(Ordering::SeqCst) >= 5
                        });
                    std::thread::sleep(ms(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                    (i * 2, ticked)
                })
                .join()
                .unwrap()
            })
        })
        .collect();
    // The hub keeps serving other greenlets while the pool works.
    let t = ticks.clone();
    let ticker = spawn(move || {
        for _ in 0..5 {
            sleep(ms(5)).unwrap();
            t.fetch_add(1, Ordering::SeqCst);
        }
    });
    assert_eq!(joinall(&gs, None).unwrap().len(), 100);
    let results: Vec<(u64, bool)> = gs.into_iter().map(|g| g.join().unwrap()).collect();
    let sum: u64 = results.iter().map(|&(v, _)| v).sum();
    assert_eq!(sum, (0..100u64).map(|i| i * 2).sum());
    assert!(
        results.iter().all(|&(_, ticked)| ticked),
        "the ticker did not run while a job was in progress"
    );
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "never more jobs than threads at once (and 4 at once)"
    );
    // 100 jobs of 10 ms on 4 threads: one thread runs at least 25, for at least 250 ms.
    assert!(start.elapsed() >= ms(250), "{:?}", start.elapsed());
    ticker.join().unwrap();
    assert_eq!(ticks.load(Ordering::SeqCst), 5);
}

#[test]
fn a_panic_in_a_job_reaches_the_waiter() {
    let t = spawn_blocking(|| -> u8 { panic!("job failed") });
    assert_eq!(t.join().unwrap_err().panic_message(), Some("job failed"));
    // The pool still works.
    assert_eq!(spawn_blocking(|| 3).join().unwrap(), 3);
}

#[test]
fn queued_jobs_run_in_order() {
    let pool = ThreadPool::new(1).unwrap();
    let order = Arc::new(std::sync::Mutex::new(Vec::new()));
    let tasks: Vec<_> = (0..10)
        .map(|i| {
            let o = order.clone();
            pool.spawn(move || o.lock().unwrap().push(i))
        })
        .collect();
    for t in tasks {
        t.join().unwrap();
    }
    assert_eq!(*order.lock().unwrap(), (0..10).collect::<Vec<_>>());
}

#[test]
fn apply_returns_the_value_and_the_panic() {
    let pool = ThreadPool::new(2).unwrap();
    let name = pool
        .apply(|| std::thread::current().name().map(String::from))
        .unwrap();
    assert!(name.unwrap().starts_with("greenlet-pool-"));
    let e = pool.apply(|| -> u8 { panic!("apply failed") }).unwrap_err();
    assert_eq!(e.panic_message(), Some("apply failed"));
    assert_eq!(pool.apply(|| 2 + 3).unwrap(), 5);
}

#[test]
fn map_returns_results_in_input_order_whatever_order_they_finish_in() {
    // Job i finishes only after job i + 1 has: they finish in reverse order.
    let pool = ThreadPool::new(5).unwrap();
    let finished = Arc::new(std::sync::Mutex::new(Vec::new()));
    let f = finished.clone();
    let out = pool
        .map(
            move |i: usize| {
                assert!(block_until(Duration::from_secs(20), || i == 4
                    || f.lock().unwrap().contains(&(i + 1))));
                f.lock().unwrap().push(i);
                i * 10
            },
            0..5,
        )
        .unwrap();
    assert_eq!(out, [0, 10, 20, 30, 40]);
    assert_eq!(*finished.lock().unwrap(), [4, 3, 2, 1, 0]);
    assert_eq!(pool.map(|x: u8| x, Vec::new()).unwrap(), Vec::<u8>::new());
}

#[test]
fn resizing_up_runs_that_many_jobs_at_once() {
    let pool = ThreadPool::new(1).unwrap();
    pool.resize(4).unwrap();
    assert_eq!(pool.size(), 4);
    // Each job waits until all 4 run: only 4 threads at once let them finish.
    let started = Arc::new(AtomicUsize::new(0));
    let out = pool
        .map(
            {
                let started = started.clone();
                move |_: u8| {
                    started.fetch_add(1, Ordering::SeqCst);
                    block_until(Duration::from_secs(20), || {
                        started.load(Ordering::SeqCst) == 4
                    })
                }
            },
            0..4,
        )
        .unwrap();
    assert_eq!(out, [true; 4]);
}

#[test]
fn resizing_down_runs_every_queued_job() {
    let pool = ThreadPool::new(4).unwrap();
    let gate = Arc::new(AtomicBool::new(false));
    let busy = Arc::new(AtomicUsize::new(0));
    let ran = Arc::new(AtomicUsize::new(0));
    let job = |gate: Arc<AtomicBool>, busy: Arc<AtomicUsize>, ran: Arc<AtomicUsize>| {
        move || {
            busy.fetch_add(1, Ordering::SeqCst);
            assert!(block_until(Duration::from_secs(20), || gate.load(Ordering::SeqCst)));
            ran.fetch_add(1, Ordering::SeqCst);
        }
    };
    // 4 jobs hold the 4 threads, 20 more wait in the queue.
    let mut tasks: Vec<_> = (0..4)
        .map(|_| pool.spawn(job(gate.clone(), busy.clone(), ran.clone())))
        .collect();
    let b = busy.clone();
    assert!(support::eventually(Duration::from_secs(20), || b
        .load(Ordering::SeqCst)
        == 4));
    tasks.extend((0..20).map(|_| pool.spawn(job(gate.clone(), busy.clone(), ran.clone()))));
    pool.resize(1).unwrap();
    assert_eq!(pool.size(), 1);
    gate.store(true, Ordering::SeqCst);
    for t in tasks {
        t.join().unwrap();
    }
    assert_eq!(ran.load(Ordering::SeqCst), 24);
    // The threads beyond the new size left once they were between jobs.
    assert!(support::eventually(Duration::from_secs(20), || format!(
        "{pool:?}"
    )
    .contains("threads: 1,")));
    assert_eq!(pool.apply(|| 1).unwrap(), 1);
}
