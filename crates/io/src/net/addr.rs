//! Addresses: what the sockets accept ([`ToSocketAddrs`]), resolved off the hub.

#![forbid(unsafe_code)]

use std::io::{self};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};

/// What the sockets of this module accept as an address: `std::net::ToSocketAddrs` for
/// greenlets. The same types are accepted (`SocketAddr`, `(IpAddr, u16)`, `"host:port"`,
/// `("host", port)`, `&[SocketAddr]`, references to them), but a host *name* is resolved on
/// the thread pool (as std resolves it, an IPv6 zone such as `%eth0` included) so that the
/// hub keeps serving other greenlets meanwhile; address literals are parsed in place.
///
/// Sealed: implemented for exactly the types above. A type of your own that implements
/// `std::net::ToSocketAddrs` is not accepted (its resolution could block the hub): resolve it
/// yourself (on the thread pool if it may block) and pass the `SocketAddr`s.
///
/// ```
/// use gevent_io::net::{TcpListener, TcpStream};
/// let l = TcpListener::bind("localhost:0").unwrap(); // resolved off the hub
/// let port = l.local_addr().unwrap().port();
/// let s = TcpStream::connect(("localhost", port)).unwrap();
/// assert!(s.peer_addr().unwrap().ip().is_loopback());
/// ```
pub trait ToSocketAddrs: sealed::Resolve {}

mod sealed {
    use std::io;
    use std::net::SocketAddr;

    /// How each address type resolves; private, so that the trait stays sealed.
    pub trait Resolve {
        fn resolve_all(&self) -> io::Result<Vec<SocketAddr>>;
    }
}

macro_rules! literal_addrs {
    ($($t:ty),*) => {$(
        impl sealed::Resolve for $t {
            fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
                Ok(vec![SocketAddr::from(*self)])
            }
        }
        impl ToSocketAddrs for $t {}
    )*};
}

literal_addrs!(
    SocketAddr,
    SocketAddrV4,
    SocketAddrV6,
    (IpAddr, u16),
    (Ipv4Addr, u16),
    (Ipv6Addr, u16),
    ([u8; 4], u16),
    ([u16; 8], u16)
);

/// `host` with `port`: a literal address as it is, a name through the thread pool.
fn resolve_host(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    crate::dns::lookup_socket_addrs(host, port)
}

impl sealed::Resolve for str {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        if let Ok(a) = self.parse::<SocketAddr>() {
            return Ok(vec![a]);
        }
        let invalid = |what| io::Error::new(io::ErrorKind::InvalidInput, what);
        let (host, port) = self
            .rsplit_once(':')
            .ok_or_else(|| invalid("invalid socket address"))?;
        let port = port.parse().map_err(|_| invalid("invalid port value"))?;
        resolve_host(host, port)
    }
}
impl ToSocketAddrs for str {}

impl sealed::Resolve for String {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        self.as_str().resolve_all()
    }
}
impl ToSocketAddrs for String {}

impl sealed::Resolve for (&str, u16) {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        resolve_host(self.0, self.1)
    }
}
impl ToSocketAddrs for (&str, u16) {}

impl sealed::Resolve for (String, u16) {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        resolve_host(&self.0, self.1)
    }
}
impl ToSocketAddrs for (String, u16) {}

impl sealed::Resolve for [SocketAddr] {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        Ok(self.to_vec())
    }
}
impl ToSocketAddrs for [SocketAddr] {}

impl<T: ToSocketAddrs + ?Sized> sealed::Resolve for &T {
    fn resolve_all(&self) -> io::Result<Vec<SocketAddr>> {
        (**self).resolve_all()
    }
}
impl<T: ToSocketAddrs + ?Sized> ToSocketAddrs for &T {}

/// Every address `addr` stands for (at least one).
pub(crate) fn resolve(addr: impl ToSocketAddrs) -> io::Result<Vec<SocketAddr>> {
    let addrs = addr.resolve_all()?;
    if addrs.is_empty() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "no addresses to connect to",
        ));
    }
    Ok(addrs)
}
