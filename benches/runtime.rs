//! Criterion benchmarks of the runtime's hot paths, each next to its floor measured in the same
//! run (the raw `context` resume round trip).
//!
//! `cargo bench --bench runtime` (add `-- <filter>` to pick some). The figures that
//! BENCHMARKS.md reports come from `cargo run --release --example bench`, which prints them in
//! a form scripts read; these benches give criterion's statistics for the same operations.
//!
//! Every greenlet bench uses `iter_custom`: the greenlets it needs are set up once per sample
//! and the timed loop runs `iters` operations, so setup never counts.

use context::stack::ProtectedFixedSizeStack;
use context::{Context, Transfer};
use criterion::{Criterion, criterion_group, criterion_main};
use gevent::ev::{Loop, Timer};
use gevent::park::{current, switch_to};
use gevent::{Event, Queue, spawn, yield_now};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

extern "C" fn bounce(mut t: Transfer) -> ! {
    loop {
        // SAFETY: `t.context` is the suspended caller; resuming it hands control back.
        t = unsafe { t.context.resume(t.data) };
    }
}

fn context_raw(c: &mut Criterion) {
    let stack = ProtectedFixedSizeStack::new(64 * 1024).unwrap();
    // SAFETY: the stack outlives the context (both live until the end of this function, and
    // the coroutine is never resumed after).
    let mut ctx = Some(unsafe { Context::new(&stack, bounce) });
    c.bench_function("context_raw_roundtrip", |b| {
        b.iter(|| {
            // SAFETY: resuming the coroutine's latest context exactly once.
            let t = unsafe { ctx.take().unwrap().resume(black_box(1)) };
            ctx = Some(t.context);
        })
    });
}

/// Two greenlets handing control to each other with `park::switch_to`: direct switches, A ->
/// B -> A per round trip (after 1024 in a row, one goes through the hub).
fn switch_direct(c: &mut Criterion) {
    c.bench_function("switch_roundtrip_direct", |b| {
        b.iter_custom(|iters| {
            let main = current();
            let partner = spawn(move || {
                for _ in 0..iters {
                    switch_to(&main).unwrap();
                }
                main.unpark();
            });
            let p = partner.handle();
            let start = Instant::now();
            for _ in 0..iters {
                switch_to(&p).unwrap();
            }
            let t = start.elapsed();
            switch_to(&p).unwrap();
            partner.join().unwrap();
            t
        })
    });
}

/// Two greenlets alternating with `yield_now`: A -> hub -> B -> hub -> A per round trip.
fn switch_via_hub(c: &mut Criterion) {
    c.bench_function("switch_roundtrip_via_hub", |b| {
        b.iter_custom(|iters| {
            let stop = Rc::new(Cell::new(false));
            let s = stop.clone();
            let other = spawn(move || {
                while !s.get() {
                    yield_now().unwrap();
                }
            });
            yield_now().unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                yield_now().unwrap();
            }
            let t = start.elapsed();
            stop.set(true);
            other.join().unwrap();
            t
        })
    });
}

fn sleep_zero(c: &mut Criterion) {
    c.bench_function("sleep0", |b| {
        b.iter(|| gevent::sleep(Duration::ZERO).unwrap())
    });
}

fn spawn_join(c: &mut Criterion) {
    c.bench_function("spawn_join_one", |b| {
        b.iter(|| spawn(|| black_box(1u64)).join().unwrap())
    });
    let park = Event::new();
    let parked: Vec<_> = (0..20_000)
        .map(|_| {
            let p = park.clone();
            spawn(move || p.wait())
        })
        .collect();
    yield_now().unwrap();
    c.bench_function("spawn_join_20k_alive", |b| {
        b.iter(|| spawn(|| black_box(1u64)).join().unwrap())
    });
    park.set();
    for g in parked {
        g.join().unwrap().unwrap();
    }
}

fn event_pingpong(c: &mut Criterion) {
    c.bench_function("event_pingpong", |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (Event::new(), Event::new());
            let (pi, po) = (ping.clone(), pong.clone());
            let responder = spawn(move || {
                for _ in 0..iters {
                    pi.wait().unwrap();
                    pi.clear();
                    po.set();
                }
            });
            yield_now().unwrap();
            let start = Instant::now();
            for _ in 0..iters {
                ping.set();
                pong.wait().unwrap();
                pong.clear();
            }
            let t = start.elapsed();
            responder.join().unwrap();
            t
        })
    });
}

fn queue_pingpong(c: &mut Criterion) {
    c.bench_function("queue_pingpong", |b| {
        b.iter_custom(|iters| {
            let (ping, pong) = (Queue::unbounded(), Queue::unbounded());
            let (pi, po) = (ping.clone(), pong.clone());
            let responder = spawn(move || {
                for _ in 0..iters {
                    let v: u64 = pi.get().unwrap();
                    po.put(v + 1).unwrap();
                }
            });
            yield_now().unwrap();
            let start = Instant::now();
            for i in 0..iters {
                ping.put(i).unwrap();
                black_box(pong.get().unwrap());
            }
            let t = start.elapsed();
            responder.join().unwrap();
            t
        })
    });
}

fn timer_start_stop(c: &mut Criterion) {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    c.bench_function("timer_start_stop", |b| {
        b.iter(|| {
            t.start();
            t.stop();
        })
    });
}

/// `wait_readable` on a socket that already has data: the watcher is started, libev polls,
/// and the waiter is switched back in.
fn wait_readable_ready(c: &mut Criterion) {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    a.write_all(b"x").unwrap();
    let fd = b.as_raw_fd();
    c.bench_function("wait_readable_ready", |bench| {
        bench.iter(|| gevent::net::wait_readable(fd, None).unwrap())
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    targets = context_raw, switch_direct, switch_via_hub, sleep_zero, spawn_join, event_pingpong,
        queue_pingpong, timer_start_stop, wait_readable_ready
}
criterion_main!(benches);
