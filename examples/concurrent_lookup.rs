//! The design seed's gevent example, in Rust: one greenlet per host name, `joinall` with a 2 s
//! timeout, then each result. Resolution runs on the hub's thread pool, so the lookups overlap
//! and the hub never blocks. The names work offline; the last one shows an error.
//!
//! `cargo run --release --example concurrent_lookup [NAME...]`

use std::time::{Duration, Instant};

fn main() {
    let mut hosts: Vec<String> = std::env::args().skip(1).collect();
    if hosts.is_empty() {
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        hosts = vec![
            "localhost".into(),
            hostname,
            "127.0.0.1".into(),
            "no-such-host.invalid".into(),
        ];
    }
    let start = Instant::now();
    let jobs: Vec<_> = hosts
        .iter()
        .map(|h| {
            let h = h.clone();
            gevent::Builder::new()
                .name(format!("lookup {h}"))
                .spawn(move || gevent::dns::lookup_host(&h))
                .expect("spawn")
        })
        .collect();
    let finished = gevent::joinall(&jobs, Some(Duration::from_secs(2))).expect("joinall");
    println!(
        "{} of {} lookups finished in {:?}",
        finished.len(),
        jobs.len(),
        start.elapsed()
    );
    for (host, job) in hosts.iter().zip(jobs) {
        if !job.is_dead() {
            println!("{host:>24}: still running after the timeout");
            job.kill();
            continue;
        }
        match job.join() {
            Ok(Ok(ips)) => {
                let ips: Vec<String> = ips.iter().map(|ip| ip.to_string()).collect();
                println!("{host:>24}: {}", ips.join(", "));
            }
            Ok(Err(e)) => println!("{host:>24}: error: {e}"),
            Err(e) => println!("{host:>24}: failed: {e}"),
        }
    }
}
