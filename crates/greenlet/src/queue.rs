//! Queues for passing values between greenlets of one thread: [`Queue`] (unbounded or
//! bounded), [`JoinableQueue`] (a queue that also counts unfinished tasks) and [`Channel`] (no
//! buffer: a put meets a get).
//!
//! `get` waits while the queue is empty and `put` waits while a bounded queue is full. Blocked
//! getters and putters are each served in FIFO order: every put hands its item to exactly one
//! waiting getter (the longest-waiting one), and a getter whose timeout expired never takes a
//! later item. Clones of a queue share it; handles are `!Send`.
//!
//! ```
//! use greenlet::{spawn, Queue};
//!
//! let q: Queue<u32> = Queue::bounded(2);
//! let producer = {
//!     let q = q.clone();
//!     spawn(move || {
//!         for i in 0..5 {
//!             q.put(i).unwrap(); // waits while 2 items are queued
//!         }
//!     })
//! };
//! let received: Vec<u32> = (0..5).map(|_| q.get().unwrap()).collect();
//! assert_eq!(received, [0, 1, 2, 3, 4]);
//! producer.join().unwrap();
//! ```

use crate::error::{Error, Result};
use crate::waitlist::{WaitList, Woken};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Why a queue operation failed.
///
/// Put errors other than [`Full`](QueueError::Full) drop the item.
///
/// ```
/// use greenlet::{Queue, QueueError};
/// let q = Queue::bounded(1);
/// q.put('a').unwrap();
/// assert_eq!(q.try_put('b'), Err(QueueError::Full('b')));
/// assert_eq!(q.try_get(), Ok('a'));
/// assert_eq!(q.try_get(), Err(QueueError::Empty));
/// ```
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum QueueError<T> {
    /// The queue was full (`try_put`), or stayed full until the timeout (`put_timeout`); the
    /// item is handed back.
    Full(T),
    /// The queue was empty (`try_get`), or stayed empty until the timeout (`get_timeout`).
    Empty,
    /// The queue was shut down: puts fail, and gets fail once no items are left.
    Shutdown,
    /// [`JoinableQueue::task_done`] was called more times than items were put.
    TooManyTaskDone,
    /// Waiting failed: nothing could ever wake the caller ([`Error::WouldBlockForever`]), an
    /// enclosing [`Timeout`](crate::Timeout) expired, or the call was made in the hub.
    Wait(Error),
}

impl<T> QueueError<T> {
    /// The item of a [`Full`](QueueError::Full) error.
    ///
    /// ```
    /// let q = greenlet::Queue::bounded(1);
    /// q.put(1).unwrap();
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), Some(2));
    /// ```
    pub fn into_inner(self) -> Option<T> {
        match self {
            QueueError::Full(item) => Some(item),
            _ => None,
        }
    }
}

impl<T> fmt::Debug for QueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full(_) => write!(f, "Full(..)"),
            QueueError::Empty => write!(f, "Empty"),
            QueueError::Shutdown => write!(f, "Shutdown"),
            QueueError::TooManyTaskDone => write!(f, "TooManyTaskDone"),
            QueueError::Wait(e) => f.debug_tuple("Wait").field(e).finish(),
        }
    }
}

impl<T> fmt::Display for QueueError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QueueError::Full(_) => write!(f, "the queue is full"),
            QueueError::Empty => write!(f, "the queue is empty"),
            QueueError::Shutdown => write!(f, "the queue is shut down"),
            QueueError::TooManyTaskDone => {
                write!(f, "task_done() was called more times than items were put")
            }
            QueueError::Wait(e) => write!(f, "waiting on the queue failed: {e}"),
        }
    }
}

impl<T> std::error::Error for QueueError<T> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            QueueError::Wait(e) => Some(e),
            _ => None,
        }
    }
}

/// Whether an operation may wait, and how long.
#[derive(Clone, Copy)]
enum Mode {
    NoWait,
    Block(Option<Duration>),
}

/// The state shared by every queue type.
struct Core<T> {
    /// `None`: unbounded; `Some(0)`: rendezvous (a channel).
    cap: Option<usize>,
    items: RefCell<VecDeque<T>>,
    /// Blocked getters; a put hands its item into the entry.
    getters: WaitList<T>,
    /// Blocked putters; the entry holds the item they offer.
    putters: WaitList<T>,
    shutdown: Cell<bool>,
    /// Items put and not yet marked done (for `JoinableQueue`).
    unfinished: Cell<usize>,
    joiners: WaitList,
}

impl<T> Core<T> {
    fn new(cap: Option<usize>) -> Rc<Core<T>> {
        Rc::new(Core {
            cap,
            items: RefCell::new(VecDeque::new()),
            getters: WaitList::new(),
            putters: WaitList::new(),
            shutdown: Cell::new(false),
            unfinished: Cell::new(0),
            joiners: WaitList::new(),
        })
    }

    fn has_room(&self) -> bool {
        self.cap.is_none_or(|c| self.items.borrow().len() < c)
    }

    fn len(&self) -> usize {
        self.items.borrow().len()
    }

    /// An item entered the queue (or went straight to a getter).
    fn accepted(&self) {
        self.unfinished.set(self.unfinished.get() + 1);
    }

    fn put(&self, item: T, mode: Mode) -> std::result::Result<(), QueueError<T>> {
        if self.shutdown.get() {
            return Err(QueueError::Shutdown);
        }
        // Getters only wait while no item is queued: give it to the longest-waiting one.
        if let Some(getter) = self.getters.grant_next() {
            getter.set_payload(item);
            self.accepted();
            return Ok(());
        }
        // Putters only wait while the queue is full, so room means nobody is ahead of us.
        if self.has_room() {
            self.items.borrow_mut().push_back(item);
            self.accepted();
            return Ok(());
        }
        let timeout = match mode {
            Mode::NoWait => return Err(QueueError::Full(item)),
            Mode::Block(t) => t,
        };
        // If we are killed after a getter took the item, the put simply happened.
        let (woken, item) = self.putters.wait("Queue.put", timeout, Some(item), |_| {});
        match woken {
            // A getter took the item (and counted it).
            Woken::Granted => Ok(()),
            // Only `shutdown` notifies putters.
            Woken::Notified => Err(QueueError::Shutdown),
            Woken::TimedOut => Err(match item {
                Some(item) => QueueError::Full(item),
                None => QueueError::Shutdown,
            }),
            Woken::Failed(e) => Err(QueueError::Wait(e)),
        }
    }

    /// Take the next item without waiting, if there is one.
    fn take_now(&self) -> Option<T> {
        let first = self.items.borrow_mut().pop_front();
        match first {
            Some(item) => {
                self.refill();
                Some(item)
            }
            // No buffer (a channel): take the item of the longest-waiting putter.
            None => {
                let putter = self.putters.grant_next()?;
                let item = putter.take_payload();
                debug_assert!(item.is_some(), "a blocked putter always offers an item");
                if item.is_some() {
                    self.accepted();
                }
                item
            }
        }
    }

    /// Move the items of blocked putters into the free room, in their order.
    fn refill(&self) {
        while self.has_room() {
            let Some(putter) = self.putters.grant_next() else {
                break;
            };
            if let Some(item) = putter.take_payload() {
                self.items.borrow_mut().push_back(item);
                self.accepted();
            }
        }
    }

    /// A getter that was handed `item` was killed before it could return it: pass it on to
    /// the next getter, or put it back at the head of the queue.
    fn restore(&self, item: T) {
        match self.getters.grant_next() {
            Some(getter) => getter.set_payload(item),
            None => self.items.borrow_mut().push_front(item),
        }
    }

    fn get(self: &Rc<Self>, mode: Mode) -> std::result::Result<T, QueueError<T>> {
        if let Some(item) = self.take_now() {
            return Ok(item);
        }
        if self.shutdown.get() {
            return Err(QueueError::Shutdown);
        }
        let timeout = match mode {
            Mode::NoWait => return Err(QueueError::Empty),
            Mode::Block(t) => t,
        };
        let me = self.clone();
        let (woken, item) = self.getters.wait("Queue.get", timeout, None, move |item| {
            if let Some(item) = item {
                me.restore(item);
            }
        });
        match woken {
            Woken::Granted => item.ok_or(QueueError::Shutdown),
            // Only `shutdown` notifies getters.
            Woken::Notified => Err(QueueError::Shutdown),
            Woken::TimedOut => Err(QueueError::Empty),
            Woken::Failed(e) => Err(QueueError::Wait(e)),
        }
    }

    fn shutdown(&self, immediate: bool) {
        self.shutdown.set(true);
        let discarded = if immediate {
            std::mem::take(&mut *self.items.borrow_mut())
        } else {
            VecDeque::new()
        };
        if !discarded.is_empty() {
            let left = self.unfinished.get().saturating_sub(discarded.len());
            self.unfinished.set(left);
            if left == 0 {
                self.joiners.notify_all();
            }
        }
        self.getters.notify_all();
        self.putters.notify_all();
        // The items' destructors run last, with no borrow held.
        drop(discarded);
    }

    fn task_done(&self) -> std::result::Result<(), QueueError<T>> {
        let n = self.unfinished.get();
        if n == 0 {
            return Err(QueueError::TooManyTaskDone);
        }
        self.unfinished.set(n - 1);
        if n == 1 {
            self.joiners.notify_all();
        }
        Ok(())
    }

    fn join(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(crate::timeout::deadline_after);
        loop {
            if self.unfinished.get() == 0 {
                return Ok(true);
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Ok(false);
            }
            match self
                .joiners
                .wait("JoinableQueue.join", remaining, None, |_| {})
                .0
            {
                Woken::Granted | Woken::Notified => {}
                Woken::TimedOut => return Ok(self.unfinished.get() == 0),
                Woken::Failed(e) => return Err(e),
            }
        }
    }
}

fn debug_core<T>(name: &str, core: &Core<T>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct(name)
        .field("len", &core.len())
        .field("capacity", &core.cap)
        .field("getters", &core.getters.len())
        .field("putters", &core.putters.len())
        .field("shutdown", &core.shutdown.get())
        .finish()
}

/// A FIFO queue of items for greenlets, unbounded or bounded. Clones share the queue; `!Send`.
///
/// ```
/// use greenlet::{spawn, Queue};
/// let q = Queue::unbounded();
/// let consumer = {
///     let q = q.clone();
///     spawn(move || q.get().unwrap() + q.get().unwrap())
/// };
/// q.put(40).unwrap();
/// q.put(2).unwrap();
/// assert_eq!(consumer.join().unwrap(), 42);
/// ```
pub struct Queue<T> {
    core: Rc<Core<T>>,
}

impl<T> Clone for Queue<T> {
    fn clone(&self) -> Self {
        Queue {
            core: self.core.clone(),
        }
    }
}

impl<T> Queue<T> {
    /// A queue without a size limit: `put` never waits.
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// for i in 0..1000 {
    ///     q.put(i).unwrap();
    /// }
    /// assert_eq!(q.len(), 1000);
    /// ```
    pub fn unbounded() -> Queue<T> {
        Queue {
            core: Core::new(None),
        }
    }

    /// A queue that holds at most `capacity` items: further puts wait for a get. `bounded(0)`
    /// holds nothing: every put waits for a getter, as with a [`Channel`].
    ///
    /// ```
    /// let q = greenlet::Queue::bounded(1);
    /// q.put("a").unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(capacity: usize) -> Queue<T> {
        Queue {
            core: Core::new(Some(capacity)),
        }
    }

    /// Add an item at the back, waiting (behind earlier putters) while the queue is full.
    ///
    /// # Errors
    /// [`QueueError::Shutdown`] after [`shutdown`](Queue::shutdown);
    /// [`QueueError::Wait`] when waiting fails (for example
    /// [`Error::WouldBlockForever`]: nothing could ever get an item). The item is dropped.
    ///
    /// ```
    /// let q = greenlet::Queue::bounded(1);
    /// q.put(1).unwrap();
    /// // Nobody could ever make room:
    /// assert_eq!(q.put(2), Err(greenlet::QueueError::Wait(greenlet::Error::WouldBlockForever)));
    /// ```
    pub fn put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::Block(None))
    }

    /// Like [`put`](Queue::put), waiting at most `timeout`; then it fails with
    /// [`QueueError::Full`], which hands the item back.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenlet::Queue::bounded(1);
    /// q.put(1).unwrap();
    /// let err = q.put_timeout(2, Duration::from_millis(5)).unwrap_err();
    /// assert_eq!(err, greenlet::QueueError::Full(2));
    /// ```
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::Block(Some(timeout)))
    }

    /// Add an item if that needs no waiting; [`QueueError::Full`] (with the item) otherwise.
    ///
    /// ```
    /// let q = greenlet::Queue::bounded(1);
    /// assert!(q.try_put(1).is_ok());
    /// assert_eq!(q.try_put(2).unwrap_err().into_inner(), Some(2));
    /// ```
    pub fn try_put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::NoWait)
    }

    /// Remove and return the item at the front, waiting (behind earlier getters) while the
    /// queue is empty.
    ///
    /// # Errors
    /// [`QueueError::Shutdown`] once the queue is shut down and empty; [`QueueError::Wait`]
    /// when waiting fails, for example [`Error::WouldBlockForever`] when no greenlet could
    /// ever put an item.
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// q.put("x").unwrap();
    /// assert_eq!(q.get(), Ok("x"));
    /// assert_eq!(q.get(), Err(greenlet::QueueError::Wait(greenlet::Error::WouldBlockForever)));
    /// ```
    pub fn get(&self) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::Block(None))
    }

    /// Like [`get`](Queue::get), waiting at most `timeout`; then it fails with
    /// [`QueueError::Empty`]. A getter whose timeout expired never takes an item put later.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: greenlet::Queue<u8> = greenlet::Queue::unbounded();
    /// assert_eq!(q.get_timeout(Duration::from_millis(5)), Err(greenlet::QueueError::Empty));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::Block(Some(timeout)))
    }

    /// Take the front item if there is one; [`QueueError::Empty`] otherwise.
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// assert_eq!(q.try_get(), Err(greenlet::QueueError::Empty));
    /// q.put(3).unwrap();
    /// assert_eq!(q.try_get(), Ok(3));
    /// ```
    pub fn try_get(&self) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::NoWait)
    }

    /// The number of queued items.
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// q.put(()).unwrap();
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn len(&self) -> usize {
        self.core.len()
    }

    /// Whether no items are queued.
    ///
    /// ```
    /// let q: greenlet::Queue<()> = greenlet::Queue::unbounded();
    /// assert!(q.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a put would have to wait (always false for an unbounded queue).
    ///
    /// ```
    /// let q = greenlet::Queue::bounded(2);
    /// q.put(1).unwrap();
    /// assert!(!q.is_full());
    /// q.put(2).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn is_full(&self) -> bool {
        !self.core.has_room()
    }

    /// The most items it holds: `None` when unbounded.
    ///
    /// ```
    /// assert_eq!(greenlet::Queue::<u8>::bounded(3).capacity(), Some(3));
    /// assert_eq!(greenlet::Queue::<u8>::unbounded().capacity(), None);
    /// ```
    pub fn capacity(&self) -> Option<usize> {
        self.core.cap
    }

    /// Shut the queue down: puts fail with [`QueueError::Shutdown`] from now on, blocked
    /// putters and getters are woken with it, and gets return the items still queued, then
    /// fail with it.
    ///
    /// ```
    /// use greenlet::QueueError;
    /// let q = greenlet::Queue::unbounded();
    /// q.put(1).unwrap();
    /// q.shutdown();
    /// assert_eq!(q.put(2), Err(QueueError::Shutdown));
    /// assert_eq!(q.get(), Ok(1));
    /// assert_eq!(q.get(), Err(QueueError::Shutdown));
    /// ```
    pub fn shutdown(&self) {
        self.core.shutdown(false);
    }

    /// Whether [`shutdown`](Queue::shutdown) was called.
    ///
    /// ```
    /// let q: greenlet::Queue<()> = greenlet::Queue::unbounded();
    /// q.shutdown();
    /// assert!(q.is_shutdown());
    /// ```
    pub fn is_shutdown(&self) -> bool {
        self.core.shutdown.get()
    }
}

impl<T> fmt::Debug for Queue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_core("Queue", &self.core, f)
    }
}

/// A [`Queue`] that also counts unfinished tasks: every item put is one task, which a consumer
/// marks finished with [`task_done`](JoinableQueue::task_done); [`join`](JoinableQueue::join)
/// waits until every task is finished. Clones share the queue; `!Send`.
///
/// ```
/// use greenlet::{spawn, JoinableQueue};
/// use std::{cell::Cell, rc::Rc};
///
/// let q = JoinableQueue::unbounded();
/// let total = Rc::new(Cell::new(0));
/// let worker = {
///     let (q, total) = (q.clone(), total.clone());
///     spawn(move || {
///         while let Ok(n) = q.get() {
///             total.set(total.get() + n);
///             q.task_done().unwrap();
///         }
///     })
/// };
/// for n in 1..=4 {
///     q.put(n).unwrap();
/// }
/// q.join().unwrap(); // every item was processed
/// assert_eq!(total.get(), 10);
/// q.shutdown(); // lets the worker's `get` fail, ending it
/// worker.join().unwrap();
/// ```
pub struct JoinableQueue<T> {
    queue: Queue<T>,
}

impl<T> Clone for JoinableQueue<T> {
    fn clone(&self) -> Self {
        JoinableQueue {
            queue: self.queue.clone(),
        }
    }
}

/// A joinable queue is a [`Queue`] with task counting on top: `put`, `get`, `len`, `shutdown`
/// and the rest are the queue's. Every `put` is one more unfinished task; `shutdown` leaves
/// unfinished tasks unfinished (`shutdown_immediate` counts the discarded items as done).
///
/// ```
/// let q = greenlet::JoinableQueue::bounded(1);
/// q.put(1).unwrap();
/// assert!(q.is_full());
/// assert_eq!(q.unfinished_tasks(), 1);
/// ```
impl<T> std::ops::Deref for JoinableQueue<T> {
    type Target = Queue<T>;

    fn deref(&self) -> &Queue<T> {
        &self.queue
    }
}

impl<T> JoinableQueue<T> {
    /// An unbounded joinable queue.
    ///
    /// ```
    /// let q: greenlet::JoinableQueue<u8> = greenlet::JoinableQueue::unbounded();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// ```
    pub fn unbounded() -> JoinableQueue<T> {
        JoinableQueue {
            queue: Queue::unbounded(),
        }
    }

    /// A joinable queue that holds at most `capacity` items (see [`Queue::bounded`]).
    ///
    /// ```
    /// let q = greenlet::JoinableQueue::bounded(1);
    /// q.put(1).unwrap();
    /// assert!(q.is_full());
    /// ```
    pub fn bounded(capacity: usize) -> JoinableQueue<T> {
        JoinableQueue {
            queue: Queue::bounded(capacity),
        }
    }

    /// Mark one task (an item taken with `get`) finished; when none is left unfinished,
    /// [`join`](JoinableQueue::join) returns.
    ///
    /// # Errors
    /// [`QueueError::TooManyTaskDone`] when no task is unfinished.
    ///
    /// ```
    /// let q = greenlet::JoinableQueue::unbounded();
    /// q.put(1).unwrap();
    /// q.get().unwrap();
    /// assert!(q.task_done().is_ok());
    /// assert_eq!(q.task_done(), Err(greenlet::QueueError::TooManyTaskDone));
    /// ```
    pub fn task_done(&self) -> std::result::Result<(), QueueError<T>> {
        self.queue.core.task_done()
    }

    /// Wait until every task put so far is marked done.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`] when nothing could ever finish the remaining tasks;
    /// [`Error::Timeout`] from an enclosing [`Timeout`](crate::Timeout).
    ///
    /// ```
    /// let q = greenlet::JoinableQueue::unbounded();
    /// q.put(1).unwrap();
    /// let worker = {
    ///     let q = q.clone();
    ///     greenlet::spawn(move || {
    ///         q.get().unwrap();
    ///         q.task_done().unwrap();
    ///     })
    /// };
    /// q.join().unwrap();
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// # worker.join().unwrap();
    /// ```
    pub fn join(&self) -> Result<()> {
        self.queue.core.join(None).map(|_| ())
    }

    /// Like [`join`](JoinableQueue::join), waiting at most `timeout`; returns whether every
    /// task is done.
    ///
    /// ```
    /// use std::time::Duration;
    /// let q = greenlet::JoinableQueue::unbounded();
    /// q.put(1).unwrap();
    /// assert!(!q.join_timeout(Duration::from_millis(5)).unwrap());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> Result<bool> {
        self.queue.core.join(Some(timeout))
    }

    /// The number of tasks put and not yet marked done.
    ///
    /// ```
    /// let q = greenlet::JoinableQueue::unbounded();
    /// q.put(()).unwrap();
    /// q.put(()).unwrap();
    /// assert_eq!(q.unfinished_tasks(), 2);
    /// ```
    pub fn unfinished_tasks(&self) -> usize {
        self.queue.core.unfinished.get()
    }

    /// Shut the queue down and discard the queued items, counting them as done (so
    /// [`join`](JoinableQueue::join) returns once the tasks already taken are done). Gets
    /// fail with [`QueueError::Shutdown`] at once.
    ///
    /// ```
    /// let q = greenlet::JoinableQueue::unbounded();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// q.shutdown_immediate();
    /// assert_eq!(q.get(), Err(greenlet::QueueError::Shutdown));
    /// assert_eq!(q.unfinished_tasks(), 0);
    /// q.join().unwrap();
    /// ```
    pub fn shutdown_immediate(&self) {
        self.queue.core.shutdown(true);
    }
}

impl<T> fmt::Debug for JoinableQueue<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_core("JoinableQueue", &self.queue.core, f)
    }
}

/// A queue without a buffer (a rendezvous): [`put`](Channel::put) returns only once a getter
/// has taken the item — at once if a getter was already waiting, otherwise when one comes.
/// Clones share the channel; `!Send`.
///
/// ```
/// use greenlet::{spawn, Channel};
/// use std::{cell::RefCell, rc::Rc};
///
/// let ch = Channel::new();
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let sender = {
///     let (ch, log) = (ch.clone(), log.clone());
///     spawn(move || {
///         ch.put("hello").unwrap();
///         log.borrow_mut().push("put returned");
///     })
/// };
/// greenlet::yield_now().unwrap(); // the sender blocks: nobody has taken the item yet
/// assert!(log.borrow().is_empty());
/// assert_eq!(ch.get(), Ok("hello"));
/// sender.join().unwrap();
/// assert_eq!(*log.borrow(), ["put returned"]);
/// ```
pub struct Channel<T> {
    core: Rc<Core<T>>,
}

impl<T> Clone for Channel<T> {
    fn clone(&self) -> Self {
        Channel {
            core: self.core.clone(),
        }
    }
}

impl<T> Default for Channel<T> {
    fn default() -> Self {
        Channel::new()
    }
}

impl<T> Channel<T> {
    /// A new channel.
    ///
    /// ```
    /// let ch: greenlet::Channel<u8> = greenlet::Channel::new();
    /// assert_eq!(ch.getters(), 0);
    /// ```
    pub fn new() -> Channel<T> {
        Channel {
            core: Core::new(Some(0)),
        }
    }

    /// Hand `item` to a getter, waiting (behind earlier putters) until one takes it.
    ///
    /// # Errors
    /// [`QueueError::Wait`] when waiting fails, for example [`Error::WouldBlockForever`] when
    /// no greenlet could ever get it; [`QueueError::Shutdown`] after
    /// [`shutdown`](Channel::shutdown). The item is dropped.
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// let c = ch.clone();
    /// let getter = greenlet::spawn(move || c.get());
    /// ch.put(7).unwrap();
    /// assert_eq!(getter.join().unwrap(), Ok(7));
    /// ```
    pub fn put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::Block(None))
    }

    /// Like [`put`](Channel::put), waiting at most `timeout`; then [`QueueError::Full`] hands
    /// the item back.
    ///
    /// ```
    /// use std::time::Duration;
    /// let ch = greenlet::Channel::new();
    /// assert_eq!(ch.put_timeout(1, Duration::from_millis(5)), Err(greenlet::QueueError::Full(1)));
    /// ```
    pub fn put_timeout(
        &self,
        item: T,
        timeout: Duration,
    ) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::Block(Some(timeout)))
    }

    /// Hand `item` to a getter that is already waiting; [`QueueError::Full`] (with the item)
    /// if none is.
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// assert!(ch.try_put(1).is_err());
    /// let c = ch.clone();
    /// let getter = greenlet::spawn(move || c.get());
    /// greenlet::yield_now().unwrap(); // the getter is now waiting
    /// assert!(ch.try_put(2).is_ok());
    /// assert_eq!(getter.join().unwrap(), Ok(2));
    /// ```
    pub fn try_put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
        self.core.put(item, Mode::NoWait)
    }

    /// Take an item from the longest-waiting putter, waiting until one comes.
    ///
    /// # Errors
    /// [`QueueError::Wait`] when waiting fails (for example [`Error::WouldBlockForever`]);
    /// [`QueueError::Shutdown`] after [`shutdown`](Channel::shutdown).
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// let c = ch.clone();
    /// greenlet::spawn(move || c.put("item"));
    /// assert_eq!(ch.get(), Ok("item"));
    /// ```
    pub fn get(&self) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::Block(None))
    }

    /// Like [`get`](Channel::get), waiting at most `timeout` (then [`QueueError::Empty`]).
    ///
    /// ```
    /// use std::time::Duration;
    /// let ch: greenlet::Channel<u8> = greenlet::Channel::new();
    /// assert_eq!(ch.get_timeout(Duration::from_millis(5)), Err(greenlet::QueueError::Empty));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::Block(Some(timeout)))
    }

    /// Take an item from a putter that is already waiting; [`QueueError::Empty`] if none is.
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// assert!(ch.try_get().is_err());
    /// let c = ch.clone();
    /// let putter = greenlet::spawn(move || c.put(3));
    /// greenlet::yield_now().unwrap(); // the putter is now waiting
    /// assert_eq!(ch.try_get(), Ok(3));
    /// putter.join().unwrap().unwrap();
    /// ```
    pub fn try_get(&self) -> std::result::Result<T, QueueError<T>> {
        self.core.get(Mode::NoWait)
    }

    /// How many greenlets are blocked in `get`.
    ///
    /// ```
    /// let ch: greenlet::Channel<u8> = greenlet::Channel::new();
    /// let c = ch.clone();
    /// let g = greenlet::spawn(move || c.get());
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(ch.getters(), 1);
    /// ch.put(1).unwrap();
    /// # g.join().unwrap().unwrap();
    /// ```
    pub fn getters(&self) -> usize {
        self.core.getters.len()
    }

    /// How many greenlets are blocked in `put`.
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// let c = ch.clone();
    /// let g = greenlet::spawn(move || c.put(1));
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(ch.putters(), 1);
    /// ch.get().unwrap();
    /// # g.join().unwrap().unwrap();
    /// ```
    pub fn putters(&self) -> usize {
        self.core.putters.len()
    }

    /// Shut the channel down: blocked and later puts and gets fail with
    /// [`QueueError::Shutdown`].
    ///
    /// ```
    /// let ch = greenlet::Channel::new();
    /// ch.shutdown();
    /// assert_eq!(ch.put(1), Err(greenlet::QueueError::Shutdown));
    /// ```
    pub fn shutdown(&self) {
        self.core.shutdown(false);
    }
}

impl<T> fmt::Debug for Channel<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_core("Channel", &self.core, f)
    }
}
