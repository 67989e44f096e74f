//! Name resolution that does not block the hub: `getaddrinfo` runs on the thread pool while
//! the hub keeps serving other greenlets.
//!
//! ```
//! let addrs = gevent_io::dns::lookup_host("localhost").unwrap();
//! assert!(addrs.iter().any(|a| a.is_loopback()));
//! ```

#![forbid(unsafe_code)]

use greenlet::threadpool::spawn_blocking;
use std::io;
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};

/// Resolve `host` (a name or an address literal) to its IP addresses, on the thread pool.
///
/// # Errors
/// The resolver's error (for a name that does not resolve, `io::ErrorKind` is whatever the
/// system resolver reports, with its message), or the wait's error (for example a timeout of
/// an enclosing [`Timeout`](greenlet::Timeout)).
///
/// ```
/// let ips = gevent_io::dns::lookup_host("127.0.0.1").unwrap();
/// assert_eq!(ips, ["127.0.0.1".parse::<std::net::IpAddr>().unwrap()]);
/// assert!(gevent_io::dns::lookup_host("no-such-host.invalid").is_err());
/// ```
pub fn lookup_host(host: &str) -> io::Result<Vec<IpAddr>> {
    let mut ips: Vec<IpAddr> = Vec::new();
    for a in lookup_socket_addrs(host, 0)? {
        if !ips.contains(&a.ip()) {
            ips.push(a.ip());
        }
    }
    Ok(ips)
}

/// `(host, port)` resolved on the thread pool as std resolves it (an IPv6 zone such as
/// `fe80::1%eth0` kept in the scope id); a literal address in place.
pub(crate) fn lookup_socket_addrs(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    let name = host.to_owned();
    let task = spawn_blocking(move || -> io::Result<Vec<SocketAddr>> {
        Ok((name.as_str(), port).to_socket_addrs()?.collect())
    });
    match task.join() {
        Ok(r) => r,
        Err(greenlet::JoinError::Wait(e)) => Err(e.into()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}
