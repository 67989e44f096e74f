//! Waiting on several descriptors at once (gevent's `select` module, and what its
//! `selectors` build on): [`select`] over sets of fds and [`poll`] over a slice of
//! [`PollFd`]s. The calling greenlet switches to the hub, whose loop watches every fd with a
//! libev io watcher, and is switched back when one is ready or the timeout passes. The
//! watchers exist only while the call waits: they are dropped when it returns, also when the
//! greenlet is killed during the wait.
//!
//! The fds are not changed (they need not be non-blocking). What is ready is what the kernel
//! says when the call returns (a `poll` with a zero timeout), so several fds ready at once are
//! all reported.
//!
//! ```
//! use gevent_io::select::select;
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::time::Duration;
//!
//! let (mut a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//! let writer = greenlet::spawn(move || a.write_all(b"x"));
//! let (r, w) = select(&[b.as_raw_fd()], &[], Some(Duration::from_secs(10))).unwrap();
//! assert_eq!((r, w), (vec![b.as_raw_fd()], vec![]));
//! writer.join().unwrap().unwrap();
//! ```

use ev_loop::{Events, Io};
use greenlet::hub::Waiter;
use std::fmt;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

pub use greenlet::fd::Interest;

/// What [`poll`] found for one fd (`poll(2)`'s `revents`): any of readable, writable, hung
/// up, an error, an invalid fd.
///
/// ```
/// use gevent_io::select::{Interest, PollFd, poll};
/// use std::os::fd::AsRawFd;
/// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
/// drop(b);
/// let mut fds = [PollFd::new(a.as_raw_fd(), Interest::READABLE)];
/// assert_eq!(poll(&mut fds, None).unwrap(), 1);
/// assert!(fds[0].revents().is_readable() && fds[0].revents().is_hup());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Revents(libc::c_short);

impl Revents {
    /// Nothing ready.
    ///
    /// ```
    /// assert!(gevent_io::select::Revents::default().is_empty());
    /// ```
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// Readable (`POLLIN`): data, or end of stream.
    ///
    /// ```
    /// assert!(!gevent_io::select::Revents::default().is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.0 & libc::POLLIN != 0
    }

    /// Writable (`POLLOUT`).
    ///
    /// ```
    /// assert!(!gevent_io::select::Revents::default().is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.0 & libc::POLLOUT != 0
    }

    /// The other side hung up (`POLLHUP`); reported whatever was asked for.
    ///
    /// ```
    /// assert!(!gevent_io::select::Revents::default().is_hup());
    /// ```
    pub fn is_hup(self) -> bool {
        self.0 & libc::POLLHUP != 0
    }

    /// An error is pending (`POLLERR`); reported whatever was asked for.
    ///
    /// ```
    /// assert!(!gevent_io::select::Revents::default().is_error());
    /// ```
    pub fn is_error(self) -> bool {
        self.0 & libc::POLLERR != 0
    }

    /// The fd is not open (`POLLNVAL`).
    ///
    /// ```
    /// assert!(!gevent_io::select::Revents::default().is_invalid());
    /// ```
    pub fn is_invalid(self) -> bool {
        self.0 & libc::POLLNVAL != 0
    }

    /// The raw `revents` bits (`libc::POLLIN`, …).
    ///
    /// ```
    /// assert_eq!(gevent_io::select::Revents::default().bits(), 0);
    /// ```
    pub fn bits(self) -> libc::c_short {
        self.0
    }
}

impl fmt::Debug for Revents {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut l = f.debug_set();
        for (bit, name) in [
            (libc::POLLIN, "IN"),
            (libc::POLLOUT, "OUT"),
            (libc::POLLHUP, "HUP"),
            (libc::POLLERR, "ERR"),
            (libc::POLLNVAL, "NVAL"),
        ] {
            if self.0 & bit != 0 {
                l.entry(&format_args!("{name}"));
            }
        }
        l.finish()
    }
}

/// One entry of a [`poll`]: an fd, what to wait for, and what was found.
///
/// ```
/// use gevent_io::select::{Interest, PollFd};
/// let p = PollFd::new(0, Interest::BOTH);
/// assert_eq!((p.fd(), p.interest()), (0, Interest::BOTH));
/// assert!(p.revents().is_empty());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PollFd {
    fd: RawFd,
    interest: Interest,
    revents: Revents,
}

impl PollFd {
    /// Wait on `fd` for `interest`; a negative fd is ignored (as by `poll(2)`).
    ///
    /// ```
    /// let p = gevent_io::select::PollFd::new(-1, gevent_io::select::Interest::READABLE);
    /// assert_eq!(p.fd(), -1);
    /// ```
    pub fn new(fd: RawFd, interest: Interest) -> PollFd {
        PollFd {
            fd,
            interest,
            revents: Revents::default(),
        }
    }

    /// The fd.
    ///
    /// ```
    /// assert_eq!(gevent_io::select::PollFd::new(3, gevent_io::select::Interest::READABLE).fd(), 3);
    /// ```
    pub fn fd(&self) -> RawFd {
        self.fd
    }

    /// What is waited for.
    ///
    /// ```
    /// use gevent_io::select::{Interest, PollFd};
    /// assert_eq!(PollFd::new(3, Interest::WRITABLE).interest(), Interest::WRITABLE);
    /// ```
    pub fn interest(&self) -> Interest {
        self.interest
    }

    /// What the last [`poll`] found (empty before one).
    ///
    /// ```
    /// use gevent_io::select::{Interest, PollFd};
    /// assert!(PollFd::new(3, Interest::WRITABLE).revents().is_empty());
    /// ```
    pub fn revents(&self) -> Revents {
        self.revents
    }
}

fn poll_events(interest: Interest) -> libc::c_short {
    let mut e = 0;
    if interest.is_readable() {
        e |= libc::POLLIN;
    }
    if interest.is_writable() {
        e |= libc::POLLOUT;
    }
    e
}

/// `poll(2)` with a zero timeout: how many entries have something.
fn poll_now(fds: &mut [libc::pollfd]) -> io::Result<usize> {
    for p in fds.iter_mut() {
        p.revents = 0;
    }
    loop {
        // SAFETY: `fds` is a valid, exclusively borrowed slice of `fds.len()` pollfds, and a
        // zero timeout: poll only reads and writes those entries and returns at once.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, 0) };
        if n >= 0 {
            return Ok(n as usize);
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Wait until some entry of `fds` (distinct fds) has something, or the timeout: watchers on
/// the hub's loop for the wait, the kernel asked again for the answer. Returns the count.
fn wait_ready(fds: &mut [libc::pollfd], timeout: Option<Duration>) -> io::Result<usize> {
    let n = poll_now(fds)?;
    if n > 0 || timeout == Some(Duration::ZERO) {
        return Ok(n);
    }
    let deadline = timeout.map(crate::deadline_after);
    loop {
        let left = match deadline {
            Some(d) => match d.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => Some(left),
                _ => return poll_now(fds),
            },
            None => None,
        };
        let w = Waiter::new("select").map_err(io::Error::from)?;
        let lp = greenlet::hub_loop();
        let mut watchers = Vec::with_capacity(fds.len());
        for p in fds.iter().filter(|p| p.fd >= 0) {
            let mut events = Events::default();
            if p.events & libc::POLLIN != 0 {
                events |= Events::READ;
            }
            if p.events & libc::POLLOUT != 0 {
                events |= Events::WRITE;
            }
            let waker = w.waker();
            let io = Io::new(&lp, p.fd, events, move |_, _| {
                waker.wake();
            })?;
            io.start();
            watchers.push(io);
        }
        // Dropped on every way out of the wait, an unwinding kill included.
        let woken = w.wait_for(left);
        drop(watchers);
        match woken {
            Ok(true) => {
                let n = poll_now(fds)?;
                if n > 0 {
                    return Ok(n);
                }
                // Woken, but the kernel has nothing now (someone else took it): wait again.
            }
            Ok(false) => return poll_now(fds),
            Err(e) => return Err(io::Error::from(e)),
        }
    }
}

/// Wait until some entry of `fds` is ready, at most `timeout` (`None`: no limit), like
/// `poll(2)`; fills every entry's [`revents`](PollFd::revents) and returns how many have
/// something (0 after the timeout). An fd listed twice is watched once; an fd that is not
/// open is reported at once as [`is_invalid`](Revents::is_invalid).
///
/// # Errors
/// The kernel's, or the wait's as an `io::Error` (a wait in the hub, an enclosing
/// [`Timeout`](greenlet::Timeout)'s expiry as `TimedOut`). A kill unwinds the greenlet, its
/// watchers dropped.
///
/// ```
/// use gevent_io::select::{Interest, PollFd, poll};
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let mut fds = [PollFd::new(a.as_raw_fd(), Interest::READABLE)];
/// assert_eq!(poll(&mut fds, Some(Duration::from_millis(5))).unwrap(), 0);
/// fds[0] = PollFd::new(a.as_raw_fd(), Interest::BOTH);
/// assert_eq!(poll(&mut fds, None).unwrap(), 1);
/// assert!(fds[0].revents().is_writable() && !fds[0].revents().is_readable());
/// ```
pub fn poll(fds: &mut [PollFd], timeout: Option<Duration>) -> io::Result<usize> {
    // One pollfd per distinct fd, asking for everything its entries ask for.
    let mut raw: Vec<libc::pollfd> = Vec::with_capacity(fds.len());
    for p in fds.iter() {
        if p.fd < 0 {
            continue;
        }
        match raw.iter_mut().find(|r| r.fd == p.fd) {
            Some(r) => r.events |= poll_events(p.interest),
            None => raw.push(libc::pollfd {
                fd: p.fd,
                events: poll_events(p.interest),
                revents: 0,
            }),
        }
    }
    wait_ready(&mut raw, timeout)?;
    let mut count = 0;
    for p in fds.iter_mut() {
        let got = raw.iter().find(|r| r.fd == p.fd).map_or(0, |r| r.revents);
        // Each entry gets what it asked for, and the conditions reported regardless.
        let mask = poll_events(p.interest) | libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
        p.revents = Revents(got & mask);
        if !p.revents.is_empty() {
            count += 1;
        }
    }
    Ok(count)
}

/// Wait until some fd of `read` is readable or some fd of `write` is writable, at most
/// `timeout` (`None`: no limit), like `select(2)` and Python's `select.select`. Returns the
/// ready fds of each set, in the order given (an fd listed twice is reported once); both
/// empty after the timeout. A hang-up or a pending error counts as ready, as for `select`.
///
/// # Errors
/// `EBADF` if an fd is not open (or negative); otherwise as for [`poll`].
///
/// ```
/// use gevent_io::select::select;
/// use std::os::fd::AsRawFd;
/// use std::time::Duration;
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let fd = a.as_raw_fd();
/// assert_eq!(select(&[fd], &[fd], None).unwrap(), (vec![], vec![fd]));
/// assert_eq!(select(&[fd], &[], Some(Duration::from_millis(5))).unwrap(), (vec![], vec![]));
/// assert!(select(&[-1], &[], None).is_err());
/// ```
pub fn select(
    read: &[RawFd],
    write: &[RawFd],
    timeout: Option<Duration>,
) -> io::Result<(Vec<RawFd>, Vec<RawFd>)> {
    let mut raw: Vec<libc::pollfd> = Vec::with_capacity(read.len() + write.len());
    for (&fd, events) in read
        .iter()
        .map(|fd| (fd, libc::POLLIN))
        .chain(write.iter().map(|fd| (fd, libc::POLLOUT)))
    {
        if fd < 0 {
            return Err(io::Error::from_raw_os_error(libc::EBADF));
        }
        match raw.iter_mut().find(|r| r.fd == fd) {
            Some(r) => r.events |= events,
            None => raw.push(libc::pollfd {
                fd,
                events,
                revents: 0,
            }),
        }
    }
    wait_ready(&mut raw, timeout)?;
    if raw.iter().any(|r| r.revents & libc::POLLNVAL != 0) {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    let ready = |fds: &[RawFd], bit: libc::c_short| {
        let mut out: Vec<RawFd> = Vec::new();
        for &fd in fds {
            let got = raw.iter().find(|r| r.fd == fd).map_or(0, |r| r.revents);
            if got & (bit | libc::POLLHUP | libc::POLLERR) != 0 && !out.contains(&fd) {
                out.push(fd);
            }
        }
        out
    };
    Ok((ready(read, libc::POLLIN), ready(write, libc::POLLOUT)))
}
