//! The fd-readiness core of the sockets (the role of mio's `IoSource` and async-io's
//! `Async<T>`): a non-blocking descriptor with one io watcher per direction, kept for the
//! descriptor's whole life and armed only while a greenlet waits in that direction.
//!
//! An operation tries the system call first and waits for readiness only on `EAGAIN`
//! ([`Source::read_with`], [`Source::write_with`]), except right after a stream read that
//! returned less than asked: that read emptied the socket's buffer, so the next one waits for
//! readiness first instead of making a system call that would almost always fail (tokio does
//! the same). A watcher is one-shot: its callback stops it as it wakes the waiter, so a socket
//! whose greenlet was woken but has not run yet is not reported again by every poll (libev's
//! epoll backend is level-triggered). Only one greenlet may wait in each direction at a time:
//! a second gets an error of kind `ResourceBusy` (gevent's `ConcurrentObjectUseError`) instead
//! of silently stealing the wake-up. [`Source::close`] wakes the waiters with `EBADF`.

use ev_loop::{Events, Io};
use greenlet::Error;
use greenlet::hub::{Waiter, Waker};
use socket2::Socket;
use std::cell::{Cell, OnceCell, RefCell};
use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::rc::Rc;
use std::time::Duration;

pub(crate) fn wait_error(e: Error) -> io::Error {
    io::Error::from(e)
}

pub(crate) fn timed_out() -> io::Error {
    io::Error::new(io::ErrorKind::TimedOut, "timed out")
}

pub(crate) fn closed() -> io::Error {
    io::Error::from_raw_os_error(libc::EBADF)
}

/// The greenlet waiting in one direction, shared by the direction and its watcher.
type WaiterSlot = RefCell<Option<Waker>>;

/// One direction of a socket: its io watcher and the greenlet waiting on it. Both are made at
/// the first wait in this direction (many sockets never wait to write) and kept until the
/// socket is closed.
/// What it waits for and how (whether a kill unwinds the waiter) comes from its source
/// ([`Source::wait`]), so as not to be kept twice per socket.
pub(crate) struct Direction {
    /// Its token is the address of the slot in `waiter` (see `on_ready`). Declared before
    /// `waiter`, so dropped before it.
    io: Cell<Option<Io>>,
    waiter: OnceCell<Rc<WaiterSlot>>,
    /// How long one wait in this direction may last (the socket's read or write timeout).
    pub(crate) timeout: Cell<Option<Duration>>,
}

/// The callback of every direction's watcher: wake the waiting greenlet. It captures nothing
/// (a boxed closure of no size is no allocation): the watcher's token leads to the slot.
fn on_ready(io: &Io, _: Events) {
    // SAFETY: the token is the address of the slot inside the direction's `waiter` Rc, set
    // when the direction made this watcher. The direction keeps that Rc for as long as it
    // keeps the watcher (it drops the watcher first), and a watcher's callback runs only
    // while the watcher exists.
    let slot = unsafe { &*(io.token() as *const WaiterSlot) };
    if let Some(t) = slot.borrow_mut().take() {
        t.wake();
    }
    // One-shot: the woken greenlet may not run before the next poll (with thousands of
    // connections ready, most do not), and a watcher left active on a socket that is still
    // readable would be reported again at every poll until it does — each poll would cost as
    // much as every ready socket, not as much as the new ones. The greenlet re-arms it if it
    // has to wait again.
    io.stop();
}

impl Direction {
    fn new() -> Direction {
        Direction {
            io: Cell::new(None),
            waiter: OnceCell::new(),
            timeout: Cell::new(None),
        }
    }

    fn slot(&self) -> &Rc<WaiterSlot> {
        self.waiter.get_or_init(|| Rc::new(RefCell::new(None)))
    }

    /// Wait until the fd is ready for `events` (this direction's) or the socket is closed;
    /// `unwind`: a kill while waiting unwinds the greenlet (see `Source::borrow_raw`).
    fn wait(&self, fd: RawFd, what: &'static str, events: Events, unwind: bool) -> io::Result<()> {
        if fd < 0 {
            return Err(closed());
        }
        if let Some(other) = self.waiter.get().and_then(|s| s.borrow().clone()) {
            if other.is_waiting() {
                return Err(io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "another greenlet ({}) is already waiting to {what} this socket",
                        other.greenlet_name()
                    ),
                ));
            }
        }
        let w = if unwind {
            Waiter::new(what)
        } else {
            Waiter::new_no_unwind(what)
        }
        .map_err(wait_error)?;
        let slot = self.slot();
        let io = match self.io.take() {
            Some(io) => io,
            None => {
                let io = Io::new(&greenlet::hub_loop(), fd, events, on_ready)?;
                io.set_token(Rc::as_ptr(slot) as usize);
                io
            }
        };
        io.start();
        self.io.set(Some(io));
        *slot.borrow_mut() = Some(w.waker());
        let timeout = self.timeout.get();
        // Disarms when the wait ends, also when it unwinds (the greenlet was killed): an io
        // watcher left active would keep the hub's loop alive and keep firing for nobody.
        let disarm = Disarm {
            dir: self,
            waker: w.waker(),
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
        if let Some(t) = self.waiter.get().and_then(|s| s.borrow_mut().take()) {
            t.wake();
        }
        drop(self.io.take());
    }
}

/// Ends a [`Direction::wait`]: forgets its waiter and stops the io watcher, unless another
/// greenlet already waits in its place (it came in after this one was woken).
struct Disarm<'a> {
    dir: &'a Direction,
    waker: Waker,
}

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        let mut slot = self.dir.slot().borrow_mut();
        if slot.as_ref().is_some_and(|t| *t != self.waker) {
            return;
        }
        slot.take();
        drop(slot);
        if let Some(io) = self.dir.io.take() {
            io.stop();
            self.dir.io.set(Some(io));
        }
    }
}

/// A non-blocking descriptor that greenlets read and write cooperatively: the core of every
/// socket type of this crate, usable for descriptors of other kinds too (pipes, ttys, event
/// fds). It owns the descriptor and closes it when dropped; `!Send`.
///
/// ```
/// use gevent_io::source::Source;
/// use std::os::fd::OwnedFd;
///
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let (a, b) = (Source::new(OwnedFd::from(a)).unwrap(), Source::new(OwnedFd::from(b)).unwrap());
/// let reader = greenlet::spawn(move || {
///     let mut buf = [0u8; 5];
///     let n = b.read(&mut buf).unwrap(); // waits cooperatively
///     buf[..n].to_vec()
/// });
/// greenlet::yield_now().unwrap(); // the reader is waiting now
/// assert_eq!(a.write(b"hello").unwrap(), 5);
/// assert_eq!(reader.join().unwrap(), b"hello");
/// ```
pub struct Source {
    pub(crate) fd: Cell<RawFd>,
    pub(crate) read: Direction,
    pub(crate) write: Direction,
    /// The last read of a stream returned less than asked: it emptied the socket's buffer.
    drained: Cell<bool>,
    /// Closes the descriptor when closed or dropped, and a kill unwinds a greenlet waiting on
    /// it (`false`: borrowed, see [`Source::borrow_raw`]).
    owned: bool,
}

impl Source {
    /// Take `fd` and make it non-blocking.
    ///
    /// # Errors
    /// If it cannot be made non-blocking (the descriptor is closed then).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// assert!(s.fd().unwrap() >= 0);
    /// ```
    pub fn new(fd: OwnedFd) -> io::Result<Source> {
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
        Ok(Source {
            fd: Cell::new(fd),
            read: Direction::new(),
            write: Direction::new(),
            drained: Cell::new(false),
            owned: true,
        })
    }

    /// A source for a descriptor owned elsewhere, left exactly as it is: not made non-blocking
    /// (its operations must not block by themselves, e.g. `recv` with `MSG_DONTWAIT`), and not
    /// closed by [`close`](Source::close) or on drop, which only wake the waiters and drop the
    /// watchers. Its waits never unwind a killed greenlet: they fail with an error holding
    /// [`greenlet::Error::Killed`] (see [`Waiter::new_no_unwind`]). This is what code that makes other people's descriptors cooperative (hooks in
    /// front of system calls) waits with; it must close the source before the descriptor
    /// itself is closed, so that no watcher ever watches a closed or reused number.
    ///
    /// ```
    /// use gevent_io::source::Source;
    /// use std::os::fd::AsRawFd;
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = Source::borrow_raw(b.as_raw_fd());
    /// std::io::Write::write_all(&mut &a, b"hi").unwrap();
    /// let mut buf = [0u8; 2];
    /// // SAFETY: `buf` is valid for two bytes of writes.
    /// let n = s.read_with(|fd| unsafe {
    ///     libc::recv(fd, buf.as_mut_ptr().cast(), 2, libc::MSG_DONTWAIT)
    /// });
    /// assert_eq!(n.unwrap(), 2);
    /// drop(s); // `b` stays open
    /// assert_eq!(b.peer_addr().is_ok(), true);
    /// ```
    pub fn borrow_raw(fd: RawFd) -> Source {
        Source {
            fd: Cell::new(fd),
            read: Direction::new(),
            write: Direction::new(),
            drained: Cell::new(false),
            owned: false,
        }
    }

    /// The descriptor.
    ///
    /// # Errors
    /// `EBADF` once [`close`](Source::close)d.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.close();
    /// assert_eq!(s.fd().unwrap_err().raw_os_error(), Some(libc::EBADF));
    /// ```
    pub fn fd(&self) -> io::Result<RawFd> {
        let fd = self.fd.get();
        if fd < 0 { Err(closed()) } else { Ok(fd) }
    }

    /// Run `op`, a system call on the descriptor that returns a count or -1 with `errno` set
    /// (`recv`, `recvmsg`, `accept4`, …), until it does not fail with `EAGAIN`, waiting for
    /// readability in between (at most the read timeout each time); `EINTR` is retried.
    ///
    /// # Errors
    /// The call's own error; `TimedOut` after the read timeout; `ResourceBusy` if another
    /// greenlet waits to read already; `EBADF` if the source is closed meanwhile.
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(OwnedFd::from(b)).unwrap();
    /// greenlet::spawn(move || std::io::Write::write_all(&mut &a, b"x"));
    /// let mut byte = 0u8;
    /// // SAFETY: `byte` is valid for a one-byte write.
    /// let n = s.read_with(|fd| unsafe { libc::recv(fd, (&raw mut byte).cast(), 1, 0) }).unwrap();
    /// assert_eq!((n, byte), (1, b'x'));
    /// ```
    pub fn read_with(&self, op: impl FnMut(RawFd) -> isize) -> io::Result<usize> {
        self.io_loop(false, "read", op, |n| n as usize)
    }

    /// [`read_with`](Source::read_with) for writes (`send`, `sendmsg`, …): waits for
    /// writability, at most the write timeout each time.
    ///
    /// # Errors
    /// As for `read_with`, with the write timeout.
    ///
    /// ```
    /// use std::os::fd::OwnedFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(OwnedFd::from(a)).unwrap();
    /// // SAFETY: the buffer is valid for a two-byte read.
    /// let n = s.write_with(|fd| unsafe { libc::send(fd, b"hi".as_ptr().cast(), 2, 0) });
    /// assert_eq!(n.unwrap(), 2);
    /// ```
    pub fn write_with(&self, op: impl FnMut(RawFd) -> isize) -> io::Result<usize> {
        self.io_loop(true, "write", op, |n| n as usize)
    }

    /// How long one wait for readability may last (`None`: no limit).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.set_read_timeout(Some(std::time::Duration::from_millis(1)));
    /// let mut buf = [0u8; 1];
    /// assert_eq!(s.read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) {
        self.read.timeout.set(timeout);
    }

    /// How long one wait for writability may last (`None`: no limit).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.set_write_timeout(None);
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.write.timeout.set(timeout);
    }

    /// Retry `op` until it does not report EAGAIN, waiting in `dir` in between.
    pub(crate) fn io_loop<T>(
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
                Some(libc::EAGAIN) => self.wait(write, fd, what)?,
                Some(libc::EINTR) => {}
                _ => return Err(e),
            }
        }
    }

    /// Wait until `fd` (this source's) is writable (`write`) or readable, or the source is
    /// closed.
    pub(crate) fn wait(&self, write: bool, fd: RawFd, what: &'static str) -> io::Result<()> {
        if write {
            self.write.wait(fd, what, Events::WRITE, self.owned)
        } else {
            self.read.wait(fd, what, Events::READ, self.owned)
        }
    }

    /// Read into `buf` (`read(2)`), waiting cooperatively while there is nothing to read.
    ///
    /// # Errors
    /// As for [`read_with`](Source::read_with).
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(b.into()).unwrap();
    /// drop(a);
    /// assert_eq!(s.read(&mut [0u8; 8]).unwrap(), 0); // end of stream
    /// ```
    pub fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        if self.drained.replace(false) && !buf.is_empty() {
            let fd = self.fd()?;
            self.wait(false, fd, "read")?;
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

    /// Write from `buf` (`send(2)` with `MSG_NOSIGNAL`: a closed peer is `EPIPE`, not
    /// `SIGPIPE`), waiting cooperatively while the buffer is full. For sockets only.
    ///
    /// # Errors
    /// As for [`write_with`](Source::write_with).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// assert_eq!(s.write(b"abc").unwrap(), 3);
    /// ```
    pub fn write(&self, buf: &[u8]) -> io::Result<usize> {
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
    pub(crate) fn accept(&self) -> io::Result<OwnedFd> {
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
    pub(crate) fn into_raw(self: Rc<Self>) -> io::Result<RawFd> {
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

    /// Close the descriptor now (a [borrowed](Source::borrow_raw) one is left open): greenlets
    /// waiting on it wake with `EBADF`, and later calls fail with `EBADF`. Closing twice does
    /// nothing.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.close();
    /// s.close();
    /// ```
    pub fn close(&self) {
        let fd = self.fd.replace(-1);
        if fd >= 0 {
            // Watchers go first (they reference the fd), then waiters are woken and see it
            // closed.
            self.read.close();
            self.write.close();
            if self.owned {
                // SAFETY: we owned `fd` and nothing else uses it any more (fd is now -1 here).
                unsafe { libc::close(fd) };
            }
        }
    }

    pub(crate) fn socket(&self) -> io::Result<std::mem::ManuallyDrop<Socket>> {
        let fd = self.fd()?;
        // SAFETY: a borrowed view of our open fd; ManuallyDrop keeps socket2 from closing it.
        Ok(std::mem::ManuallyDrop::new(unsafe {
            Socket::from_raw_fd(fd)
        }))
    }
}

impl fmt::Debug for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Source")
            .field("fd", &self.fd.get())
            .finish()
    }
}

impl Drop for Source {
    fn drop(&mut self) {
        self.close();
    }
}
