//! Cooperative TCP sockets shaped like `std::net`: every wait switches to the hub instead of
//! blocking the thread.
//!
//! A socket keeps one read and one write io watcher for its whole life and re-arms them around
//! each wait; the per-read path allocates nothing. A read tries the system call first and waits
//! for readiness only on `EAGAIN`, except right after a stream read that returned less than
//! asked: that read emptied the socket's buffer, so the next one waits for readiness first
//! instead of making a system call that would almost always fail (tokio does the same). Data
//! that arrived in between is read after one pass of the hub. Only one greenlet may wait on a socket in each
//! direction at a time: a second concurrent reader (or writer) gets an error of kind
//! `ResourceBusy` (gevent's `ConcurrentObjectUseError`) instead of silently stealing the wake-up.
//! [`TcpStream::close`] wakes greenlets blocked on the socket with an error.
//!
//! ```
//! use greenlet::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = greenlet::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut echo = [0u8; 5];
//! client.read_exact(&mut echo).unwrap();
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap();
//! ```

use crate::error::Error;
use crate::hub::{self, Waiter, WakeToken};
use ev_loop::{Events, Io};
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, Shutdown, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

fn wait_error(e: Error) -> io::Error {
    io::Error::from(e)
}

fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

fn closed() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// std's rule for socket timeouts: `Some(Duration::ZERO)` is refused.
fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(timeout)
}

/// Wait until `fd` is readable, at most `timeout`.
///
/// # Errors
/// `TimedOut` after the timeout; `InvalidInput`/`EBADF` for a bad fd; the hub's errors
/// (would block forever, blocking in the hub) as `io::Error`s.
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let r = greenlet::net::wait_readable(b.as_raw_fd(), Some(std::time::Duration::from_millis(10)));
/// assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// # drop(a);
/// ```
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Events::READ, timeout)
}

/// Wait until `fd` is writable, at most `timeout`.
///
/// # Errors
/// As for [`wait_readable`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// greenlet::net::wait_writable(a.as_raw_fd(), None).unwrap();
/// ```
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Events::WRITE, timeout)
}

fn wait_fd(fd: RawFd, events: Events, timeout: Option<Duration>) -> io::Result<()> {
    let h = hub::hub();
    let w = Waiter::new("fd").map_err(wait_error)?;
    let token = w.token();
    let io = Io::new(&h.lp, fd, events, move |_, _| {
        token.wake();
    })?;
    io.start();
    drop(h);
    match w.wait(timeout) {
        Ok(()) => Ok(()),
        Err(Error::Timeout(_)) if timeout.is_some() => Err(timed_out()),
        Err(e) => Err(wait_error(e)),
    }
}

/// One direction of a socket: its io watcher and the greenlet waiting on it.
struct Direction {
    events: Events,
    io: RefCell<Option<Io>>,
    waiter: Rc<RefCell<Option<WakeToken>>>,
    timeout: Cell<Option<Duration>>,
}

impl Direction {
    fn new(events: Events) -> Direction {
        Direction {
            events,
            io: RefCell::new(None),
            waiter: Rc::new(RefCell::new(None)),
            timeout: Cell::new(None),
        }
    }

    /// Wait until the fd is ready in this direction (or the socket is closed).
    fn wait(&self, fd: RawFd, what: &'static str) -> io::Result<()> {
        if fd < 0 {
            return Err(closed());
        }
        if let Some(other) = self.waiter.borrow().as_ref() {
            if other.is_waiting() {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "another greenlet ({}) is already waiting to {what} this socket",
                        other.g.name()
                    ),
                ));
            }
        }
        let w = Waiter::new(what).map_err(wait_error)?;
        {
            let mut io = self.io.borrow_mut();
            if io.is_none() {
                let slot = self.waiter.clone();
                let watcher = Io::new(&hub::hub().lp, fd, self.events, move |io, _| {
                    if let Some(t) = slot.borrow_mut().take() {
                        t.wake();
                    }
                    // One-shot: the woken greenlet may not run before the next poll (with
                    // thousands of connections ready, most do not), and a watcher left active
                    // on a socket that is still readable would be reported again at every poll
                    // until it does — each poll would cost as much as every ready socket, not
                    // as much as the new ones. The greenlet re-arms it if it has to wait again.
                    io.stop();
                })?;
                *io = Some(watcher);
            }
            io.as_ref().expect("created above").start();
        }
        *self.waiter.borrow_mut() = Some(w.token());
        let timeout = self.timeout.get();
        // Disarms when the wait ends, also when it unwinds (the greenlet was killed): an io
        // watcher left active would keep the hub's loop alive and keep firing for nobody.
        let disarm = Disarm {
            dir: self,
            serial: w.serial,
        };
        let r = w.wait(timeout);
        drop(disarm);
        match r {
            Ok(()) => Ok(()),
            Err(Error::Timeout(_)) if timeout.is_some() => Err(timed_out()),
            Err(e) => Err(wait_error(e)),
        }
    }

    /// Wake the waiter (the socket is being closed) and drop the watcher.
    fn close(&self) {
        if let Some(t) = self.waiter.borrow_mut().take() {
            t.wake();
        }
        self.io.borrow_mut().take();
    }
}

/// Ends a [`Direction::wait`]: forgets its waiter and stops the io watcher, unless another
/// greenlet already waits in its place (it came in after this one was woken).
struct Disarm<'a> {
    dir: &'a Direction,
    serial: u64,
}

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        let mut slot = self.dir.waiter.borrow_mut();
        if slot.as_ref().is_some_and(|t| t.serial != self.serial) {
            return;
        }
        slot.take();
        drop(slot);
        if let Some(io) = self.dir.io.borrow().as_ref() {
            io.stop();
        }
    }
}

/// The shared state of a cooperative socket.
struct Sock {
    fd: Cell<RawFd>,
    read: Direction,
    write: Direction,
    /// The last read of a stream returned less than asked: it emptied the socket's buffer.
    drained: Cell<bool>,
}

impl Sock {
    fn new(fd: OwnedFd) -> io::Result<Sock> {
        let fd = fd.into_raw_fd();
        // SAFETY: `fd` is an open descriptor we own; setting O_NONBLOCK on it.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags < 0 || libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) < 0 {
                let e = io::Error::last_os_error();
                libc::close(fd);
                return Err(e);
            }
        }
        Ok(Sock {
            fd: Cell::new(fd),
            read: Direction::new(Events::READ),
            write: Direction::new(Events::WRITE),
            drained: Cell::new(false),
        })
    }

    fn fd(&self) -> io::Result<RawFd> {
        let fd = self.fd.get();
        if fd < 0 { Err(closed()) } else { Ok(fd) }
    }

    /// Retry `op` until it does not report EAGAIN, waiting in `dir` in between.
    fn io_loop<T>(
        &self,
        write: bool,
        what: &'static str,
        mut op: impl FnMut(RawFd) -> isize,
        done: impl Fn(isize) -> T,
    ) -> io::Result<T> {
        loop {
            let fd = self.fd()?;
            let n = op(fd);
            if n >= 0 {
                return Ok(done(n));
            }
            let e = io::Error::last_os_error();
            match e.raw_os_error() {
                Some(libc::EAGAIN) => {
                    let dir = if write { &self.write } else { &self.read };
                    dir.wait(fd, what)?;
                }
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
        }
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained.replace(false) && !buf.is_empty() {
            let fd = self.fd()?;
            self.read.wait(fd, "read")?;
        }
        let n = self.io_loop(
            false,
            "read",
            // SAFETY: `buf` is valid for writes of its length; `fd` is our open socket.
            |fd| unsafe { libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) },
            |n| n as usize,
        )?;
        self.drained.set(n > 0 && n < buf.len());
        Ok(n)
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        self.io_loop(
            true,
            "write",
            // SAFETY: `buf` is valid for reads of its length; MSG_NOSIGNAL turns a closed peer
            // into EPIPE instead of SIGPIPE.
            |fd| unsafe { libc::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL) },
            |n| n as usize,
        )
    }

    /// Accept a connection on a listening socket: the new (non-blocking) descriptor.
    fn accept(&self) -> io::Result<OwnedFd> {
        let fd = self.io_loop(
            false,
            "accept",
            // SAFETY: accept4 on our listening socket; null address pointers are allowed.
            |fd| unsafe {
                libc::accept4(
                    fd,
                    std::ptr::null_mut(),
                    std::ptr::null_mut(),
                    libc::SOCK_CLOEXEC | libc::SOCK_NONBLOCK,
                ) as isize
            },
            |n| n as RawFd,
        )?;
        // SAFETY: accept4 returned a new descriptor that we now own.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    }

    /// Detach the descriptor (the socket no longer closes it).
    fn into_raw(self: Rc<Self>) -> io::Result<RawFd> {
        let sock = Rc::try_unwrap(self).map_err(|_| {
            io::Error::new(
                io::ErrorKind::ResourceBusy,
                "other clones of this socket exist",
            )
        })?;
        let fd = sock.fd.replace(-1);
        sock.read.close();
        sock.write.close();
        if fd < 0 { Err(closed()) } else { Ok(fd) }
    }

    fn close(&self) {
        let fd = self.fd.replace(-1);
        if fd >= 0 {
            // Watchers go first (they reference the fd), then waiters are woken and see it
            // closed.
            self.read.close();
            self.write.close();
            // SAFETY: we owned `fd` and nothing else uses it any more (fd is now -1 here).
            unsafe { libc::close(fd) };
        }
    }

    fn socket(&self) -> io::Result<std::mem::ManuallyDrop<Socket>> {
        let fd = self.fd()?;
        // SAFETY: a borrowed view of our open fd; ManuallyDrop keeps socket2 from closing it.
        Ok(std::mem::ManuallyDrop::new(unsafe {
            Socket::from_raw_fd(fd)
        }))
    }
}

impl Drop for Sock {
    fn drop(&mut self) {
        self.close();
    }
}

/// A cooperative TCP connection, like `std::net::TcpStream`; `!Send`. Clones share the
/// socket (so one greenlet can read while another writes); it is closed when the last clone
/// is dropped, or by [`close`](TcpStream::close).
///
/// ```
/// use greenlet::net::{TcpListener, TcpStream};
/// let l = TcpListener::bind("127.0.0.1:0").unwrap();
/// let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
/// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
/// ```
#[derive(Clone)]
pub struct TcpStream {
    sock: Rc<Sock>,
    _not_send: PhantomData<*const ()>,
}

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
/// use greenlet::net::{TcpListener, TcpStream};
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

impl TcpStream {
    /// Connect to `addr` (each resolved address in turn), waiting cooperatively.
    ///
    /// # Errors
    /// The connect error of the last address tried (for example `ConnectionRefused`).
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let port = l.local_addr().unwrap().port();
    /// drop(l);
    /// let e = greenlet::net::TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::ConnectionRefused);
    /// ```
    pub fn connect(addr: impl ToSocketAddrs) -> io::Result<TcpStream> {
        Self::connect_inner(addr, None)
    }

    /// Connect with a timeout per address tried. The timeout does not cover resolving a host
    /// name (on the thread pool): to bound the whole call, run it in a
    /// [`Timeout`](crate::Timeout) scope.
    ///
    /// # Errors
    /// `TimedOut` when the connection is not established in time, or the connect error;
    /// `InvalidInput` for a zero timeout, as `std::net::TcpStream::connect_timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let s = greenlet::net::TcpStream::connect_timeout(addr, Duration::from_secs(1));
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
                stream.sock.write.timeout.set(timeout);
                let waited = stream.sock.write.wait(fd, "connect");
                stream.sock.write.timeout.set(None);
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
            sock: Rc::new(Sock::new(fd)?),
            _not_send: PhantomData,
        })
    }

    /// Take over a connected `std::net::TcpStream` (it is switched to non-blocking mode).
    ///
    /// ```
    /// let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let std_stream = std::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// let s = greenlet::net::TcpStream::from_std(std_stream).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let mut s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_read_timeout(Some(Duration::from_millis(10))).unwrap();
    /// assert_eq!(s.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.read.timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// Time limit for each wait in `write`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as
    /// [`set_read_timeout`](TcpStream::set_read_timeout).
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(1))).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), Some(std::time::Duration::from_secs(1)));
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.write.timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The read timeout.
    ///
    /// # Errors
    /// Never.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.read_timeout().unwrap(), None);
    /// ```
    pub fn read_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.read.timeout.get())
    }

    /// The write timeout.
    ///
    /// # Errors
    /// Never.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.write_timeout().unwrap(), None);
    /// ```
    pub fn write_timeout(&self) -> io::Result<Option<Duration>> {
        Ok(self.sock.write.timeout.get())
    }

    /// Shut down one or both directions (a half-close with `Shutdown::Write`).
    ///
    /// ```
    /// use std::io::Read;
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// s.set_nodelay(true).unwrap();
    /// assert!(s.nodelay().unwrap());
    /// ```
    pub fn set_nodelay(&self, nodelay: bool) -> io::Result<()> {
        self.sock.socket()?.set_tcp_nodelay(nodelay)
    }

    /// Whether Nagle's algorithm is disabled.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.linger().unwrap(), None);
    /// ```
    pub fn linger(&self) -> io::Result<Option<Duration>> {
        self.sock.socket()?.linger()
    }

    /// The remote address.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert_eq!(s.peer_addr().unwrap(), l.local_addr().unwrap());
    /// ```
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.peer_addr()?)
    }

    /// The local address.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let s = greenlet::net::TcpStream::connect(l.local_addr().unwrap()).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }
}

fn sockaddr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}

macro_rules! stream_io {
    ($t:ty) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read(buf)
            }
        }
        impl Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read(buf)
            }
        }
        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.sock.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Write for &$t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.sock.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

stream_io!(TcpStream);
stream_io!(UnixStream);

/// `Debug`, `AsRawFd`, `IntoRawFd` (fails to give up the fd while clones exist: it panics, as the trait
/// cannot return an error — use `into_std` to handle that) and `FromRawFd` for a socket type.
macro_rules! raw_fd {
    ($t:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.sock.fd.get()
            }
        }
        impl FromRawFd for $t {
            /// Take ownership of an open socket descriptor (made non-blocking).
            ///
            /// # Panics
            /// If the descriptor cannot be made non-blocking.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller hands us ownership of an open descriptor.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                Self {
                    sock: Rc::new(Sock::new(owned).expect("make the descriptor non-blocking")),
                    _not_send: PhantomData,
                }
            }
        }
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                self.sock
                    .into_raw()
                    .expect("no other clones of this socket")
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("fd", &self.sock.fd.get())
                    .finish()
            }
        }
    };
}

raw_fd!(TcpStream);
raw_fd!(TcpListener);
raw_fd!(UdpSocket);
raw_fd!(UnixStream);
raw_fd!(UnixListener);

/// A cooperative TCP listener, like `std::net::TcpListener`; `!Send`.
///
/// ```
/// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
/// assert!(l.local_addr().unwrap().port() > 0);
/// ```
pub struct TcpListener {
    sock: Rc<Sock>,
    _not_send: PhantomData<*const ()>,
}

impl TcpListener {
    /// Bind to `addr` and listen (backlog 1024, `SO_REUSEADDR` on).
    ///
    /// # Errors
    /// For example `AddrInUse` when the port is taken.
    ///
    /// ```
    /// let a = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let e = greenlet::net::TcpListener::bind(a.local_addr().unwrap()).unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::AddrInUse);
    /// ```
    pub fn bind(addr: impl ToSocketAddrs) -> io::Result<TcpListener> {
        Self::bind_with(addr, false)
    }

    /// Bind with `SO_REUSEPORT` too, so several threads can each listen on the same port (one
    /// hub per thread, the kernel spreading connections among them).
    ///
    /// ```
    /// let a = greenlet::net::TcpListener::bind_reuse_port("127.0.0.1:0").unwrap();
    /// let b = greenlet::net::TcpListener::bind_reuse_port(a.local_addr().unwrap()).unwrap();
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
            sock: Rc::new(Sock::new(fd)?),
            _not_send: PhantomData,
        })
    }

    /// Take over a `std::net::TcpListener`.
    ///
    /// ```
    /// let std_l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let l = greenlet::net::TcpListener::from_std(std_l).unwrap();
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// let addr = l.local_addr().unwrap();
    /// let c = greenlet::spawn(move || greenlet::net::TcpStream::connect(addr).unwrap());
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
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// assert!(l.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }

    /// Close the listener now; a greenlet blocked in `accept` wakes up with an error.
    ///
    /// ```
    /// let l = greenlet::net::TcpListener::bind("127.0.0.1:0").unwrap();
    /// l.close();
    /// assert!(l.accept().is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

/// A cooperative UDP socket, like `std::net::UdpSocket`; `!Send`. Clones share the socket.
///
/// ```
/// use greenlet::net::UdpSocket;
/// let a = UdpSocket::bind("127.0.0.1:0").unwrap();
/// let b = UdpSocket::bind("127.0.0.1:0").unwrap();
/// a.send_to(b"ping", b.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, from) = b.recv_from(&mut buf).unwrap();
/// assert_eq!((&buf[..n], from), (&b"ping"[..], a.local_addr().unwrap()));
/// ```
#[derive(Clone)]
pub struct UdpSocket {
    sock: Rc<Sock>,
    _not_send: PhantomData<*const ()>,
}

impl UdpSocket {
    /// Bind to `addr`.
    ///
    /// # Errors
    /// For example `AddrInUse`.
    ///
    /// ```
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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
    /// let s = greenlet::net::UdpSocket::from_std(s).unwrap();
    /// # drop(s);
    /// ```
    pub fn from_std(socket: std::net::UdpSocket) -> io::Result<UdpSocket> {
        Ok(UdpSocket {
            sock: Rc::new(Sock::new(socket.into())?),
            _not_send: PhantomData,
        })
    }

    /// Receive one datagram, waiting cooperatively; returns its length and sender.
    ///
    /// # Errors
    /// `TimedOut` after the read timeout; the socket's errors.
    ///
    /// ```
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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
                    libc::recvfrom(
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
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert_eq!(s.send_to(b"x", s.local_addr().unwrap()).unwrap(), 1);
    /// ```
    pub fn send_to(&self, buf: &[u8], addr: impl ToSocketAddrs) -> io::Result<usize> {
        let to = SockAddr::from(resolve(addr)?[0]);
        self.sock.io_loop(
            true,
            "send to",
            // SAFETY: `buf` and `to` are valid for reads of the lengths passed.
            |fd| unsafe {
                libc::sendto(
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
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// s.set_read_timeout(None).unwrap();
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.read.timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// The bound address.
    ///
    /// ```
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        sockaddr(self.sock.socket()?.local_addr()?)
    }

    /// Close the socket now; a blocked receiver wakes up with an error.
    ///
    /// ```
    /// let s = greenlet::net::UdpSocket::bind("127.0.0.1:0").unwrap();
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

/// A cooperative Unix stream socket, like `std::os::unix::net::UnixStream`; `!Send`. Clones
/// share the socket.
///
/// ```
/// use greenlet::net::UnixStream;
/// use std::io::{Read, Write};
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// a.write_all(b"over a socketpair").unwrap();
/// let mut buf = [0u8; 17];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"over a socketpair");
/// ```
#[derive(Clone)]
pub struct UnixStream {
    sock: Rc<Sock>,
    _not_send: PhantomData<*const ()>,
}

impl UnixStream {
    /// Connect to the socket at `path`.
    ///
    /// # Errors
    /// For example `NotFound` or `ConnectionRefused`.
    ///
    /// ```
    /// let e = greenlet::net::UnixStream::connect("/nonexistent/socket").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn connect(path: impl AsRef<std::path::Path>) -> io::Result<UnixStream> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        let stream = UnixStream::from_std(OwnedFd::from(socket))?;
        let addr = SockAddr::unix(path)?;
        match stream.sock.socket()?.connect(&addr) {
            Ok(()) => Ok(stream),
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.raw_os_error() == Some(libc::EAGAIN) =>
            {
                let fd = stream.sock.fd()?;
                stream.sock.write.wait(fd, "connect")?;
                match stream.sock.socket()?.take_error()? {
                    Some(e) => Err(e),
                    None => Ok(stream),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A connected pair of sockets.
    ///
    /// ```
    /// let (a, b) = greenlet::net::UnixStream::pair().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Take over a `std::os::unix::net::UnixStream`.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = greenlet::net::UnixStream::from_std(a).unwrap();
    /// # drop(a);
    /// ```
    pub fn from_std(stream: impl Into<OwnedFd>) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: Rc::new(Sock::new(stream.into())?),
            _not_send: PhantomData,
        })
    }

    /// Time limit for each wait in `read`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut a, _b) = greenlet::net::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.read.timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// Time limit for each wait in `write`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// let (a, _b) = greenlet::net::UnixStream::pair().unwrap();
    /// a.set_write_timeout(None).unwrap();
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.write.timeout.set(check_timeout(timeout)?);
        Ok(())
    }

    /// Shut down one or both directions.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = greenlet::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 1]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.socket()?.shutdown(how)
    }

    /// Close the socket now; blocked greenlets wake up with an error.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, _b) = greenlet::net::UnixStream::pair().unwrap();
    /// a.close();
    /// assert!((&a).read(&mut [0u8; 1]).is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

/// A cooperative Unix socket listener; `!Send`.
///
/// ```
/// use greenlet::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("greenlet-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let c = greenlet::spawn(move || UnixStream::connect(&p).unwrap());
/// let s = l.accept().unwrap();
/// # drop((s, c.join()));
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    sock: Rc<Sock>,
    _not_send: PhantomData<*const ()>,
}

impl UnixListener {
    /// Bind to `path` and listen.
    ///
    /// # Errors
    /// For example `AddrInUse` when the path exists.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-bind-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenlet::net::UnixListener::bind(&path).unwrap();
    /// assert!(greenlet::net::UnixListener::bind(&path).is_err());
    /// # drop(l); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<std::path::Path>) -> io::Result<UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        Ok(UnixListener {
            sock: Rc::new(Sock::new(l.into())?),
            _not_send: PhantomData,
        })
    }

    /// Wait for a connection.
    ///
    /// # Errors
    /// The accept error, or the wait's error.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-acc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenlet::net::UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// greenlet::spawn(move || greenlet::net::UnixStream::connect(&p).map(|_| ()));
    /// assert!(l.accept().is_ok());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<UnixStream> {
        UnixStream::from_std(self.sock.accept()?)
    }

    /// Close the listener now; a greenlet blocked in `accept` wakes up with an error.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-close-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = greenlet::net::UnixListener::bind(&path).unwrap();
    /// l.close();
    /// assert!(l.accept().is_err());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}
