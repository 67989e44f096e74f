//! TCP: [`TcpStream`] and [`TcpListener`].

use super::addr::{ToSocketAddrs, resolve};
use super::{check_timeout, sockaddr};
use crate::source::Source as Sock;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{Shutdown, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A cooperative TCP connection, like `std::net::TcpStream`; `!Send`. Clones share the
/// socket (so one greenlet can read while another writes); it is closed when the last clone
/// is dropped, or by [`close`](TcpStream::close).
///
/// ```
/// use gevent_io::net::{TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
/// ```
#[derive(Clone)]
pub struct TcpStream {
    sock: Sock,
    _not_send: PhantomData<*const ()>,
}

impl TcpStream {
    /// Connect to `addr` (each resolved address in turn), waiting cooperatively.
    ///
    /// # Errors
    /// The connect error of the last address tried (for example `ConnectionRefused`).
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = l.local_addr().unwrap().port();
    /// drop(l);
    /// let e = gevent_io::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(addr, None)
    }

    /// Connect with a timeout per address tried. The timeout does not cover resolving a host
    /// name (on the thread pool): to bound the whole call, run it in a
    /// [`Timeout`](greenlet::Timeout) scope.
    ///
    /// # Errors
    /// `TimedOut` when the connection is not established in time, or the connect error;
    /// `InvalidInput` for a zero timeout, as `std::net::TcpStream::connect_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let s = gevent_io::net::TcpStream::connect_timeout(addr, Duration::from_secs(1));
    /// assert!(s.is_ok());
    /// ```
    pub fn connect_timeout(addr: impl ToSocketAddrs, timeout: Duration) -> io::Result<TcpStream> {
        Self::connect_inner(addr, check_timeout(Some(timeout))?)
    }

    fn connect_inner(addr: impl ToSocketAddrs, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let mut last = None;
        for a in resolve(addr)? {
            match Self::connect_one(a, timeout) {
                Ok(s) => return Ok(s),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one address"))
    }

    fn connect_one(addr: SocketAddr, timeout: Option<Duration>) -> io::Result<TcpStream> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_nonblocking(true)?;
        let stream = TcpStream::from_owned(socket.into())?;
        match stream.sock.socket()?.connect(&SockAddr::from(addr)) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {
                let fd = stream.sock.fd()?;
                stream.sock.set_write_timeout(timeout);
                let waited = stream.sock.wait(true, fd, "connect");
                stream.sock.set_write_timeout(None);
                waited?;
                if let Some(e) = stream.sock.socket()?.take_error()? {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        Ok(stream)
    }

    fn from_owned(fd: OwnedFd) -> io::Result<TcpStream> {
        Ok(TcpStream {
            sock: Sock::new(fd)?,
            _not_send: PhantomData,
        })
    }

    /// Take over a connected `std::net::TcpStream` (it is switched to non-blocking mode).
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = gevent_io::net::TcpStream::from_std(std_stream).unwrap();
    /// # drop(s);
    /// ```
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        TcpStream::from_owned(stream.into())
    }

    /// Give the socket back as a blocking `std::net::TcpStream`.
    ///
    /// # Errors
    /// If other clones of this stream exist, or the socket was closed.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let std_stream = s.into_std().unwrap();
    /// # drop(std_stream);
    /// ```
    pub fn into_std(self) -> io::Result<std::net::TcpStream> {
        let fd = self.sock.into_raw()?;
        // SAFETY: we owned `fd` and have just detached it from the cooperative socket.
        let s = unsafe { std::net::TcpStream::from_raw_fd(fd) };
        s.set_nonblocking(false)?;
        Ok(s)
    }

    /// Close the socket now. Greenlets blocked reading or writing it wake up with an error
    /// (`EBADF`); later calls on any clone fail the same way.
    ///
    /// ```
    /// use std::io::Read;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.close();
    /// assert!((&s).read(&mut [0u8; 4]).is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }

    /// Time limit for each wait in `read` (`None`: no limit). A read that waits longer fails
    /// with `TimedOut`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as `std::net::TcpStream::set_read_timeout`.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// assert_eq!(s.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(check_timeout(timeout)?);
        Ok(())
    }

    /// Time limit for each wait in `write`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as
    /// [`set_read_timeout`](TcpStream::set_read_timeout).
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(check_timeout(timeout)?);
        Ok(())
    }

    /// The read timeout.
    ///
    /// # Errors
    /// Never.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.read_timeout())
    }

    /// The write timeout.
    ///
    /// # Errors
    /// Never.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.write_timeout())
    }

    /// Shut down one or both directions (a half-close with `Shutdown::Write`).
    ///
    /// ```
    /// use std::io::Read;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// s.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(peer.read(&mut [0u8; 8]).unwrap(), 0); // EOF
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.socket()?.shutdown(how)
    }

    /// Disable (true) or enable Nagle's algorithm.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.socket()?.set_tcp_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is disabled.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let _ = s.nodelay().unwrap();
    /// ```
    pub fn nodelay(&self) -> io::Result<bool> {
        self.sock.socket()?.tcp_nodelay()
    }

    /// Set `SO_LINGER`. `Some(Duration::ZERO)` makes closing the stream *reset* the connection
    /// (the peer's next read or write fails with `ConnectionReset`) instead of a graceful FIN;
    /// `None` restores the default graceful close. The socket is non-blocking, so a non-zero
    /// linger never makes the close wait.
    ///
    /// ```
    /// use std::io::Read;
    /// use std::time::Duration;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (mut peer, _) = l.accept().unwrap();
    /// s.set_linger(Some(Duration::ZERO)).unwrap();
    /// assert_eq!(s.linger().unwrap(), Some(Duration::ZERO));
    /// drop(s);
    /// let err = peer.read(&mut [0u8; 8]).unwrap_err();
    /// assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset);
    /// ```
    pub fn set_linger(&self, linger: Option<Duration>) -> io::Result<()> {
        self.sock.socket()?.set_linger(linger)
    }

    /// The `SO_LINGER` setting (see [`set_linger`](TcpStream::set_linger)).
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.linger().unwrap(), None);
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock.socket()?.linger()
    }

    /// Read what has arrived, without waiting: `WouldBlock` if nothing has (tokio's
    /// `try_read`). `Ok(0)` is the end of the stream, as for `read`.
    ///
    /// # Errors
    /// `WouldBlock`, or what the read fails with.
    ///
    /// ```
    /// use std::io::Write;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.try_read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// c.write_all(b"abc").unwrap(); // over loopback, there once the write returns
    /// assert_eq!(s.try_read(&mut buf).unwrap(), 3);
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.sock.try_read(buf)
    }

    /// Wait until there is something to read (data, the end of the stream, or an error),
    /// without reading it (gevent's `wait_read`, tokio's `readable`): the read after it finds
    /// it at once, so that a server with many idle connections need not keep a buffer for
    /// each while it waits. The read timeout applies; [`cancel_read`](TcpStream::cancel_read)
    /// ends the wait too.
    ///
    /// # Errors
    /// `TimedOut` once the read timeout passes or the wait is cancelled; `EBADF` once closed.
    ///
    /// ```
    /// use std::io::Write;
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut c = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// c.write_all(b"abc").unwrap();
    /// s.wait_readable().unwrap();
    /// assert_eq!(s.try_read(&mut [0u8; 8]).unwrap(), 3);
    /// ```
    pub fn wait_readable(&self) -> io::Result<()> {
        self.sock.wait_readable()
    }

    /// End another greenlet's wait to read this stream now: its read returns an error of kind
    /// `TimedOut`, as if its read timeout had passed; whether one was waiting (see
    /// [`Source::cancel_read`](crate::source::Source::cancel_read)). Unlike shutting the read
    /// side, it leaves the stream as it was: what arrives later is read as usual.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let c = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let (s, _) = l.accept().unwrap();
    /// let s = std::rc::Rc::new(s);
    /// let reader = s.clone();
    /// let g = greenlet::spawn(move || (&*reader).read(&mut [0u8; 8]).unwrap_err().kind());
    /// greenlet::yield_now().unwrap(); // it waits: nothing has arrived
    /// assert!(s.cancel_read());
    /// assert_eq!(g.join().unwrap(), std::io::ErrorKind::TimedOut);
    /// # use std::io::Read; drop(c);
    /// ```
    pub fn cancel_read(&self) -> bool {
        self.sock.cancel_read()
    }

    /// The remote address.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.peer_addr()?)
    }

    /// The local address.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = gevent_io::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }
}

stream_io!(TcpStream);
raw_fd!(TcpStream);

/// A cooperative TCP listener, like `std::net::TcpListener`; `!Send`.
///
/// ```
/// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// assert!(l.local_addr().unwrap().port() > 0);
/// ```
pub struct TcpListener {
    sock: Sock,
    _not_send: PhantomData<*const ()>,
}

impl TcpListener {
    /// Bind to `addr` and listen (backlog 1024, `SO_REUSEADDR` on).
    ///
    /// # Errors
    /// For example `AddrInUse` when the port is taken.
    ///
    /// ```
    /// let a = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let e = gevent_io::net::TcpListener::bind(a.local_addr().unwrap()).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false)
    }

    /// Bind with `SO_REUSEPORT` too, so several threads can each listen on the same port (one
    /// hub per thread, the kernel spreading connections among them).
    ///
    /// ```
    /// let a = gevent_io::net::TcpListener::bind_reuse_port("127.0.0.1:0").unwrap();
    /// let b = gevent_io::net::TcpListener::bind_reuse_port(a.local_addr().unwrap()).unwrap();
    /// assert_eq!(a.local_addr().unwrap(), b.local_addr().unwrap());
    /// ```
    pub fn bind_reuse_port(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, true)
    }

    fn bind_with(addr: impl ToSocketAddrs, reuse_port: bool) -> io::Result<TcpListener> {
        let mut last = None;
        for a in resolve(addr)? {
            let attempt = (|| {
                let s = Socket::new(Domain::for_address(a), Type::STREAM, Some(Protocol::TCP))?;
                s.set_reuse_address(true)?;
                if reuse_port {
                    s.set_reuse_port(true)?;
                }
                s.bind(&SockAddr::from(a))?;
                s.listen(1024)?;
                TcpListener::from_owned(s.into())
            })();
            match attempt {
                Ok(l) => return Ok(l),
                Err(e) => last = Some(e),
            }
        }
        Err(last.expect("at least one address"))
    }

    fn from_owned(fd: OwnedFd) -> io::Result<TcpListener> {
        Ok(TcpListener {
            sock: Sock::new(fd)?,
            _not_send: PhantomData,
        })
    }

    /// Take over a `std::net::TcpListener`.
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = gevent_io::net::TcpListener::from_std(std_l).unwrap();
    /// # drop(l);
    /// ```
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        TcpListener::from_owned(listener.into())
    }

    /// Wait for a connection; returns the connected stream and the peer's address.
    ///
    /// # Errors
    /// The accept error (`EMFILE` when out of descriptors, …), or the wait's error.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let c = greenlet::spawn(move || gevent_io::net::TcpStream::connect(addr).unwrap());
    /// let (s, peer) = l.accept().unwrap();
    /// assert_eq!(peer, c.join().unwrap().local_addr().unwrap());
    /// # drop(s);
    /// ```
    pub fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let owned = self.sock.accept()?;
        let stream = TcpStream::from_owned(owned)?;
        let peer = stream.peer_addr()?;
        Ok((stream, peer))
    }

    /// The bound address.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }

    /// Close the listener now; a greenlet blocked in `accept` wakes up with an error.
    ///
    /// ```
    /// let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.close();
    /// assert!(l.accept().is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

raw_fd!(TcpListener);
