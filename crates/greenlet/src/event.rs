//! One-shot notifications between greenlets: [`Event`] (a flag many can wait for) and
//! [`AsyncResult`] (a value or error that can also be delivered from another OS thread).
//!
//! ```
//! use greenlet::{spawn, Event};
//! let ready = Event::new();
//! let r = ready.clone();
//! let waiter = spawn(move || r.wait().map(|_| "woken"));
//! greenlet::yield_now().unwrap();
//! ready.set();
//! assert_eq!(waiter.join().unwrap().unwrap(), "woken");
//! ```

#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::hub::{self, Waiter, Waker};
use ev_loop::{Async, AsyncSender};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The greenlets waiting for an [`Event`] or an [`AsyncResult`], in order.
///
/// A wait that ends otherwise than by a wake-up (a timeout, a kill) takes its entry out. At the
/// front or the back that is immediate; elsewhere the list is only swept, of every entry whose
/// greenlet no longer waits for it ([`Waker::is_waiting`]), once such removals add up to
/// half its length: killing the N waiters of one event costs O(N), not O(N²). An entry left
/// until then is harmless: waking it does nothing.
#[derive(Default)]
struct WaiterList {
    tokens: VecDeque<Waker>,
    /// Removals since the last sweep that were not at either end.
    removals: usize,
}

impl WaiterList {
    fn push(&mut self, token: Waker) {
        self.tokens.push_back(token);
    }

    /// Take out the entry of the wait with `serial`, which has ended (see the type's docs).
    fn remove(&mut self, serial: u64) {
        if self.tokens.back().is_some_and(|t| t.serial == serial) {
            self.tokens.pop_back();
        } else if self.tokens.front().is_some_and(|t| t.serial == serial) {
            self.tokens.pop_front();
        } else {
            self.removals += 1;
            if self.removals * 2 > self.tokens.len() {
                self.tokens.retain(|t| t.is_waiting());
                self.removals = 0;
            }
        }
    }

    /// Whether no entry is left (a swept list; entries of ended waits may remain until the
    /// next sweep).
    fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// Greenlets that still wait (for introspection: a walk over the list).
    fn waiting(&self) -> usize {
        self.tokens.iter().filter(|t| t.is_waiting()).count()
    }

    fn pop_front(&mut self) -> Option<Waker> {
        self.tokens.pop_front()
    }
}

/// Wake every greenlet in `waiters`, in order.
fn wake_all(waiters: &RefCell<WaiterList>) {
    // Popped one at a time rather than taking the whole queue, so that its buffer stays for
    // the next waiters (an allocation per wait otherwise). Only those waiting now: waking just
    // queues them, so none can register again before this returns.
    let n = waiters.borrow().tokens.len();
    for _ in 0..n {
        let next = waiters.borrow_mut().pop_front();
        match next {
            Some(w) => {
                w.wake();
            }
            None => break,
        }
    }
}

/// What keeps a list of waiting greenlets (see [`Registered`]).
trait Waiters {
    fn remove_waiter(&self, serial: u64);
}

impl Waiters for Event {
    fn remove_waiter(&self, serial: u64) {
        Event::remove_waiter(self, serial);
    }
}

impl<T: 'static, E: 'static> Waiters for AsyncResult<T, E> {
    fn remove_waiter(&self, serial: u64) {
        AsyncResult::remove_waiter(self, serial);
    }
}

/// The waiter with serial `.1`, registered with `.0`: removed when dropped (a kill unwinding
/// the wait included), unless forgotten because it was taken off already. Only the serial is
/// kept, so forgetting the guard leaks nothing.
struct Registered<'a, W: Waiters>(&'a W, u64);

impl<W: Waiters> Drop for Registered<'_, W> {
    fn drop(&mut self) {
        self.0.remove_waiter(self.1);
    }
}

/// A flag that greenlets can wait for. Cloning gives another handle to the same event; `!Send`.
///
/// `set` wakes every waiter (in the order they started waiting); a waiter returns true if the
/// flag was set at any time during its wait, even if it was cleared again right away.
///
/// ```
/// let ev = greenlet::Event::new();
/// assert!(!ev.is_set());
/// ev.set();
/// assert!(ev.wait_timeout(std::time::Duration::ZERO).unwrap());
/// ```
#[derive(Clone, Default)]
pub struct Event {
    inner: Rc<EventInner>,
}

#[derive(Default)]
struct EventInner {
    flag: Cell<bool>,
    /// How many times `set` ran: tells `wait_any` of a set that was cleared again.
    sets: Cell<u64>,
    waiters: RefCell<WaiterList>,
}

impl Event {
    /// A new, unset event.
    ///
    /// ```
    /// assert!(!greenlet::Event::new().is_set());
    /// ```
    pub fn new() -> Event {
        Event::default()
    }

    /// Whether the flag is set.
    ///
    /// ```
    /// let e = greenlet::Event::new();
    /// e.set();
    /// assert!(e.is_set());
    /// ```
    pub fn is_set(&self) -> bool {
        self.inner.flag.get()
    }

    /// Set the flag and wake every waiter.
    ///
    /// ```
    /// let e = greenlet::Event::new();
    /// e.set();
    /// e.wait().unwrap();
    /// ```
    pub fn set(&self) {
        self.inner.flag.set(true);
        self.inner.sets.set(self.inner.sets.get().wrapping_add(1));
        wake_all(&self.inner.waiters);
    }

    /// Clear the flag.
    ///
    /// ```
    /// let e = greenlet::Event::new();
    /// e.set();
    /// e.clear();
    /// assert!(!e.is_set());
    /// ```
    pub fn clear(&self) {
        self.inner.flag.set(false);
    }

    /// How many times `set` ran (see `wait_any`).
    pub(crate) fn sets(&self) -> u64 {
        self.inner.sets.get()
    }

    /// Have `token` woken by the next `set` (see `wait_any`).
    pub(crate) fn add_waiter(&self, token: &Waker) {
        self.inner.waiters.borrow_mut().push(token.clone());
    }

    /// Undo [`add_waiter`](Event::add_waiter) for the waiter with `serial`.
    pub(crate) fn remove_waiter(&self, serial: u64) {
        self.inner.waiters.borrow_mut().remove(serial);
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<bool> {
        if self.inner.flag.get() {
            return Ok(true);
        }
        let w = Waiter::new("Event")?;
        let token = w.waker();
        self.add_waiter(&token);
        // Removes the entry however the wait ends, also when a kill unwinds it.
        let entry = Registered(self, token.serial);
        // `wait_for`: the call's own timeout is `Ok(false)`, an enclosing `Timeout`'s an error.
        let woken = w.wait_for(timeout)?;
        if woken {
            // `set` took the entry off the list already.
            std::mem::forget(entry);
        }
        Ok(woken)
    }

    /// Wait until the flag is set.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`] if nothing can ever set it; [`Error::Timeout`] from an
    /// enclosing [`Timeout`](crate::Timeout).
    ///
    /// ```
    /// let e = greenlet::Event::new();
    /// let s = e.clone();
    /// greenlet::spawn(move || s.set());
    /// e.wait().unwrap();
    /// ```
    pub fn wait(&self) -> Result<()> {
        self.wait_inner(None).map(|_| ())
    }

    /// Wait at most `timeout`; returns whether the flag was set (`false`: the timeout
    /// expired).
    ///
    /// # Errors
    /// As [`wait`](Event::wait): an enclosing [`Timeout`](crate::Timeout) that expires first
    /// is its error, not this call's `false`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let e = greenlet::Event::new();
    /// let keep = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(50)));
    /// assert!(!e.wait_timeout(Duration::from_millis(5)).unwrap());
    /// # keep.kill();
    /// ```
    pub fn wait_timeout(&self, timeout: Duration) -> Result<bool> {
        self.wait_inner(Some(timeout))
    }
}

impl fmt::Debug for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("waiters", &self.inner.waiters.borrow().waiting())
            .finish()
    }
}

/// Why [`AsyncResult::get`] returned no value.
///
/// ```
/// let r: greenlet::AsyncResult<u8, &str> = greenlet::AsyncResult::new();
/// r.set_error("nope");
/// assert!(matches!(r.get(), Err(greenlet::AsyncError::Failed("nope"))));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AsyncError<E> {
    /// The result was set to this error.
    Failed(E),
    /// Waiting failed (timeout, would block forever, …).
    Wait(Error),
}

impl<E: fmt::Display> fmt::Display for AsyncError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AsyncError::Failed(e) => write!(f, "{e}"),
            AsyncError::Wait(e) => write!(f, "{e}"),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for AsyncError<E> {}

struct Shared<T, E> {
    value: Mutex<Option<std::result::Result<T, E>>>,
    /// Live `AsyncSetter`s: while there are any, a waiter keeps the loop alive.
    setters: AtomicUsize,
}

/// A value (or error) that is delivered once, possibly from another OS thread, and that
/// greenlets wait for (gevent's `AsyncResult`). Cloning gives another handle; `!Send`. Use
/// [`setter`](AsyncResult::setter) for a `Send` handle that other threads set it through.
///
/// ```
/// use greenlet::AsyncResult;
/// let r: AsyncResult<u32> = AsyncResult::new();
/// let setter = r.setter();
/// std::thread::spawn(move || setter.set(42));
/// assert_eq!(r.get().unwrap(), 42); // the hub sleeps until the other thread delivers
/// ```
pub struct AsyncResult<T, E = String> {
    shared: Arc<Shared<T, E>>,
    local: Rc<Local>,
}

struct Local {
    waiters: RefCell<WaiterList>,
    /// Woken by setters on other threads.
    watcher: Async,
}

impl<T, E> Clone for AsyncResult<T, E> {
    fn clone(&self) -> Self {
        AsyncResult {
            shared: self.shared.clone(),
            local: self.local.clone(),
        }
    }
}

impl<T: 'static, E: 'static> Default for AsyncResult<T, E> {
    fn default() -> Self {
        AsyncResult::new()
    }
}

impl<T: 'static, E: 'static> AsyncResult<T, E> {
    /// A new, empty result bound to the current thread's hub.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<()> = greenlet::AsyncResult::new();
    /// assert!(!r.is_ready());
    /// ```
    pub fn new() -> AsyncResult<T, E> {
        let h = hub::hub();
        let local = Rc::new_cyclic(|weak: &std::rc::Weak<Local>| {
            let weak = weak.clone();
            let watcher = Async::new(&h.lp, move |w, _| {
                // A setter on another thread delivered a value or went away: wake the waiters
                // so they look again, and stop holding the loop.
                w.stop();
                if let Some(local) = weak.upgrade() {
                    wake_all(&local.waiters);
                }
            });
            Local {
                waiters: RefCell::new(WaiterList::default()),
                watcher,
            }
        });
        AsyncResult {
            shared: Arc::new(Shared {
                value: Mutex::new(None),
                setters: AtomicUsize::new(0),
            }),
            local,
        }
    }

    fn store(&self, v: std::result::Result<T, E>) -> bool {
        let mut slot = self.shared.value.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(v);
        drop(slot);
        wake_all(&self.local.waiters);
        true
    }

    /// Deliver the value and wake every waiter. Returns false (and drops `value`) if a value
    /// or error was already set: a result is set once.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// assert!(r.set(1));
    /// assert!(!r.set(2));
    /// assert_eq!(r.get().unwrap(), 1);
    /// ```
    pub fn set(&self, value: T) -> bool {
        self.store(Ok(value))
    }

    /// Deliver an error instead of a value.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// r.set_error("failed".to_string());
    /// assert!(r.get().is_err());
    /// ```
    pub fn set_error(&self, error: E) -> bool {
        self.store(Err(error))
    }

    /// Whether a value or error has been delivered.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// r.set(0);
    /// assert!(r.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.shared
            .value
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some()
    }

    /// Have `token` woken when the result is delivered, or when a setter on another thread
    /// goes away (a spurious wake-up: look again). See `wait_any`.
    pub(crate) fn add_waiter(&self, token: &Waker) {
        self.local.waiters.borrow_mut().push(token.clone());
        // Counted once, before the look at the value: a setter delivers before it goes away,
        // so when none is left here, the look below sees what it delivered.
        let setters = self.shared.setters.load(Ordering::Acquire);
        if setters > 0 {
            // Another thread may still deliver: keep the loop alive for it.
            self.local.watcher.start();
        }
        // Look again now that we are registered and the watcher is armed: a setter on
        // another thread may have delivered, or gone away, in between (and a send made
        // before the watcher started is not remembered by libev).
        if self.is_ready() {
            token.wake();
        } else if setters == 0 {
            // Nobody on another thread can deliver any more: do not hold the loop.
            self.local.watcher.stop();
        }
    }

    /// Undo [`add_waiter`](AsyncResult::add_waiter) for the waiter with `serial`; the last
    /// waiter gone, the loop is no longer held for setters on other threads.
    pub(crate) fn remove_waiter(&self, serial: u64) {
        let idle = {
            let mut waiters = self.local.waiters.borrow_mut();
            waiters.remove(serial);
            waiters.is_empty()
        };
        if idle {
            self.local.watcher.stop();
        }
    }

    fn wait_inner(&self, timeout: Option<Duration>) -> Result<bool> {
        let deadline = timeout.map(crate::timeout::deadline_after);
        loop {
            if self.is_ready() {
                return Ok(true);
            }
            let left = deadline.map(|d| d.saturating_duration_since(std::time::Instant::now()));
            let w = Waiter::new("AsyncResult")?;
            let token = w.waker();
            self.add_waiter(&token);
            // Removed however the wait ends, also when a kill unwinds it.
            let entry = Registered(self, token.serial);
            let r = w.wait_for(left);
            drop(entry);
            match r {
                Ok(true) if self.is_ready() => return Ok(true),
                // Woken because a setter went away, or spuriously: look again.
                Ok(true) => {}
                // The call's own timeout (an enclosing `Timeout`'s is an error).
                Ok(false) => return Ok(self.is_ready()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Wait (at most `timeout`, if given) until a value or error is delivered; returns whether
    /// one was.
    ///
    /// # Errors
    /// [`Error::WouldBlockForever`] when nothing could deliver it any more; an enclosing
    /// [`Timeout`](crate::Timeout)'s expiry ([`Error::Timeout`]), which is not this call's
    /// `false`.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// let keep = greenlet::spawn(|| greenlet::sleep(std::time::Duration::from_millis(50)));
    /// assert!(!r.wait(Some(std::time::Duration::from_millis(1))).unwrap());
    /// # keep.kill();
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_inner(timeout)
    }

    /// A `Send + Sync` handle that delivers the result from any thread (waking this hub).
    ///
    /// ```
    /// let r: greenlet::AsyncResult<String> = greenlet::AsyncResult::new();
    /// let s = r.setter();
    /// std::thread::spawn(move || s.set("from a thread".into())).join().unwrap();
    /// assert_eq!(r.get().unwrap(), "from a thread");
    /// ```
    pub fn setter(&self) -> AsyncSetter<T, E> {
        self.shared.setters.fetch_add(1, Ordering::AcqRel);
        if !self.local.waiters.borrow().is_empty() {
            // Greenlets wait already (with the watcher stopped if no setter was left): this
            // setter's delivery must reach them.
            self.local.watcher.start();
        }
        AsyncSetter {
            shared: self.shared.clone(),
            wake: self.local.watcher.sender(),
        }
    }
}

impl<T: Clone + 'static, E: Clone + 'static> AsyncResult<T, E> {
    /// Wait for the result and return a copy of it.
    ///
    /// # Errors
    /// [`AsyncError::Failed`] with the delivered error; [`AsyncError::Wait`] when waiting
    /// fails (no setter left and nothing else running: [`Error::WouldBlockForever`]).
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// assert!(matches!(r.get(), Err(greenlet::AsyncError::Wait(greenlet::Error::WouldBlockForever))));
    /// ```
    pub fn get(&self) -> std::result::Result<T, AsyncError<E>> {
        self.get_inner(None)
    }

    /// Like [`get`](AsyncResult::get), waiting at most `timeout`.
    ///
    /// ```
    /// use std::time::Duration;
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// let _s = r.setter(); // a setter exists, so the wait is a real wait
    /// assert!(matches!(r.get_timeout(Duration::from_millis(5)), Err(greenlet::AsyncError::Wait(e)) if e.is_timeout()));
    /// ```
    pub fn get_timeout(&self, timeout: Duration) -> std::result::Result<T, AsyncError<E>> {
        self.get_inner(Some(timeout))
    }

    fn get_inner(&self, timeout: Option<Duration>) -> std::result::Result<T, AsyncError<E>> {
        match self.wait_inner(timeout) {
            Ok(true) => {}
            Ok(false) => {
                return Err(AsyncError::Wait(Error::Timeout(
                    crate::error::TimeoutId::OWN,
                )));
            }
            Err(e) => return Err(AsyncError::Wait(e)),
        }
        let slot = self.shared.value.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_ref().expect("ready") {
            Ok(v) => Ok(v.clone()),
            Err(e) => Err(AsyncError::Failed(e.clone())),
        }
    }
}

impl<T, E> fmt::Debug for AsyncResult<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ready = self
            .shared
            .value
            .lock()
            .map(|v| v.is_some())
            .unwrap_or(false);
        f.debug_struct("AsyncResult")
            .field("ready", &ready)
            .field("waiters", &self.local.waiters.borrow().waiting())
            .finish()
    }
}

/// Sets an [`AsyncResult`] from any thread. `Send + Sync` when `T` and `E` are `Send`.
///
/// ```
/// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
/// let s = r.setter();
/// std::thread::spawn(move || { s.set(9); }).join().unwrap();
/// assert_eq!(r.get().unwrap(), 9);
/// ```
pub struct AsyncSetter<T, E = String> {
    shared: Arc<Shared<T, E>>,
    wake: AsyncSender,
}

impl<T, E> AsyncSetter<T, E> {
    fn store(&self, v: std::result::Result<T, E>) -> bool {
        let mut slot = self.shared.value.lock().unwrap_or_else(|e| e.into_inner());
        if slot.is_some() {
            return false;
        }
        *slot = Some(v);
        drop(slot);
        self.wake.send();
        true
    }

    /// Deliver the value; returns false if one was already set.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8> = greenlet::AsyncResult::new();
    /// assert!(r.setter().set(1));
    /// ```
    pub fn set(&self, value: T) -> bool {
        self.store(Ok(value))
    }

    /// Deliver an error; returns false if a result was already set.
    ///
    /// ```
    /// let r: greenlet::AsyncResult<u8, u8> = greenlet::AsyncResult::new();
    /// assert!(r.setter().set_error(1));
    /// ```
    pub fn set_error(&self, error: E) -> bool {
        self.store(Err(error))
    }
}

impl<T, E> Clone for AsyncSetter<T, E> {
    fn clone(&self) -> Self {
        self.shared.setters.fetch_add(1, Ordering::AcqRel);
        AsyncSetter {
            shared: self.shared.clone(),
            wake: self.wake.clone(),
        }
    }
}

impl<T, E> Drop for AsyncSetter<T, E> {
    fn drop(&mut self) {
        if self.shared.setters.fetch_sub(1, Ordering::AcqRel) == 1 {
            // The last possible deliverer is gone: let the hub re-evaluate its waiters.
            self.wake.send();
        }
    }
}

impl<T, E> fmt::Debug for AsyncSetter<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncSetter").finish_non_exhaustive()
    }
}
