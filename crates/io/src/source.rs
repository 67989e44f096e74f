//! The fd-readiness core of the sockets (the role of mio's `IoSource` and async-io's
//! `Async<T>`): a non-blocking descriptor with one io watcher, in the same allocation as the
//! rest of the source's state (an [`RcIo`]), kept for the descriptor's whole life and armed
//! for the directions a greenlet waits in (or, between waits, last waited in).
//!
//! An operation tries the system call first and waits for readiness only on `EAGAIN`
//! ([`Source::read_with`], [`Source::write_with`]), except right after a stream read that
//! returned less than asked: that read emptied the socket's buffer, so the next one waits for
//! readiness first instead of making a system call that would almost always fail (tokio does
//! the same). A watcher stays started in the direction its callback woke a greenlet in (that
//! greenlet will most likely wait there again), without keeping the loop alive while nobody
//! waits; a socket reported ready with nobody waiting stops being watched in that direction,
//! so a socket whose greenlet was woken but has not run yet is not reported again by every
//! poll (libev's epoll backend is level-triggered). Only one greenlet may wait in each
//! direction at a time: a second gets an error of kind `ResourceBusy` (gevent's
//! `ConcurrentObjectUseError`) instead of silently stealing the wake-up. [`Source::close`]
//! wakes the waiters with `EBADF`.

use ev_loop::{Events, IoHandler, RcIo};
use greenlet::Error;
use greenlet::hub::{Waiter, Waker};
use socket2::Socket;
use std::cell::Cell;
use std::fmt;
use std::io;
use std::os::fd::{FromRawFd, IntoRawFd, OwnedFd, RawFd};
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

/// One direction of a socket: the greenlet waiting in it, and the whole seconds of how long
/// one wait may last (the socket's read or write timeout; its nanoseconds are in [`State`],
/// where they fill what would be padding).
/// What it waits for and how (whether a kill unwinds the waiter) comes from its source
/// ([`Source::wait`]), so as not to be kept twice per socket.
struct Direction {
    waiter: Cell<Option<Waker>>,
    timeout_secs: Cell<u64>,
}

impl Direction {
    fn new() -> Direction {
        Direction {
            waiter: Cell::new(None),
            timeout_secs: Cell::new(0),
        }
    }

    /// Wake the waiting greenlet, if any; whether there was one.
    fn wake(&self) -> bool {
        match self.waiter.take() {
            Some(w) => {
                w.wake();
                true
            }
            None => false,
        }
    }
}

/// The nanoseconds of a timeout that is not set (a real one has fewer than 10^9).
const NO_TIMEOUT: u32 = u32::MAX;

/// What a source keeps, in one allocation with its io watcher (see [`RcIo`]): an idle
/// connection's socket is one block of memory.
struct State {
    fd: Cell<RawFd>,
    /// The nanoseconds of the read and the write timeout ([`NO_TIMEOUT`]: none).
    read_nanos: Cell<u32>,
    write_nanos: Cell<u32>,
    /// The last read of a stream returned less than asked: it emptied the socket's buffer.
    drained: Cell<bool>,
    /// The wait to read that [`Source::cancel_read`] ended, until that wait sees it.
    read_cancelled: Cell<Option<Waker>>,
    /// Closes the descriptor when closed or dropped, and a kill unwinds a greenlet waiting on
    /// it (`false`: borrowed, see [`Source::borrow_raw`]).
    owned: bool,
    read: Direction,
    write: Direction,
}

impl State {
    /// Whether the wait of `waker` was cancelled (then no longer noted).
    fn take_cancel(&self, waker: &Waker) -> bool {
        match self.read_cancelled.take() {
            Some(c) if c == *waker => true,
            other => {
                self.read_cancelled.set(other);
                false
            }
        }
    }

    /// Whether a greenlet waits in either direction.
    fn has_waiter(&self) -> bool {
        // `Cell<Option<Waker>>` has no `is_some` through a shared reference: look by taking.
        let busy = |d: &Direction| {
            let w = d.waiter.take();
            let some = w.is_some();
            d.waiter.set(w);
            some
        };
        busy(&self.read) || busy(&self.write)
    }

    fn dir(&self, write: bool) -> &Direction {
        if write { &self.write } else { &self.read }
    }

    fn nanos(&self, write: bool) -> &Cell<u32> {
        if write {
            &self.write_nanos
        } else {
            &self.read_nanos
        }
    }

    fn timeout(&self, write: bool) -> Option<Duration> {
        let nanos = self.nanos(write).get();
        (nanos != NO_TIMEOUT).then(|| Duration::new(self.dir(write).timeout_secs.get(), nanos))
    }

    fn set_timeout(&self, write: bool, timeout: Option<Duration>) {
        self.dir(write)
            .timeout_secs
            .set(timeout.map_or(0, |d| d.as_secs()));
        self.nanos(write)
            .set(timeout.map_or(NO_TIMEOUT, |d| d.subsec_nanos()));
    }
}

fn dir_events(write: bool) -> Events {
    if write { Events::WRITE } else { Events::READ }
}

/// `a` without the bits of `b`.
fn without(a: Events, b: Events) -> Events {
    Events::from_bits(a.bits() & !b.bits())
}

/// Point `io` at `events` of its fd, or stop it for none.
fn arm(io: &RcIo<State>, events: Events) {
    match io.event_loop() {
        Some(lp) if events.bits() != 0 => {
            if io.start(lp, io.fd.get(), events).is_err() {
                io.stop();
            }
        }
        _ => io.stop(),
    }
}

impl IoHandler for State {
    /// Wake the greenlets waiting for what is ready, and keep watching in the directions one
    /// was woken in: the woken greenlet will most likely wait in the same direction again
    /// (read a request, answer, read the next), and a watcher left started costs nothing to
    /// start again. A direction that is ready with nobody waiting is no longer watched: the
    /// woken greenlet may not run before the next poll (with thousands of connections ready,
    /// most do not), and a watcher left active on a socket that is still readable would be
    /// reported again at every poll until it does (libev's epoll backend is
    /// level-triggered) — each poll would cost as much as every ready socket, not as much as
    /// the new ones. So a socket is reported at most twice per wait. An error wakes both
    /// directions and stops the watcher (libev has stopped it already). A borrowed source's
    /// watcher is never kept between waits: its descriptor may be closed behind its back.
    fn on_io(io: &RcIo<State>, events: Events) {
        let mut rest = io.events();
        for write in [false, true] {
            let e = dir_events(write);
            if !(events.is_error() || events.contains(e)) {
                continue;
            }
            let woken = io.dir(write).wake();
            if !woken || events.is_error() || !io.owned {
                rest = without(rest, e);
            }
        }
        if rest != io.events() {
            arm(io, rest);
        }
        if !io.has_waiter() {
            // The watcher stays only in case somebody waits again, which must not keep the
            // loop running (the hub tells a greenlet that waits for what nothing can bring
            // that nothing will).
            io.set_keep_alive(false);
        }
    }
}

/// Ends a [`Source::wait`]: forgets its waiter and takes its direction out of the watcher's
/// events, unless another greenlet already waits in its place (it came in after this one was
/// woken).
struct Disarm<'a> {
    io: &'a RcIo<State>,
    write: bool,
    waker: Waker,
    /// Set if [`Source::cancel_read`] ended this wait (taken off the source here, so that a
    /// cancel a killed wait never saw goes with it too).
    cancelled: &'a Cell<bool>,
}

impl Drop for Disarm<'_> {
    fn drop(&mut self) {
        let io = self.io;
        if !self.write {
            self.cancelled.set(io.take_cancel(&self.waker));
        }
        let dir = io.dir(self.write);
        match dir.waiter.take() {
            Some(w) if w != self.waker => {
                // Another greenlet came to wait in this one's place (this one was woken).
                dir.waiter.set(Some(w));
                return;
            }
            // Woken by readiness (the watcher stays, see `on_io`), or by a cancel or a close.
            None if io.owned => {}
            // Still this wait's own: it ended otherwise than by readiness (a timeout, a kill),
            // and readiness in this direction is no longer wanted (nor ever kept for a
            // borrowed descriptor).
            _ => {
                let e = dir_events(self.write);
                if io.is_active() && io.events().contains(e) {
                    arm(io, without(io.events(), e));
                }
            }
        }
        if !io.has_waiter() {
            io.set_keep_alive(false);
        }
    }
}

/// A non-blocking descriptor that greenlets read and write cooperatively: the core of every
/// socket type of this crate, usable for descriptors of other kinds too (pipes, ttys, event
/// fds). It owns the descriptor and closes it when its last clone is dropped (clones share
/// it, so that one greenlet can read while another writes); `!Send`.
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
    io: RcIo<State>,
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
        Ok(Source::with_state(fd, true))
    }

    /// A source for a descriptor owned elsewhere, left exactly as it is: not made non-blocking
    /// (its operations must not block by themselves, e.g. `recv` with `MSG_DONTWAIT`), and not
    /// closed by [`close`](Source::close) or on drop, which only wake the waiters and drop the
    /// watchers. Its watcher is armed only while a greenlet waits (an owned source keeps it
    /// between waits), as the descriptor may be closed without it knowing. Its waits never
    /// unwind a killed greenlet: they fail with an error holding [`greenlet::Error::Killed`]
    /// (see [`Waiter::new_no_unwind`]). This is what code that makes other people's
    /// descriptors cooperative (hooks in front of system calls) waits with; it must close the
    /// source before the descriptor itself is closed, so that no watcher ever watches a closed
    /// or reused number.
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
        Source::with_state(fd, false)
    }

    fn with_state(fd: RawFd, owned: bool) -> Source {
        Source {
            io: RcIo::new(State {
                fd: Cell::new(fd),
                read_nanos: Cell::new(NO_TIMEOUT),
                write_nanos: Cell::new(NO_TIMEOUT),
                drained: Cell::new(false),
                read_cancelled: Cell::new(None),
                owned,
                read: Direction::new(),
                write: Direction::new(),
            }),
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
        let fd = self.io.fd.get();
        if fd < 0 { Err(closed()) } else { Ok(fd) }
    }

    /// The descriptor, -1 once closed.
    pub(crate) fn raw_fd(&self) -> RawFd {
        self.io.fd.get()
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
        self.io.set_timeout(false, timeout);
    }

    /// The read timeout (see [`set_read_timeout`](Source::set_read_timeout)).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// assert_eq!(s.read_timeout(), None);
    /// ```
    pub fn read_timeout(&self) -> Option<Duration> {
        self.io.timeout(false)
    }

    /// How long one wait for writability may last (`None`: no limit).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.set_write_timeout(None);
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) {
        self.io.set_timeout(true, timeout);
    }

    /// The write timeout (see [`set_write_timeout`](Source::set_write_timeout)).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// s.set_write_timeout(Some(std::time::Duration::from_secs(2)));
    /// assert_eq!(s.write_timeout(), Some(std::time::Duration::from_secs(2)));
    /// ```
    pub fn write_timeout(&self) -> Option<Duration> {
        self.io.timeout(true)
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
        let io = &self.io;
        // The caller read `fd` before running an operation that may have switched greenlets;
        // if another clone closed the source meanwhile, its number may be stale (or reused).
        if fd < 0 || io.fd.get() != fd {
            return Err(closed());
        }
        let dir = io.dir(write);
        if let Some(other) = dir.waiter.take() {
            let busy = other.is_waiting().then(|| {
                io::Error::new(
                    io::ErrorKind::ResourceBusy,
                    format!(
                        "another greenlet ({}) is already waiting to {what} this socket",
                        other.greenlet_name()
                    ),
                )
            });
            dir.waiter.set(Some(other));
            if let Some(e) = busy {
                return Err(e);
            }
        }
        let w = if io.owned {
            Waiter::new(what)
        } else {
            Waiter::new_no_unwind(what)
        }
        .map_err(wait_error)?;
        let e = dir_events(write);
        if !(io.is_active() && io.events().contains(e)) {
            // Not watched in this direction yet (the watcher a ready wake-up left started,
            // for the same descriptor, is already).
            let events = if io.is_active() { io.events() | e } else { e };
            match io.event_loop() {
                Some(lp) => io.start(lp, fd, events),
                None => io.start(&greenlet::hub_loop(), fd, events),
            }?;
        }
        // A watcher left started by the last wait keeps the loop alive again now that
        // somebody waits on it.
        io.set_keep_alive(true);
        dir.waiter.set(Some(w.waker()));
        let timeout = io.timeout(write);
        // Disarms when the wait ends, also when it unwinds (the greenlet was killed): an io
        // watcher left active would keep the hub's loop alive and keep firing for nobody.
        let cancelled = Cell::new(false);
        let disarm = Disarm {
            io,
            write,
            waker: w.waker(),
            cancelled: &cancelled,
        };
        let r = w.wait(timeout);
        drop(disarm);
        match r {
            Ok(()) if cancelled.get() => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the wait to read was cancelled",
            )),
            Ok(()) => Ok(()),
            Err(Error::Timeout(_)) if timeout.is_some() => Err(timed_out()),
            Err(e) => Err(wait_error(e)),
        }
    }

    /// Read what has arrived into `buf` (one `read(2)`), without waiting: `WouldBlock` if
    /// nothing has.
    ///
    /// # Errors
    /// `WouldBlock`, or what `read(2)` fails with; `NotConnected` once closed.
    ///
    /// ```
    /// use std::io::Write;
    /// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(b.into()).unwrap();
    /// let mut buf = [0u8; 8];
    /// assert_eq!(s.try_read(&mut buf).unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    /// a.write_all(b"abc").unwrap();
    /// assert_eq!(s.try_read(&mut buf).unwrap(), 3);
    /// ```
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        self.read_now(self.fd()?, buf)
    }

    /// One `read(2)` of `fd` (this source's) into `buf`, retried on `EINTR`; notes whether it
    /// drained what had arrived.
    fn read_now(&self, fd: RawFd, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            // SAFETY: `buf` is valid for writes of its length; `fd` is our open socket.
            let n = unsafe { crate::sys::read(fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n >= 0 {
                let n = n as usize;
                self.io.drained.set(n > 0 && n < buf.len());
                return Ok(n);
            }
            let e = io::Error::last_os_error();
            if e.raw_os_error() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    /// End another greenlet's wait to read this source now: its read returns an error of kind
    /// `TimedOut`, as if its read timeout had passed (gevent's `cancel_wait`; Go's read
    /// deadline set in the past). Whether a greenlet was waiting: a read that is not waiting
    /// at the moment (its data came, it has not run yet) is not affected, nor is a later one.
    ///
    /// ```
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(b.into()).unwrap();
    /// let reader = s.clone();
    /// let g = greenlet::spawn(move || reader.read(&mut [0u8; 8]).unwrap_err().kind());
    /// assert!(!s.cancel_read()); // the reader has not started yet
    /// greenlet::yield_now().unwrap(); // it starts and waits: nothing has arrived
    /// assert!(s.cancel_read());
    /// assert_eq!(g.join().unwrap(), std::io::ErrorKind::TimedOut);
    /// # drop(a);
    /// ```
    pub fn cancel_read(&self) -> bool {
        let Some(w) = self.io.read.waiter.take() else {
            return false;
        };
        // Taken: the ending wait then turns the watcher's interest in reading off itself.
        if !w.wake() {
            return false;
        }
        // Noted for that wait only: another that starts before it runs is not cancelled.
        self.io.read_cancelled.set(Some(w));
        true
    }

    /// Wait until there is something to read (data, the end of the stream, or an error),
    /// without reading it: the read after it finds it at once (gevent's `wait_read`, tokio's
    /// `readable`). A caller can so hold no buffer while it waits. What has arrived already
    /// ends the wait after one turn of the hub. The read timeout applies.
    ///
    /// # Errors
    /// `TimedOut` once the read timeout passes or the wait is cancelled
    /// ([`cancel_read`](Source::cancel_read)); `EBADF` once closed; what waiting may
    /// end in otherwise (no hub to wait in, a kill).
    ///
    /// ```
    /// use std::io::Write;
    /// let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(b.into()).unwrap();
    /// let writer = greenlet::spawn(move || a.write_all(b"abc").unwrap());
    /// s.wait_readable().unwrap(); // the writer ran meanwhile
    /// assert_eq!(s.try_read(&mut [0u8; 8]).unwrap(), 3);
    /// writer.join().unwrap();
    /// ```
    pub fn wait_readable(&self) -> io::Result<()> {
        let fd = self.fd()?;
        self.wait(false, fd, "read")?;
        // Whatever the last read found, something has arrived since.
        self.io.drained.set(false);
        Ok(())
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
        // The last read took less than it asked for: what had arrived is all read, so this
        // one waits first instead of trying a read bound to fail.
        if self.io.drained.replace(false) && !buf.is_empty() {
            let fd = self.fd()?;
            self.wait(false, fd, "read")?;
        }
        loop {
            let fd = self.fd()?;
            match self.read_now(fd, buf) {
                Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => self.wait(false, fd, "read")?,
                r => return r,
            }
        }
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
            |fd| unsafe {
                crate::sys::send(fd, buf.as_ptr().cast(), buf.len(), libc::MSG_NOSIGNAL)
            },
            |n| n as usize,
        )
    }

    /// Accept a connection on a listening socket: the new (non-blocking) descriptor.
    pub(crate) fn accept(&self) -> io::Result<OwnedFd> {
        let fd = self.io_loop(
            false,
            "accept",
            // Through libc's `accept4`, once per connection: in a program that links the
            // monkey crate, its hook records the new descriptor in the crate's table.
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
    pub(crate) fn into_raw(self) -> io::Result<RawFd> {
        if RcIo::handles(&self.io) != 1 {
            return Err(io::Error::new(
                io::ErrorKind::ResourceBusy,
                "other clones of this socket exist",
            ));
        }
        let fd = self.io.fd.replace(-1);
        self.io.stop();
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
        let io = &self.io;
        let fd = io.fd.replace(-1);
        if fd >= 0 {
            // The watcher goes first (it references the fd), then waiters are woken and see it
            // closed.
            io.stop();
            io.read.wake();
            io.write.wake();
            if io.owned {
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
            .field("fd", &self.io.fd.get())
            .finish()
    }
}

impl Clone for Source {
    /// Another handle on the same descriptor (and the same watcher and waiters).
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let s = gevent_io::source::Source::new(a.into()).unwrap();
    /// let t = s.clone();
    /// drop(s);
    /// assert!(t.fd().is_ok()); // open until the last clone goes
    /// ```
    fn clone(&self) -> Source {
        Source {
            io: self.io.clone(),
        }
    }
}

impl Drop for State {
    /// The last clone of the source is gone (its watcher is stopped already).
    fn drop(&mut self) {
        let fd = self.fd.replace(-1);
        if fd >= 0 && self.owned {
            // SAFETY: we owned `fd`, and no clone of the source is left to use it.
            unsafe { libc::close(fd) };
        }
    }
}
