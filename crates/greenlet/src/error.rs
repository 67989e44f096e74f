//! Errors of blocking operations and of joining greenlets.

#![forbid(unsafe_code)]

use std::any::Any;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Why a blocking operation did not complete.
///
/// ```
/// use greenlet::{Error, Event};
/// // Nothing can ever set this event: the wait fails at once instead of hanging.
/// let ev = Event::new();
/// assert!(matches!(ev.wait(), Err(Error::WouldBlockForever)));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The timeout of the call, or of an enclosing [`Timeout`](crate::Timeout), expired.
    Timeout(TimeoutId),
    /// Nothing can ever wake this greenlet: the hub's loop ran out of watchers and callbacks
    /// (gevent's `LoopExit`).
    WouldBlockForever,
    /// A blocking call was made from inside the hub (a watcher callback), which would deadlock.
    BlockingInHub,
    /// A greenlet tried to wait for itself.
    JoinSelf,
    /// No stack could be allocated for a new greenlet.
    Spawn(String),
    /// The hub's event loop could not be created or used; the loop's error is the
    /// [`source`](std::error::Error::source).
    Loop(LoopError),
    /// The greenlet switched to has already finished; or a blocking call was made by a
    /// finishing greenlet (from the destructor of a greenlet-local value).
    Dead,
    /// The greenlet was killed during a wait that does not unwind
    /// ([`Waiter::new_no_unwind`](crate::hub::Waiter::new_no_unwind)); the kill stays
    /// requested and unwinds the greenlet at its next ordinary blocking call.
    Killed,
}

/// Identifies the timeout that expired, so nested [`Timeout`](crate::Timeout) scopes can tell
/// their own expiry from an inner one's.
///
/// ```
/// use greenlet::{with_timeout, Error, sleep};
/// use std::time::Duration;
/// let r = with_timeout(Duration::from_millis(10), || sleep(Duration::from_secs(5)));
/// assert!(matches!(r, Err(Error::Timeout(_))));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeoutId(pub(crate) u64);

impl TimeoutId {
    /// The id of a call's own timeout (`join_timeout`, `get_timeout`, …): never a
    /// [`Timeout`](crate::Timeout) scope's, so `Timeout::is_mine` is false for it.
    pub(crate) const OWN: TimeoutId = TimeoutId(0);
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Timeout(_) => write!(f, "operation timed out"),
            Error::WouldBlockForever => write!(
                f,
                "this operation would block forever: the hub has nothing left that could wake \
                 this greenlet"
            ),
            Error::BlockingInHub => write!(
                f,
                "cannot block inside the hub (a watcher or hub callback); spawn a greenlet instead"
            ),
            Error::JoinSelf => write!(f, "a greenlet cannot wait for itself"),
            Error::Spawn(msg) => write!(f, "cannot spawn a greenlet: {msg}"),
            Error::Loop(e) => write!(f, "event loop error: {e}"),
            Error::Dead => write!(f, "the greenlet has already finished"),
            Error::Killed => write!(f, "the greenlet was killed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Loop(e) => Some(e.get_ref()),
            _ => None,
        }
    }
}

/// An error of the hub's event loop ([`ev_loop::Error`]), as carried by [`Error::Loop`]:
/// cheap to clone, and equal to another when it is the same error or says the same.
///
/// ```
/// use std::error::Error as _;
/// let e = greenlet::Error::Loop(ev_loop::Error::InvalidEvents(0).into());
/// assert!(e.source().unwrap().is::<ev_loop::Error>());
/// ```
#[derive(Debug, Clone)]
pub struct LoopError(Arc<ev_loop::Error>);

impl LoopError {
    /// The loop's error.
    ///
    /// ```
    /// let e = greenlet::LoopError::from(ev_loop::Error::InvalidEvents(0));
    /// assert!(matches!(e.get_ref(), ev_loop::Error::InvalidEvents(0)));
    /// ```
    pub fn get_ref(&self) -> &ev_loop::Error {
        &self.0
    }
}

impl From<ev_loop::Error> for LoopError {
    fn from(e: ev_loop::Error) -> LoopError {
        LoopError(Arc::new(e))
    }
}

impl PartialEq for LoopError {
    fn eq(&self, other: &LoopError) -> bool {
        Arc::ptr_eq(&self.0, &other.0) || self.0.to_string() == other.0.to_string()
    }
}

impl Eq for LoopError {}

impl fmt::Display for LoopError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl Error {
    /// Whether this is a timeout (of any scope).
    ///
    /// ```
    /// use greenlet::{sleep, with_timeout};
    /// use std::time::Duration;
    /// let r = with_timeout(Duration::from_millis(1), || sleep(Duration::from_secs(1)));
    /// assert!(r.unwrap_err().is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, Error::Timeout(_))
    }
}

/// The error as an `io::Error` whose `get_ref` is this error: `TimedOut` for a timeout;
/// `Deadlock` for [`Error::WouldBlockForever`] (nothing can ever wake the caller: code that
/// reads `WouldBlock` as "try again", or C code that sees `EAGAIN`, would spin); `Other` for
/// the rest.
///
/// ```
/// let e = std::io::Error::from(greenlet::Error::WouldBlockForever);
/// assert_eq!(e.kind(), std::io::ErrorKind::Deadlock);
/// ```
impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match e {
            Error::Timeout(_) => io::ErrorKind::TimedOut,
            Error::WouldBlockForever => io::ErrorKind::Deadlock,
            _ => io::ErrorKind::Other,
        };
        io::Error::new(kind, e)
    }
}

/// Why [`Greenlet::join`](crate::Greenlet::join) did not return the greenlet's value.
///
/// ```
/// use greenlet::{spawn, JoinError};
/// let g = spawn(|| -> u32 { panic!("boom") });
/// match g.join() {
///     Err(JoinError::Panicked(p)) => assert_eq!(p.downcast_ref::<&str>(), Some(&"boom")),
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[non_exhaustive]
pub enum JoinError {
    /// The greenlet panicked; the payload is what it panicked with.
    Panicked(Box<dyn Any + Send>),
    /// The greenlet was killed (before or while running).
    Killed,
    /// The wait for the greenlet failed (timeout, would block forever, joining itself, …); the
    /// greenlet may still be running.
    Wait(Error),
    /// The value was already taken by an earlier join.
    AlreadyTaken,
}

impl JoinError {
    /// Whether the join timed out.
    ///
    /// ```
    /// use greenlet::{sleep, spawn};
    /// use std::time::Duration;
    /// let g = spawn(|| sleep(Duration::from_secs(1)));
    /// assert!(g.join_timeout(Duration::from_millis(5)).unwrap_err().is_timeout());
    /// g.kill();
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, JoinError::Wait(e) if e.is_timeout())
    }

    /// The panic message, if the greenlet panicked with a string.
    ///
    /// ```
    /// let g = greenlet::spawn(|| panic!("bad {}", 42));
    /// assert_eq!(g.join().unwrap_err().panic_message(), Some("bad 42"));
    /// ```
    pub fn panic_message(&self) -> Option<&str> {
        match self {
            JoinError::Panicked(p) => panic_message(p.as_ref()),
            _ => None,
        }
    }
}

/// Drop a panic payload that is not passed on. Its destructor is user code and may panic
/// too: that second payload is leaked rather than let it unwind.
pub(crate) fn drop_payload(p: Box<dyn Any + Send>) {
    if let Err(again) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || drop(p))) {
        std::mem::forget(again);
    }
}

pub(crate) fn panic_message(p: &(dyn Any + Send)) -> Option<&str> {
    p.downcast_ref::<&str>()
        .copied()
        .or_else(|| p.downcast_ref::<String>().map(|s| s.as_str()))
}

impl fmt::Debug for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => f
                .debug_tuple("Panicked")
                .field(&panic_message(p.as_ref()).unwrap_or("<non-string payload>"))
                .finish(),
            JoinError::Killed => write!(f, "Killed"),
            JoinError::Wait(e) => f.debug_tuple("Wait").field(e).finish(),
            JoinError::AlreadyTaken => write!(f, "AlreadyTaken"),
        }
    }
}

impl fmt::Display for JoinError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JoinError::Panicked(p) => match panic_message(p.as_ref()) {
                Some(m) => write!(f, "greenlet panicked: {m}"),
                None => write!(f, "greenlet panicked"),
            },
            JoinError::Killed => write!(f, "greenlet was killed"),
            JoinError::Wait(e) => write!(f, "join failed: {e}"),
            JoinError::AlreadyTaken => write!(f, "the greenlet's value was already taken"),
        }
    }
}

impl std::error::Error for JoinError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JoinError::Wait(e) => Some(e),
            _ => None,
        }
    }
}

impl From<Error> for JoinError {
    fn from(e: Error) -> JoinError {
        JoinError::Wait(e)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
