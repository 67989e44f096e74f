//! The benchmark program: one line per figure, `name value unit`, for scripts to read.
//! Every greenlet figure is printed next to the floor measured in the same run (the raw
//! `context` resume round trip).
//!
//! `cargo run --release --example bench [--quick]`

use gevent::{Builder, Event, StackMode, spawn, yield_now};
use std::time::{Duration, Instant};

#[path = "../benches/common/ops.rs"]
mod ops;

fn report(name: &str, value: f64, unit: &str) {
    if unit == "x" {
        println!("{name} {value:.3} {unit}");
    } else {
        println!("{name} {value:.1} {unit}");
    }
}

/// Best of `rounds` runs of `f(iters)` (which returns the time of its timed part), in ns per
/// iteration.
fn best_ns(rounds: usize, iters: u64, mut f: impl FnMut(u64) -> Duration) -> f64 {
    (0..rounds)
        .map(|_| f(iters).as_nanos() as f64 / iters as f64)
        .fold(f64::MAX, f64::min)
}

fn rss_bytes() -> usize {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// Drive an echo server at `addr` with `conns` connections, each sending a 64-byte message and
/// waiting for its echo, for `dur`. Returns messages per second.
fn echo_load(addr: std::net::SocketAddr, conns: usize, dur: Duration) -> f64 {
    use std::io::{Read, Write};
    let deadline = Instant::now() + dur;
    let clients: Vec<_> = (0..conns)
        .map(|_| {
            spawn(move || {
                let mut s = gevent::net::TcpStream::connect(addr).unwrap();
                s.set_nodelay(true).unwrap();
                let msg = [7u8; 64];
                let mut back = [0u8; 64];
                let mut n = 0u64;
                while Instant::now() < deadline {
                    s.write_all(&msg).unwrap();
                    s.read_exact(&mut back).unwrap();
                    n += 1;
                }
                n
            })
        })
        .collect();
    let start = Instant::now();
    let total: u64 = clients.into_iter().map(|c| c.join().unwrap()).sum();
    total as f64 / start.elapsed().as_secs_f64()
}

/// The Rust echo server (the same code as `examples/echo_server.rs`) on its own thread and hub.
fn start_rust_echo() -> std::net::SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::{Read, Write};
        let listener = gevent::net::TcpListener::bind("127.0.0.1:0").unwrap();
        tx.send(listener.local_addr().unwrap()).unwrap();
        while let Ok((mut conn, _)) = listener.accept() {
            conn.set_nodelay(true).ok();
            spawn(move || {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n @ 1..) = conn.read(&mut buf) {
                    if conn.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    rx.recv().unwrap()
}

fn start_c_echo() -> (std::process::Child, std::net::SocketAddr) {
    use std::io::BufRead;
    let mut child = std::process::Command::new(gevent::c_reference::ECHO_SERVER)
        .arg("127.0.0.1:0")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the C echo server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap()
        .parse()
        .unwrap();
    (child, addr)
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let n: u64 = if quick { 100_000 } else { 1_000_000 };

    let raw = best_ns(5, n, ops::context_raw);
    report("context_raw_roundtrip_ns", raw, "ns");

    let direct = best_ns(5, n, ops::switch_direct);
    report("switch_roundtrip_ns", direct, "ns");
    report("switch_roundtrip_ratio_vs_context", direct / raw, "x");

    let via_hub = best_ns(5, n / 2, ops::switch_via_hub);
    report("switch_roundtrip_hub_ns", via_hub, "ns");
    report("switch_roundtrip_hub_ratio_vs_context", via_hub / raw, "x");

    // sleep(ZERO) with nothing else ready: one trip through the hub and back.
    let sleep0 = best_ns(5, n, |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            gevent::sleep(Duration::ZERO).unwrap();
        }
        start.elapsed()
    });
    report("sleep0_ns", sleep0, "ns");

    // Resident memory per parked greenlet: 100k parked on an Event, on canary-mode stacks of
    // the default size (guard-paged stacks cannot reach 100k under the default
    // vm.max_map_count), then 20k on guard-paged stacks. Each on stacks of a size no earlier
    // figure used, so that none comes from the pool with its pages already resident.
    let parked_rss = |count: usize, mode: StackMode, size: usize| {
        let park = Event::new();
        let before = rss_bytes();
        let gs: Vec<_> = (0..count)
            .map(|_| {
                let p = park.clone();
                Builder::new()
                    .stack_mode(mode)
                    .stack_size(size)
                    .spawn(move || p.wait())
                    .expect("spawn a parked greenlet")
            })
            .collect();
        yield_now().unwrap();
        let per = (rss_bytes().saturating_sub(before)) as f64 / count as f64;
        park.set();
        for g in gs {
            g.join().unwrap().unwrap();
        }
        per
    };
    let count = if quick { 10_000 } else { 100_000 };
    let size = gevent::DEFAULT_STACK_SIZE;
    report(
        "parked_rss_bytes",
        parked_rss(count, StackMode::Canary, size),
        "bytes",
    );
    let count = if quick { 5_000 } else { 20_000 };
    report(
        "parked_rss_guarded_bytes",
        parked_rss(count, StackMode::GuardPage, size / 2),
        "bytes",
    );

    // spawn + join of short greenlets while 20k others are parked.
    let parked = ops::Parked::new(20_000);
    report(
        "spawn_join_20k_ns",
        best_ns(5, n / 10, ops::spawn_join),
        "ns",
    );
    parked.release();

    // Event ping-pong between two greenlets: one round trip = two sets and two waits.
    let pingpong = best_ns(5, n / 2, ops::event_pingpong);
    report("event_pingpong_ns", pingpong, "ns");
    report(
        "queue_pingpong_ns",
        best_ns(5, n / 2, ops::queue_pingpong),
        "ns",
    );

    // Echo: the Rust server against the C libev server, one load client, alternating runs.
    let (mut c_child, c_addr) = start_c_echo();
    let rust_addr = start_rust_echo();
    let dur = if quick {
        Duration::from_millis(300)
    } else {
        Duration::from_secs(1)
    };
    let (mut best_c, mut best_rust) = (0f64, 0f64);
    for _ in 0..3 {
        best_c = best_c.max(echo_load(c_addr, 50, dur));
        best_rust = best_rust.max(echo_load(rust_addr, 50, dur));
    }
    c_child.kill().ok();
    c_child.wait().ok();
    report("echo_c_msgs_per_sec", best_c, "msg/s");
    report("echo_rust_msgs_per_sec", best_rust, "msg/s");
    report("echo_ratio_vs_c", best_rust / best_c, "x");

    // A million parked greenlets on canary-mode stacks (one mapping per 4096 stacks).
    let million = if quick { 50_000 } else { 1_000_000 };
    let park = Event::new();
    let before = rss_bytes();
    let start = Instant::now();
    let gs: Vec<_> = (0..million)
        .map(|_| {
            let p = park.clone();
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || p.wait())
                .expect("canary-mode spawn")
        })
        .collect();
    yield_now().unwrap();
    let per = (rss_bytes().saturating_sub(before)) as f64 / million as f64;
    report("canary_parked_count", million as f64, "greenlets");
    report("canary_parked_rss_bytes", per, "bytes");
    report("canary_spawn_park_s", start.elapsed().as_secs_f64(), "s");
    park.set();
    for g in gs {
        g.join().unwrap().unwrap();
    }

    // How many guard-paged greenlets can be parked with the machine's vm.max_map_count.
    if !quick {
        let park = Event::new();
        let mut gs = Vec::new();
        let mut error = String::new();
        loop {
            let p = park.clone();
            match Builder::new().stack_size(16 * 1024).spawn(move || p.wait()) {
                Ok(g) => gs.push(g),
                Err(e) => {
                    error = e.to_string();
                    break;
                }
            }
            if gs.len() >= 2_000_000 {
                break;
            }
        }
        yield_now().unwrap();
        report("max_parked_guarded", gs.len() as f64, "greenlets");
        eprintln!("spawn stopped with: {error}");
        park.set();
        for g in gs {
            g.kill();
        }
    }
}
