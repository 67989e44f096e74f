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

#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::waitlist::{WaitList, Woken};
use std::cell::{Cell, RefCell};
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, VecDeque};
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

/// The container of a queue's items: it alone decides the order they come out in.
trait Store<T>: Default {
    fn len(&self) -> usize;
    /// Add an item in its place.
    fn push(&mut self, item: T);
    /// Remove the next item.
    fn pop(&mut self) -> Option<T>;
    /// The next item.
    fn peek(&self) -> Option<&T>;
    /// Put back an item just popped, so that it is the next again.
    fn unpop(&mut self, item: T);
}

/// FIFO.
impl<T> Store<T> for VecDeque<T> {
    fn len(&self) -> usize {
        VecDeque::len(self)
    }
    fn push(&mut self, item: T) {
        self.push_back(item);
    }
    fn pop(&mut self) -> Option<T> {
        self.pop_front()
    }
    fn peek(&self) -> Option<&T> {
        self.front()
    }
    fn unpop(&mut self, item: T) {
        self.push_front(item);
    }
}

/// LIFO.
impl<T> Store<T> for Vec<T> {
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn push(&mut self, item: T) {
        Vec::push(self, item);
    }
    fn pop(&mut self) -> Option<T> {
        Vec::pop(self)
    }
    fn peek(&self) -> Option<&T> {
        self.last()
    }
    fn unpop(&mut self, item: T) {
        Vec::push(self, item);
    }
}

/// An item of a [`Heap`] and its sequence number, ordered by both (so equal items come out
/// in the order they were pushed).
struct Ranked<T> {
    item: T,
    seq: u64,
}

impl<T: Ord> PartialEq for Ranked<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T: Ord> Eq for Ranked<T> {}

impl<T: Ord> PartialOrd for Ranked<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T: Ord> Ord for Ranked<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.item.cmp(&other.item).then(self.seq.cmp(&other.seq))
    }
}

/// Smallest first, FIFO among equals.
struct Heap<T> {
    heap: BinaryHeap<Reverse<Ranked<T>>>,
    /// The sequence number of the next push; grows.
    back: u64,
    /// The sequence number of the next unpop; shrinks (below every push's).
    front: u64,
}

impl<T: Ord> Default for Heap<T> {
    fn default() -> Self {
        Heap {
            heap: BinaryHeap::new(),
            back: 1 << 63,
            front: (1 << 63) - 1,
        }
    }
}

impl<T: Ord> Store<T> for Heap<T> {
    fn len(&self) -> usize {
        self.heap.len()
    }
    fn push(&mut self, item: T) {
        let seq = self.back;
        self.back += 1;
        self.heap.push(Reverse(Ranked { item, seq }));
    }
    fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|Reverse(r)| r.item)
    }
    fn peek(&self) -> Option<&T> {
        self.heap.peek().map(|Reverse(r)| &r.item)
    }
    fn unpop(&mut self, item: T) {
        let seq = self.front;
        self.front -= 1;
        self.heap.push(Reverse(Ranked { item, seq }));
    }
}

/// The state shared by every queue type; `S` orders the items.
struct Core<T, S = VecDeque<T>> {
    /// `None`: unbounded; `Some(0)`: rendezvous (a channel).
    cap: Option<usize>,
    items: RefCell<S>,
    /// Blocked `peek` callers, notified whenever an item enters `items` (and at shutdown).
    peekers: WaitList,
    /// Blocked getters; a put hands its item into the entry.
    getters: WaitList<T>,
    /// Blocked putters; the entry holds the item they offer.
    putters: WaitList<T>,
    shutdown: Cell<bool>,
    /// Items put and not yet marked done (for `JoinableQueue`).
    unfinished: Cell<usize>,
    joiners: WaitList,
}

impl<T, S: Store<T>> Core<T, S> {
    fn new(cap: Option<usize>) -> Rc<Core<T, S>> {
        Rc::new(Core {
            cap,
            items: RefCell::new(S::default()),
            peekers: WaitList::new(),
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
            self.items.borrow_mut().push(item);
            self.accepted();
            self.peekers.notify_all();
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
        let first = self.items.borrow_mut().pop();
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
                self.items.borrow_mut().push(item);
                self.accepted();
                self.peekers.notify_all();
            }
        }
    }

    /// A getter that was handed `item` was killed before it could return it: pass it on to
    /// the next getter, or put it back at the head of the queue.
    fn restore(&self, item: T) {
        match self.getters.grant_next() {
            Some(getter) => getter.set_payload(item),
            None => {
                self.items.borrow_mut().unpop(item);
                self.peekers.notify_all();
            }
        }
    }

    /// A clone of the next item, waiting (as `mode` allows) while there is none.
    fn peek(&self, mode: Mode) -> std::result::Result<T, QueueError<T>>
    where
        T: Clone,
    {
        let deadline = match mode {
            Mode::Block(Some(t)) => Some(crate::timeout::deadline_after(t)),
            _ => None,
        };
        loop {
            let next = self.items.borrow().peek().cloned();
            if let Some(item) = next {
                return Ok(item);
            }
            if self.shutdown.get() {
                return Err(QueueError::Shutdown);
            }
            if matches!(mode, Mode::NoWait) {
                return Err(QueueError::Empty);
            }
            let remaining = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if remaining == Some(Duration::ZERO) {
                return Err(QueueError::Empty);
            }
            match self.peekers.wait("Queue.peek", remaining, None, |_| {}).0 {
                Woken::Granted | Woken::Notified => {}
                Woken::TimedOut => {
                    let next = self.items.borrow().peek().cloned();
                    return next.ok_or(QueueError::Empty);
                }
                Woken::Failed(e) => return Err(QueueError::Wait(e)),
            }
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
            S::default()
        };
        if discarded.len() > 0 {
            let left = self.unfinished.get().saturating_sub(discarded.len());
            self.unfinished.set(left);
            if left == 0 {
                self.joiners.notify_all();
            }
        }
        self.getters.notify_all();
        self.putters.notify_all();
        self.peekers.notify_all();
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

fn debug_core<T, S: Store<T>>(
    name: &str,
    core: &Core<T, S>,
    f: &mut fmt::Formatter<'_>,
) -> fmt::Result {
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

    /// A clone of the item [`get`](Queue::get) would return next, without removing it;
    /// waits while the queue is empty. Waiting peekers do not take part in the getters' FIFO
    /// order: an item put while a getter waits goes to that getter, and the peekers wait on.
    /// (A `bounded(0)` queue never holds an item, so there it waits until shutdown.)
    ///
    /// # Errors
    /// [`QueueError::Shutdown`] once the queue is shut down and empty; [`QueueError::Wait`]
    /// when waiting fails (for example [`Error::WouldBlockForever`]).
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// let producer = {
    ///     let q = q.clone();
    ///     greenlet::spawn(move || q.put("next").unwrap())
    /// };
    /// assert_eq!(q.peek(), Ok("next")); // waited for the producer
    /// assert_eq!(q.len(), 1); // and left the item queued
    /// assert_eq!(q.get(), Ok("next"));
    /// # producer.join().unwrap();
    /// ```
    pub fn peek(&self) -> std::result::Result<T, QueueError<T>>
    where
        T: Clone,
    {
        self.core.peek(Mode::Block(None))
    }

    /// Like [`peek`](Queue::peek), waiting at most `timeout`; then [`QueueError::Empty`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let q: greenlet::Queue<u8> = greenlet::Queue::unbounded();
    /// assert_eq!(q.peek_timeout(Duration::from_millis(5)), Err(greenlet::QueueError::Empty));
    /// ```
    pub fn peek_timeout(&self, timeout: Duration) -> std::result::Result<T, QueueError<T>>
    where
        T: Clone,
    {
        self.core.peek(Mode::Block(Some(timeout)))
    }

    /// A clone of the front item if there is one; [`QueueError::Empty`] otherwise.
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// assert_eq!(q.try_peek(), Err(greenlet::QueueError::Empty));
    /// q.put(1).unwrap();
    /// assert_eq!(q.try_peek(), Ok(1));
    /// assert_eq!(q.len(), 1);
    /// ```
    pub fn try_peek(&self) -> std::result::Result<T, QueueError<T>>
    where
        T: Clone,
    {
        self.core.peek(Mode::NoWait)
    }

    /// An iterator that [`get`](Queue::get)s items until the queue is shut down (and
    /// drained), as `&queue` does in a `for` loop. See [`QueueIter`].
    ///
    /// ```
    /// let q = greenlet::Queue::unbounded();
    /// q.put(1).unwrap();
    /// q.put(2).unwrap();
    /// q.shutdown();
    /// assert_eq!(q.iter().collect::<Vec<_>>(), [1, 2]);
    /// ```
    pub fn iter(&self) -> QueueIter<'_, T> {
        QueueIter::new(&self.core)
    }
}

/// `for item in &queue` gets items until the queue is shut down: see [`QueueIter`].
///
/// ```
/// let q = greenlet::Queue::unbounded();
/// let producer = {
///     let q = q.clone();
///     greenlet::spawn(move || {
///         for i in 0..3 {
///             q.put(i).unwrap();
///         }
///         q.shutdown();
///     })
/// };
/// let mut got = Vec::new();
/// for i in &q {
///     got.push(i);
/// }
/// assert_eq!(got, [0, 1, 2]);
/// # producer.join().unwrap();
/// ```
impl<'a, T> IntoIterator for &'a Queue<T> {
    type Item = T;
    type IntoIter = QueueIter<'a, T>;

    fn into_iter(self) -> QueueIter<'a, T> {
        self.iter()
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

/// Something that blocks for the next item (the core of any queue type).
trait Next<T> {
    fn next_item(&self) -> std::result::Result<T, QueueError<T>>;
}

impl<T, S: Store<T>> Next<T> for Rc<Core<T, S>> {
    fn next_item(&self) -> std::result::Result<T, QueueError<T>> {
        self.get(Mode::Block(None))
    }
}

/// The iterator of `&Queue` (and of the other queue types): each `next` is a blocking `get`.
///
/// It ends when a `get` fails: once the queue is [shut down](Queue::shutdown) and the items
/// left in it are taken, or when waiting fails ([`Error::WouldBlockForever`] when no
/// greenlet could ever put an item or shut the queue down, an enclosing
/// [`Timeout`](crate::Timeout)'s expiry). Call `get` yourself to tell these apart.
///
/// ```
/// let q = greenlet::LifoQueue::unbounded();
/// for i in 1..=3 {
///     q.put(i).unwrap();
/// }
/// q.shutdown();
/// let mut it = q.iter();
/// assert_eq!(it.next(), Some(3));
/// assert_eq!(it.collect::<Vec<_>>(), [2, 1]);
/// ```
pub struct QueueIter<'a, T> {
    core: &'a dyn Next<T>,
}

impl<'a, T> QueueIter<'a, T> {
    fn new<S: Store<T>>(core: &'a Rc<Core<T, S>>) -> QueueIter<'a, T> {
        QueueIter { core }
    }
}

impl<T> Iterator for QueueIter<'_, T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.core.next_item().ok()
    }
}

impl<T> fmt::Debug for QueueIter<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("QueueIter").finish_non_exhaustive()
    }
}

/// `for item in &queue`: see [`QueueIter`].
///
/// ```
/// let q = greenlet::JoinableQueue::unbounded();
/// q.put('a').unwrap();
/// q.shutdown();
/// assert_eq!((&q).into_iter().collect::<String>(), "a");
/// ```
impl<'a, T> IntoIterator for &'a JoinableQueue<T> {
    type Item = T;
    type IntoIter = QueueIter<'a, T>;

    fn into_iter(self) -> QueueIter<'a, T> {
        self.queue.iter()
    }
}

/// `for item in &channel` gets items until the channel is shut down: see [`QueueIter`].
///
/// ```
/// let ch = greenlet::Channel::new();
/// let sender = {
///     let ch = ch.clone();
///     greenlet::spawn(move || {
///         ch.put(1).unwrap();
///         ch.put(2).unwrap();
///         ch.shutdown();
///     })
/// };
/// assert_eq!((&ch).into_iter().sum::<i32>(), 3);
/// # sender.join().unwrap();
/// ```
impl<'a, T> IntoIterator for &'a Channel<T> {
    type Item = T;
    type IntoIter = QueueIter<'a, T>;

    fn into_iter(self) -> QueueIter<'a, T> {
        QueueIter::new(&self.core)
    }
}

/// `gevent.queue.SimpleQueue`: an unbounded FIFO queue without task accounting, which is
/// what [`Queue::unbounded`] already is (task counting lives in [`JoinableQueue`] only), so
/// this is the same type under gevent's name.
///
/// ```
/// let q: greenlet::SimpleQueue<&str> = greenlet::SimpleQueue::unbounded();
/// q.put("a").unwrap();
/// assert_eq!(q.get(), Ok("a"));
/// ```
pub type SimpleQueue<T> = Queue<T>;

/// The methods of a queue type that differs from [`Queue`] only in the order of its items
/// (`$store`). The doc examples use items for which every order agrees.
macro_rules! ordered_queue {
    ($Q:ident, $store:ident, $name:literal, [$($bound:tt)*]) => {
        impl<T> Clone for $Q<T> {
            fn clone(&self) -> Self {
                $Q {
                    core: self.core.clone(),
                }
            }
        }

        impl<T: $($bound)*> $Q<T> {
            #[doc = concat!("An unbounded `", $name, "`: `put` never waits.")]
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nfor i in 0..100 {\n    q.put(i).unwrap();\n}\nassert_eq!(q.len(), 100);\n```")]
            pub fn unbounded() -> $Q<T> {
                $Q {
                    core: Core::new(None),
                }
            }

            /// A queue that holds at most `capacity` items: further puts wait for a get (see
            /// [`Queue::bounded`]).
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::bounded(1);\nq.put(1).unwrap();\nassert!(q.is_full());\nassert_eq!(q.try_put(2).unwrap_err().into_inner(), Some(2));\n```")]
            pub fn bounded(capacity: usize) -> $Q<T> {
                $Q {
                    core: Core::new(Some(capacity)),
                }
            }

            /// Add an item, waiting (behind earlier putters) while the queue is full. Errors
            /// as [`Queue::put`].
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nq.put(1).unwrap();\nassert_eq!(q.get(), Ok(1));\n```")]
            pub fn put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
                self.core.put(item, Mode::Block(None))
            }

            /// Like [`put`](Self::put), waiting at most `timeout`; then
            /// [`QueueError::Full`] hands the item back.
            ///
            #[doc = concat!("```\nuse std::time::Duration;\nlet q = greenlet::", $name, "::bounded(1);\nq.put(1).unwrap();\nassert_eq!(q.put_timeout(2, Duration::from_millis(5)), Err(greenlet::QueueError::Full(2)));\n```")]
            pub fn put_timeout(
                &self,
                item: T,
                timeout: Duration,
            ) -> std::result::Result<(), QueueError<T>> {
                self.core.put(item, Mode::Block(Some(timeout)))
            }

            /// Add an item if that needs no waiting; [`QueueError::Full`] (with the item)
            /// otherwise.
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::bounded(1);\nassert!(q.try_put(1).is_ok());\nassert!(q.try_put(2).is_err());\n```")]
            pub fn try_put(&self, item: T) -> std::result::Result<(), QueueError<T>> {
                self.core.put(item, Mode::NoWait)
            }

            /// Remove and return the next item, waiting (behind earlier getters) while the
            /// queue is empty. Errors as [`Queue::get`].
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nlet c = q.clone();\nlet getter = greenlet::spawn(move || c.get());\nq.put(5).unwrap();\nassert_eq!(getter.join().unwrap(), Ok(5));\n```")]
            pub fn get(&self) -> std::result::Result<T, QueueError<T>> {
                self.core.get(Mode::Block(None))
            }

            /// Like [`get`](Self::get), waiting at most `timeout`; then
            /// [`QueueError::Empty`]. A getter whose timeout expired never takes an item put
            /// later.
            ///
            #[doc = concat!("```\nuse std::time::Duration;\nlet q: greenlet::", $name, "<u8> = greenlet::", $name, "::unbounded();\nassert_eq!(q.get_timeout(Duration::from_millis(5)), Err(greenlet::QueueError::Empty));\n```")]
            pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, QueueError<T>> {
                self.core.get(Mode::Block(Some(timeout)))
            }

            /// Take the next item if there is one; [`QueueError::Empty`] otherwise.
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nassert_eq!(q.try_get(), Err(greenlet::QueueError::Empty));\nq.put(3).unwrap();\nassert_eq!(q.try_get(), Ok(3));\n```")]
            pub fn try_get(&self) -> std::result::Result<T, QueueError<T>> {
                self.core.get(Mode::NoWait)
            }

            /// A clone of the item [`get`](Self::get) would return next, without removing it;
            /// waits while the queue is empty (see [`Queue::peek`]).
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nlet c = q.clone();\nlet producer = greenlet::spawn(move || c.put(7).unwrap());\nassert_eq!(q.peek(), Ok(7));\nassert_eq!(q.len(), 1);\n# producer.join().unwrap();\n```")]
            pub fn peek(&self) -> std::result::Result<T, QueueError<T>>
            where
                T: Clone,
            {
                self.core.peek(Mode::Block(None))
            }

            /// Like [`peek`](Self::peek), waiting at most `timeout`; then
            /// [`QueueError::Empty`].
            ///
            #[doc = concat!("```\nuse std::time::Duration;\nlet q: greenlet::", $name, "<u8> = greenlet::", $name, "::unbounded();\nassert_eq!(q.peek_timeout(Duration::from_millis(5)), Err(greenlet::QueueError::Empty));\n```")]
            pub fn peek_timeout(&self, timeout: Duration) -> std::result::Result<T, QueueError<T>>
            where
                T: Clone,
            {
                self.core.peek(Mode::Block(Some(timeout)))
            }

            /// A clone of the next item if there is one; [`QueueError::Empty`] otherwise.
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nassert!(q.try_peek().is_err());\nq.put(1).unwrap();\nassert_eq!(q.try_peek(), Ok(1));\n```")]
            pub fn try_peek(&self) -> std::result::Result<T, QueueError<T>>
            where
                T: Clone,
            {
                self.core.peek(Mode::NoWait)
            }

            /// The number of queued items.
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nq.put(1).unwrap();\nassert_eq!(q.len(), 1);\n```")]
            pub fn len(&self) -> usize {
                self.core.len()
            }

            /// Whether no items are queued.
            ///
            #[doc = concat!("```\nlet q: greenlet::", $name, "<u8> = greenlet::", $name, "::unbounded();\nassert!(q.is_empty());\n```")]
            pub fn is_empty(&self) -> bool {
                self.len() == 0
            }

            /// Whether a put would have to wait (always false when unbounded).
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::bounded(1);\nassert!(!q.is_full());\nq.put(1).unwrap();\nassert!(q.is_full());\n```")]
            pub fn is_full(&self) -> bool {
                !self.core.has_room()
            }

            /// The most items it holds: `None` when unbounded.
            ///
            #[doc = concat!("```\nassert_eq!(greenlet::", $name, "::<u8>::bounded(3).capacity(), Some(3));\n```")]
            pub fn capacity(&self) -> Option<usize> {
                self.core.cap
            }

            /// Shut the queue down (see [`Queue::shutdown`]): puts fail with
            /// [`QueueError::Shutdown`], gets return the items left, then fail with it.
            ///
            #[doc = concat!("```\nuse greenlet::QueueError;\nlet q = greenlet::", $name, "::unbounded();\nq.put(1).unwrap();\nq.shutdown();\nassert_eq!(q.put(2), Err(QueueError::Shutdown));\nassert_eq!(q.get(), Ok(1));\nassert_eq!(q.get(), Err(QueueError::Shutdown));\n```")]
            pub fn shutdown(&self) {
                self.core.shutdown(false);
            }

            /// Whether [`shutdown`](Self::shutdown) was called.
            ///
            #[doc = concat!("```\nlet q: greenlet::", $name, "<u8> = greenlet::", $name, "::unbounded();\nq.shutdown();\nassert!(q.is_shutdown());\n```")]
            pub fn is_shutdown(&self) -> bool {
                self.core.shutdown.get()
            }

            /// An iterator that [`get`](Self::get)s items until the queue is shut down (and
            /// drained), as `&queue` does in a `for` loop. See [`QueueIter`].
            ///
            #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nq.put(1).unwrap();\nq.shutdown();\nassert_eq!(q.iter().collect::<Vec<_>>(), [1]);\n```")]
            pub fn iter(&self) -> QueueIter<'_, T> {
                QueueIter::new(&self.core)
            }
        }

        /// `for item in &queue` gets items until the queue is shut down: see [`QueueIter`].
        ///
        #[doc = concat!("```\nlet q = greenlet::", $name, "::unbounded();\nq.put(2).unwrap();\nq.shutdown();\nlet mut n = 0;\nfor i in &q {\n    n += i;\n}\nassert_eq!(n, 2);\n```")]
        impl<'a, T: $($bound)*> IntoIterator for &'a $Q<T> {
            type Item = T;
            type IntoIter = QueueIter<'a, T>;

            fn into_iter(self) -> QueueIter<'a, T> {
                self.iter()
            }
        }

        impl<T: $($bound)*> fmt::Debug for $Q<T> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                debug_core($name, &self.core, f)
            }
        }
    };
}

/// A queue whose [`get`](PriorityQueue::get) returns the smallest item first
/// (`gevent.queue.PriorityQueue`); equal items come out in the order they were put. Otherwise
/// it is a [`Queue`]: unbounded or bounded, FIFO among blocked getters and putters, with
/// timeouts, peeking and shutdown. Clones share the queue; `!Send`.
///
/// Wrap items in [`std::cmp::Reverse`] for largest first, or use `(priority, item)` pairs.
///
/// ```
/// use greenlet::PriorityQueue;
/// let q = PriorityQueue::unbounded();
/// for (prio, job) in [(2, "c"), (1, "b"), (3, "d"), (1, "a")] {
///     q.put((prio, job)).unwrap();
/// }
/// let order: Vec<&str> = (0..4).map(|_| q.get().unwrap().1).collect();
/// assert_eq!(order, ["a", "b", "c", "d"]); // tuples compare by priority, then by job
/// ```
pub struct PriorityQueue<T> {
    core: Rc<Core<T, Heap<T>>>,
}

ordered_queue!(PriorityQueue, Heap, "PriorityQueue", [Ord]);

/// A queue whose [`get`](LifoQueue::get) returns the item put last (`gevent.queue.LifoQueue`,
/// a stack). Otherwise it is a [`Queue`]: unbounded or bounded, FIFO among blocked getters and
/// putters, with timeouts, peeking and shutdown. Clones share the queue; `!Send`.
///
/// ```
/// let q = greenlet::LifoQueue::unbounded();
/// for i in 1..=3 {
///     q.put(i).unwrap();
/// }
/// assert_eq!([q.get(), q.get(), q.get()], [Ok(3), Ok(2), Ok(1)]);
/// ```
pub struct LifoQueue<T> {
    core: Rc<Core<T, Vec<T>>>,
}

ordered_queue!(LifoQueue, Vec, "LifoQueue", []);
