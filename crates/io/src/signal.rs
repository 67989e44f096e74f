//! Cooperative signal handling (gevent's `gevent.signal_handler` and `hub.signal`), on libev's
//! `ev_signal` watchers on the current thread's hub loop.
//!
//! * [`wait`] blocks the calling greenlet (not the thread) until a signal arrives.
//! * [`handle`] runs a closure in a **new greenlet** every time a signal arrives, so the
//!   handler may block (sleep, do I/O, …). Its watcher does not keep the hub's loop alive, like
//!   gevent's `signal_handler`: a program whose only remaining work is a signal handler is done.
//!   Dropping the returned [`SignalHandler`] (or calling [`SignalHandler::cancel`]) stops it.
//!
//! Handlers never run inside the OS signal handler: libev's own handler only records the signal
//! and wakes the loop, and the closure runs later as ordinary greenlet code, where everything is
//! allowed.
//!
//! # Rules that come from libev
//!
//! * **One hub per signal.** libev delivers a signal to one loop only, so while any greenlet of
//!   one thread waits for or handles a signal, other threads' hubs get
//!   [`SignalError::InUse`] for it. Any number of waiters and handlers on the same hub may share
//!   a signal; each gets every delivery.
//! * **Disposition.** While at least one watcher for a signal is active, libev's `sigaction`
//!   handler is installed for it (so the signal no longer has its default effect, such as
//!   terminating the process for `SIGUSR1` or `SIGTERM`). When the last one stops, libev sets
//!   the signal back to `SIG_DFL`, the *default* disposition (not to whatever handler was
//!   installed before): a `SIGUSR1` that arrives after that terminates the process.
//! * Signals that arrive while nothing watches them are not queued for later watchers, and
//!   several deliveries of one signal before the loop notices them count as one (as with any
//!   standard Unix signal).
//!
//! # Example
//!
//! ```
//! use gevent_io::signal;
//! use std::time::Duration;
//!
//! // A waiter in its own greenlet; the root raises the signal once the waiter is blocked.
//! let waiter = greenlet::spawn(|| signal::wait(libc::SIGUSR1, Some(Duration::from_secs(5))));
//! greenlet::yield_now().unwrap();
//! // SAFETY: SIGUSR1 is being watched by the waiter above, so libev's handler receives it.
//! unsafe { libc::raise(libc::SIGUSR1) };
//! waiter.join().unwrap().unwrap();
//! ```

use ev_loop::Signal;
use greenlet::Error;
use greenlet::hub::Waiter;
use std::cell::RefCell;
use std::fmt;
use std::io;
use std::marker::PhantomData;
use std::os::raw::c_int;
use std::rc::Rc;
use std::time::Duration;

/// Why a signal could not be waited for or handled.
///
/// ```
/// use gevent_io::signal::{self, SignalError};
/// let e = signal::wait(libc::SIGKILL, None).unwrap_err();
/// assert!(matches!(e, SignalError::Invalid(n) if n == libc::SIGKILL));
/// // Converts to an `io::Error` of kind `InvalidInput`.
/// assert_eq!(std::io::Error::from(e).kind(), std::io::ErrorKind::InvalidInput);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignalError {
    /// The number is not a signal that can be caught: outside `1..=64`, or `SIGKILL`/`SIGSTOP`.
    Invalid(i32),
    /// Another thread's hub already waits for or handles this signal (libev delivers a signal
    /// to one loop only).
    InUse(i32),
    /// The wait itself failed: it timed out ([`Error::Timeout`]), nothing could ever wake it
    /// ([`Error::WouldBlockForever`]), it was called inside the hub
    /// ([`Error::BlockingInHub`]), or the loop refused the watcher ([`Error::Loop`]).
    Hub(Error),
}

impl SignalError {
    /// Whether the wait timed out (its own timeout or an enclosing
    /// [`Timeout`](greenlet::Timeout)'s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = gevent_io::signal::wait(libc::SIGTTOU, Some(Duration::from_millis(5))).unwrap_err();
    /// assert!(e.is_timeout());
    /// ```
    pub fn is_timeout(&self) -> bool {
        matches!(self, SignalError::Hub(e) if e.is_timeout())
    }
}

impl fmt::Display for SignalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignalError::Invalid(n) => write!(
                f,
                "invalid signal number {n}: expected 1..=64 and not SIGKILL or SIGSTOP"
            ),
            SignalError::InUse(n) => write!(
                f,
                "signal {n} is already waited for or handled by another thread's hub \
                 (libev delivers a signal to one loop only)"
            ),
            SignalError::Hub(e) => write!(f, "waiting for a signal failed: {e}"),
        }
    }
}

impl std::error::Error for SignalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SignalError::Hub(e) => Some(e),
            _ => None,
        }
    }
}

impl From<SignalError> for io::Error {
    fn from(e: SignalError) -> io::Error {
        match e {
            SignalError::Invalid(_) => io::Error::new(io::ErrorKind::InvalidInput, e),
            SignalError::InUse(_) => io::Error::new(io::ErrorKind::ResourceBusy, e),
            SignalError::Hub(inner) => io::Error::from(inner),
        }
    }
}

impl From<ev_loop::Error> for SignalError {
    fn from(e: ev_loop::Error) -> SignalError {
        match e {
            ev_loop::Error::InvalidSignal(n) => SignalError::Invalid(n),
            ev_loop::Error::SignalInUse(n) => SignalError::InUse(n),
            other => SignalError::Hub(Error::Loop(other.into())),
        }
    }
}

/// Wait cooperatively until `signum` arrives, at most `timeout` (`None`: no limit).
///
/// While it waits, the signal's watcher keeps the hub's loop alive (a greenlet waiting for a
/// signal is work the program still has to do).
///
/// # Errors
/// [`SignalError::Invalid`] for a number that cannot be caught, [`SignalError::InUse`] when
/// another thread's hub owns the signal, [`SignalError::Hub`] with [`Error::Timeout`] after
/// the timeout (see [`SignalError::is_timeout`]) or [`Error::BlockingInHub`] from a hub
/// callback. Never panics on bad input.
///
/// ```
/// use gevent_io::signal;
/// use std::time::Duration;
///
/// let waiter = greenlet::spawn(|| signal::wait(libc::SIGUSR2, Some(Duration::from_secs(5))));
/// greenlet::yield_now().unwrap(); // the waiter now watches SIGUSR2
/// // SAFETY: SIGUSR2 is watched (by the waiter), so it does not terminate the process.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// assert!(waiter.join().unwrap().is_ok());
///
/// assert!(signal::wait(0, None).is_err());
/// ```
pub fn wait(signum: c_int, timeout: Option<Duration>) -> Result<(), SignalError> {
    let lp = greenlet::hub_loop();
    let w = Waiter::new("signal").map_err(SignalError::Hub)?;
    let token = w.waker();
    // Created after the waiter on purpose: on error the waiter is dropped, which unregisters it.
    let watcher = Signal::new(&lp, signum, move |_, _| {
        token.wake();
    })?;
    watcher.start();
    drop(lp);
    let r = w.wait(timeout).map_err(SignalError::Hub);
    // Stopping (and so possibly restoring SIG_DFL) happens here, after the wait.
    drop(watcher);
    r
}

/// Run `f` in a new greenlet each time `signum` arrives, until the returned handler is
/// dropped or cancelled (gevent's `signal_handler`).
///
/// Each delivery spawns its own greenlet (named `signal handler N`), so `f` may block and
/// several runs may overlap. The watcher does not keep the hub's loop alive: with only signal
/// handlers left, [`greenlet::wait`] returns at once. A panic in `f` ends only
/// that run's greenlet.
///
/// # Errors
/// [`SignalError::Invalid`] for a number that cannot be caught, [`SignalError::InUse`] when
/// another thread's hub owns the signal. Never panics on bad input.
///
/// ```
/// use gevent_io::signal;
/// use greenlet::Event;
/// use std::time::Duration;
///
/// let got = Event::new();
/// let g = got.clone();
/// let handler = signal::handle(libc::SIGHUP, move || {
///     // Runs in its own greenlet: blocking is fine.
///     greenlet::sleep(Duration::from_millis(1)).unwrap();
///     g.set();
/// })
/// .unwrap();
/// // SAFETY: SIGHUP is handled (by the handler above), so it does not terminate the process.
/// unsafe { libc::raise(libc::SIGHUP) };
/// // The handler does not keep the loop alive, but the timeout of this wait does.
/// assert!(got.wait_timeout(Duration::from_secs(5)).unwrap());
/// handler.cancel();
///
/// assert!(signal::handle(libc::SIGSTOP, || {}).is_err());
/// ```
pub fn handle(signum: c_int, f: impl Fn() + 'static) -> Result<SignalHandler, SignalError> {
    let lp = greenlet::hub_loop();
    let f = Rc::new(f);
    let watcher = Signal::new(&lp, signum, move |_, _| {
        let f = f.clone();
        let spawned = greenlet::Builder::new()
            .name(format!("signal handler {signum}"))
            .spawn(move || f());
        if let Err(e) = spawned {
            log::error!("cannot run the handler of signal {signum}: {e}");
        }
    })?;
    watcher.set_keep_alive(false);
    watcher.start();
    Ok(SignalHandler {
        watcher: RefCell::new(Some(watcher)),
        signum,
        _not_send: PhantomData,
    })
}

/// A signal handler installed by [`handle`]; `!Send`. Dropping it stops the handler (runs
/// already started keep going).
///
/// ```
/// let h = gevent_io::signal::handle(libc::SIGPROF, || {}).unwrap();
/// assert!(h.is_active());
/// assert_eq!(h.signum(), libc::SIGPROF);
/// drop(h); // SIGPROF has its default disposition again
/// ```
pub struct SignalHandler {
    watcher: RefCell<Option<Signal>>,
    signum: c_int,
    _not_send: PhantomData<*const ()>,
}

impl SignalHandler {
    /// Stop handling the signal. Later deliveries no longer run the closure; once no watcher
    /// of this signal is left, libev resets it to its default disposition. Cancelling twice
    /// does nothing.
    ///
    /// ```
    /// let h = gevent_io::signal::handle(libc::SIGVTALRM, || {}).unwrap();
    /// h.cancel();
    /// assert!(!h.is_active());
    /// h.cancel();
    /// ```
    pub fn cancel(&self) {
        // Dropping the watcher stops it and releases this hub's claim on the signal.
        drop(self.watcher.borrow_mut().take());
    }

    /// Whether the handler is still installed (not cancelled).
    ///
    /// ```
    /// let h = gevent_io::signal::handle(libc::SIGXCPU, || {}).unwrap();
    /// assert!(h.is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.watcher.borrow().is_some()
    }

    /// The handled signal number.
    ///
    /// ```
    /// let h = gevent_io::signal::handle(libc::SIGXFSZ, || {}).unwrap();
    /// assert_eq!(h.signum(), libc::SIGXFSZ);
    /// ```
    pub fn signum(&self) -> c_int {
        self.signum
    }
}

impl Drop for SignalHandler {
    fn drop(&mut self) {
        self.cancel();
    }
}

impl fmt::Debug for SignalHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalHandler")
            .field("signum", &self.signum)
            .field("active", &self.is_active())
            .finish()
    }
}
