//! Parking a greenlet and switching directly to another one: `std::thread::park` for
//! greenlets, plus the direct hand-off that raw greenlet code (Python's `greenlet.switch`) is
//! built on.
//!
//! [`park`] suspends the current greenlet until someone calls [`GreenletRef::unpark`] on it.
//! Like `std::thread`, an unpark that arrives while the greenlet is not parked is kept as a
//! token, so the next `park` returns at once: wake-ups are never lost, whichever comes first.
//!
//! [`switch_to`] is "unpark `target`, then park me" (waiting for a fresh unpark), except that
//! when `target` is parked it runs *right away*: the current greenlet switches to it directly
//! instead of queueing it behind the hub's other work. Two greenlets handing control back and
//! forth this way cost little more than the raw stack switch (see BENCHMARKS.md). To keep the
//! hub fair, after 8192 direct switches in a row (or 5 ms) the next one goes through the
//! hub's queue, which lets it run its callbacks and poll for I/O.
//!
//! ```
//! use greenlet::park::{current, switch_to};
//! use std::{cell::RefCell, rc::Rc};
//!
//! // A generator: the worker produces one value per switch.
//! let slot = Rc::new(RefCell::new(None));
//! let main = current();
//! let s = slot.clone();
//! let worker = greenlet::spawn(move || {
//!     for i in 1..=3 {
//!         *s.borrow_mut() = Some(i * 10);
//!         switch_to(&main).unwrap(); // hand the value over; resume when asked for the next
//!     }
//!     main.unpark(); // done: let main go on without another switch
//! });
//! let w = worker.handle();
//! let mut got = Vec::new();
//! loop {
//!     switch_to(&w).unwrap(); // run the worker until it hands over (or finishes)
//!     match slot.borrow_mut().take() {
//!         Some(v) => got.push(v),
//!         None => break,
//!     }
//! }
//! assert_eq!(got, [10, 20, 30]);
//! worker.join().unwrap();
//! ```

#![forbid(unsafe_code)]

#[cfg(doc)]
use crate::error::Error;
use crate::error::Result;
use crate::hub::{self, GlCore};
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// A handle to a greenlet of this thread, whatever its result type (like `std::thread::Thread`).
/// Get one from [`current`] or [`Greenlet::handle`](crate::Greenlet::handle). Clones refer to
/// the same greenlet; `!Send`, like every handle bound to a hub.
#[derive(Clone)]
pub struct GreenletRef {
    core: Rc<GlCore>,
}

impl GreenletRef {
    pub(crate) fn new(core: Rc<GlCore>) -> GreenletRef {
        GreenletRef { core }
    }

    /// A number unique among this thread's greenlets (the same as
    /// [`Greenlet::id`](crate::Greenlet::id)).
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert_eq!(g.handle().id(), g.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// The greenlet's name (the thread's name for the thread's root greenlet).
    ///
    /// ```
    /// let g = greenlet::Builder::new().name("worker").spawn(|| ()).unwrap();
    /// assert_eq!(g.handle().name(), "worker");
    /// ```
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// Whether the greenlet has finished.
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// let h = g.handle();
    /// g.join().unwrap();
    /// assert!(h.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        self.core.is_dead()
    }

    /// Wake the greenlet if it is parked; otherwise make its next [`park`] return at once.
    /// Unparking a finished greenlet does nothing.
    ///
    /// ```
    /// use greenlet::park::{current, park};
    /// current().unpark(); // not parked: the token is kept...
    /// park().unwrap(); // ...so this returns at once
    /// ```
    pub fn unpark(&self) {
        hub::unpark(&self.core);
    }
}

impl PartialEq for GreenletRef {
    fn eq(&self, other: &GreenletRef) -> bool {
        Rc::ptr_eq(&self.core, &other.core)
    }
}

impl Eq for GreenletRef {}

impl fmt::Debug for GreenletRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GreenletRef")
            .field("id", &self.core.id)
            .field("name", &self.core.name())
            .field("dead", &self.core.is_dead())
            .finish()
    }
}

/// The greenlet that is running (the thread's root greenlet outside any spawned one).
///
/// ```
/// let here = greenlet::park::current();
/// let inside = greenlet::spawn(|| greenlet::park::current()).join().unwrap();
/// assert_ne!(here, inside);
/// assert!(inside.is_dead());
/// ```
pub fn current() -> GreenletRef {
    GreenletRef::new(hub::current())
}

/// Suspend the current greenlet until [`GreenletRef::unpark`] is called on it (returns at once
/// if an unpark came first) or another greenlet [`switch_to`]s it.
///
/// # Errors
/// [`Error::WouldBlockForever`] when nothing is left that could unpark it (the root greenlet
/// only); [`Error::Timeout`] from an enclosing [`Timeout`](crate::Timeout);
/// [`Error::BlockingInHub`] in a hub callback.
///
/// ```
/// use greenlet::park::{current, park};
/// let me = current();
/// greenlet::spawn(move || me.unpark());
/// park().unwrap();
/// ```
pub fn park() -> Result<()> {
    hub::park(None).map(|_| ())
}

/// [`park`], for at most `timeout`. Returns whether it was unparked (`false`: the timeout
/// expired).
///
/// ```
/// use std::time::Duration;
/// let keep_alive = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(50)));
/// assert!(!greenlet::park::park_timeout(Duration::from_millis(5)).unwrap());
/// # keep_alive.kill();
/// ```
pub fn park_timeout(timeout: Duration) -> Result<bool> {
    hub::park(Some(timeout))
}

/// Unpark `target` and park the current greenlet, switching straight to `target` when it is
/// parked (see the [module docs](self)). Returns when the current greenlet is unparked or
/// switched to *after* this call: unlike [`park`], it discards an unpark token it finds (it
/// passes control on and waits for it to come back). Switching to yourself returns at once.
///
/// # Errors
/// [`Error::Dead`] if `target` has finished; otherwise those of [`park`].
///
/// ```
/// use greenlet::Error;
/// use greenlet::park::switch_to;
/// let g = greenlet::spawn(|| ());
/// let h = g.handle();
/// g.join().unwrap();
/// assert_eq!(switch_to(&h), Err(Error::Dead));
/// ```
#[inline(always)]
pub fn switch_to(target: &GreenletRef) -> Result<()> {
    hub::switch_to_parked(&target.core)
}
