//! Sets of greenlets: [`Group`] tracks greenlets so they can be waited for or killed
//! together, and [`Pool`] is a group with a size limit, for bounding concurrency.
//!
//! A greenlet leaves its group by itself when it finishes (returns, panics or is killed).
//!
//! ```
//! use greenlet::{sleep, Pool};
//! use std::time::Duration;
//!
//! // At most 2 lookups at a time; the results come back in input order.
//! let pool = Pool::new(2);
//! let lengths = pool.map(["a", "bb", "ccc"], |s: &str| {
//!     sleep(Duration::from_millis(2)).unwrap();
//!     s.len()
//! });
//! let lengths: Vec<usize> = lengths.into_iter().map(|r| r.unwrap()).collect();
//! assert_eq!(lengths, [1, 2, 3]);
//! ```

#![forbid(unsafe_code)]

use crate::error::{Error, JoinError, Result};
use crate::greenlet::{Builder, Greenlet};
use crate::hub::{self, GlCore, Link, Waiter, Waker};
use crate::waitlist::{WaitList, Woken};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The state shared by [`Group`] and [`Pool`].
struct Set {
    /// Live members by id (ids grow, so this is also the order they joined in).
    members: RefCell<BTreeMap<u64, Rc<GlCore>>>,
    /// `join` waiters, notified when the set becomes empty.
    emptied: WaitList,
    /// The size limit of a pool.
    limit: Option<usize>,
    /// Slots granted to spawners that have not spawned yet (they count as members).
    reserved: Cell<usize>,
    /// Spawners waiting for a slot (FIFO, granted one slot each).
    slot_waiters: WaitList,
    /// `wait_available` callers, notified when a slot is free.
    avail_waiters: WaitList,
}

impl Set {
    fn new(limit: Option<usize>) -> Rc<Set> {
        Rc::new(Set {
            members: RefCell::new(BTreeMap::new()),
            emptied: WaitList::new(),
            limit,
            reserved: Cell::new(0),
            slot_waiters: WaitList::new(),
            avail_waiters: WaitList::new(),
        })
    }

    fn len(&self) -> usize {
        self.members.borrow().len()
    }

    fn free_count(&self) -> usize {
        match self.limit {
            Some(limit) => limit.saturating_sub(self.len() + self.reserved.get()),
            None => usize::MAX,
        }
    }

    fn contains(&self, core: &GlCore) -> bool {
        self.members.borrow().contains_key(&core.id)
    }

    /// Track `core` until it finishes.
    fn insert(self: &Rc<Self>, core: &Rc<GlCore>) {
        if core.is_dead() {
            return;
        }
        let fresh = self
            .members
            .borrow_mut()
            .insert(core.id, core.clone())
            .is_none();
        if fresh {
            let set = Rc::downgrade(self);
            let id = core.id;
            // Runs in the finishing greenlet, right when it finishes; it does not block.
            core.links.push(Link::Raw(Box::new(move || {
                if let Some(set) = set.upgrade() {
                    set.left(id);
                }
            })));
        }
    }

    fn left(&self, id: u64) {
        let gone = self.members.borrow_mut().remove(&id);
        drop(gone);
        self.dispatch();
        if self.members.borrow().is_empty() {
            self.emptied.notify_all();
        }
    }

    /// Hand free slots to waiting spawners (FIFO), then tell `wait_available` callers about
    /// any slot still free.
    fn dispatch(&self) {
        if self.limit.is_none() {
            return;
        }
        while self.free_count() > 0 {
            if self.slot_waiters.grant_next().is_none() {
                break;
            }
            self.reserved.set(self.reserved.get() + 1);
        }
        if self.free_count() > 0 {
            self.avail_waiters.notify_all();
        }
    }

    fn unreserve(&self) {
        self.reserved.set(self.reserved.get() - 1);
    }

    /// Reserve a slot, waiting (FIFO) while the pool is full.
    fn reserve(self: &Rc<Self>) -> Result<()> {
        loop {
            if self.free_count() > 0 {
                // Free slots are handed to waiters first, so nobody waits: no queue jumping.
                self.reserved.set(self.reserved.get() + 1);
                return Ok(());
            }
            let me = self.clone();
            let abandon = move |_| {
                // Killed after a slot was handed to us: pass it on.
                me.unreserve();
                me.dispatch();
            };
            match self.slot_waiters.wait("Pool", None, None, abandon).0 {
                Woken::Granted => return Ok(()),
                Woken::Notified => {}
                Woken::TimedOut => return Err(Error::Timeout(crate::error::TimeoutId::OWN)),
                Woken::Failed(e) => return Err(e),
            }
        }
    }

    /// Spawn into a slot reserved with [`reserve`](Set::reserve).
    #[track_caller]
    fn spawn_reserved<F, T>(self: &Rc<Self>, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let spawned = Builder::new().spawn(f);
        self.unreserve();
        match spawned {
            Ok(g) => {
                self.insert(&g.core);
                Ok(g)
            }
            Err(e) => {
                self.dispatch();
                Err(e)
            }
        }
    }

    /// Spawn `f` as a member, first waiting for a slot (a group never waits).
    #[track_caller]
    fn spawn<F, T>(self: &Rc<Self>, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.reserve()?;
        self.spawn_reserved(f)
    }

    /// Run `f` in a member and wait for its result; a member calls it itself (a call that
    /// waited for a slot of its own full pool could wait forever).
    #[track_caller]
    fn apply<F, T>(self: &Rc<Self>, f: F) -> std::result::Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.contains(&hub::current()) {
            return Ok(f());
        }
        let g = self.spawn(f).map_err(JoinError::Wait)?;
        if let Err(e) = g.wait(None) {
            // The caller stops waiting (a `Timeout`, killed, …): so does the call.
            g.kill();
            return Err(JoinError::Wait(e));
        }
        g.join()
    }

    fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.contains(&hub::current()) {
            return Err(Error::JoinSelf);
        }
        let deadline = timeout.map(crate::timeout::deadline_after);
        loop {
            if self.members.borrow().is_empty() {
                return Ok(true);
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(false);
            }
            match self.emptied.wait("Group.join", remaining, None, |_| {}).0 {
                Woken::Granted | Woken::Notified => {}
                Woken::TimedOut => return Ok(self.members.borrow().is_empty()),
                Woken::Failed(e) => return Err(e),
            }
        }
    }

    fn kill_all(&self) {
        let me = hub::current();
        let victims: Vec<Rc<GlCore>> = self
            .members
            .borrow()
            .values()
            .filter(|g| !Rc::ptr_eq(g, &me))
            .cloned()
            .collect();
        for g in &victims {
            hub::request_kill(g);
        }
        if hub::current_is_hub() {
            return;
        }
        for g in &victims {
            // Errors only cut the wait short.
            let _ = crate::greenlet::wait_finished(g, None);
        }
    }
}

/// A set of greenlets that can be waited for ([`join`](Group::join)) or killed
/// ([`kill_all`](Group::kill_all)) together. Finished greenlets leave it by themselves.
/// Clones share the group; `!Send`.
///
/// ```
/// use greenlet::{sleep, Group};
/// use std::time::Duration;
///
/// let group = Group::new();
/// for i in 1..=3u64 {
///     group.spawn(move || sleep(Duration::from_millis(i)));
/// }
/// assert_eq!(group.len(), 3);
/// assert!(group.join(None).unwrap());
/// assert!(group.is_empty());
/// ```
#[derive(Clone)]
pub struct Group {
    set: Rc<Set>,
}

impl Default for Group {
    fn default() -> Self {
        Group::new()
    }
}

impl Group {
    /// An empty group.
    ///
    /// ```
    /// assert!(greenlet::Group::new().is_empty());
    /// ```
    pub fn new() -> Group {
        Group {
            set: Set::new(None),
        }
    }

    /// Spawn a greenlet running `f` (as [`spawn`](crate::spawn)) and add it to the group.
    ///
    /// # Panics
    /// If no stack can be allocated (as [`spawn`](crate::spawn)).
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// let g = group.spawn(|| 6 * 7);
    /// assert!(group.contains(&g));
    /// assert_eq!(g.join().unwrap(), 42);
    /// assert!(group.is_empty());
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let g = crate::greenlet::spawn(f);
        self.set.insert(&g.core);
        g
    }

    /// Add a greenlet to the group (nothing happens if it has finished already or is a
    /// member).
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// let g = greenlet::spawn(|| ());
    /// group.add(&g);
    /// assert_eq!(group.len(), 1);
    /// group.join(None).unwrap();
    /// assert_eq!(group.len(), 0);
    /// ```
    pub fn add<T>(&self, g: &Greenlet<T>) {
        self.set.insert(&g.core);
    }

    /// Whether `g` is a member (added and not finished).
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// let g = greenlet::spawn(|| ());
    /// assert!(!group.contains(&g));
    /// # g.join().unwrap();
    /// ```
    pub fn contains<T>(&self, g: &Greenlet<T>) -> bool {
        self.set.contains(&g.core)
    }

    /// How many members have not finished.
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// group.spawn(|| ());
    /// assert_eq!(group.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether every member has finished.
    ///
    /// ```
    /// assert!(greenlet::Group::new().is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Wait (at most `timeout`, if given) until the group is empty; returns whether it
    /// became empty (false when the timeout expired first).
    ///
    /// # Errors
    /// [`Error::JoinSelf`] from a member of the group; [`Error::WouldBlockForever`] or an
    /// enclosing [`Timeout`](crate::Timeout)'s expiry from the wait.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenlet::Group::new();
    /// let slow = group.spawn(|| greenlet::sleep(Duration::from_secs(10)));
    /// assert!(!group.join(Some(Duration::from_millis(5))).unwrap());
    /// slow.kill();
    /// assert!(group.join(Some(Duration::from_millis(5))).unwrap());
    /// ```
    pub fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        self.set.join(timeout)
    }

    /// Kill every member and wait until they are dead (see
    /// [`Greenlet::kill`](crate::Greenlet::kill)). The calling greenlet, if it is a member,
    /// is not killed. From a hub callback the kills are only requested.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenlet::Group::new();
    /// let gs: Vec<_> = (0..3).map(|_| group.spawn(|| greenlet::sleep(Duration::from_secs(10)))).collect();
    /// greenlet::yield_now().unwrap();
    /// group.kill_all();
    /// assert!(group.is_empty());
    /// assert!(gs.iter().all(|g| g.was_killed()));
    /// ```
    pub fn kill_all(&self) {
        self.set.kill_all();
    }

    /// Run `f` in a greenlet of the group and wait for its result (`gevent.pool.Group.apply`).
    /// Called from a member of the group, it runs `f` directly (and a panic of `f` is the
    /// caller's).
    ///
    /// # Errors
    /// [`JoinError::Panicked`] when `f` panics, [`JoinError::Killed`] when the greenlet is
    /// killed; [`JoinError::Wait`] when waiting fails (an enclosing
    /// [`Timeout`](crate::Timeout), …), after which the greenlet is killed.
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// assert_eq!(group.apply(|| 6 * 7).unwrap(), 42);
    /// let err = group.apply(|| -> u8 { panic!("no") }).unwrap_err();
    /// assert_eq!(err.panic_message(), Some("no"));
    /// ```
    #[track_caller]
    pub fn apply<F, T>(&self, f: F) -> std::result::Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.set.apply(f)
    }

    /// Run `f` in a greenlet of the group and return its handle at once
    /// (`gevent.pool.Group.apply_async`): the same as [`spawn`](Group::spawn).
    ///
    /// # Panics
    /// If no stack can be allocated (as [`spawn`](crate::spawn)).
    ///
    /// ```
    /// let group = greenlet::Group::new();
    /// let g = group.apply_async(|| "done");
    /// assert_eq!(g.join().unwrap(), "done");
    /// ```
    #[track_caller]
    pub fn apply_async<F, T>(&self, f: F) -> Greenlet<T>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.spawn(f)
    }

    /// Run `f` on every item, each in a greenlet of the group, and return an iterator over
    /// the results in input order (`gevent.pool.Group.imap`). A group has no size limit:
    /// the first `next` starts a call for every item; see [`Pool::imap`] for a bounded,
    /// lazy one. Panics and wait failures are reported as [`Imap`] describes.
    ///
    /// ```
    /// use std::time::Duration;
    /// let group = greenlet::Group::new();
    /// let out: Vec<u64> = group
    ///     .imap([20u64, 1, 10], |ms| {
    ///         greenlet::sleep(Duration::from_millis(ms)).unwrap();
    ///         ms
    ///     })
    ///     .map(|r| r.unwrap())
    ///     .collect();
    /// assert_eq!(out, [20, 1, 10]);
    /// ```
    pub fn imap<I, F, R>(&self, items: I, f: F) -> Imap<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        Imap::new(self.set.clone(), usize::MAX, items.into_iter(), f)
    }
}

impl fmt::Debug for Group {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group").field("len", &self.len()).finish()
    }
}

/// Why [`Pool::try_spawn`] did not spawn.
///
/// ```
/// let pool = greenlet::Pool::new(1);
/// pool.try_spawn(|| ()).unwrap();
/// match pool.try_spawn(|| ()) {
///     Err(greenlet::TrySpawnError::Full(_closure)) => {}
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[non_exhaustive]
pub enum TrySpawnError<F> {
    /// The pool is full; the closure is handed back.
    Full(F),
    /// No stack could be allocated ([`Error::Spawn`]).
    Spawn(Error),
}

impl<F> TrySpawnError<F> {
    /// The closure of a [`Full`](TrySpawnError::Full) error.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// pool.try_spawn(|| 1).unwrap();
    /// let f = pool.try_spawn(|| 2).unwrap_err().into_inner().unwrap();
    /// assert_eq!(f(), 2);
    /// ```
    pub fn into_inner(self) -> Option<F> {
        match self {
            TrySpawnError::Full(f) => Some(f),
            TrySpawnError::Spawn(_) => None,
        }
    }
}

impl<F> fmt::Debug for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => write!(f, "Full(..)"),
            TrySpawnError::Spawn(e) => f.debug_tuple("Spawn").field(e).finish(),
        }
    }
}

impl<F> fmt::Display for TrySpawnError<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TrySpawnError::Full(_) => write!(f, "the pool is full"),
            TrySpawnError::Spawn(e) => write!(f, "{e}"),
        }
    }
}

impl<F> std::error::Error for TrySpawnError<F> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            TrySpawnError::Spawn(e) => Some(e),
            TrySpawnError::Full(_) => None,
        }
    }
}

/// A [`Group`] with a size limit: at most `size` of its greenlets are alive at once.
/// [`spawn`](Pool::spawn) waits (FIFO) while the pool is full; [`map`](Pool::map) and
/// [`imap_unordered`](Pool::imap_unordered) run a function over many inputs with bounded
/// concurrency. Clones share the pool; `!Send`.
///
/// ```
/// use greenlet::{sleep, Pool};
/// use std::{cell::Cell, rc::Rc, time::Duration};
///
/// let pool = Pool::new(2);
/// let (running, peak) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
/// for _ in 0..6 {
///     let (running, peak) = (running.clone(), peak.clone());
///     pool.spawn(move || {
///         running.set(running.get() + 1);
///         peak.set(peak.get().max(running.get()));
///         sleep(Duration::from_millis(2)).unwrap();
///         running.set(running.get() - 1);
///     })
///     .unwrap();
/// }
/// pool.join(None).unwrap();
/// assert_eq!(peak.get(), 2);
/// ```
#[derive(Clone)]
pub struct Pool {
    set: Rc<Set>,
}

impl Pool {
    /// A pool that runs at most `size` greenlets at once.
    ///
    /// # Panics
    /// If `size` is 0 (nothing could ever run).
    ///
    /// ```
    /// let pool = greenlet::Pool::new(4);
    /// assert_eq!((pool.size(), pool.free_count()), (4, 4));
    /// ```
    pub fn new(size: usize) -> Pool {
        assert!(size > 0, "a Pool needs a size of at least 1");
        Pool {
            set: Set::new(Some(size)),
        }
    }

    /// The most greenlets it runs at once.
    ///
    /// ```
    /// assert_eq!(greenlet::Pool::new(3).size(), 3);
    /// ```
    pub fn size(&self) -> usize {
        self.set.limit.unwrap_or(usize::MAX)
    }

    /// How many of its greenlets have not finished.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(3);
    /// pool.spawn(|| ()).unwrap();
    /// assert_eq!(pool.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether none of its greenlets is alive.
    ///
    /// ```
    /// assert!(greenlet::Pool::new(1).is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// How many greenlets could be spawned right now without waiting.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(2);
    /// pool.spawn(|| ()).unwrap();
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn free_count(&self) -> usize {
        self.set.free_count()
    }

    /// Whether [`spawn`](Pool::spawn) would have to wait.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// pool.spawn(|| ()).unwrap();
    /// assert!(pool.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        self.free_count() == 0
    }

    /// Whether `g` is one of its live greenlets.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// let g = pool.spawn(|| ()).unwrap();
    /// assert!(pool.contains(&g));
    /// ```
    pub fn contains<T>(&self, g: &Greenlet<T>) -> bool {
        self.set.contains(&g.core)
    }

    /// Spawn a greenlet running `f` in the pool, first waiting (behind earlier spawners)
    /// while the pool is full.
    ///
    /// # Errors
    /// [`Error::Spawn`] when no stack can be allocated; [`Error::WouldBlockForever`], an
    /// enclosing [`Timeout`](crate::Timeout)'s expiry or [`Error::BlockingInHub`] when
    /// waiting fails. A greenlet of the pool that spawns into its own full pool waits until
    /// another one finishes.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// let a = pool.spawn(|| 1).unwrap();
    /// let b = pool.spawn(|| 2).unwrap(); // waited for `a` to finish
    /// assert!(a.is_dead());
    /// assert_eq!(b.join().unwrap(), 2);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&self, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.set.spawn(f)
    }

    /// Run `f` in a greenlet of the pool, waiting for a slot as [`spawn`](Pool::spawn) does,
    /// and wait for its result (`gevent.pool.Pool.apply`). Called from a greenlet of the
    /// pool, it runs `f` directly (and a panic of `f` is the caller's), since waiting for a
    /// slot of its own full pool could wait forever.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] when `f` panics, [`JoinError::Killed`] when the greenlet is
    /// killed; [`JoinError::Wait`] when spawning or waiting fails (an enclosing
    /// [`Timeout`](crate::Timeout), no stack, …), after which a started greenlet is killed.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// assert_eq!(pool.apply(|| 6 * 7).unwrap(), 42);
    /// let err = pool.apply(|| -> u8 { panic!("no") }).unwrap_err();
    /// assert_eq!(err.panic_message(), Some("no"));
    /// ```
    #[track_caller]
    pub fn apply<F, T>(&self, f: F) -> std::result::Result<T, JoinError>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.set.apply(f)
    }

    /// Run `f` in a greenlet of the pool and return its handle without waiting for the
    /// result (`gevent.pool.Pool.apply_async`): the same as [`spawn`](Pool::spawn), so it
    /// first waits for a free slot. Errors as [`spawn`](Pool::spawn).
    ///
    /// ```
    /// let pool = greenlet::Pool::new(2);
    /// let g = pool.apply_async(|| "done").unwrap();
    /// assert!(pool.contains(&g));
    /// assert_eq!(g.join().unwrap(), "done");
    /// ```
    #[track_caller]
    pub fn apply_async<F, T>(&self, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        self.set.spawn(f)
    }

    /// Run `f` on every item in greenlets of the pool and return an iterator over the
    /// results in input order (`gevent.pool.Pool.imap`). It is lazy: items are pulled from
    /// `items` and started only as the iterator is advanced, and at most
    /// [`size`](Pool::size) of them are started and not yet yielded, so at most that many run
    /// at once (fewer while other greenlets hold slots) and the input is pulled at most that
    /// far ahead of the results. See [`Imap`] for panics and wait failures.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::Pool::new(3);
    /// let out: Vec<u64> = pool
    ///     .imap([30u64, 1, 20, 2], |ms| {
    ///         greenlet::sleep(Duration::from_millis(ms)).unwrap();
    ///         ms
    ///     })
    ///     .map(|r| r.unwrap())
    ///     .collect();
    /// assert_eq!(out, [30, 1, 20, 2]); // input order, whatever order they finished in
    /// ```
    pub fn imap<I, F, R>(&self, items: I, f: F) -> Imap<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        Imap::new(self.set.clone(), self.size(), items.into_iter(), f)
    }

    /// Spawn a greenlet running `f` if a slot is free right now.
    ///
    /// # Errors
    /// [`TrySpawnError::Full`] (with `f`) when the pool is full; [`TrySpawnError::Spawn`]
    /// when no stack can be allocated.
    ///
    /// ```
    /// let pool = greenlet::Pool::new(1);
    /// assert!(pool.try_spawn(|| ()).is_ok());
    /// assert!(pool.try_spawn(|| ()).is_err());
    /// ```
    #[track_caller]
    pub fn try_spawn<F, T>(&self, f: F) -> std::result::Result<Greenlet<T>, TrySpawnError<F>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        if self.set.free_count() == 0 {
            return Err(TrySpawnError::Full(f));
        }
        self.set.reserved.set(self.set.reserved.get() + 1);
        self.set.spawn_reserved(f).map_err(TrySpawnError::Spawn)
    }

    /// Wait (at most `timeout`, if given) until a slot is free, without taking it. Returns
    /// whether one is free.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`] or an enclosing [`Timeout`](crate::Timeout)'s expiry.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::Pool::new(1);
    /// pool.spawn(|| greenlet::sleep(Duration::from_millis(5))).unwrap();
    /// assert!(!pool.wait_available(Some(Duration::ZERO)).unwrap());
    /// assert!(pool.wait_available(None).unwrap());
    /// assert_eq!(pool.free_count(), 1);
    /// ```
    pub fn wait_available(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(crate::timeout::deadline_after);
        loop {
            if self.set.free_count() > 0 {
                return Ok(true);
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(false);
            }
            match self
                .set
                .avail_waiters
                .wait("Pool.wait_available", remaining, None, |_| {})
                .0
            {
                Woken::Granted | Woken::Notified => {}
                Woken::TimedOut => return Ok(self.set.free_count() > 0),
                Woken::Failed(e) => return Err(e),
            }
        }
    }

    /// Wait (at most `timeout`, if given) until every greenlet of the pool has finished;
    /// returns whether they have. Errors as [`Group::join`].
    ///
    /// ```
    /// let pool = greenlet::Pool::new(2);
    /// pool.spawn(|| ()).unwrap();
    /// assert!(pool.join(None).unwrap());
    /// ```
    pub fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        self.set.join(timeout)
    }

    /// Kill every greenlet of the pool and wait until they are dead (see
    /// [`Group::kill_all`]).
    ///
    /// ```
    /// let pool = greenlet::Pool::new(2);
    /// let g = pool.spawn(|| greenlet::sleep(std::time::Duration::from_secs(10))).unwrap();
    /// pool.kill_all();
    /// assert!(g.was_killed() && pool.is_empty());
    /// ```
    pub fn kill_all(&self) {
        self.set.kill_all();
    }

    /// Run `f` on every item in greenlets of the pool (at most [`size`](Pool::size) at once)
    /// and return the results in input order. An item whose call panics gives
    /// [`JoinError::Panicked`] at its position; the others are unaffected.
    ///
    /// The calling greenlet spawns the calls itself, waiting for free slots, then collects
    /// the results. If waiting fails (an enclosing [`Timeout`](crate::Timeout) expires, …),
    /// the calls still running are killed, and every item without a result gets
    /// [`JoinError::Wait`] with that error.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::Pool::new(3);
    /// let out = pool.map([30u64, 10, 20], |ms| {
    ///     greenlet::sleep(Duration::from_millis(ms)).unwrap();
    ///     if ms == 10 { panic!("ten") }
    ///     ms
    /// });
    /// assert_eq!(out[0].as_ref().unwrap(), &30);
    /// assert_eq!(out[1].as_ref().unwrap_err().panic_message(), Some("ten"));
    /// assert_eq!(out[2].as_ref().unwrap(), &20);
    /// ```
    pub fn map<I, F, R>(&self, items: I, f: F) -> Vec<std::result::Result<R, JoinError>>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        let f = Rc::new(f);
        let mut started: Vec<std::result::Result<Greenlet<R>, Error>> = Vec::new();
        let mut failure: Option<Error> = None;
        for item in items {
            if let Some(e) = &failure {
                started.push(Err(e.clone()));
                continue;
            }
            let f = f.clone();
            let spawned = self.spawn(move || f(item));
            if let Err(e) = &spawned {
                failure = Some(e.clone());
            }
            started.push(spawned);
        }
        let mut out = Vec::with_capacity(started.len());
        for s in started {
            let g = match s {
                Ok(g) => g,
                Err(e) => {
                    out.push(Err(JoinError::Wait(e)));
                    continue;
                }
            };
            if failure.is_none()
                && let Err(e) = g.wait(None)
            {
                failure = Some(e);
            }
            match &failure {
                Some(e) if !g.is_dead() => {
                    g.kill();
                    out.push(Err(JoinError::Wait(e.clone())));
                }
                _ => out.push(g.join()),
            }
        }
        out
    }

    /// Run `f` on every item in greenlets of the pool and return an iterator over the
    /// results in the order the calls finish. Items are started lazily, as the iterator is
    /// advanced and slots are free. An item whose call panics gives its
    /// [`JoinError::Panicked`]; the others are unaffected.
    ///
    /// If waiting fails (an enclosing [`Timeout`](crate::Timeout) expires, …), the calls
    /// still running are killed, the iterator yields one [`JoinError::Wait`] and then ends.
    /// Dropping the iterator early leaves the calls already started running in the pool.
    ///
    /// ```
    /// use std::time::Duration;
    /// let pool = greenlet::Pool::new(3);
    /// let order: Vec<u64> = pool
    ///     .imap_unordered([300u64, 100, 200], |ms| {
    ///         greenlet::sleep(Duration::from_millis(ms)).unwrap();
    ///         ms
    ///     })
    ///     .map(|r| r.unwrap())
    ///     .collect();
    /// assert_eq!(order, [100, 200, 300]);
    /// ```
    pub fn imap_unordered<I, F, R>(&self, items: I, f: F) -> ImapUnordered<I::IntoIter, F, R>
    where
        I: IntoIterator,
        I::Item: 'static,
        F: Fn(I::Item) -> R + 'static,
        R: 'static,
    {
        ImapUnordered {
            pool: self.clone(),
            items: items.into_iter(),
            items_done: false,
            f: Rc::new(f),
            running: HashMap::new(),
            finished: Rc::new(RefCell::new(VecDeque::new())),
            waker: Rc::new(RefCell::new(None)),
            ended: false,
        }
    }
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool")
            .field("size", &self.size())
            .field("len", &self.len())
            .field("free", &self.free_count())
            .finish()
    }
}

/// The iterator returned by [`Pool::imap_unordered`]: results in completion order.
///
/// ```
/// let pool = greenlet::Pool::new(2);
/// let mut it = pool.imap_unordered(1..=3, |n: i32| n * n);
/// let mut squares: Vec<i32> = it.by_ref().map(|r| r.unwrap()).collect();
/// squares.sort();
/// assert_eq!(squares, [1, 4, 9]);
/// assert!(it.next().is_none());
/// ```
pub struct ImapUnordered<I, F, R> {
    pool: Pool,
    items: I,
    items_done: bool,
    f: Rc<F>,
    /// Started calls by greenlet id.
    running: HashMap<u64, Greenlet<R>>,
    /// Ids of started calls that finished, in finishing order.
    finished: Rc<RefCell<VecDeque<u64>>>,
    /// Woken when a call finishes while `next` waits.
    waker: Rc<RefCell<Option<Waker>>>,
    ended: bool,
}

impl<I, F, R> ImapUnordered<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    fn next_item(&mut self) -> Option<I::Item> {
        if self.items_done {
            return None;
        }
        let item = self.items.next();
        self.items_done = item.is_none();
        item
    }

    fn start(&mut self, item: I::Item) -> Result<()> {
        let f = self.f.clone();
        let g = self.pool.spawn(move || f(item))?;
        let (finished, waker, id) = (self.finished.clone(), self.waker.clone(), g.id());
        g.core.links.push(Link::Raw(Box::new(move || {
            finished.borrow_mut().push_back(id);
            if let Some(t) = waker.borrow().as_ref() {
                t.wake();
            }
        })));
        self.running.insert(id, g);
        Ok(())
    }

    fn fail(&mut self, e: Error) -> Option<std::result::Result<R, JoinError>> {
        self.ended = true;
        for (_, g) in self.running.drain() {
            g.kill();
        }
        Some(Err(JoinError::Wait(e)))
    }
}

impl<I, F, R> Iterator for ImapUnordered<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    type Item = std::result::Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        loop {
            let done = self.finished.borrow_mut().pop_front();
            if let Some(id) = done {
                if let Some(g) = self.running.remove(&id) {
                    return Some(g.join());
                }
                continue;
            }
            // Start what fits without waiting.
            while self.pool.free_count() > 0 {
                let Some(item) = self.next_item() else { break };
                if let Err(e) = self.start(item) {
                    return self.fail(e);
                }
            }
            if self.running.is_empty() {
                match self.next_item() {
                    None => {
                        self.ended = true;
                        return None;
                    }
                    // The pool is full of other greenlets: wait for a slot.
                    Some(item) => {
                        if let Err(e) = self.start(item) {
                            return self.fail(e);
                        }
                        continue;
                    }
                }
            }
            if !self.finished.borrow().is_empty() {
                continue;
            }
            let w = match Waiter::new("imap_unordered") {
                Ok(w) => w,
                Err(e) => return self.fail(e),
            };
            *self.waker.borrow_mut() = Some(w.waker());
            let r = w.wait(None);
            self.waker.borrow_mut().take();
            if let Err(e) = r {
                return self.fail(e);
            }
        }
    }
}

impl<I, F, R> fmt::Debug for ImapUnordered<I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ImapUnordered")
            .field("running", &self.running.len())
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// The iterator returned by [`Pool::imap`] and [`Group::imap`]: results in input order.
///
/// An item whose call panics gives its [`JoinError::Panicked`] at its position; the others
/// are unaffected. If waiting fails (an enclosing [`Timeout`](crate::Timeout) expires, …),
/// the calls still running are killed, the iterator yields one [`JoinError::Wait`] and then
/// ends. Dropping the iterator early leaves the calls already started running in the pool.
///
/// ```
/// let pool = greenlet::Pool::new(2);
/// let mut it = pool.imap(1..=3, |n: i32| n * n);
/// assert_eq!(it.next().unwrap().unwrap(), 1);
/// let rest: Vec<i32> = it.by_ref().map(|r| r.unwrap()).collect();
/// assert_eq!(rest, [4, 9]);
/// assert!(it.next().is_none());
/// ```
pub struct Imap<I, F, R> {
    set: Rc<Set>,
    /// The most calls started and not yet yielded.
    window: usize,
    items: I,
    items_done: bool,
    f: Rc<F>,
    /// Started calls, in input order.
    started: VecDeque<Greenlet<R>>,
    ended: bool,
}

impl<I, F, R> Imap<I, F, R> {
    fn new(set: Rc<Set>, window: usize, items: I, f: F) -> Self {
        Imap {
            set,
            window,
            items,
            items_done: false,
            f: Rc::new(f),
            started: VecDeque::new(),
            ended: false,
        }
    }
}

impl<I, F, R> Imap<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    fn fail(&mut self, e: Error) -> Option<std::result::Result<R, JoinError>> {
        self.ended = true;
        for g in self.started.drain(..) {
            g.kill();
        }
        Some(Err(JoinError::Wait(e)))
    }
}

impl<I, F, R> Iterator for Imap<I, F, R>
where
    I: Iterator,
    I::Item: 'static,
    F: Fn(I::Item) -> R + 'static,
    R: 'static,
{
    type Item = std::result::Result<R, JoinError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.ended {
            return None;
        }
        // Start what the window allows; wait for a slot only when nothing is started.
        while !self.items_done && self.started.len() < self.window {
            if !self.started.is_empty() && self.set.free_count() == 0 {
                break;
            }
            let Some(item) = self.items.next() else {
                self.items_done = true;
                break;
            };
            let f = self.f.clone();
            match self.set.spawn(move || f(item)) {
                Ok(g) => self.started.push_back(g),
                Err(e) => return self.fail(e),
            }
        }
        let Some(g) = self.started.pop_front() else {
            self.ended = true;
            return None;
        };
        if let Err(e) = g.wait(None) {
            self.started.push_front(g);
            return self.fail(e);
        }
        Some(g.join())
    }
}

impl<I, F, R> fmt::Debug for Imap<I, F, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Imap")
            .field("started", &self.started.len())
            .field("window", &self.window)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}
