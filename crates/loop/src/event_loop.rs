//! The loop itself: creation, running, breaking, time and introspection.

use crate::error::{Error, Result};
use libev_sys as sys;
use std::any::Any;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::ops::{BitOr, BitOrAssign};
use std::os::raw::c_int;
use std::panic;
use std::rc::{Rc, Weak};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::{self, ThreadId};

/// A set of libev backends (the kernel interface a loop polls with).
///
/// ```
/// use ev_loop::Backend;
/// assert!(Backend::supported().contains(Backend::EPOLL));
/// let either = Backend::POLL | Backend::SELECT;
/// assert!(either.contains(Backend::POLL) && !either.contains(Backend::EPOLL));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend(u32);

impl Backend {
    /// `select(2)`.
    pub const SELECT: Backend = Backend(sys::EVBACKEND_SELECT);
    /// `poll(2)`.
    pub const POLL: Backend = Backend(sys::EVBACKEND_POLL);
    /// `epoll(7)`, the default on Linux.
    pub const EPOLL: Backend = Backend(sys::EVBACKEND_EPOLL);
    /// Linux AIO (only when asked for; libev never picks it by itself).
    pub const LINUXAIO: Backend = Backend(sys::EVBACKEND_LINUXAIO);
    /// io_uring (only when asked for; may be unavailable in sandboxes).
    pub const IOURING: Backend = Backend(sys::EVBACKEND_IOURING);

    /// Backends compiled into this libev.
    ///
    /// ```
    /// assert!(ev_loop::Backend::supported().contains(ev_loop::Backend::POLL));
    /// ```
    pub fn supported() -> Backend {
        // SAFETY: a pure getter with no preconditions.
        Backend(unsafe { sys::ev_supported_backends() })
    }

    /// Backends libev recommends on this system (what `EVFLAG_AUTO` picks from).
    ///
    /// ```
    /// assert!(ev_loop::Backend::recommended().contains(ev_loop::Backend::EPOLL));
    /// ```
    pub fn recommended() -> Backend {
        // SAFETY: a pure getter with no preconditions.
        Backend(unsafe { sys::ev_recommended_backends() })
    }

    /// Whether every backend in `other` is in `self`.
    ///
    /// ```
    /// use ev_loop::Backend;
    /// assert!((Backend::EPOLL | Backend::POLL).contains(Backend::EPOLL));
    /// ```
    pub fn contains(self, other: Backend) -> bool {
        self.0 & other.0 == other.0 && other.0 != 0
    }

    /// The raw `EVBACKEND_*` bits.
    ///
    /// ```
    /// assert_eq!(ev_loop::Backend::EPOLL.bits(), libev_sys::EVBACKEND_EPOLL);
    /// ```
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl BitOr for Backend {
    type Output = Backend;
    fn bitor(self, rhs: Backend) -> Backend {
        Backend(self.0 | rhs.0)
    }
}

impl BitOrAssign for Backend {
    fn bitor_assign(&mut self, rhs: Backend) {
        self.0 |= rhs.0;
    }
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names = [
            (Backend::SELECT, "SELECT"),
            (Backend::POLL, "POLL"),
            (Backend::EPOLL, "EPOLL"),
            (Backend::LINUXAIO, "LINUXAIO"),
            (Backend::IOURING, "IOURING"),
        ];
        let parts: Vec<&str> = names
            .iter()
            .filter(|(b, _)| self.contains(*b))
            .map(|(_, n)| *n)
            .collect();
        if parts.is_empty() {
            write!(f, "Backend({:#x})", self.0)
        } else {
            write!(f, "{}", parts.join(" | "))
        }
    }
}

/// How far [`Loop::break_loop`] unwinds.
///
/// ```
/// use ev_loop::{Break, Loop};
/// let lp = Loop::new().unwrap();
/// lp.break_loop(Break::All); // outside `run`: affects the next run, which returns at once
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Break {
    /// Undo an earlier break request that has not taken effect yet.
    Cancel,
    /// Make the innermost `run` return.
    One,
    /// Make every nested `run` return.
    All,
}

/// The owner of libev's default loop (the one that can watch child processes).
static DEFAULT_OWNER: Mutex<Option<ThreadId>> = Mutex::new(None);
static NEXT_LOOP_ID: AtomicU64 = AtomicU64::new(1);

thread_local! {
    static DEFAULT_HERE: RefCell<Weak<LoopInner>> = const { RefCell::new(Weak::new()) };
}

pub(crate) struct LoopInner {
    raw: *mut sys::ev_loop,
    id: u64,
    is_default: bool,
    /// The first panic caught in a callback during the current `run`, re-raised when it returns.
    panic: Cell<Option<Box<dyn Any + Send>>>,
    /// Watcher objects created on this loop and not yet dropped.
    pub(crate) watchers: Cell<usize>,
    /// Of those, how many libev holds as active (kept in step by `watcher::sync_active`).
    pub(crate) active: Cell<usize>,
}

impl Drop for LoopInner {
    fn drop(&mut self) {
        // SAFETY: every watcher holds a `Loop` clone, so when the last reference goes no watcher
        // exists any more and none is registered with libev; the loop is not running (running
        // it requires a `&Loop`). ev_loop_destroy also handles the default loop.
        unsafe { sys::ev_loop_destroy(self.raw) };
        if self.is_default {
            *DEFAULT_OWNER.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

/// A libev event loop, owned by the thread that created it.
///
/// `Loop` is a cheap handle: clones refer to the same loop, and the C loop is destroyed when the
/// last clone and the last watcher created on it are gone (watchers keep their loop alive, so
/// dropping a `Loop` while watchers exist is safe). It is neither `Send` nor `Sync`.
///
/// A panic in a watcher callback never unwinds through libev's C frames: it is caught at the
/// boundary, the loop is told to break, and the panic resumes from [`run`](Loop::run) (or
/// `run_once`/`run_nowait`) once libev has returned.
///
/// ```
/// use ev_loop::{Loop, Timer};
/// use std::time::Duration;
/// use std::rc::Rc;
/// use std::cell::Cell;
///
/// let lp = Loop::new()?;
/// let fired = Rc::new(Cell::new(0));
/// let f = fired.clone();
/// let timer = Timer::new(&lp, Duration::from_millis(5), Duration::ZERO, move |_, _| {
///     f.set(f.get() + 1);
/// });
/// timer.start();
/// lp.run(); // returns when no active watcher is left
/// assert_eq!(fired.get(), 1);
/// # Ok::<(), ev_loop::Error>(())
/// ```
#[derive(Clone)]
pub struct Loop {
    pub(crate) inner: Rc<LoopInner>,
}

/// Options for a new [`Loop`].
///
/// ```
/// use ev_loop::{Backend, Loop};
/// let lp = Loop::builder().backends(Backend::POLL).build()?;
/// assert_eq!(lp.backend(), Backend::POLL);
/// # Ok::<(), ev_loop::Error>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct LoopBuilder {
    backends: u32,
    default: bool,
    flags: u32,
}

impl LoopBuilder {
    /// Poll with one of these backends only (default: libev's recommended choice, epoll).
    ///
    /// ```
    /// use ev_loop::{Backend, Loop};
    /// let lp = Loop::builder().backends(Backend::SELECT).build().unwrap();
    /// assert_eq!(lp.backend(), Backend::SELECT);
    /// ```
    pub fn backends(mut self, backends: Backend) -> Self {
        self.backends = backends.bits();
        self
    }

    /// Use libev's default loop, which alone can watch child processes. Only one thread at a
    /// time may own it; in that thread every `build` with this option returns the same loop.
    ///
    /// ```
    /// let lp = ev_loop::Loop::builder().default_loop().build().unwrap();
    /// assert!(lp.is_default());
    /// ```
    pub fn default_loop(mut self) -> Self {
        self.default = true;
        self
    }

    /// Ignore the `LIBEV_FLAGS` environment variable (libev's `EVFLAG_NOENV`).
    ///
    /// ```
    /// let lp = ev_loop::Loop::builder().ignore_env().build().unwrap();
    /// # drop(lp);
    /// ```
    pub fn ignore_env(mut self) -> Self {
        self.flags |= sys::EVFLAG_NOENV;
        self
    }

    /// Create the loop.
    ///
    /// # Errors
    /// [`Error::LoopCreation`] when libev cannot create it (no requested backend works),
    /// [`Error::DefaultLoopInUse`] when the default loop belongs to another thread.
    ///
    /// ```
    /// let lp = ev_loop::Loop::builder().build()?;
    /// # drop(lp); Ok::<(), ev_loop::Error>(())
    /// ```
    pub fn build(self) -> Result<Loop> {
        let flags = self.flags | self.backends;
        if self.default {
            if let Some(inner) = DEFAULT_HERE.with(|d| d.borrow().upgrade()) {
                return Ok(Loop { inner });
            }
            let mut owner = DEFAULT_OWNER.lock().unwrap_or_else(|e| e.into_inner());
            if owner.is_some() {
                return Err(Error::DefaultLoopInUse);
            }
            // SAFETY: no other thread owns the default loop (checked under the lock above), so
            // this is the only caller of ev_default_loop right now.
            let raw = unsafe { sys::ev_default_loop(flags) };
            if raw.is_null() {
                return Err(Error::LoopCreation {
                    backends: self.backends,
                });
            }
            *owner = Some(thread::current().id());
            let inner = Rc::new(LoopInner::new(raw, true));
            DEFAULT_HERE.with(|d| *d.borrow_mut() = Rc::downgrade(&inner));
            Ok(Loop { inner })
        } else {
            // SAFETY: ev_loop_new has no preconditions and returns null on failure.
            let raw = unsafe { sys::ev_loop_new(flags) };
            if raw.is_null() {
                return Err(Error::LoopCreation {
                    backends: self.backends,
                });
            }
            Ok(Loop {
                inner: Rc::new(LoopInner::new(raw, false)),
            })
        }
    }
}

impl LoopInner {
    fn new(raw: *mut sys::ev_loop, is_default: bool) -> LoopInner {
        LoopInner {
            raw,
            id: NEXT_LOOP_ID.fetch_add(1, Ordering::Relaxed),
            is_default,
            panic: Cell::new(None),
            watchers: Cell::new(0),
            active: Cell::new(0),
        }
    }
}

impl Loop {
    /// A new loop with libev's recommended backend (epoll on Linux).
    ///
    /// ```
    /// let lp = ev_loop::Loop::new()?;
    /// assert_eq!(lp.backend(), ev_loop::Backend::EPOLL);
    /// # Ok::<(), ev_loop::Error>(())
    /// ```
    pub fn new() -> Result<Loop> {
        LoopBuilder::default().build()
    }

    /// A [`LoopBuilder`] for backend choice and the default loop.
    ///
    /// ```
    /// let lp = ev_loop::Loop::builder().build().unwrap();
    /// # drop(lp);
    /// ```
    pub fn builder() -> LoopBuilder {
        LoopBuilder::default()
    }

    /// The raw libev loop, for calls this crate does not wrap. It stays valid while any clone of
    /// this `Loop` (or any watcher on it) exists.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// // SAFETY: the pointer is valid while `lp` lives; ev_iteration only reads.
    /// assert_eq!(unsafe { libev_sys::ev_iteration(lp.as_raw()) }, 0);
    /// ```
    pub fn as_raw(&self) -> *mut sys::ev_loop {
        self.inner.raw
    }

    pub(crate) fn id(&self) -> u64 {
        self.inner.id
    }

    /// Whether this is libev's default loop.
    ///
    /// ```
    /// assert!(!ev_loop::Loop::new().unwrap().is_default());
    /// ```
    pub fn is_default(&self) -> bool {
        self.inner.is_default
    }

    fn run_flags(&self, flags: c_int) -> bool {
        // SAFETY: the loop is valid (we hold a reference) and used on its own thread (`Loop` is
        // !Send). Callbacks never unwind into libev: the trampolines catch panics.
        let more = unsafe { sys::ev_run(self.inner.raw, flags) } != 0;
        if let Some(payload) = self.inner.panic.take() {
            panic::resume_unwind(payload);
        }
        more
    }

    /// Run until no active watcher that keeps the loop alive is left, or until
    /// [`break_loop`](Loop::break_loop). Returns whether active watchers remain (true after a
    /// break). May be called from inside a callback (libev supports nesting).
    ///
    /// # Panics
    /// Re-raises a panic that happened in a callback during this run.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// assert!(!lp.run()); // nothing to do: returns at once
    /// ```
    pub fn run(&self) -> bool {
        self.run_flags(0)
    }

    /// One iteration: wait for events (if nothing is pending), handle them, return.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let before = lp.iteration();
    /// lp.run_once();
    /// assert_eq!(lp.iteration(), before + 1);
    /// ```
    pub fn run_once(&self) -> bool {
        self.run_flags(sys::EVRUN_ONCE as c_int)
    }

    /// One iteration that never blocks: handle what is ready now.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// lp.run_nowait();
    /// assert_eq!(lp.iteration(), 1);
    /// ```
    pub fn run_nowait(&self) -> bool {
        self.run_flags(sys::EVRUN_NOWAIT as c_int)
    }

    /// Tell libev that the process has forked and this loop is used in the child
    /// (`ev_loop_fork`): at the start of its next iteration the loop recreates its kernel
    /// state (the epoll descriptor, which parent and child would otherwise share, and the
    /// wake-up pipe of async and signal watchers) and re-arms every active watcher. Call it
    /// in the child, before the loop runs again; watchers need no change.
    ///
    /// ```
    /// use ev_loop::{Loop, Timer};
    /// use std::time::Duration;
    /// let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    /// t.start();
    /// lp.reinit_after_fork(); // harmless without a fork: the loop re-arms its watchers
    /// lp.run();
    /// assert!(!t.is_active());
    /// ```
    pub fn reinit_after_fork(&self) {
        // SAFETY: valid loop on its own thread; ev_loop_fork only sets a flag that the next
        // iteration acts on.
        unsafe { sys::ev_loop_fork(self.inner.raw) }
    }

    /// Ask the running loop to return once the current callbacks are done.
    ///
    /// ```
    /// use ev_loop::{Break, Idle, Loop};
    /// let lp = Loop::new().unwrap();
    /// let idle = Idle::new(&lp, |w, _| w.event_loop().break_loop(Break::All));
    /// idle.start();
    /// assert!(lp.run()); // broke out with the idle watcher still active
    /// ```
    pub fn break_loop(&self, how: Break) {
        let how = match how {
            Break::Cancel => sys::EVBREAK_CANCEL,
            Break::One => sys::EVBREAK_ONE,
            Break::All => sys::EVBREAK_ALL,
        };
        // SAFETY: valid loop on its own thread; ev_break only sets a flag.
        unsafe { sys::ev_break(self.inner.raw, how as c_int) }
    }

    /// The loop's cached time (seconds since the Unix epoch), updated once per iteration.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// assert!(lp.now() > 1.5e9);
    /// ```
    pub fn now(&self) -> f64 {
        // SAFETY: valid loop; a getter.
        unsafe { sys::ev_now(self.inner.raw) }
    }

    /// Refresh [`now`](Loop::now) from the system clock (timers started afterwards count from
    /// the fresh time).
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let t0 = lp.now();
    /// std::thread::sleep(std::time::Duration::from_millis(2));
    /// lp.update_now();
    /// assert!(lp.now() > t0);
    /// ```
    pub fn update_now(&self) {
        // SAFETY: valid loop on its own thread.
        unsafe { sys::ev_now_update(self.inner.raw) }
    }

    /// The backend this loop polls with.
    ///
    /// ```
    /// assert_eq!(ev_loop::Loop::new().unwrap().backend(), ev_loop::Backend::EPOLL);
    /// ```
    pub fn backend(&self) -> Backend {
        // SAFETY: valid loop; a getter.
        Backend(unsafe { sys::ev_backend(self.inner.raw) })
    }

    /// How many watchers have events waiting for their callbacks.
    ///
    /// ```
    /// assert_eq!(ev_loop::Loop::new().unwrap().pending_count(), 0);
    /// ```
    pub fn pending_count(&self) -> u32 {
        // SAFETY: valid loop; a getter.
        unsafe { sys::ev_pending_count(self.inner.raw) }
    }

    /// How many times the loop has polled for events.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// lp.run_nowait();
    /// lp.run_nowait();
    /// assert_eq!(lp.iteration(), 2);
    /// ```
    pub fn iteration(&self) -> u32 {
        // SAFETY: valid loop; a getter.
        unsafe { sys::ev_iteration(self.inner.raw) }
    }

    /// How many `run` calls are currently active on this loop (nesting depth).
    ///
    /// ```
    /// use ev_loop::{Idle, Loop};
    /// let lp = Loop::new().unwrap();
    /// assert_eq!(lp.depth(), 0);
    /// let idle = Idle::new(&lp, |w, _| {
    ///     assert_eq!(w.event_loop().depth(), 1);
    ///     w.stop();
    /// });
    /// idle.start();
    /// lp.run();
    /// ```
    pub fn depth(&self) -> u32 {
        // SAFETY: valid loop; a getter.
        unsafe { sys::ev_depth(self.inner.raw) }
    }

    /// How many watchers exist on this loop (created and not yet dropped), active or not. With
    /// [`active_watchers`](Loop::active_watchers), the figure to check for leaks.
    ///
    /// ```
    /// use ev_loop::{Idle, Loop};
    /// let lp = Loop::new().unwrap();
    /// let idle = Idle::new(&lp, |_, _| {});
    /// assert_eq!(lp.watcher_count(), 1);
    /// drop(idle);
    /// assert_eq!(lp.watcher_count(), 0);
    /// ```
    pub fn watcher_count(&self) -> usize {
        self.inner.watchers.get()
    }

    /// How many of this loop's watchers are active (started, and not stopped by hand, by their
    /// drop or by libev itself). Watchers that do not keep the loop alive are counted too.
    ///
    /// ```
    /// use ev_loop::{Loop, Timer};
    /// use std::time::Duration;
    /// let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
    /// assert_eq!(lp.active_watchers(), 0);
    /// t.start();
    /// assert_eq!(lp.active_watchers(), 1);
    /// lp.run(); // the one-shot timer fires and libev stops it
    /// assert_eq!(lp.active_watchers(), 0);
    /// ```
    pub fn active_watchers(&self) -> usize {
        self.inner.active.get()
    }

    /// Keep the first panic of this run to re-raise once libev returns, and break the loop.
    pub(crate) fn store_panic(&self, payload: Box<dyn Any + Send>) {
        let previous = self.inner.panic.take();
        self.inner.panic.set(Some(previous.unwrap_or(payload)));
        self.break_loop(Break::All);
    }
}

impl fmt::Debug for Loop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Loop")
            .field("backend", &self.backend())
            .field("default", &self.is_default())
            .field("iteration", &self.iteration())
            .finish()
    }
}
