//! Deadlines for whole blocks of code (gevent's `Timeout`).
//!
//! A [`Timeout`] belongs to the greenlet that started it. When it expires while that greenlet
//! is blocked, the blocking call returns [`Error::Timeout`]; if the greenlet is not blocked at
//! that moment, its next blocking call does. CPU-bound code is never interrupted: a greenlet
//! that does not block does not see its timeout until it does.
//!
//! ```
//! use greenlet::{sleep, Timeout, Error};
//! use std::time::Duration;
//!
//! let t = Timeout::start(Duration::from_millis(10));
//! let r = sleep(Duration::from_secs(10));
//! assert_eq!(r, Err(Error::Timeout(t.id())));
//! ```

#![forbid(unsafe_code)]

use crate::error::{Error, Result, TimeoutId};
use crate::hub::{self, GlCore, ScopeTimer};
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    static NEXT_ID: Cell<u64> = const { Cell::new(1 << 62) };
}

/// A scoped deadline for the current greenlet; cancelled when dropped. `!Send`.
///
/// Nested timeouts work independently: the shorter one fires first, and an outer one stays
/// armed and fires later if its scope is still running.
///
/// ```
/// use greenlet::{sleep, Timeout};
/// use std::time::Duration;
/// let outer = Timeout::start(Duration::from_millis(300));
/// {
///     let inner = Timeout::start(Duration::from_millis(10));
///     assert_eq!(sleep(Duration::from_secs(60)).unwrap_err(), greenlet::Error::Timeout(inner.id()));
/// }
/// assert_eq!(sleep(Duration::from_secs(60)).unwrap_err(), greenlet::Error::Timeout(outer.id()));
/// ```
pub struct Timeout {
    id: u64,
    owner: Rc<GlCore>,
    /// One of the hub's pooled timers, given back when the scope ends.
    timer: Option<ScopeTimer>,
    _not_send: PhantomData<*const ()>,
}

impl Timeout {
    /// Arm a deadline `d` from now for the current greenlet. `Duration::ZERO` fires on the next
    /// pass of the loop.
    ///
    /// ```
    /// let t = greenlet::Timeout::start(std::time::Duration::ZERO);
    /// assert!(greenlet::yield_now().is_ok() || true);
    /// assert!(greenlet::sleep(std::time::Duration::from_secs(1)).unwrap_err().is_timeout());
    /// # drop(t);
    /// ```
    pub fn start(d: Duration) -> Timeout {
        Timeout::start_opt(Some(d))
    }

    /// Like [`start`](Timeout::start); `None` never fires (convenient for optional timeouts).
    ///
    /// ```
    /// let t = greenlet::Timeout::start_opt(None);
    /// assert!(!t.is_armed());
    /// ```
    pub fn start_opt(d: Option<Duration>) -> Timeout {
        let id = NEXT_ID.with(|n| {
            let id = n.get();
            n.set(id + 1);
            id
        });
        let owner = hub::current();
        let timer = d.map(|d| ScopeTimer::start(d, owner.clone(), id));
        Timeout {
            id,
            owner,
            timer,
            _not_send: PhantomData,
        }
    }

    /// The id carried by [`Error::Timeout`] when this timeout expires.
    ///
    /// ```
    /// let t = greenlet::Timeout::start(std::time::Duration::from_secs(1));
    /// let _ = t.id();
    /// ```
    pub fn id(&self) -> TimeoutId {
        TimeoutId(self.id)
    }

    /// Whether it is still waiting to expire.
    ///
    /// ```
    /// let t = greenlet::Timeout::start(std::time::Duration::from_secs(1));
    /// assert!(t.is_armed());
    /// ```
    pub fn is_armed(&self) -> bool {
        self.timer.as_ref().is_some_and(ScopeTimer::is_active)
    }

    /// Whether it has expired.
    ///
    /// ```
    /// let t = greenlet::Timeout::start(std::time::Duration::from_millis(1));
    /// let _ = greenlet::sleep(std::time::Duration::from_millis(20));
    /// assert!(t.expired());
    /// ```
    pub fn expired(&self) -> bool {
        self.timer.as_ref().is_some_and(ScopeTimer::fired)
    }

    /// Whether `e` is this timeout's expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// let t = greenlet::Timeout::start(Duration::from_millis(1));
    /// let e = greenlet::sleep(Duration::from_secs(1)).unwrap_err();
    /// assert!(t.is_mine(&e));
    /// ```
    pub fn is_mine(&self, e: &Error) -> bool {
        matches!(e, Error::Timeout(TimeoutId(id)) if *id == self.id)
    }

    /// Disarm it (same as dropping it).
    ///
    /// ```
    /// let t = greenlet::Timeout::start(std::time::Duration::from_millis(1));
    /// t.cancel();
    /// greenlet::sleep(std::time::Duration::from_millis(5)).unwrap();
    /// ```
    pub fn cancel(self) {}
}

impl Drop for Timeout {
    fn drop(&mut self) {
        drop(self.timer.take());
        hub::clear_pending_timeout(&self.owner, self.id);
    }
}

impl fmt::Debug for Timeout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Timeout")
            .field("id", &self.id)
            .field("armed", &self.is_armed())
            .field("expired", &self.expired())
            .finish()
    }
}

/// Run `f` under a [`Timeout`] of `d`: its result, or [`Error::Timeout`] if the deadline
/// expired while it was blocked.
///
/// ```
/// use greenlet::{sleep, with_timeout};
/// use std::time::Duration;
/// assert_eq!(with_timeout(Duration::from_secs(1), || Ok(5)).unwrap(), 5);
/// assert!(with_timeout(Duration::from_millis(5), || sleep(Duration::from_secs(1))).is_err());
/// ```
pub fn with_timeout<R>(d: Duration, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let _t = Timeout::start(d);
    f()
}

/// Like [`with_timeout`], but this scope's own expiry yields `default` instead of an error
/// (an inner timeout's expiry is still an error).
///
/// ```
/// use greenlet::{sleep, with_timeout_or};
/// use std::time::Duration;
/// let r = with_timeout_or(Duration::from_millis(5), -1, || sleep(Duration::from_secs(1)).map(|_| 1));
/// assert_eq!(r.unwrap(), -1);
/// ```
pub fn with_timeout_or<R>(d: Duration, default: R, f: impl FnOnce() -> Result<R>) -> Result<R> {
    let t = Timeout::start(d);
    match f() {
        Err(e) if t.is_mine(&e) => Ok(default),
        other => other,
    }
}

/// The instant `d` from now, saturated a century ahead: `Instant + Duration::MAX` panics
/// (overflow), and no wait outlasts a century anyway.
pub(crate) fn deadline_after(d: Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 24 * 3600))
}
