//! `dns` hook: `getaddrinfo` (what `ToSocketAddrs` calls) runs on the thread pool, and the
//! other greenlets run meanwhile.

use std::cell::Cell;
use std::net::ToSocketAddrs;
use std::rc::Rc;

#[test]
fn a_lookup_lets_the_other_greenlets_run_and_returns_the_answer() {
    gevent_monkey::patch_all();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let other = greenlet::spawn(move || r.set(true));
    let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "{addrs:?}"
    );
    assert!(ran.get(), "the other greenlet ran during the lookup");
    other.join().unwrap();
    // Errors come back as libc gives them.
    assert!("no-such-host.invalid:80".to_socket_addrs().is_err());
}

#[test]
fn a_lookup_outside_a_greenlet_is_the_plain_call() {
    gevent_monkey::patch_all();
    let n = std::thread::spawn(|| ("localhost", 80).to_socket_addrs().unwrap().count())
        .join()
        .unwrap();
    assert!(n > 0);
}
