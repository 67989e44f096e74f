//! Waiting, cooperatively, until a file descriptor is ready (gevent's `wait_read`,
//! `wait_write` and `wait_readwrite`): the calling greenlet switches to the hub, whose loop
//! watches the fd, and is switched back when the fd is ready, when the deadline passes, or when
//! it is woken otherwise (killed, an enclosing [`Timeout`](crate::Timeout)).
//!
//! This is what the I/O layer's sockets are built on, and what code that brings its own
//! non-blocking descriptors uses: try the system call, and on `EAGAIN` wait here and retry.
//! The fd is not changed (make it non-blocking yourself); the watcher exists only while the
//! wait lasts, also when the wait ends by a kill.
//!
//! ```
//! use greenlet::fd::{Interest, wait_fd};
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::time::{Duration, Instant};
//!
//! let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//! let writer = greenlet::spawn(move || a.write_all(b"ping"));
//! let deadline = Instant::now() + Duration::from_secs(10);
//! let ready = wait_fd(b.as_raw_fd(), Interest::READABLE, Some(deadline)).unwrap();
//! assert!(ready.is_readable());
//! writer.join().unwrap().unwrap();
//! ```

use crate::hub::Waiter;
use ev_loop::{Events, Io};
use std::cell::Cell;
use std::io;
use std::os::fd::RawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// What to wait for: readability, writability or either.
///
/// ```
/// use greenlet::fd::Interest;
/// assert_eq!(Interest::READABLE | Interest::WRITABLE, Interest::BOTH);
/// assert!(Interest::BOTH.is_readable() && Interest::BOTH.is_writable());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Interest(u8);

impl Interest {
    /// Ready to read (or at end of stream, or with an error pending).
    pub const READABLE: Interest = Interest(1);
    /// Ready to write (or with an error pending).
    pub const WRITABLE: Interest = Interest(2);
    /// Either.
    pub const BOTH: Interest = Interest(3);

    /// Whether readability is asked for.
    ///
    /// ```
    /// assert!(greenlet::fd::Interest::READABLE.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.0 & 1 != 0
    }

    /// Whether writability is asked for.
    ///
    /// ```
    /// assert!(!greenlet::fd::Interest::READABLE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.0 & 2 != 0
    }

    fn events(self) -> Events {
        match (self.is_readable(), self.is_writable()) {
            (true, true) => Events::READ | Events::WRITE,
            (false, true) => Events::WRITE,
            _ => Events::READ,
        }
    }
}

impl std::ops::BitOr for Interest {
    type Output = Interest;
    fn bitor(self, other: Interest) -> Interest {
        Interest(self.0 | other.0)
    }
}

/// Which readiness ended a [`wait_fd`] (at least one of the two, and only ones asked for).
///
/// ```
/// use greenlet::fd::{Interest, wait_fd};
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let r = wait_fd(a.as_raw_fd(), Interest::BOTH, None).unwrap();
/// assert!(r.is_writable() && !r.is_readable()); // nothing to read yet
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Readiness {
    readable: bool,
    writable: bool,
}

impl Readiness {
    /// The fd is readable (data, end of stream, or an error to collect).
    ///
    /// ```
    /// # use greenlet::fd::{Interest, wait_fd};
    /// # use std::os::fd::AsRawFd;
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// drop(b); // end of stream: readable
    /// assert!(wait_fd(a.as_raw_fd(), Interest::READABLE, None).unwrap().is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.readable
    }

    /// The fd is writable.
    ///
    /// ```
    /// # use greenlet::fd::{Interest, wait_fd};
    /// # use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// assert!(wait_fd(a.as_raw_fd(), Interest::WRITABLE, None).unwrap().is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.writable
    }
}

/// Wait until `fd` is ready for what `interest` asks, or until `deadline`.
///
/// # Errors
/// `TimedOut` once the deadline has passed (a deadline already past still looks at the fd
/// once, without switching); for a negative or closed fd, an error holding an
/// [`ev_loop::Error::BadFd`] that names it (the kernel's `EBADF` as its source); the hub's
/// errors as `io::Error`s (a wait in the hub, an enclosing [`Timeout`](crate::Timeout)'s
/// expiry as `TimedOut`, `Deadlock` when nothing could ever make it ready).
///
/// ```
/// use greenlet::fd::{Interest, wait_fd};
/// use std::os::fd::AsRawFd;
/// use std::time::{Duration, Instant};
/// let (_a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let soon = Instant::now() + Duration::from_millis(10);
/// let e = wait_fd(b.as_raw_fd(), Interest::READABLE, Some(soon)).unwrap_err();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
pub fn wait_fd(fd: RawFd, interest: Interest, deadline: Option<Instant>) -> io::Result<Readiness> {
    let timeout = match deadline.map(|d| d.checked_duration_since(Instant::now())) {
        Some(None) | Some(Some(Duration::ZERO)) => return poll_once(fd, interest),
        Some(Some(left)) => Some(left),
        None => None,
    };
    let w = Waiter::new("fd").map_err(io::Error::from)?;
    let waker = w.waker();
    let fired = Rc::new(Cell::new(Events::default()));
    let f = fired.clone();
    let io = Io::new(
        &crate::hub_loop(),
        fd,
        interest.events(),
        move |_, revents| {
            f.set(revents);
            waker.wake();
        },
    )?;
    io.start();
    let woken = w.wait_for(timeout);
    drop(io);
    match woken {
        Ok(true) => {
            // libev's error event (the fd was closed under the watcher) counts as ready for
            // everything asked: the caller's next system call reports the error itself.
            let got = fired.get();
            let error = got.contains(Events::ERROR);
            Ok(Readiness {
                readable: interest.is_readable() && (error || got.contains(Events::READ)),
                writable: interest.is_writable() && (error || got.contains(Events::WRITE)),
            })
        }
        Ok(false) => Err(io::Error::new(io::ErrorKind::TimedOut, "timed out")),
        Err(e) => Err(io::Error::from(e)),
    }
}

/// A deadline that has passed: look at the fd once, without waiting (`poll` with a zero
/// timeout).
fn poll_once(fd: RawFd, interest: Interest) -> io::Result<Readiness> {
    let mut events = 0;
    if interest.is_readable() {
        events |= libc::POLLIN;
    }
    if interest.is_writable() {
        events |= libc::POLLOUT;
    }
    let mut p = libc::pollfd {
        fd,
        events,
        revents: 0,
    };
    // SAFETY: one valid pollfd, and a zero timeout: poll only reads and writes `p`.
    let n = unsafe { libc::poll(&mut p, 1, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    if p.revents & libc::POLLNVAL != 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let error = p.revents & (libc::POLLERR | libc::POLLHUP) != 0;
    let ready = Readiness {
        readable: interest.is_readable() && (error || p.revents & libc::POLLIN != 0),
        writable: interest.is_writable() && (error || p.revents & libc::POLLOUT != 0),
    };
    if ready.readable || ready.writable {
        Ok(ready)
    } else {
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    }
}

/// Wait until `fd` is readable, at most `timeout`.
///
/// # Errors
/// As for [`wait_fd`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let r = greenlet::fd::wait_readable(b.as_raw_fd(), Some(std::time::Duration::from_millis(10)));
/// assert_eq!(r.unwrap_err().kind(), std::io::ErrorKind::TimedOut);
/// # drop(a);
/// ```
pub fn wait_readable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::READABLE, deadline_after(timeout)).map(drop)
}

/// Wait until `fd` is writable, at most `timeout`.
///
/// # Errors
/// As for [`wait_fd`].
///
/// ```
/// use std::os::fd::AsRawFd;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// greenlet::fd::wait_writable(a.as_raw_fd(), None).unwrap();
/// ```
pub fn wait_writable(fd: RawFd, timeout: Option<Duration>) -> io::Result<()> {
    wait_fd(fd, Interest::WRITABLE, deadline_after(timeout)).map(drop)
}

fn deadline_after(timeout: Option<Duration>) -> Option<Instant> {
    timeout.map(crate::timeout::deadline_after)
}
