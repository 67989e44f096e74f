//! The thread pool and DNS: blocking work off the hub, results waking the hub.

use greenlet::threadpool::{ThreadPool, spawn_blocking};
use greenlet::{joinall, sleep, spawn};
use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

#[test]
fn a_hundred_greenlets_share_a_four_thread_pool() {
    let pool = Rc::new(ThreadPool::new(4).unwrap());
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let gs: Vec<_> = (0..100u64)
        .map(|i| {
            let (pool, running, peak) = (pool.clone(), running.clone(), peak.clone());
            spawn(move || {
                pool.spawn(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(10));
                    running.fetch_sub(1, Ordering::SeqCst);
                    i * 2
                })
                .join()
                .unwrap()
            })
        })
        .collect();
    // The hub keeps serving other greenlets while the pool works.
    let ticks = Rc::new(Cell::new(0));
    let t = ticks.clone();
    let ticker = spawn(move || {
        while t.get() < 20 {
            sleep(Duration::from_millis(5)).unwrap();
            t.set(t.get() + 1);
        }
    });
    assert_eq!(joinall(&gs, None).unwrap().len(), 100);
    let sum: u64 = gs.into_iter().map(|g| g.join().unwrap()).sum();
    assert_eq!(sum, (0..100u64).map(|i| i * 2).sum());
    assert_eq!(
        peak.load(Ordering::SeqCst),
        4,
        "never more jobs than threads at once"
    );
    // 100 jobs of 10 ms on 4 threads take at least 250 ms.
    assert!(start.elapsed() >= Duration::from_millis(240));
    ticker.join().unwrap();
    assert!(ticks.get() >= 20);
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
fn dns_resolves_localhost_and_reports_unknown_names() {
    let ips = greenlet::dns::lookup_host("localhost").unwrap();
    assert!(
        ips.iter().all(|ip| ip.is_loopback()) && !ips.is_empty(),
        "{ips:?}"
    );
    let e = greenlet::dns::lookup_host("no-such-host.invalid").unwrap_err();
    assert!(!e.to_string().is_empty());
    // Lookups run concurrently with other greenlets.
    let gs: Vec<_> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(|h| spawn(move || greenlet::dns::lookup_host(h)))
        .collect();
    for g in gs {
        assert!(!g.join().unwrap().unwrap().is_empty());
    }
}
