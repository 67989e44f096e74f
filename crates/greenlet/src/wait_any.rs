//! Waiting for the first of several things (gevent's `wait` and `iwait` over objects): an
//! [`Event`], an [`AsyncResult`], a [`Greenlet`], a thread-pool [`BlockingTask`].
//!
//! [`wait_any`] returns the index of the first one that is ready; [`iwait`] yields the indices
//! in the order they become ready.
//!
//! ```
//! use greenlet::{Event, spawn, wait_any};
//! use std::time::Duration;
//!
//! let stop = Event::new();
//! let worker = spawn(|| greenlet::sleep(Duration::from_millis(5)).map(|_| "done"));
//! // Whichever comes first: the worker finishing or someone setting `stop`.
//! let first = wait_any(&[&worker, &stop], Some(Duration::from_secs(5))).unwrap();
//! assert_eq!(first, Some(0));
//! assert_eq!(worker.join().unwrap(), Ok("done"));
//! ```

#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::event::{AsyncResult, Event};
use crate::greenlet::Greenlet;
use crate::hub::{Waiter, Waker};
use crate::threadpool::BlockingTask;
use std::fmt;
use std::time::{Duration, Instant};

/// Something [`wait_any`] and [`iwait`] can wait for. Sealed: implemented by [`Event`] (set),
/// [`AsyncResult`] (delivered), [`Greenlet`] and [`ScopedGreenlet`](crate::ScopedGreenlet)
/// (finished) and [`BlockingTask`] (done).
///
/// ```
/// use greenlet::{Event, Waitable, spawn};
/// let e = Event::new();
/// let g = spawn(|| 1);
/// // Different kinds of things in one list.
/// let things: [&dyn Waitable; 2] = [&e, &g];
/// assert_eq!(greenlet::wait_any(&things, None).unwrap(), Some(1));
/// ```
pub trait Waitable: sealed::Subscribe {}

pub(crate) mod sealed {
    /// A waiter's wake-up token, in a type of this private module (the crate's own is not
    /// public).
    #[derive(Debug)]
    pub struct Token(pub(crate) crate::hub::Waker);

    /// How each waitable tells readiness and wakes a waiter; private, so the trait is sealed.
    pub trait Subscribe {
        /// Whether it is ready now.
        fn ready(&self) -> bool;
        /// Wake `token` once it is ready (possibly spuriously, never too late); returns a mark
        /// for [`fired`](Subscribe::fired).
        fn subscribe(&self, token: &Token) -> u64;
        /// Whether it is ready, or was made ready since `subscribe` returned `mark` (an event
        /// set and cleared again while the waiter waited to run).
        fn fired(&self, mark: u64) -> bool {
            let _ = mark;
            self.ready()
        }
        /// Forget `token` (woken or not).
        fn unsubscribe(&self, token: &Token);
        /// Whether it can only become ready once the caller has finished (the caller's own
        /// greenlet).
        fn is_caller(&self) -> bool {
            false
        }
    }
}

impl Waitable for Event {}
impl<T: 'static, E: 'static> Waitable for AsyncResult<T, E> {}
impl<T> Waitable for Greenlet<T> {}
impl<T> Waitable for crate::ScopedGreenlet<'_, T> {}
impl<T> Waitable for BlockingTask<T> {}

impl sealed::Subscribe for Event {
    fn ready(&self) -> bool {
        self.is_set()
    }

    fn subscribe(&self, token: &sealed::Token) -> u64 {
        self.add_waiter(&token.0);
        self.sets()
    }

    fn fired(&self, mark: u64) -> bool {
        self.is_set() || self.sets() != mark
    }

    fn unsubscribe(&self, token: &sealed::Token) {
        self.remove_waiter(token.0.serial);
    }
}

impl<T: 'static, E: 'static> sealed::Subscribe for AsyncResult<T, E> {
    fn ready(&self) -> bool {
        self.is_ready()
    }

    fn subscribe(&self, token: &sealed::Token) -> u64 {
        self.add_waiter(&token.0);
        0
    }

    fn unsubscribe(&self, token: &sealed::Token) {
        self.remove_waiter(token.0.serial);
    }
}

impl<T> sealed::Subscribe for Greenlet<T> {
    fn ready(&self) -> bool {
        self.is_dead()
    }

    fn is_caller(&self) -> bool {
        self.is_current()
    }

    fn subscribe(&self, token: &sealed::Token) -> u64 {
        self.add_waiter(&token.0);
        0
    }

    fn unsubscribe(&self, token: &sealed::Token) {
        self.remove_waiter(token.0.serial);
    }
}

impl<T> sealed::Subscribe for crate::ScopedGreenlet<'_, T> {
    fn ready(&self) -> bool {
        (**self).ready()
    }

    fn is_caller(&self) -> bool {
        (**self).is_caller()
    }

    fn subscribe(&self, token: &sealed::Token) -> u64 {
        (**self).subscribe(token)
    }

    fn unsubscribe(&self, token: &sealed::Token) {
        (**self).unsubscribe(token);
    }
}

impl<T> sealed::Subscribe for BlockingTask<T> {
    fn ready(&self) -> bool {
        self.is_done()
    }

    fn subscribe(&self, token: &sealed::Token) -> u64 {
        self.done_result().subscribe(token)
    }

    fn unsubscribe(&self, token: &sealed::Token) {
        self.done_result().unsubscribe(token);
    }
}

/// Wait until one of `objects` is ready, at most `timeout`; returns the index of the first
/// ready one (the lowest index when several are), or `None` when the timeout expired first.
/// An empty list returns `None` at once.
///
/// # Errors
/// [`Error::WouldBlockForever`] when nothing could make any of them ready;
/// [`Error::JoinSelf`] when the only thing to wait for is the calling greenlet itself;
/// [`Error::Timeout`] from an enclosing [`Timeout`](crate::Timeout); [`Error::BlockingInHub`]
/// in a hub callback.
///
/// ```
/// use greenlet::{AsyncResult, Event, wait_any};
/// let (a, b) = (Event::new(), AsyncResult::<u8>::new());
/// let setter = b.setter();
/// std::thread::spawn(move || setter.set(1)); // another thread delivers `b`
/// assert_eq!(wait_any(&[&a, &b], None).unwrap(), Some(1));
/// assert_eq!(wait_any(&[&a], Some(std::time::Duration::from_millis(1))).unwrap(), None);
/// ```
pub fn wait_any(objects: &[&dyn Waitable], timeout: Option<Duration>) -> Result<Option<usize>> {
    wait_any_until(objects, timeout.map(crate::timeout::deadline_after))
}

fn first_ready(objects: &[&dyn Waitable]) -> Option<usize> {
    objects.iter().position(|o| o.ready())
}

fn wait_any_until(objects: &[&dyn Waitable], deadline: Option<Instant>) -> Result<Option<usize>> {
    loop {
        if let Some(i) = first_ready(objects) {
            return Ok(Some(i));
        }
        if objects.is_empty() {
            return Ok(None);
        }
        if objects.iter().all(|o| o.is_caller()) {
            // Waiting for yourself to finish, like a join on yourself.
            return Err(Error::JoinSelf);
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        if left == Some(Duration::ZERO) {
            return Ok(None);
        }
        let w = Waiter::new("wait_any")?;
        let subscribed = Subscribed::new(objects, w.waker());
        let r = w.wait_for(left);
        let fired = subscribed.first_fired();
        drop(subscribed);
        match r {
            Ok(true) if fired.is_some() => return Ok(fired),
            // Woken without anything ready: look again (an `AsyncResult` whose setter went
            // away wakes without a value).
            Ok(true) => {}
            Ok(false) => return Ok(fired),
            Err(e) => return Err(e),
        }
    }
}

/// A token subscribed to every object, until dropped (also when a kill unwinds the wait).
struct Subscribed<'a, 'b> {
    objects: &'a [&'b dyn Waitable],
    token: sealed::Token,
    marks: Vec<u64>,
}

impl<'a, 'b> Subscribed<'a, 'b> {
    fn new(objects: &'a [&'b dyn Waitable], token: Waker) -> Subscribed<'a, 'b> {
        let token = sealed::Token(token);
        let marks = objects.iter().map(|o| o.subscribe(&token)).collect();
        Subscribed {
            objects,
            token,
            marks,
        }
    }

    /// The first object that is ready or was made ready during the wait.
    fn first_fired(&self) -> Option<usize> {
        (0..self.objects.len()).find(|&i| self.objects[i].fired(self.marks[i]))
    }
}

impl Drop for Subscribed<'_, '_> {
    fn drop(&mut self) {
        for o in self.objects {
            o.unsubscribe(&self.token);
        }
    }
}

/// Iterate over the indices of `objects` in the order they become ready while `next` waits;
/// those found ready when `next` is called (at the start, or made ready while the caller was
/// busy between two calls) come first, by index; the iteration ends when all have been yielded or when `timeout`,
/// for the whole iteration, has expired. A failed wait is yielded as an error, which ends
/// the iteration.
///
/// ```
/// use greenlet::{iwait, spawn, sleep};
/// use std::time::Duration;
/// let slow = spawn(|| sleep(Duration::from_millis(200)));
/// let fast = spawn(|| sleep(Duration::from_millis(1)));
/// let order: Vec<usize> = iwait(&[&slow, &fast], None).map(|r| r.unwrap()).collect();
/// assert_eq!(order, [1, 0]);
/// ```
pub fn iwait<'a>(objects: &'a [&'a dyn Waitable], timeout: Option<Duration>) -> Iwait<'a> {
    Iwait {
        objects,
        pending: (0..objects.len()).collect(),
        deadline: timeout.map(crate::timeout::deadline_after),
        ended: false,
    }
}

/// The iterator of [`iwait`].
///
/// ```
/// let (a, b) = (greenlet::Event::new(), greenlet::Event::new());
/// b.set();
/// let things: [&dyn greenlet::Waitable; 2] = [&a, &b];
/// let mut it = greenlet::iwait(&things, Some(std::time::Duration::from_millis(5)));
/// assert_eq!(it.next().map(Result::unwrap), Some(1));
/// assert!(it.next().is_none()); // `a` was never set: the timeout ended the iteration
/// ```
pub struct Iwait<'a> {
    objects: &'a [&'a dyn Waitable],
    /// Indices not yielded yet, in order.
    pending: Vec<usize>,
    deadline: Option<Instant>,
    ended: bool,
}

impl Iterator for Iwait<'_> {
    type Item = Result<usize>;

    fn next(&mut self) -> Option<Result<usize>> {
        if self.pending.is_empty() || self.ended {
            return None;
        }
        let left: Vec<&dyn Waitable> = self.pending.iter().map(|&i| self.objects[i]).collect();
        match wait_any_until(&left, self.deadline) {
            Ok(Some(k)) => Some(Ok(self.pending.remove(k))),
            Ok(None) => {
                // The timeout expired: the iteration is over.
                self.ended = true;
                None
            }
            Err(e) => {
                self.ended = true;
                Some(Err(e))
            }
        }
    }
}

impl std::iter::FusedIterator for Iwait<'_> {}

impl fmt::Debug for Iwait<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Iwait")
            .field("pending", &self.pending)
            .finish()
    }
}
