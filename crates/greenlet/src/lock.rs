//! Locks for greenlets of one thread: [`Semaphore`], [`BoundedSemaphore`], [`Lock`] (a mutex)
//! and [`RLock`] (a re-entrant mutex).
//!
//! They limit how many greenlets are inside a section at once, across the switches of
//! blocking calls. Blocked greenlets are served first come, first served: a released permit is
//! handed to the longest-waiting greenlet, and nobody can take it from under it. Every handle
//! is cheap to clone (clones share the lock) and `!Send`: a lock belongs to the thread whose
//! greenlets use it.
//!
//! ```
//! use greenlet::{sleep, spawn, Lock};
//! use std::{cell::RefCell, rc::Rc, time::Duration};
//!
//! let lock = Lock::new();
//! let log = Rc::new(RefCell::new(Vec::new()));
//! let workers: Vec<_> = (0..3)
//!     .map(|i| {
//!         let (lock, log) = (lock.clone(), log.clone());
//!         spawn(move || {
//!             let _held = lock.lock().unwrap();
//!             log.borrow_mut().push(format!("{i} in"));
//!             sleep(Duration::from_millis(2)).unwrap(); // others run, but cannot enter
//!             log.borrow_mut().push(format!("{i} out"));
//!         })
//!     })
//!     .collect();
//! for w in workers {
//!     w.join().unwrap();
//! }
//! assert_eq!(*log.borrow(), ["0 in", "0 out", "1 in", "1 out", "2 in", "2 out"]);
//! ```

#![forbid(unsafe_code)]

use crate::error::Result;
use crate::hub;
use crate::waitlist::{WaitList, Woken};
use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::time::Duration;

/// The shared state of every lock type: a permit count and the FIFO list of waiters.
struct SemCore {
    permits: Cell<usize>,
    waiters: WaitList,
}

impl SemCore {
    fn new(permits: usize) -> Rc<SemCore> {
        Rc::new(SemCore {
            permits: Cell::new(permits),
            waiters: WaitList::new(),
        })
    }

    #[inline]
    fn try_acquire(&self) -> bool {
        // While greenlets wait, every released permit is handed to one of them, so a free
        // permit means nobody (still) waits: taking it does not jump the queue.
        match self.permits.get() {
            0 => false,
            n => {
                self.permits.set(n - 1);
                true
            }
        }
    }

    /// Ok(true): acquired; Ok(false): the timeout expired.
    fn acquire(self: &Rc<Self>, what: &'static str, timeout: Option<Duration>) -> Result<bool> {
        if self.try_acquire() {
            return Ok(true);
        }
        loop {
            let me = self.clone();
            // Killed after a permit was handed to us: pass it on.
            let (woken, _) = self
                .waiters
                .wait(what, timeout, None, move |_| me.release());
            match woken {
                Woken::Granted => return Ok(true),
                Woken::Notified => {
                    if self.try_acquire() {
                        return Ok(true);
                    }
                }
                Woken::TimedOut => return Ok(false),
                Woken::Failed(e) => return Err(e),
            }
        }
    }

    #[inline]
    fn release(&self) {
        if self.waiters.grant_next().is_none() {
            self.permits.set(self.permits.get() + 1);
        }
    }
}

/// Why releasing a [`BoundedSemaphore`] failed: it would have held more permits than it was
/// created with (a release without a matching acquire).
///
/// ```
/// let s = greenlet::BoundedSemaphore::new(1);
/// let e = s.release().unwrap_err();
/// assert_eq!(e.limit(), 1);
/// assert_eq!(e.to_string(), "BoundedSemaphore released too many times (limit 1)");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReleaseError {
    limit: usize,
}

impl ReleaseError {
    /// The number of permits the semaphore was created with.
    ///
    /// ```
    /// let s = greenlet::BoundedSemaphore::new(3);
    /// assert_eq!(s.release().unwrap_err().limit(), 3);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Display for ReleaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "BoundedSemaphore released too many times (limit {})",
            self.limit
        )
    }
}

impl std::error::Error for ReleaseError {}

/// A counting semaphore for greenlets: [`acquire`](Semaphore::acquire) takes a permit,
/// waiting while none is free; [`release`](Semaphore::release) returns one. Waiters are
/// served in FIFO order. `release` may raise the count above the initial value (see
/// [`BoundedSemaphore`] for a checked one). Clones share the semaphore; `!Send`.
///
/// ```
/// use greenlet::{sleep, spawn, Semaphore};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let sem = Semaphore::new(2);
/// let (now, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// let gs: Vec<_> = (0..5)
///     .map(|_| {
///         let (sem, now, peak) = (sem.clone(), now.clone(), peak.clone());
///         spawn(move || {
///             sem.acquire().unwrap();
///             now.set(now.get() + 1);
///             peak.set(peak.get().max(now.get()));
///             sleep(Duration::from_millis(2)).unwrap();
///             now.set(now.get() - 1);
///             sem.release();
///         })
///     })
///     .collect();
/// greenlet::joinall(&gs, None).unwrap();
/// assert_eq!(peak.get(), 2);
/// ```
#[derive(Clone)]
pub struct Semaphore {
    core: Rc<SemCore>,
}

impl Semaphore {
    /// A semaphore with `permits` free permits.
    ///
    /// ```
    /// assert_eq!(greenlet::Semaphore::new(3).available(), 3);
    /// ```
    pub fn new(permits: usize) -> Semaphore {
        Semaphore {
            core: SemCore::new(permits),
        }
    }

    /// Take a permit, waiting (behind earlier waiters) until one is free.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`](crate::Error::WouldBlockForever) if nothing could ever release one; [`Error::Timeout`](crate::Error::Timeout)
    /// from an enclosing [`Timeout`](crate::Timeout); [`Error::BlockingInHub`](crate::Error::BlockingInHub) when it would
    /// have to wait inside a hub callback.
    ///
    /// ```
    /// let sem = greenlet::Semaphore::new(1);
    /// sem.acquire().unwrap();
    /// // Nobody else could release it:
    /// assert_eq!(sem.acquire(), Err(greenlet::Error::WouldBlockForever));
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.core.acquire("Semaphore", None).map(|_| ())
    }

    /// Like [`acquire`](Semaphore::acquire), waiting at most `timeout`: `Ok(true)` when a
    /// permit was taken, `Ok(false)` when the timeout expired first.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenlet::Semaphore::new(0);
    /// assert!(!sem.acquire_timeout(Duration::from_millis(5)).unwrap());
    /// sem.release();
    /// assert!(sem.acquire_timeout(Duration::from_millis(5)).unwrap());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.core.acquire("Semaphore", Some(timeout))
    }

    /// Take a permit if one is free right now, without waiting.
    ///
    /// ```
    /// let sem = greenlet::Semaphore::new(1);
    /// assert!(sem.try_acquire());
    /// assert!(!sem.try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.core.try_acquire()
    }

    /// Return a permit: it goes to the longest-waiting greenlet, or back to the free count.
    /// Never blocks (callable from hub callbacks).
    ///
    /// ```
    /// let sem = greenlet::Semaphore::new(0);
    /// sem.release();
    /// sem.release(); // may exceed the initial count
    /// assert_eq!(sem.available(), 2);
    /// ```
    pub fn release(&self) {
        self.core.release();
    }

    /// How many permits are free right now.
    ///
    /// ```
    /// let sem = greenlet::Semaphore::new(2);
    /// sem.acquire().unwrap();
    /// assert_eq!(sem.available(), 1);
    /// ```
    pub fn available(&self) -> usize {
        self.core.permits.get()
    }

    /// How many greenlets are blocked in [`acquire`](Semaphore::acquire).
    ///
    /// ```
    /// let sem = greenlet::Semaphore::new(0);
    /// let s = sem.clone();
    /// let g = greenlet::spawn(move || s.acquire());
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(sem.waiters(), 1);
    /// sem.release();
    /// g.join().unwrap().unwrap();
    /// ```
    pub fn waiters(&self) -> usize {
        self.core.waiters.len()
    }
}

impl fmt::Debug for Semaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("available", &self.available())
            .field("waiters", &self.waiters())
            .finish()
    }
}

/// A [`Semaphore`] that refuses to be released more often than it was acquired: it never
/// holds more permits than it was created with.
///
/// ```
/// let sem = greenlet::BoundedSemaphore::new(1);
/// sem.acquire().unwrap();
/// sem.release().unwrap();
/// assert!(sem.release().is_err()); // one release too many
/// ```
#[derive(Clone)]
pub struct BoundedSemaphore {
    core: Rc<SemCore>,
    limit: usize,
}

impl BoundedSemaphore {
    /// A bounded semaphore with `permits` free permits, which is also its maximum.
    ///
    /// ```
    /// let sem = greenlet::BoundedSemaphore::new(2);
    /// assert_eq!((sem.available(), sem.limit()), (2, 2));
    /// ```
    pub fn new(permits: usize) -> BoundedSemaphore {
        BoundedSemaphore {
            core: SemCore::new(permits),
            limit: permits,
        }
    }

    /// Take a permit, waiting (FIFO) until one is free. Errors as [`Semaphore::acquire`].
    ///
    /// ```
    /// let sem = greenlet::BoundedSemaphore::new(1);
    /// sem.acquire().unwrap();
    /// assert_eq!(sem.available(), 0);
    /// ```
    pub fn acquire(&self) -> Result<()> {
        self.core.acquire("BoundedSemaphore", None).map(|_| ())
    }

    /// Like [`acquire`](BoundedSemaphore::acquire), waiting at most `timeout`; returns
    /// whether a permit was taken.
    ///
    /// ```
    /// use std::time::Duration;
    /// let sem = greenlet::BoundedSemaphore::new(0);
    /// assert!(!sem.acquire_timeout(Duration::from_millis(5)).unwrap());
    /// ```
    pub fn acquire_timeout(&self, timeout: Duration) -> Result<bool> {
        self.core.acquire("BoundedSemaphore", Some(timeout))
    }

    /// Take a permit if one is free right now.
    ///
    /// ```
    /// let sem = greenlet::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire() && !sem.try_acquire());
    /// ```
    pub fn try_acquire(&self) -> bool {
        self.core.try_acquire()
    }

    /// Return a permit (to the longest-waiting greenlet, or to the free count).
    ///
    /// # Errors
    /// [`ReleaseError`] if every permit is already free: the release has no matching
    /// acquire. Nothing changes then.
    ///
    /// ```
    /// let sem = greenlet::BoundedSemaphore::new(1);
    /// assert!(sem.try_acquire());
    /// assert!(sem.release().is_ok());
    /// assert_eq!(sem.release().unwrap_err().limit(), 1);
    /// ```
    pub fn release(&self) -> std::result::Result<(), ReleaseError> {
        // Greenlets only wait while no permit is free, so the check below is exact.
        if self.core.permits.get() >= self.limit {
            return Err(ReleaseError { limit: self.limit });
        }
        self.core.release();
        Ok(())
    }

    /// How many permits are free right now.
    ///
    /// ```
    /// assert_eq!(greenlet::BoundedSemaphore::new(4).available(), 4);
    /// ```
    pub fn available(&self) -> usize {
        self.core.permits.get()
    }

    /// The number of permits it was created with (the most it can hold).
    ///
    /// ```
    /// assert_eq!(greenlet::BoundedSemaphore::new(4).limit(), 4);
    /// ```
    pub fn limit(&self) -> usize {
        self.limit
    }
}

impl fmt::Debug for BoundedSemaphore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BoundedSemaphore")
            .field("available", &self.available())
            .field("limit", &self.limit)
            .field("waiters", &self.core.waiters.len())
            .finish()
    }
}

/// A mutual-exclusion lock for greenlets: at most one greenlet holds it at a time, across the
/// switches of its blocking calls. [`lock`](Lock::lock) returns a [`LockGuard`] that unlocks
/// when dropped. Waiters get the lock in FIFO order. Clones share the lock; `!Send`.
///
/// The lock protects no data of its own (like gevent's and Python's locks); put shared state
/// in an `Rc<RefCell<_>>` and hold the guard while a multi-step update spans blocking calls.
/// It is not re-entrant: locking it again in the greenlet that holds it waits forever (in the
/// root greenlet: until [`Error::WouldBlockForever`](crate::Error::WouldBlockForever)); use [`RLock`] for that.
///
/// ```
/// use greenlet::Lock;
/// let lock = Lock::new();
/// {
///     let _guard = lock.lock().unwrap();
///     assert!(lock.is_locked());
///     assert!(lock.try_lock().is_none());
/// }
/// assert!(!lock.is_locked());
/// ```
#[derive(Clone)]
pub struct Lock {
    core: Rc<SemCore>,
}

impl Default for Lock {
    fn default() -> Self {
        Lock::new()
    }
}

impl Lock {
    /// A new, unlocked lock.
    ///
    /// ```
    /// assert!(!greenlet::Lock::new().is_locked());
    /// ```
    pub fn new() -> Lock {
        Lock {
            core: SemCore::new(1),
        }
    }

    /// Lock it, waiting (behind earlier waiters) while another greenlet holds it.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`](crate::Error::WouldBlockForever) if nothing could ever unlock it; [`Error::Timeout`](crate::Error::Timeout) from an
    /// enclosing [`Timeout`](crate::Timeout); [`Error::BlockingInHub`](crate::Error::BlockingInHub) inside a hub callback.
    ///
    /// ```
    /// let lock = greenlet::Lock::new();
    /// let guard = lock.lock().unwrap();
    /// drop(guard); // unlocks
    /// ```
    pub fn lock(&self) -> Result<LockGuard<'_>> {
        self.core.acquire("Lock", None)?;
        Ok(LockGuard { lock: self })
    }

    /// Lock it if it is free right now.
    ///
    /// ```
    /// let lock = greenlet::Lock::new();
    /// let g = lock.try_lock();
    /// assert!(g.is_some() && lock.try_lock().is_none());
    /// ```
    pub fn try_lock(&self) -> Option<LockGuard<'_>> {
        // Lazily: a guard made and dropped for nothing would release the lock.
        self.core.try_acquire().then(|| LockGuard { lock: self })
    }

    /// Like [`lock`](Lock::lock), waiting at most `timeout`: `Ok(None)` when it expired.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = greenlet::Lock::new();
    /// let held = lock.lock().unwrap();
    /// assert!(lock.lock_timeout(Duration::from_millis(5)).unwrap().is_none());
    /// drop(held);
    /// assert!(lock.lock_timeout(Duration::from_millis(5)).unwrap().is_some());
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<LockGuard<'_>>> {
        let got = self.core.acquire("Lock", Some(timeout))?;
        Ok(got.then(|| LockGuard { lock: self }))
    }

    /// Whether some greenlet holds it.
    ///
    /// ```
    /// let lock = greenlet::Lock::new();
    /// let _g = lock.lock().unwrap();
    /// assert!(lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        self.core.permits.get() == 0
    }
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("locked", &self.is_locked())
            .field("waiters", &self.core.waiters.len())
            .finish()
    }
}

/// Proof of holding a [`Lock`]; unlocks it (handing it to the next waiter) when dropped.
///
/// ```
/// let lock = greenlet::Lock::new();
/// let guard: greenlet::LockGuard<'_> = lock.lock().unwrap();
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard<'a> {
    lock: &'a Lock,
}

impl Drop for LockGuard<'_> {
    fn drop(&mut self) {
        self.lock.core.release();
    }
}

impl fmt::Debug for LockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard").finish_non_exhaustive()
    }
}

struct RLockState {
    core: Rc<SemCore>,
    /// Id of the greenlet holding it.
    owner: Cell<Option<u64>>,
    /// How many guards the owner holds.
    depth: Cell<usize>,
}

/// A re-entrant lock: the greenlet that holds it may lock it again (each
/// [`lock`](RLock::lock) returns another [`RLockGuard`]); other greenlets wait (FIFO) until
/// every guard of the owner is dropped. Clones share the lock; `!Send`.
///
/// Releasing happens by dropping a guard; there is no `release` method that another greenlet
/// could call. A guard borrows the `RLock` handle it came from, so short of a leaked
/// `&'static RLock` the only greenlets it can be moved into are [scoped](crate::scope()) ones
/// (the others need `'static` closures): dropped there (or, if that greenlet is killed before
/// it starts, in the greenlet that kills it), it gives up the level it stands for as if its
/// owner had, and the lock stays the owner's (the other greenlet cannot re-enter it) until
/// the owner's last guard is dropped.
///
/// ```
/// use greenlet::RLock;
/// let lock = RLock::new();
/// let outer = lock.lock().unwrap();
/// let inner = lock.lock().unwrap(); // same greenlet: no deadlock
/// assert_eq!(lock.depth(), 2);
/// drop(inner);
/// let l = lock.clone();
/// let other = greenlet::spawn(move || l.try_lock().is_some());
/// assert!(!other.join().unwrap()); // still held by us
/// drop(outer);
/// assert!(!lock.is_locked());
/// ```
#[derive(Clone)]
pub struct RLock {
    state: Rc<RLockState>,
}

impl Default for RLock {
    fn default() -> Self {
        RLock::new()
    }
}

impl RLock {
    /// A new, unlocked re-entrant lock.
    ///
    /// ```
    /// assert!(!greenlet::RLock::new().is_locked());
    /// ```
    pub fn new() -> RLock {
        RLock {
            state: Rc::new(RLockState {
                core: SemCore::new(1),
                owner: Cell::new(None),
                depth: Cell::new(0),
            }),
        }
    }

    fn reenter(&self) -> Option<RLockGuard<'_>> {
        let me = hub::current().id;
        if self.state.owner.get() == Some(me) {
            self.state.depth.set(self.state.depth.get() + 1);
            Some(RLockGuard { lock: self })
        } else {
            None
        }
    }

    fn take(&self) -> RLockGuard<'_> {
        self.state.owner.set(Some(hub::current().id));
        self.state.depth.set(1);
        RLockGuard { lock: self }
    }

    /// Lock it: at once if the current greenlet already holds it, otherwise waiting (FIFO)
    /// until its owner has dropped every guard.
    ///
    /// # Errors
    /// As [`Lock::lock`].
    ///
    /// ```
    /// let lock = greenlet::RLock::new();
    /// let a = lock.lock().unwrap();
    /// let b = lock.lock().unwrap();
    /// assert!(lock.is_owned());
    /// # drop((a, b));
    /// ```
    pub fn lock(&self) -> Result<RLockGuard<'_>> {
        if let Some(g) = self.reenter() {
            return Ok(g);
        }
        self.state.core.acquire("RLock", None)?;
        Ok(self.take())
    }

    /// Lock it if the current greenlet holds it or nobody does.
    ///
    /// ```
    /// let lock = greenlet::RLock::new();
    /// let a = lock.try_lock().unwrap();
    /// let b = lock.try_lock().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn try_lock(&self) -> Option<RLockGuard<'_>> {
        if let Some(g) = self.reenter() {
            return Some(g);
        }
        self.state.core.try_acquire().then(|| self.take())
    }

    /// Like [`lock`](RLock::lock), waiting at most `timeout`: `Ok(None)` when it expired.
    ///
    /// ```
    /// use std::time::Duration;
    /// let lock = greenlet::RLock::new();
    /// let held = lock.lock().unwrap();
    /// let l = lock.clone();
    /// let other = greenlet::spawn(move || l.lock_timeout(Duration::from_millis(5)).map(|g| g.is_some()));
    /// assert_eq!(other.join().unwrap(), Ok(false));
    /// # drop(held);
    /// ```
    pub fn lock_timeout(&self, timeout: Duration) -> Result<Option<RLockGuard<'_>>> {
        if let Some(g) = self.reenter() {
            return Ok(Some(g));
        }
        let got = self.state.core.acquire("RLock", Some(timeout))?;
        Ok(got.then(|| self.take()))
    }

    /// Whether some greenlet holds it.
    ///
    /// ```
    /// let lock = greenlet::RLock::new();
    /// let _g = lock.lock().unwrap();
    /// assert!(lock.is_locked());
    /// ```
    pub fn is_locked(&self) -> bool {
        // Not `owner`: a greenlet it was handed to owns it before it runs.
        self.state.core.permits.get() == 0
    }

    /// Whether the current greenlet holds it.
    ///
    /// ```
    /// let lock = greenlet::RLock::new();
    /// let _g = lock.lock().unwrap();
    /// let l = lock.clone();
    /// assert!(lock.is_owned());
    /// assert!(!greenlet::spawn(move || l.is_owned()).join().unwrap());
    /// ```
    pub fn is_owned(&self) -> bool {
        self.state.owner.get() == Some(hub::current().id)
    }

    /// How many guards its owner holds (0 when unlocked).
    ///
    /// ```
    /// let lock = greenlet::RLock::new();
    /// let _a = lock.lock().unwrap();
    /// let _b = lock.lock().unwrap();
    /// assert_eq!(lock.depth(), 2);
    /// ```
    pub fn depth(&self) -> usize {
        self.state.depth.get()
    }
}

impl fmt::Debug for RLock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLock")
            .field("owner", &self.state.owner.get())
            .field("depth", &self.state.depth.get())
            .field("waiters", &self.state.core.waiters.len())
            .finish()
    }
}

/// One level of holding an [`RLock`]; the lock is released (to the next waiter) when the
/// owner's last guard is dropped.
///
/// ```
/// let lock = greenlet::RLock::new();
/// let guard: greenlet::RLockGuard<'_> = lock.lock().unwrap();
/// drop(guard);
/// assert!(!lock.is_locked());
/// ```
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct RLockGuard<'a> {
    lock: &'a RLock,
}

impl Drop for RLockGuard<'_> {
    fn drop(&mut self) {
        let s = &self.lock.state;
        let depth = s.depth.get() - 1;
        s.depth.set(depth);
        if depth == 0 {
            s.owner.set(None);
            s.core.release();
        }
    }
}

impl fmt::Debug for RLockGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RLockGuard")
            .field("depth", &self.lock.state.depth.get())
            .finish()
    }
}
