//! The machinery shared by every watcher type: pinned storage, the C trampoline, start/stop,
//! keep-alive and priority.
//!
//! # Invariants
//!
//! * The libev struct lives inside an `Rc` allocation that never moves, and its `data` field
//!   points at that allocation. libev holds a pointer to it only while it is active or pending.
//! * The allocation is freed only when the last `Rc` goes; its `Drop` stops the watcher first,
//!   which also removes it from libev's pending queue. So libev never sees a dangling watcher.
//! * While a callback runs, the trampoline holds an extra strong count, so the callback may drop
//!   the watcher's own handle: the allocation then dies when the callback returns, after which
//!   libev no longer touches the watcher.
//! * Watchers hold a [`Loop`] clone, so the C loop outlives every watcher registered with it.

use crate::error::{Error, Result};
use crate::event_loop::Loop;
use libev_sys::{self as sys, macros};
use std::cell::{Cell, UnsafeCell};
use std::fmt;
use std::mem::ManuallyDrop;
use std::ops::{BitOr, BitOrAssign};
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// The events a watcher received (and, for [`Io`](crate::Io), the events it waits for).
///
/// ```
/// use ev_loop::Events;
/// let both = Events::READ | Events::WRITE;
/// assert!(both.is_readable() && both.is_writable() && !both.is_error());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Events(c_int);

impl Events {
    /// The fd is readable (io watchers).
    pub const READ: Events = Events(sys::EV_READ);
    /// The fd is writable (io watchers).
    pub const WRITE: Events = Events(sys::EV_WRITE);
    /// A timer expired.
    pub const TIMER: Events = Events(sys::EV_TIMER);
    /// A periodic timer expired.
    pub const PERIODIC: Events = Events(sys::EV_PERIODIC);
    /// A signal arrived.
    pub const SIGNAL: Events = Events(sys::EV_SIGNAL);
    /// A child changed status.
    pub const CHILD: Events = Events(sys::EV_CHILD);
    /// An idle watcher ran.
    pub const IDLE: Events = Events(sys::EV_IDLE);
    /// A prepare watcher ran (before the poll).
    pub const PREPARE: Events = Events(sys::EV_PREPARE);
    /// A check watcher ran (after the poll).
    pub const CHECK: Events = Events(sys::EV_CHECK);
    /// An async watcher was signalled.
    pub const ASYNC: Events = Events(sys::EV_ASYNC);
    /// An event fed by hand (`ev_feed_event` with `EV_CUSTOM`).
    pub const CUSTOM: Events = Events(sys::EV_CUSTOM);
    /// libev hit an error for this watcher (for io: the fd was closed or is invalid); the
    /// watcher has been stopped.
    pub const ERROR: Events = Events(sys::EV_ERROR);

    /// Build from raw libev bits.
    ///
    /// ```
    /// assert!(ev_loop::Events::from_bits(libev_sys::EV_READ).is_readable());
    /// ```
    pub fn from_bits(bits: c_int) -> Events {
        Events(bits)
    }

    /// The raw libev bits.
    ///
    /// ```
    /// assert_eq!(ev_loop::Events::WRITE.bits(), libev_sys::EV_WRITE);
    /// ```
    pub fn bits(self) -> c_int {
        self.0
    }

    /// Whether every bit of `other` is set.
    ///
    /// ```
    /// use ev_loop::Events;
    /// assert!((Events::READ | Events::WRITE).contains(Events::WRITE));
    /// ```
    pub fn contains(self, other: Events) -> bool {
        self.0 & other.0 == other.0
    }

    /// `READ` is set.
    ///
    /// ```
    /// assert!(ev_loop::Events::READ.is_readable());
    /// ```
    pub fn is_readable(self) -> bool {
        self.0 & sys::EV_READ != 0
    }

    /// `WRITE` is set.
    ///
    /// ```
    /// assert!(ev_loop::Events::WRITE.is_writable());
    /// ```
    pub fn is_writable(self) -> bool {
        self.0 & sys::EV_WRITE != 0
    }

    /// `ERROR` is set.
    ///
    /// ```
    /// assert!(ev_loop::Events::ERROR.is_error());
    /// ```
    pub fn is_error(self) -> bool {
        self.0 & sys::EV_ERROR != 0
    }
}

impl BitOr for Events {
    type Output = Events;
    fn bitor(self, rhs: Events) -> Events {
        Events(self.0 | rhs.0)
    }
}

impl BitOrAssign for Events {
    fn bitor_assign(&mut self, rhs: Events) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const NAMES: [(Events, &str); 12] = [
            (Events::READ, "READ"),
            (Events::WRITE, "WRITE"),
            (Events::TIMER, "TIMER"),
            (Events::PERIODIC, "PERIODIC"),
            (Events::SIGNAL, "SIGNAL"),
            (Events::CHILD, "CHILD"),
            (Events::IDLE, "IDLE"),
            (Events::PREPARE, "PREPARE"),
            (Events::CHECK, "CHECK"),
            (Events::ASYNC, "ASYNC"),
            (Events::CUSTOM, "CUSTOM"),
            (Events::ERROR, "ERROR"),
        ];
        let parts: Vec<&str> = NAMES
            .iter()
            .filter(|(e, _)| self.contains(*e))
            .map(|(_, n)| *n)
            .collect();
        write!(f, "Events({})", parts.join(" | "))
    }
}

pub(crate) mod sealed {
    pub trait Sealed {}
}

/// The watcher kinds: one marker type per libev watcher type. Used as the parameter of
/// [`Watcher`]; the public names are the aliases [`Io`](crate::Io), [`Timer`](crate::Timer), ….
///
/// This trait is sealed: it cannot be implemented outside this crate.
///
/// ```
/// fn name_of<K: ev_loop::Kind>(_: &ev_loop::Watcher<K>) -> &'static str { std::any::type_name::<K>() }
/// let lp = ev_loop::Loop::new().unwrap();
/// assert!(name_of(&ev_loop::Idle::new(&lp, |_, _| {})).ends_with("Idle"));
/// ```
pub trait Kind: sealed::Sealed + Sized + 'static {
    /// The libev struct.
    #[doc(hidden)]
    type Ffi: macros::Watcher + Default;
    /// libev's name for the watcher type, for messages.
    #[doc(hidden)]
    const NAME: &'static str;
    /// `ev_TYPE_start`.
    #[doc(hidden)]
    unsafe fn start(lp: *mut sys::ev_loop, w: *mut Self::Ffi);
    /// `ev_TYPE_stop`.
    #[doc(hidden)]
    unsafe fn stop(lp: *mut sys::ev_loop, w: *mut Self::Ffi);
    /// Kind-specific state stored with the watcher (a signal claim, an async sender slot).
    /// It is dropped before the watcher's loop reference.
    #[doc(hidden)]
    type Extra;
}

pub(crate) type Callback<K> = Box<dyn FnMut(&Watcher<K>, Events)>;

pub(crate) struct Inner<K: Kind> {
    /// First field, so it is dropped first (after `Drop::drop` stopped the watcher and while the
    /// loop is still alive).
    pub(crate) extra: K::Extra,
    ev: UnsafeCell<K::Ffi>,
    lp: Loop,
    cb: Cell<Option<Callback<K>>>,
    keep_alive: Cell<bool>,
    /// We called `ev_unref` for this watcher and owe the loop an `ev_ref`.
    unrefd: Cell<bool>,
    /// The watcher is counted in its loop's active count.
    counted: Cell<bool>,
}

impl<K: Kind> Drop for Inner<K> {
    fn drop(&mut self) {
        // Stop the watcher (removing it from libev's active and pending lists) before the
        // memory goes.
        stop_raw(self);
        let n = &self.lp.inner.watchers;
        n.set(n.get() - 1);
    }
}

/// Bring the loop's count of active watchers in line with libev's view of this watcher. Called
/// after everything that may start or stop it.
#[inline]
pub(crate) fn sync_active<K: Kind>(inner: &Inner<K>) {
    // SAFETY: reading the `active` field of our own initialised watcher.
    let active = unsafe { macros::ev_is_active(inner.ev.get()) };
    if inner.counted.replace(active) != active {
        let n = &inner.lp.inner.active;
        n.set(if active { n.get() + 1 } else { n.get() - 1 });
    }
}

fn stop_raw<K: Kind>(inner: &Inner<K>) {
    let lp = inner.lp.as_raw();
    if inner.unrefd.replace(false) {
        // SAFETY: we called ev_unref for this watcher earlier; give the reference back before
        // libev's stop drops the one its start took.
        unsafe { sys::ev_ref(lp) };
    }
    // SAFETY: the watcher belongs to `lp` (set at construction, never changed); stop on an
    // inactive watcher only clears a pending event, which is always allowed.
    unsafe { K::stop(lp, inner.ev.get()) };
    sync_active(inner);
}

/// A libev watcher of kind `K` with a Rust closure as its callback.
///
/// Use the aliases: [`Io`](crate::Io), [`Timer`](crate::Timer),
/// [`Periodic`](crate::Periodic), [`Signal`](crate::Signal), [`Child`](crate::Child),
/// [`Prepare`](crate::Prepare), [`Check`](crate::Check), [`Idle`](crate::Idle),
/// [`Async`](crate::Async). A watcher is created inactive on one loop and stays bound to it;
/// the callback receives the watcher itself (so it can stop, restart or inspect it, and reach the
/// loop through [`event_loop`](Watcher::event_loop)) and the received [`Events`].
///
/// Dropping a watcher stops it. A callback may start, stop or drop any watcher, itself included.
/// A watcher is neither `Send` nor `Sync`.
///
/// ```
/// use ev_loop::{Loop, Prepare};
/// use std::{cell::Cell, rc::Rc};
/// let lp = Loop::new().unwrap();
/// let runs = Rc::new(Cell::new(0));
/// let r = runs.clone();
/// let prep = Prepare::new(&lp, move |w, _| {
///     r.set(r.get() + 1);
///     w.stop();
/// });
/// prep.start();
/// assert!(prep.is_active());
/// lp.run();
/// assert_eq!(runs.get(), 1);
/// assert!(!prep.is_active());
/// ```
pub struct Watcher<K: Kind> {
    pub(crate) inner: Rc<Inner<K>>,
}

unsafe extern "C" fn trampoline<K: Kind>(_lp: *mut sys::ev_loop, w: *mut K::Ffi, revents: c_int) {
    // SAFETY: `data` was set to the `Inner<K>` allocation that contains `*w` when the watcher
    // was created, and that allocation is alive: libev only calls us for an active or pending
    // watcher, and `Inner::drop` stops the watcher before freeing it.
    let inner_ptr = unsafe { (*(w as *mut sys::ev_watcher)).data } as *const Inner<K>;
    // SAFETY: take an extra strong count for the duration of the callback, so that dropping the
    // last handle inside the callback does not free the memory under our feet. Balanced by the
    // decrement at the end.
    unsafe { Rc::increment_strong_count(inner_ptr) };
    let handle = ManuallyDrop::new(Watcher::<K> {
        // SAFETY: the count just taken is owned by this `Watcher`, which is never dropped (the
        // ManuallyDrop); we release that count by hand below.
        inner: unsafe { Rc::from_raw(inner_ptr) },
    });
    let inner = &*handle.inner;

    // libev stops some watchers by itself before calling back (one-shot timers, periodics
    // without interval, io watchers on a bad fd). If we had unref'd it, give the reference back
    // now, as libev's stop already took its own back.
    // SAFETY: reading the watcher's `active` field through its pointer.
    if inner.unrefd.get() && !unsafe { macros::ev_is_active(inner.ev.get()) } {
        inner.unrefd.set(false);
        // SAFETY: valid loop; balances our earlier ev_unref.
        unsafe { sys::ev_ref(inner.lp.as_raw()) };
    }
    sync_active(inner);

    if let Some(mut cb) = inner.cb.take() {
        let result = panic::catch_unwind(AssertUnwindSafe(|| cb(&handle, Events(revents))));
        // Put the callback back unless the callback installed a new one.
        let replaced = inner.cb.take();
        inner.cb.set(Some(replaced.unwrap_or(cb)));
        if let Err(payload) = result {
            inner.lp.store_panic(payload);
        }
    } else {
        // The callback is running further up this stack (it ran a nested loop); the event is
        // dropped rather than re-entering a closure that is already borrowed.
        log::debug!(
            "ev_loop: {} event {:?} dropped: its callback is already running",
            K::NAME,
            Events(revents)
        );
    }
    // SAFETY: releases the count taken above (the ManuallyDrop never releases it). This may
    // free the watcher if its handle was dropped during the callback; libev does not touch the
    // watcher after the callback returns.
    unsafe { Rc::decrement_strong_count(inner_ptr) };
}

impl<K: Kind> Watcher<K> {
    pub(crate) fn with_ffi(
        lp: &Loop,
        ffi: K::Ffi,
        extra: K::Extra,
        cb: impl FnMut(&Watcher<K>, Events) + 'static,
    ) -> Watcher<K> {
        let inner = Rc::new(Inner {
            ev: UnsafeCell::new(ffi),
            lp: lp.clone(),
            cb: Cell::new(Some(Box::new(cb))),
            keep_alive: Cell::new(true),
            unrefd: Cell::new(false),
            counted: Cell::new(false),
            extra,
        });
        let n = &lp.inner.watchers;
        n.set(n.get() + 1);
        let ev = inner.ev.get();
        // SAFETY: the watcher is not started yet, so we may initialise it; the Rc allocation
        // never moves, so `data` stays valid for the watcher's whole life.
        unsafe {
            macros::ev_init(ev, Some(trampoline::<K>));
            (*(ev as *mut sys::ev_watcher)).data = Rc::as_ptr(&inner) as *mut _;
        }
        Watcher { inner }
    }

    pub(crate) fn extra(&self) -> &K::Extra {
        &self.inner.extra
    }

    /// The raw libev struct. Valid while this watcher lives.
    pub(crate) fn ffi(&self) -> *mut K::Ffi {
        self.inner.ev.get()
    }

    /// Start watching. Starting an active watcher does nothing.
    ///
    /// ```
    /// use ev_loop::{Loop, Idle};
    /// let lp = Loop::new().unwrap();
    /// let idle = Idle::new(&lp, |w, _| w.stop());
    /// idle.start();
    /// idle.start();
    /// assert!(idle.is_active());
    /// ```
    pub fn start(&self) {
        if self.is_active() {
            return;
        }
        self.start_unchecked();
    }

    pub(crate) fn start_unchecked(&self) {
        let lp = self.inner.lp.as_raw();
        // SAFETY: the watcher is initialised, inactive, and belongs to `lp`; its memory is
        // pinned in the Rc allocation until `Inner::drop` stops it.
        unsafe { K::start(lp, self.ffi()) };
        sync_active(&self.inner);
        if !self.inner.keep_alive.get() {
            // SAFETY: valid loop; balanced by the ev_ref in stop/drop/trampoline.
            unsafe { sys::ev_unref(lp) };
            self.inner.unrefd.set(true);
        }
    }

    /// Stop watching, and discard an event that is pending for this watcher. Stopping an
    /// inactive watcher does nothing.
    ///
    /// ```
    /// use ev_loop::{Loop, Idle};
    /// let lp = Loop::new().unwrap();
    /// let idle = Idle::new(&lp, |_, _| unreachable!());
    /// idle.start();
    /// idle.stop();
    /// lp.run(); // returns at once: nothing active
    /// ```
    pub fn stop(&self) {
        stop_raw(&self.inner);
    }

    /// Whether the watcher is started.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let idle = ev_loop::Idle::new(&lp, |_, _| {});
    /// assert!(!idle.is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        // SAFETY: reading a field of our own watcher on its own thread.
        unsafe { macros::ev_is_active(self.ffi()) }
    }

    /// Whether an event is waiting for this watcher's callback.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let idle = ev_loop::Idle::new(&lp, |_, _| {});
    /// assert!(!idle.is_pending());
    /// ```
    pub fn is_pending(&self) -> bool {
        // SAFETY: as for `is_active`.
        unsafe { macros::ev_is_pending(self.ffi()) }
    }

    /// The watcher's priority (`-2..=2`, default 0). Among pending watchers, higher priorities
    /// run first.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// assert_eq!(ev_loop::Idle::new(&lp, |_, _| {}).priority(), 0);
    /// ```
    pub fn priority(&self) -> i32 {
        // SAFETY: as for `is_active`.
        unsafe { macros::ev_priority(self.ffi()) }
    }

    /// Change the priority.
    ///
    /// # Errors
    /// [`Error::InvalidPriority`] outside `-2..=2`; [`Error::WatcherActive`] while the watcher
    /// is active or pending (libev forbids it).
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let idle = ev_loop::Idle::new(&lp, |_, _| {});
    /// idle.set_priority(2).unwrap();
    /// assert_eq!(idle.priority(), 2);
    /// assert!(idle.set_priority(3).is_err());
    /// ```
    pub fn set_priority(&self, priority: i32) -> Result<()> {
        if !(sys::EV_MINPRI..=sys::EV_MAXPRI).contains(&priority) {
            return Err(Error::InvalidPriority(priority));
        }
        if self.is_active() || self.is_pending() {
            return Err(Error::WatcherActive("change the priority"));
        }
        // SAFETY: inactive, not pending: libev allows the change.
        unsafe { macros::ev_set_priority(self.ffi(), priority) };
        Ok(())
    }

    /// Whether this watcher keeps [`Loop::run`] from returning while it is active (default
    /// true). Background watchers set this to false (libev's `ev_unref` idiom).
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// assert!(ev_loop::Idle::new(&lp, |_, _| {}).keep_alive());
    /// ```
    pub fn keep_alive(&self) -> bool {
        self.inner.keep_alive.get()
    }

    /// Choose whether this watcher keeps the loop alive. Takes effect at once, also on an
    /// active watcher.
    ///
    /// ```
    /// use ev_loop::{Loop, Timer};
    /// use std::time::{Duration, Instant};
    /// let lp = Loop::new().unwrap();
    /// let hour = Duration::from_secs(3600);
    /// let t = Timer::new(&lp, hour, Duration::ZERO, |_, _| unreachable!());
    /// t.set_keep_alive(false);
    /// t.start();
    /// let start = Instant::now();
    /// lp.run(); // one iteration, then returns: the only watcher does not keep the loop alive
    /// assert!(start.elapsed() < hour && t.is_active());
    /// ```
    pub fn set_keep_alive(&self, keep_alive: bool) {
        let inner = &self.inner;
        if inner.keep_alive.replace(keep_alive) == keep_alive {
            return;
        }
        let lp = inner.lp.as_raw();
        if keep_alive && inner.unrefd.replace(false) {
            // SAFETY: give back the reference we took away at start.
            unsafe { sys::ev_ref(lp) };
        } else if !keep_alive && self.is_active() {
            // SAFETY: the active watcher holds a reference; drop it. Balanced later.
            unsafe { sys::ev_unref(lp) };
            inner.unrefd.set(true);
        }
    }

    /// The loop this watcher belongs to.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let idle = ev_loop::Idle::new(&lp, |_, _| {});
    /// assert_eq!(idle.event_loop().as_raw(), lp.as_raw());
    /// ```
    pub fn event_loop(&self) -> &Loop {
        &self.inner.lp
    }

    /// Replace the callback. Allowed at any time, also from inside the callback itself (the
    /// new one is used from the next event on).
    ///
    /// ```
    /// use ev_loop::{Loop, Idle};
    /// let lp = Loop::new().unwrap();
    /// let idle = Idle::new(&lp, |_, _| unreachable!());
    /// idle.set_callback(|w, _| w.stop());
    /// idle.start();
    /// lp.run();
    /// ```
    pub fn set_callback(&self, cb: impl FnMut(&Watcher<K>, Events) + 'static) {
        self.inner.cb.set(Some(Box::new(cb)));
    }

    /// Make the callback run on the next loop iteration with `events`, as if libev had seen
    /// them (libev's `ev_feed_event`). The watcher need not be active.
    ///
    /// ```
    /// use ev_loop::{Events, Loop, Timer};
    /// use std::time::Duration;
    /// let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, ev| {
    ///     assert!(ev.contains(Events::CUSTOM));
    /// });
    /// t.feed(Events::CUSTOM);
    /// assert!(t.is_pending());
    /// lp.run_nowait();
    /// assert!(!t.is_pending());
    /// ```
    pub fn feed(&self, events: Events) {
        // SAFETY: the watcher is initialised and pinned; a pending watcher is removed from the
        // pending queue by stop, which `Inner::drop` always calls.
        unsafe {
            sys::ev_feed_event(
                self.inner.lp.as_raw(),
                self.ffi() as *mut std::os::raw::c_void,
                events.bits(),
            )
        }
    }
}

impl<K: Kind> fmt::Debug for Watcher<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct(K::NAME)
            .field("active", &self.is_active())
            .field("pending", &self.is_pending())
            .field("priority", &self.priority())
            .field("keep_alive", &self.keep_alive())
            .finish()
    }
}
