//! `dns`: names resolved on the thread pool while the hub runs.

use greenlet::spawn;

#[test]
fn dns_resolves_localhost_and_reports_unknown_names() {
    let ips = gevent_io::dns::lookup_host("localhost").unwrap();
    assert!(
        ips.iter().all(|ip| ip.is_loopback()) && !ips.is_empty(),
        "{ips:?}"
    );
    let e = gevent_io::dns::lookup_host("no-such-host.invalid").unwrap_err();
    assert!(!e.to_string().is_empty());
    // Lookups run concurrently with other greenlets.
    let gs: Vec<_> = ["localhost", "127.0.0.1", "::1"]
        .into_iter()
        .map(|h| spawn(move || gevent_io::dns::lookup_host(h)))
        .collect();
    for g in gs {
        assert!(!g.join().unwrap().unwrap().is_empty());
    }
}
