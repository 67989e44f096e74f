//! [`RcIo`]: an io watcher and a value of its owner's in one reference-counted allocation.
//!
//! [`Io`](crate::Io) keeps its libev struct in an allocation of its own and calls a boxed
//! closure. A type that holds a watcher for its whole life (a socket, say) then costs two
//! allocations, and its callback has to find the owner's state through a captured pointer.
//! `RcIo<T>` puts the libev struct next to the owner's `T`, in one `Rc` allocation, and calls
//! a plain function of `T`'s ([`IoHandler::on_io`]), which gets the whole `RcIo` back.
//!
//! # Invariants
//!
//! * The libev struct lives in the `Rc` allocation, which never moves; its `data` field points
//!   at that allocation. libev holds a pointer to it only while it is active or pending.
//! * The watcher is bound to a loop at its first [`start`](RcIo::start), and keeps a clone of
//!   that loop from then on; it can never be started on another one.
//! * The allocation is freed only when the last `RcIo` goes; its `Drop` stops the watcher
//!   first (which also removes a pending event), before `T` is dropped.
//! * While [`IoHandler::on_io`] runs, the trampoline holds a strong count of its own, so the
//!   handler may drop every other handle.

use crate::error::{Error, Result};
use crate::event_loop::Loop;
use crate::watcher::Events;
use crate::watchers::{check_events, check_fd};
use libev_sys::{self as sys, macros};
use std::cell::{OnceCell, UnsafeCell};
use std::fmt;
use std::ops::Deref;
use std::os::fd::RawFd;
use std::os::raw::c_int;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// What an [`RcIo`] calls when its descriptor is ready.
pub trait IoHandler: Sized + 'static {
    /// The descriptor is ready for `events` (or libev reports [`Events::ERROR`], having
    /// stopped the watcher). Runs in the loop; a panic is caught and resumes from
    /// [`Loop::run`](crate::Loop::run). The watcher stays active unless it is stopped here.
    fn on_io(io: &RcIo<Self>, events: Events);
}

// Fields drop in order: `value` before `lp`, so that the owner's value still has the loop it
// may need (the watcher is stopped in `Drop` before either goes).
struct RcIoInner<T: IoHandler> {
    ev: UnsafeCell<sys::ev_io>,
    value: T,
    /// The loop of the first start.
    lp: OnceCell<Loop>,
}

/// An io watcher sharing one `Rc` allocation with `value`, a `T` of its owner's; clones share
/// both. It is created inactive and bound to no loop; [`start`](RcIo::start) binds it to
/// the loop given first. When it is ready, [`T::on_io`](IoHandler::on_io) runs with the
/// `RcIo` itself. Dropping the last clone stops the watcher, then drops the value.
/// `Deref`s to the value; neither `Send` nor `Sync`.
///
/// ```
/// use ev_loop::{Events, IoHandler, Loop, RcIo};
/// use std::cell::Cell;
/// use std::os::fd::AsRawFd;
///
/// struct Ready(Cell<u32>);
/// impl IoHandler for Ready {
///     fn on_io(io: &RcIo<Self>, events: Events) {
///         assert!(events.is_writable());
///         io.0.set(io.0.get() + 1);
///         io.stop();
///     }
/// }
///
/// let lp = Loop::new().unwrap();
/// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
/// let io = RcIo::new(Ready(Cell::new(0)));
/// io.start(&lp, a.as_raw_fd(), Events::WRITE).unwrap();
/// lp.run();
/// assert_eq!(io.0.get(), 1);
/// ```
pub struct RcIo<T: IoHandler> {
    inner: Rc<RcIoInner<T>>,
}

/// libev's callback for every `RcIo<T>`.
///
/// # Safety
/// Called by libev only, with `w` a started or pending watcher of an `RcIoInner<T>` (its
/// `data` holds the allocation's address, the [`TAGS`] bits aside).
unsafe extern "C" fn trampoline<T: IoHandler>(
    _lp: *mut sys::ev_loop,
    w: *mut sys::ev_io,
    revents: c_int,
) {
    // SAFETY: `data` was set to the `RcIoInner<T>` allocation holding `*w` when it was
    // created, and that allocation is alive: libev calls back only an active or pending
    // watcher, and `RcIoInner::drop` stops the watcher before the memory goes.
    let ptr = unsafe { (*w).data }
        .map_addr(|a| a & !TAGS)
        .cast::<RcIoInner<T>>()
        .cast_const();
    // SAFETY: a strong count of the trampoline's own, so that the handler may drop every
    // other handle; the `RcIo` made from it owns it and gives it back when dropped.
    let io = unsafe {
        Rc::increment_strong_count(ptr);
        RcIo {
            inner: Rc::from_raw(ptr),
        }
    };
    // libev stops an io watcher by itself on a bad descriptor before calling back (and a
    // watcher that did not keep the loop alive gets its reference back then).
    io.inner.sync_active();
    let lp = io
        .inner
        .lp
        .get()
        .expect("a started watcher has a loop")
        .clone();
    // Unwinding must not reach libev: the handler's panic, and one from the value's drop if
    // this was the last handle, end here.
    let r = panic::catch_unwind(AssertUnwindSafe(move || {
        T::on_io(&io, Events::from_bits(revents));
        drop(io);
    }));
    if let Err(payload) = r {
        lp.store_panic(payload);
    }
}

impl<T: IoHandler> RcIo<T> {
    /// A new watcher holding `value`: inactive, bound to no loop yet.
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// struct Nothing;
    /// impl IoHandler for Nothing {
    ///     fn on_io(_: &RcIo<Self>, _: Events) {}
    /// }
    /// let io = RcIo::new(Nothing);
    /// assert!(!io.is_active() && io.event_loop().is_none());
    /// ```
    pub fn new(value: T) -> RcIo<T> {
        let inner = Rc::new(RcIoInner {
            ev: UnsafeCell::new(sys::ev_io::default()),
            lp: OnceCell::new(),
            value,
        });
        const { assert!(std::mem::align_of::<RcIoInner<T>>() > TAGS) };
        let ev = inner.ev.get();
        // SAFETY: the watcher is not started, so we may initialise it; the Rc allocation never
        // moves, so `data` stays valid for the watcher's whole life. fd -1 with no events
        // marks it as never set (`start` sets both before libev sees it).
        unsafe {
            macros::ev_io_init(ev, Some(trampoline::<T>), -1, 0);
            (*ev).data = Rc::as_ptr(&inner) as *mut _;
        }
        RcIo { inner }
    }

    /// Watch `fd` for `events` (`READ`, `WRITE` or both) on `lp`: the loop of the first start,
    /// which every later start must name again. Starting an active watcher for the same `fd`
    /// and `events` does nothing; for others, it is stopped first (dropping a pending event),
    /// then started with them.
    ///
    /// A start with the same `fd` as the last one keeps libev's record of that descriptor
    /// (only the events change): it is for the same open file. A descriptor closed in between
    /// and its number reused for a new file needs a new `RcIo`.
    ///
    /// # Errors
    /// [`Error::BadFd`] for a negative fd, or a closed one (looked at when the fd differs from
    /// the last one started); [`Error::InvalidEvents`]; [`Error::OtherLoop`] for a loop that
    /// is not the watcher's.
    ///
    /// ```
    /// # use ev_loop::{Error, Events, IoHandler, Loop, RcIo};
    /// # use std::os::fd::AsRawFd;
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// let (lp, other) = (Loop::new().unwrap(), Loop::new().unwrap());
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = RcIo::new(Nothing);
    /// io.start(&lp, a.as_raw_fd(), Events::READ).unwrap();
    /// io.start(&lp, a.as_raw_fd(), Events::READ | Events::WRITE).unwrap();
    /// assert_eq!(io.events(), Events::READ | Events::WRITE);
    /// assert!(matches!(io.start(&other, a.as_raw_fd(), Events::READ), Err(Error::OtherLoop)));
    /// assert!(matches!(io.start(&lp, -1, Events::READ), Err(Error::BadFd { .. })));
    /// ```
    pub fn start(&self, lp: &Loop, fd: RawFd, events: Events) -> Result<()> {
        let bits = check_events(events)?;
        let ev = self.inner.ev.get();
        // SAFETY: reading a field of our own watcher on its thread.
        let old_fd = unsafe { (*ev).fd };
        let old_bits = self.events().bits();
        match self.inner.lp.get() {
            Some(own) if Rc::ptr_eq(&own.inner, &lp.inner) => {}
            Some(_) => return Err(Error::OtherLoop),
            None => {}
        }
        if fd < 0 || old_fd != fd {
            check_fd(fd)?;
        }
        let active = self.is_active();
        if active && old_fd == fd && old_bits == bits {
            return Ok(());
        }
        let lp = self.inner.lp.get_or_init(|| {
            let n = &lp.inner.watchers;
            n.set(n.get() + 1);
            lp.clone()
        });
        if active {
            self.stop();
        }
        // SAFETY: the watcher is inactive now, so libev allows changing its fd and events;
        // `ev_io_modify` keeps the fd and libev's record of it.
        unsafe {
            if old_fd != fd {
                macros::ev_io_set(ev, fd, bits);
            } else {
                macros::ev_io_modify(ev, bits);
            }
        }
        // SAFETY: the watcher is initialised, inactive, and bound to `lp` (the only loop it is
        // ever started on); its memory is pinned in the Rc allocation until `drop` stops it.
        unsafe { sys::ev_io_start(lp.as_raw(), ev) };
        self.inner.sync_active();
        Ok(())
    }

    /// Stop watching, and drop a pending event. Stopping an inactive watcher does nothing.
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, Loop, RcIo};
    /// # use std::os::fd::AsRawFd;
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) { unreachable!() } }
    /// let lp = Loop::new().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = RcIo::new(Nothing);
    /// io.start(&lp, a.as_raw_fd(), Events::WRITE).unwrap();
    /// io.stop();
    /// lp.run(); // returns at once: nothing active
    /// ```
    pub fn stop(&self) {
        self.inner.stop();
    }

    /// Whether the watcher is started.
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// assert!(!RcIo::new(Nothing).is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.inner.is_active()
    }

    /// Choose whether this watcher, while active, keeps [`Loop::run`](crate::Loop::run)
    /// from returning (libev's `ev_unref` idiom): a watcher kept started only in case it is
    /// needed again (a socket nobody waits on right now) should not keep the loop alive by
    /// itself. It lasts until the watcher is stopped: one started afresh (or again with
    /// other events, which stops it first) keeps the loop alive. Nothing for an inactive
    /// watcher.
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, Loop, RcIo};
    /// # use std::os::fd::AsRawFd;
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) { unreachable!() } }
    /// let lp = Loop::new().unwrap();
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = RcIo::new(Nothing);
    /// io.start(&lp, a.as_raw_fd(), Events::READ).unwrap();
    /// io.set_keep_alive(false);
    /// assert!(!io.keeps_alive());
    /// lp.run(); // returns at once: the only watcher does not keep the loop alive
    /// assert!(io.is_active());
    /// io.set_keep_alive(true);
    /// assert!(io.keeps_alive());
    /// ```
    #[inline]
    pub fn set_keep_alive(&self, keep_alive: bool) {
        let inner = &self.inner;
        let Some(lp) = inner.lp.get() else {
            return;
        };
        let unrefd = inner.tag(UNREFD);
        if keep_alive && unrefd {
            // SAFETY: gives back the reference taken from the loop below, while the watcher
            // stayed active (`sync_active` gives it back once it is not).
            unsafe { sys::ev_ref(lp.as_raw()) };
            inner.set_tag(UNREFD, false);
        } else if !keep_alive && !unrefd && inner.is_active() {
            // SAFETY: the active watcher holds one of the loop's references; it gives it up
            // until `set_keep_alive(true)` or its stop (`sync_active`) takes it back.
            unsafe { sys::ev_unref(lp.as_raw()) };
            inner.set_tag(UNREFD, true);
        }
    }

    /// Whether the watcher keeps the loop alive while active (see
    /// [`set_keep_alive`](RcIo::set_keep_alive)).
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// assert!(RcIo::new(Nothing).keeps_alive());
    /// ```
    pub fn keeps_alive(&self) -> bool {
        !self.inner.tag(UNREFD)
    }

    /// The events of the last start (none before the first).
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// assert_eq!(RcIo::new(Nothing).events(), Events::default());
    /// ```
    pub fn events(&self) -> Events {
        // SAFETY: reading a field of our own watcher on its thread.
        Events::from_bits(unsafe { (*self.inner.ev.get()).events } & !sys::EV__IOFDSET)
    }

    /// The loop of the first start, if it was started.
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// assert!(RcIo::new(Nothing).event_loop().is_none());
    /// ```
    pub fn event_loop(&self) -> Option<&Loop> {
        self.inner.lp.get()
    }

    /// How many handles share this watcher (the trampoline's own included while
    /// [`on_io`](IoHandler::on_io) runs).
    ///
    /// ```
    /// # use ev_loop::{Events, IoHandler, RcIo};
    /// # struct Nothing;
    /// # impl IoHandler for Nothing { fn on_io(_: &RcIo<Self>, _: Events) {} }
    /// let io = RcIo::new(Nothing);
    /// let other = io.clone();
    /// assert_eq!(RcIo::handles(&io), 2);
    /// # drop(other);
    /// ```
    pub fn handles(this: &RcIo<T>) -> usize {
        Rc::strong_count(&this.inner)
    }
}

/// The bit of the watcher's `data` word that says whether the watcher is counted in its
/// loop's active count. The rest of the word is the address of the allocation, whose
/// alignment leaves the [`TAGS`] bits clear; only this module reads the word. A flag of its
/// own would cost a word per watcher, padding included.
const COUNTED: usize = 1;
/// The bit that says the active watcher gave up its reference on the loop (`ev_unref`).
const UNREFD: usize = 2;
/// The bits of `data` that are flags, not address.
const TAGS: usize = COUNTED | UNREFD;

impl<T: IoHandler> RcIoInner<T> {
    fn is_active(&self) -> bool {
        // SAFETY: reading a field of our own watcher on its thread.
        unsafe { macros::ev_is_active(self.ev.get()) }
    }

    /// Stop watching and drop a pending event (nothing for an inactive watcher).
    fn stop(&self) {
        if let Some(lp) = self.lp.get() {
            // SAFETY: the watcher was started on `lp` only; stop on an inactive watcher only
            // clears a pending event, which is always allowed. Stop also removes the watcher
            // from libev's active and pending lists before its memory goes (`drop`).
            unsafe { sys::ev_io_stop(lp.as_raw(), self.ev.get()) };
            self.sync_active();
        }
    }

    /// Bring the loop's count of active watchers in line with libev's view of this one, and
    /// give the loop back the reference a watcher that stopped had given up.
    fn sync_active(&self) {
        let Some(lp) = self.lp.get() else {
            return;
        };
        let active = self.is_active();
        if self.tag(COUNTED) != active {
            self.set_tag(COUNTED, active);
            let n = &lp.inner.active;
            n.set(if active { n.get() + 1 } else { n.get() - 1 });
        }
        if !active && self.tag(UNREFD) {
            // SAFETY: balances the `ev_unref` of `set_keep_alive(false)`; the stop just took
            // the watcher's own reference (libev's `ev_stop`), which that one stood in for.
            unsafe { sys::ev_ref(lp.as_raw()) };
            self.set_tag(UNREFD, false);
        }
    }

    /// Whether flag `bit` (one of [`TAGS`]) of the `data` word is set.
    #[inline]
    fn tag(&self, bit: usize) -> bool {
        // SAFETY: reading the `data` field of our own watcher on its thread.
        unsafe { (*self.ev.get()).data.addr() & bit != 0 }
    }

    /// Set or clear flag `bit` (one of [`TAGS`]) of the `data` word.
    #[inline]
    fn set_tag(&self, bit: usize, on: bool) {
        let ev = self.ev.get();
        // SAFETY: writing the `data` field of our own watcher on its thread; libev never
        // reads it, and the trampoline masks the flags off.
        unsafe {
            (*ev).data = (*ev)
                .data
                .map_addr(|a| (a & !bit) | if on { bit } else { 0 });
        }
    }
}

impl<T: IoHandler> Drop for RcIoInner<T> {
    fn drop(&mut self) {
        self.stop();
        if let Some(lp) = self.lp.get() {
            let n = &lp.inner.watchers;
            n.set(n.get() - 1);
        }
    }
}

impl<T: IoHandler> Clone for RcIo<T> {
    fn clone(&self) -> RcIo<T> {
        RcIo {
            inner: self.inner.clone(),
        }
    }
}

impl<T: IoHandler> Deref for RcIo<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.inner.value
    }
}

impl<T: IoHandler + fmt::Debug> fmt::Debug for RcIo<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RcIo")
            .field("active", &self.is_active())
            .field("events", &self.events())
            .field("value", &self.inner.value)
            .finish()
    }
}
