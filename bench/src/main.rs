//! The benchmark program: one line per figure, `name value unit`, for scripts to read.
//! Every greenlet figure is printed next to the floor measured in the same run (the raw
//! `context` resume round trip).
//!
//! `cargo run --release -p gevent-bench [-- [--quick] [--echo-only | --growth-only |
//! --http-only | --rss-only | --wait-only]]`

use gevent::{Builder, Event, StackMode, yield_now};
use std::time::{Duration, Instant};

mod echo;
mod http;
mod idle;
mod ops;

fn report(name: &str, value: f64, unit: &str) {
    if unit == "x" || unit == "s" {
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

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--serve-echo") {
        let addr = args.get(i + 2).map_or("127.0.0.1:0", String::as_str);
        match args.get(i + 1).map(String::as_str) {
            Some("rust") => echo::serve_gevent(addr),
            Some("tokio") => echo::serve_tokio(addr),
            Some("monkey") => echo::serve_monkey(addr),
            other => panic!("--serve-echo rust|monkey|tokio ADDR, not {other:?}"),
        }
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve-http-idle") {
        idle::serve(&args[i + 1..]);
        return;
    }
    if let Some(i) = args.iter().position(|a| a == "--serve-http") {
        http::serve_gevent(args.get(i + 1).map_or("127.0.0.1:0", String::as_str));
        return;
    }
    let quick = args.iter().any(|a| a == "--quick");
    echo::raise_fd_limit();
    if args.iter().any(|a| a == "--echo-only") {
        echo_figures(quick);
        return;
    }
    if args.iter().any(|a| a == "--growth-only") {
        growth_figures(quick);
        return;
    }
    if args.iter().any(|a| a == "--idle-http-only") {
        idle::figures(quick);
        return;
    }
    if args.iter().any(|a| a == "--http-only") {
        http_figures(quick);
        return;
    }
    if args.iter().any(|a| a == "--wait-only") {
        let n: u64 = if quick { 100_000 } else { 1_000_000 };
        let pingpong = best_ns(5, n / 2, ops::event_pingpong);
        report("event_pingpong_ns", pingpong, "ns");
        timed_wait_figures(n, pingpong);
        return;
    }
    if args.iter().any(|a| a == "--rss-only") {
        idle_rss_figures(quick);
        return;
    }
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
    timed_wait_figures(n, pingpong);
    report(
        "queue_pingpong_ns",
        best_ns(5, n / 2, ops::queue_pingpong),
        "ns",
    );

    growth_figures(quick);
    echo_figures(quick);
    http_figures(quick);

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

    // Last: patch_all() makes every later libc call of this process go through the hooks.
    monkey_figures(quick);
}

/// What the monkey hooks cost where they do not cooperate, and what they buy where they do.
/// Calls `gevent::monkey::patch_all()` for the rest of the process.
fn monkey_figures(quick: bool) {
    gevent::monkey::patch_all();

    // A plain thread (no hub) receiving on a ready socket: the hooked recv goes straight to
    // the kernel after the gate's checks; the difference against the raw system call is the
    // hook's cost on every call made outside greenlets.
    let iters: u64 = if quick { 200_000 } else { 2_000_000 };
    let (hooked, raw) = std::thread::spawn(move || {
        let (a, b) = ops::ready_socketpair();
        let (mut hooked, mut raw) = (f64::MAX, f64::MAX);
        for _ in 0..5 {
            raw = raw.min(best_ns(1, iters, |n| ops::recv_ready(a, n, false)));
            hooked = hooked.min(best_ns(1, iters, |n| ops::recv_ready(a, n, true)));
        }
        ops::close_pair(a, b);
        (hooked, raw)
    })
    .join()
    .unwrap();
    report("monkey_offhub_recv_ns", hooked, "ns");
    report("monkey_offhub_recv_unhooked_ns", raw, "ns");
    report("monkey_offhub_overhead_ns", hooked - raw, "ns");

    // 10,000 greenlets each in std::thread::sleep(100 ms): side by side through the hub.
    let start = Instant::now();
    let gs: Vec<_> = (0..10_000)
        .map(|_| {
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(|| std::thread::sleep(Duration::from_millis(100)))
                .expect("canary-mode spawn")
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    report("monkey_sleep_10k_s", start.elapsed().as_secs_f64(), "s");
}

/// The echo sweep (messages per second against connections, each server against the C libev
/// server in alternating runs, the best of three) and the memory of an idle connection.
fn echo_figures(quick: bool) {
    use echo::Server;
    let sizes: &[(usize, &str)] = if quick {
        &[(50, "50"), (1_000, "1k")]
    } else {
        &[(50, "50"), (1_000, "1k"), (5_000, "5k"), (10_000, "10k")]
    };
    let dur = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    for &(conns, label) in sizes {
        // At 1k the std-only server after monkey::patch_all() takes its turn too.
        let servers: &[Server] = if conns == 1_000 {
            &[Server::C, Server::Gevent, Server::Tokio, Server::Monkey]
        } else {
            &[Server::C, Server::Gevent, Server::Tokio]
        };
        let mut best = [0f64; 4];
        for _ in 0..3 {
            for (i, &server) in servers.iter().enumerate() {
                best[i] = best[i].max(echo::throughput(server, conns, dur));
            }
        }
        report(&format!("echo_c_msgs_per_sec_{label}"), best[0], "msg/s");
        report(&format!("echo_rust_msgs_per_sec_{label}"), best[1], "msg/s");
        report(
            &format!("echo_tokio_msgs_per_sec_{label}"),
            best[2],
            "msg/s",
        );
        report(&format!("echo_ratio_vs_c_{label}"), best[1] / best[0], "x");
        report(
            &format!("echo_tokio_ratio_vs_c_{label}"),
            best[2] / best[0],
            "x",
        );
        if servers.len() == 4 {
            report(
                &format!("echo_monkey_msgs_per_sec_{label}"),
                best[3],
                "msg/s",
            );
            report("monkey_std_echo_ratio_vs_c", best[3] / best[0], "x");
        }
    }
    idle_rss_figures(quick);
}

/// The resident memory of an idle connection, for each server (also printed by the echo
/// figures; alone with `--rss-only`).
fn idle_rss_figures(quick: bool) {
    use echo::Server;
    let conns = if quick { 1_000 } else { 10_000 };
    let buf = echo::BUF_SIZE as f64;
    let rust = echo::idle_rss_per_conn(Server::Gevent, conns);
    let tokio = echo::idle_rss_per_conn(Server::Tokio, conns);
    let c = echo::idle_rss_per_conn(Server::C, conns);
    report("idle_conn_rss_bytes", rust, "bytes");
    report("idle_conn_rss_runtime_bytes", rust - buf, "bytes");
    report("idle_conn_rss_tokio_bytes", tokio, "bytes");
    report("idle_conn_rss_c_bytes", c, "bytes");
    report("idle_conn_rss_ratio_vs_tokio", rust / tokio, "x");
}

/// Plaintext requests per second over 50 keep-alive connections, one request in flight per
/// connection and then 16 pipelined, this runtime's HTTP server against the C libev one in
/// alternating runs, the best of three; then the same over more connections ([`http_sweep`]);
/// then the memory of an idle keep-alive connection of each (answered once, then held open),
/// and of this one over TLS and behind a deep handler ([`idle::figures`]).
fn http_figures(quick: bool) {
    use http::Server;
    let dur = if quick {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(2)
    };
    for (depth, prefix) in [(1, "http_rps"), (16, "http_pipelined_rps")] {
        http_pair(prefix, 50, depth, dur, 3);
    }
    http_sweep(quick, dur);
    let conns = if quick { 1_000 } else { 5_000 };
    report(
        "http_idle_conn_rss_bytes",
        http::idle_rss_per_conn(Server::Gevent, conns),
        "bytes",
    );
    report(
        "http_idle_conn_rss_c_bytes",
        http::idle_rss_per_conn(Server::C, conns),
        "bytes",
    );
    idle::figures(quick);
}

/// How requests per second hold up as connections grow: the same plaintext load over 1k, 5k
/// and 10k keep-alive connections (1k alone with `--quick`), one request in flight and 16
/// pipelined, against the C server in alternating runs, the best of two. Printed as
/// `http_rps_<conns>`, `http_pipelined_rps_<conns>` and their `_ratio_vs_c`.
fn http_sweep(quick: bool, dur: Duration) {
    let sizes: &[(usize, &str)] = if quick {
        &[(1_000, "1k")]
    } else {
        &[(1_000, "1k"), (5_000, "5k"), (10_000, "10k")]
    };
    for &(conns, label) in sizes {
        for (depth, prefix) in [(1, "http_rps"), (16, "http_pipelined_rps")] {
            http_pair(&format!("{prefix}_{label}"), conns, depth, dur, 2);
        }
    }
}

/// The C server and this one under the same load (`conns` connections, `depth` requests in
/// flight on each, for `dur`), alternating, the best of `rounds` each: printed as `NAME_c`,
/// `NAME` and `NAME_ratio_vs_c`.
fn http_pair(name: &str, conns: usize, depth: usize, dur: Duration, rounds: usize) {
    use http::Server;
    let mut best = [0f64; 2];
    for _ in 0..rounds {
        for (i, server) in [Server::C, Server::Gevent].into_iter().enumerate() {
            let m = http::throughput(server, conns, depth, dur);
            eprintln!(
                "{name} {server:?}: {:.0} requests/s, server busy {:.0}% \
                 (user {:.0} ns, system {:.0} ns per response)",
                m.rps,
                m.server_busy * 100.0,
                m.user_ns,
                m.system_ns
            );
            best[i] = best[i].max(m.rps);
        }
    }
    report(&format!("{name}_c"), best[0], "req/s");
    report(name, best[1], "req/s");
    report(&format!("{name}_ratio_vs_c"), best[1] / best[0], "x");
}

/// Timed waits woken before their timeout: the Event ping-pong with a 1 s timeout on every
/// wait, as a round trip (two timed waits), and what a timed wait costs over an untimed one
/// (`plain`: the untimed round trip, `event_pingpong_ns`).
fn timed_wait_figures(n: u64, plain: f64) {
    let timed = best_ns(5, n / 2, ops::event_pingpong_timed);
    report("event_pingpong_timed_ns", timed, "ns");
    report("timed_wait_overhead_ns", (timed - plain) / 2.0, "ns");
}

/// How each cost grows with what is alive: the same figures with 1k, 10k and 100k other
/// greenlets alive, each asleep (so as many timers in libev's heap), on canary-mode stacks
/// (guard-paged ones stop near 28k with the default vm.max_map_count). Printed as
/// `growth_<figure>_<alive> value` and `growth_<figure>_ratio value` (the largest against 1k).
fn growth_figures(quick: bool) {
    let sizes: &[(usize, &str)] = if quick {
        &[(1_000, "1k"), (10_000, "10k")]
    } else {
        &[(1_000, "1k"), (10_000, "10k"), (100_000, "100k")]
    };
    let n: u64 = if quick { 20_000 } else { 200_000 };
    type Op = fn(u64) -> Duration;
    let figures: [(&str, u64, Op); 7] = [
        ("spawn_join_ns", n / 4, ops::spawn_join),
        ("sleep0_ns", n, ops::sleep0),
        ("event_pingpong_ns", n / 2, ops::event_pingpong),
        ("timer_start_stop_ns", n, ops::timer_start_stop),
        ("kill_parked_ns", n / 20, ops::kill_parked),
        ("monitored_sleep0_ns", n, ops::monitored_sleep0),
        ("run_info_per_greenlet_ns", 4, ops::run_info_per_greenlet),
    ];
    // Warm up (the stack pool, the allocator, the caches) before the first size.
    for (_, iters, op) in &figures {
        op(*iters / 10 + 1);
    }
    let mut first = vec![0f64; figures.len()];
    for (k, &(alive, label)) in sizes.iter().enumerate() {
        let sleepers = ops::Sleepers::new(alive);
        for (i, (name, iters, op)) in figures.iter().enumerate() {
            let v = best_ns(3, *iters, op);
            report(&format!("growth_{name}_{label}"), v, "ns");
            if k == 0 {
                first[i] = v;
            } else if k == sizes.len() - 1 {
                report(&format!("growth_{name}_ratio"), v / first[i], "x");
            }
        }
        sleepers.kill();
    }
}
