//! UDP: [`UdpSocket`].

use super::addr::{ToSocketAddrs, resolve};
use super::{check_timeout, sockaddr};
use crate::source::Source as Sock;
use socket2::SockAddr;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A cooperative UDP socket, like `std::net::UdpSocket`; `!Send`. Clones share the socket.
///
/// ```
/// use gevent_io::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    sock: Sock,
    _not_send: PhantomData<*const ()>,
}

impl UdpSocket {
    /// Bind to `addr`.
    ///
    /// # Errors
    /// For example `AddrInUse`.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().port() > 0);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<UdpSocket> {
        let mut last = None;
        for a in resolve(addr)? {
            match std::net::UdpSocket::bind(a) {
                Ok(s) => return UdpSocket::from_std(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one address"))
    }

    /// Take over a `std::net::UdpSocket`.
    ///
    /// ```
    /// let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::UdpSocket::from_std(s).unwrap();
    /// # drop(s);
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Sock::new(socket.into())?,
            _not_send: PhantomData,
        })
    }

    /// Receive one datagram, waiting cooperatively; returns its length and sender.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; the socket's errors.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!(s.recv_from(&mut [0u8; 8]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn recv_from(&self, buf: &mut [u8]) -> io::Result<(usize, SocketAddr)> {
        let mut from = std::mem::MaybeUninit::<libc::sockaddr_storage>::zeroed();
        let mut len: libc::socklen_t = 0;
        let n = self.sock.io_loop(
            false,
            "receive from",
            |fd| {
                len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
                // SAFETY: `buf` and `from` are valid for writes of the lengths passed.
                unsafe {
                    crate::sys::recvfrom(
                        fd,
                        buf.as_mut_ptr().cast(),
                        buf.len(),
                        0,
                        from.as_mut_ptr().cast(),
                        &mut len,
                    )
                }
            },
            |n| n as usize,
        )?;
        // SAFETY: recvfrom filled the (zero-initialised) storage with the sender's address.
        let from = unsafe { from.assume_init() };
        Ok((n, storage_to_addr(&from)?))
    }

    /// Send one datagram to `addr`.
    ///
    /// # Errors
    /// The socket's errors.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.send_to(b"x", s.local_addr().unwrap()).unwrap(), 1);
    /// ```
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = SockAddr::from(resolve(addr)?[0]);
        self.sock.io_loop(
            true,
            "send to",
            // SAFETY: `buf` and `to` are valid for reads of the lengths passed.
            |fd| unsafe {
                crate::sys::sendto(
                    fd,
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_NOSIGNAL,
                    to.as_ptr().cast(),
                    to.len(),
                )
            },
            |n| n as usize,
        )
    }

    /// Time limit for each wait in `recv_from`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(None).unwrap();
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(check_timeout(timeout)?);
        Ok(())
    }

    /// The bound address.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }

    /// Close the socket now; a blocked receiver wakes up with an error.
    ///
    /// ```
    /// let s = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.close();
    /// assert!(s.local_addr().is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

fn storage_to_addr(st: &libc::sockaddr_storage) -> io::Result<SocketAddr> {
    match st.ss_family as libc::c_int {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in.
            let a = unsafe { &*(st as *const _ as *const libc::sockaddr_in) };
            let ip = std::net::Ipv4Addr::from(u32::from_be(a.sin_addr.s_addr));
            Ok(SocketAddr::from((ip, u16::from_be(a.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6.
            let a = unsafe { &*(st as *const _ as *const libc::sockaddr_in6) };
            let ip = std::net::Ipv6Addr::from(a.sin6_addr.s6_addr);
            Ok(SocketAddr::V6(std::net::SocketAddrV6::new(
                ip,
                u16::from_be(a.sin6_port),
                a.sin6_flowinfo,
                a.sin6_scope_id,
            )))
        }
        f => Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("unexpected address family {f}"),
        )),
    }
}

raw_fd!(UdpSocket);
