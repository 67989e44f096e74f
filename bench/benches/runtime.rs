//! Criterion benchmarks of the runtime's hot paths, each next to its floor measured in the same
//! run (the raw `context` resume round trip).
//!
//! `cargo bench -p gevent-bench --bench runtime` (add `-- <filter>` to pick some). The figures that
//! BENCHMARKS.md reports come from `cargo run --release -p gevent-bench`, which prints them in
//! a form scripts read; these benches give criterion's statistics for the same operations.
//!
//! Every greenlet bench uses `iter_custom`: the greenlets it needs are set up once per sample
//! and the timed loop runs `iters` operations, so setup never counts.

use criterion::{Criterion, criterion_group, criterion_main};
use gevent::ev::{Loop, Timer};
use std::time::Duration;

#[path = "../src/ops.rs"]
mod ops;

fn context_raw(c: &mut Criterion) {
    c.bench_function("context_raw_roundtrip", |b| b.iter_custom(ops::context_raw));
}

fn switch_direct(c: &mut Criterion) {
    c.bench_function("switch_roundtrip_direct", |b| {
        b.iter_custom(ops::switch_direct)
    });
}

fn switch_via_hub(c: &mut Criterion) {
    c.bench_function("switch_roundtrip_via_hub", |b| {
        b.iter_custom(ops::switch_via_hub)
    });
}

fn sleep_zero(c: &mut Criterion) {
    c.bench_function("sleep0", |b| {
        b.iter(|| gevent::sleep(Duration::ZERO).unwrap())
    });
}

fn spawn_join(c: &mut Criterion) {
    c.bench_function("spawn_join_one", |b| b.iter_custom(ops::spawn_join));
    let parked = ops::Parked::new(20_000);
    c.bench_function("spawn_join_20k_alive", |b| b.iter_custom(ops::spawn_join));
    parked.release();
}

fn event_pingpong(c: &mut Criterion) {
    c.bench_function("event_pingpong", |b| b.iter_custom(ops::event_pingpong));
}

fn queue_pingpong(c: &mut Criterion) {
    c.bench_function("queue_pingpong", |b| b.iter_custom(ops::queue_pingpong));
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
