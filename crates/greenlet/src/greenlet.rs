//! Greenlets: spawning, joining, killing and linking, shaped like `std::thread`.
//!
//! ```
//! use greenlet::{joinall, sleep, spawn};
//! use std::time::Duration;
//!
//! let handles: Vec<_> = (1..=3u64)
//!     .map(|i| spawn(move || {
//!         sleep(Duration::from_millis(100 * (4 - i))).unwrap();
//!         i
//!     }))
//!     .collect();
//! // Finished in reverse order of spawning.
//! assert_eq!(joinall(&handles, None).unwrap(), vec![2, 1, 0]);
//! let values: Vec<u64> = handles.into_iter().map(|g| g.join().unwrap()).collect();
//! assert_eq!(values, [1, 2, 3]);
//! ```

use crate::error::{Error, JoinError, Result};
use crate::hub::{
    self, Body, Callback, GlCore, KillSignal, Link, Outcome as CoreOutcome, Reason, Waiter, Waker,
};
use crate::stack::{DEFAULT_STACK_SIZE, StackMode};
use ev_loop::Timer;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Options for a new greenlet, like `std::thread::Builder`.
///
/// ```
/// let g = greenlet::Builder::new()
///     .name("worker")
///     .stack_size(64 * 1024)
///     .spawn(|| greenlet::getcurrent_name())
///     .unwrap();
/// assert_eq!(g.join().unwrap(), "worker");
/// ```
#[derive(Debug, Clone, Default)]
pub struct Builder {
    name: Option<String>,
    stack_size: Option<usize>,
    stack_mode: Option<StackMode>,
}

impl Builder {
    /// Default options: an automatic name (`Greenlet-N`) and [`DEFAULT_STACK_SIZE`].
    ///
    /// ```
    /// let b = greenlet::Builder::new();
    /// # drop(b);
    /// ```
    pub fn new() -> Builder {
        Builder::default()
    }

    /// The greenlet's name, used in panic reports and [`run_info`](crate::run_info).
    ///
    /// ```
    /// let g = greenlet::Builder::new().name("named").spawn(|| ()).unwrap();
    /// assert_eq!(g.name(), "named");
    /// ```
    pub fn name(mut self, name: impl Into<String>) -> Builder {
        self.name = Some(name.into());
        self
    }

    /// The usable stack size in bytes (rounded up to whole pages; a guard page is added).
    ///
    /// ```
    /// let g = greenlet::Builder::new().stack_size(1 << 20).spawn(|| 1).unwrap();
    /// assert_eq!(g.join().unwrap(), 1);
    /// ```
    pub fn stack_size(mut self, bytes: usize) -> Builder {
        self.stack_size = Some(bytes);
        self
    }

    /// How the stack is allocated (default: the thread's default, see
    /// [`set_default_stack_mode`](crate::set_default_stack_mode)).
    ///
    /// ```
    /// use greenlet::{Builder, StackMode};
    /// let g = Builder::new().stack_mode(StackMode::Canary).spawn(|| 2).unwrap();
    /// assert_eq!(g.join().unwrap(), 2);
    /// ```
    pub fn stack_mode(mut self, mode: StackMode) -> Builder {
        self.stack_mode = Some(mode);
        self
    }

    /// Spawn a greenlet running `f`. It starts once the caller next yields to the hub (it
    /// never runs before the spawner blocks or yields).
    ///
    /// # Errors
    /// [`Error::Spawn`] when no stack can be allocated (for example when `vm.max_map_count`
    /// is exhausted); the message says what to change.
    ///
    /// ```
    /// let g = greenlet::Builder::new().spawn(|| 6 * 7).unwrap();
    /// assert_eq!(g.join().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(self, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let g = self.build(f)?;
        hub::with_hub(|h| h.push(Callback::Switch(g.core.clone(), Reason::Wake)));
        Ok(g)
    }

    /// Spawn a greenlet that starts after `delay` (gevent's `spawn_later`).
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let start = Instant::now();
    /// let g = greenlet::Builder::new()
    ///     .spawn_later(Duration::from_millis(20), move || start.elapsed())
    ///     .unwrap();
    /// assert!(g.join().unwrap() >= Duration::from_millis(19));
    /// ```
    #[track_caller]
    pub fn spawn_later<F, T>(self, delay: Duration, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        let g = self.build(f)?;
        schedule_later(&g.core, delay);
        Ok(g)
    }

    /// Create a greenlet running `f` without starting it (gevent's `Greenlet(f)` before
    /// `start()`): it runs once [`start`](UnstartedGreenlet::start)ed, or after a delay with
    /// [`start_later`](UnstartedGreenlet::start_later); dropped unstarted, it never runs and
    /// `f` is dropped.
    ///
    /// # Errors
    /// As [`spawn`](Builder::spawn).
    ///
    /// ```
    /// let u = greenlet::Builder::new().name("later").create(|| 6 * 7).unwrap();
    /// assert_eq!(u.name(), "later");
    /// let g = u.start();
    /// assert_eq!(g.join().unwrap(), 42);
    /// ```
    #[track_caller]
    pub fn create<F, T>(self, f: F) -> Result<UnstartedGreenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        Ok(UnstartedGreenlet {
            g: Some(self.build(f)?),
        })
    }

    /// Spawn a greenlet in `scope` (see [`scope`](crate::scope)): it may borrow anything that
    /// outlives the scope, which waits for it to finish.
    ///
    /// # Errors
    /// As [`spawn`](Builder::spawn).
    ///
    /// ```
    /// let text = String::from("borrowed");
    /// greenlet::scope(|s| {
    ///     let g = greenlet::Builder::new()
    ///         .name("reader")
    ///         .spawn_scoped(s, || text.len())
    ///         .unwrap();
    ///     assert_eq!(g.name(), "reader");
    ///     assert_eq!(g.join().unwrap(), 8);
    /// });
    /// ```
    #[track_caller]
    pub fn spawn_scoped<'scope, 'env, F, T>(
        self,
        scope: &'scope crate::scope::Scope<'scope, 'env>,
        f: F,
    ) -> Result<crate::scope::ScopedGreenlet<'scope, T>>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        // SAFETY: the greenlet is registered with `scope`, and `scope` (the function) does not
        // return, nor unwind, before every greenlet registered with it is dead (`join_all`);
        // see `create_unchecked` for why a dead greenlet holds nothing of `'scope`.
        let g = unsafe { self.create_unchecked(f)? };
        scope.adopt(g.core.clone());
        hub::with_hub(|h| h.push(Callback::Switch(g.core.clone(), Reason::Wake)));
        Ok(crate::scope::ScopedGreenlet::new(g))
    }

    #[track_caller]
    fn build<F, T>(self, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'static,
        T: 'static,
    {
        // SAFETY: `f` and `T` are `'static`: nothing can outlive what they borrow.
        unsafe { self.create_unchecked(f) }
    }

    /// [`build`](Builder::build) for an `f` and a `T` that may borrow.
    ///
    /// # Safety
    /// The greenlet must be dead before `'a` ends. The hub holds `f` (through the greenlet's
    /// body) only until the greenlet runs it or is killed before starting, and holds nothing
    /// of `T` once the greenlet is dead (its record lets go of the shared body and result when
    /// it runs or drops the body); so once the greenlet is dead nothing of `'a` is left in the
    /// hub.
    #[track_caller]
    unsafe fn create_unchecked<'a, F, T>(self, f: F) -> Result<Greenlet<T>>
    where
        F: FnOnce() -> T + 'a,
        T: 'a,
    {
        let location = panic::Location::caller();
        let h = hub::hub();
        let shared = Rc::new(Shared {
            stage: Cell::new(Stage::Body(f)),
        });
        let body: Rc<dyn Body + 'a> = shared.clone();
        let slot: Rc<dyn ResultSlot<T> + 'a> = shared;
        // The caller guarantees that the greenlet is dead before `'a` ends, and with it the
        // hub's `body`. The handle's `slot` may outlive `'a`, but by then it holds no `F` (a
        // dead greenlet's body was run or dropped, see `Stage`): only a result of type `T`,
        // whose lifetime the handle's type keeps.
        // SAFETY: only the lifetime bound of the trait objects changes (same layout); see above.
        let (body, slot) = unsafe {
            (
                std::mem::transmute::<Rc<dyn Body + 'a>, Rc<dyn Body + 'static>>(body),
                std::mem::transmute::<Rc<dyn ResultSlot<T> + 'a>, Rc<dyn ResultSlot<T> + 'static>>(
                    slot,
                ),
            )
        };
        let core = h.create_greenlet(
            self.name,
            self.stack_size.unwrap_or(DEFAULT_STACK_SIZE),
            self.stack_mode
                .unwrap_or_else(crate::stack::default_stack_mode),
            location,
            body,
        )?;
        Ok(Greenlet {
            core,
            slot,
            _not_send: PhantomData,
        })
    }
}

/// What a greenlet's record and its handles share, in one allocation: the body until the
/// greenlet runs it, then what it ended with.
struct Shared<F, T> {
    /// Only ever replaced whole (a `Cell`, not a `RefCell`: a word less per greenlet).
    stage: Cell<Stage<F, T>>,
}

enum Stage<F, T> {
    /// Not started yet.
    Body(F),
    /// Running (the body was moved to the greenlet's stack).
    Running,
    /// Finished: its value, or why there is none.
    Done(std::result::Result<T, JoinError>),
    /// The result was taken, or the body dropped unrun.
    Empty,
}

/// The typed side of [`Shared`], for the handles.
trait ResultSlot<T> {
    /// The result, if the greenlet finished and nobody took it yet.
    fn take(&self) -> Option<std::result::Result<T, JoinError>>;
}

impl<F, T> ResultSlot<T> for Shared<F, T> {
    fn take(&self) -> Option<std::result::Result<T, JoinError>> {
        match self.stage.replace(Stage::Empty) {
            Stage::Done(r) => Some(r),
            other => {
                self.stage.set(other);
                None
            }
        }
    }
}

impl<F: FnOnce() -> T, T> Body for Shared<F, T> {
    fn run(self: Rc<Self>) -> CoreOutcome {
        let f = match self.stage.replace(Stage::Running) {
            Stage::Body(f) => f,
            _ => unreachable!("a greenlet's body runs once"),
        };
        let result = panic::catch_unwind(AssertUnwindSafe(f));
        let (value, outcome) = match result {
            Ok(v) => (Ok(v), CoreOutcome::Success),
            Err(p) if p.is::<KillSignal>() => (Err(JoinError::Killed), CoreOutcome::Killed),
            Err(p) => {
                log::error!(
                    "greenlet {} panicked: {}",
                    crate::getcurrent_name(),
                    crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
                );
                (Err(JoinError::Panicked(p)), CoreOutcome::Panicked)
            }
        };
        self.stage.set(Stage::Done(value));
        // With every handle dropped, the value dies here; its destructor is user code and
        // must not unwind into the greenlet's entry (which cannot unwind).
        let dropped = panic::catch_unwind(AssertUnwindSafe(move || drop(self)));
        if let Err(p) = dropped {
            log::error!(
                "the result of a greenlet nobody joined panicked when dropped: {}",
                crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
            );
            crate::error::drop_payload(p);
        }
        outcome
    }

    fn discard(self: Rc<Self>) {
        let stage = self.stage.replace(Stage::Empty);
        // The body's destructor runs here, in the caller (it may block or panic).
        drop(stage);
    }
}

/// Queue the created greenlet `core` to start after `delay` (`spawn_later`, `start_later`).
fn schedule_later(core: &Rc<GlCore>, delay: Duration) {
    let h = hub::hub();
    h.lp.update_now();
    let c = core.clone();
    let slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let t = Timer::new(&h.lp, delay, Duration::ZERO, move |_, _| {
        if !c.is_dead() {
            hub::with_hub(|h| h.push(Callback::Switch(c.clone(), Reason::Wake)));
        }
        // The timer has done its job: free it (and this closure) once it returns.
        s.borrow_mut().take();
    });
    t.start();
    *slot.borrow_mut() = Some(t);
    // If the greenlet is killed before the timer fires, the timer must not keep the loop
    // alive: it goes with the greenlet's links.
    core.links.push(Link::Raw(Box::new(move || {
        slot.borrow_mut().take();
    })));
}

/// Wait until the greenlet `core` is dead: `Ok(false)` when `timeout` expired first (an
/// enclosing `Timeout` scope's expiry is an error).
pub(crate) fn wait_finished(core: &Rc<GlCore>, timeout: Option<Duration>) -> Result<bool> {
    if core.is_dead() {
        return Ok(true);
    }
    if Rc::ptr_eq(core, &hub::current()) {
        return Err(Error::JoinSelf);
    }
    let w = Waiter::new("join")?;
    core.links.push(Link::Wake(w.me.clone(), w.serial));
    w.wait_for(timeout).map(|woken| woken || core.is_dead())
}

/// Spawn a greenlet running `f` on the current thread's hub (see [`Builder::spawn`]).
///
/// # Panics
/// If no stack can be allocated; use [`Builder::spawn`] to handle that as an error.
///
/// ```
/// let g = greenlet::spawn(|| "done");
/// assert_eq!(g.join().unwrap(), "done");
/// ```
#[track_caller]
pub fn spawn<F, T>(f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn(f)
        .unwrap_or_else(|e| panic!("greenlet::spawn failed: {e}"))
}

/// Spawn a greenlet that starts after `delay`.
///
/// # Panics
/// If no stack can be allocated; use [`Builder::spawn_later`] to handle that as an error.
///
/// ```
/// let g = greenlet::spawn_later(std::time::Duration::from_millis(1), || 5);
/// assert_eq!(g.join().unwrap(), 5);
/// ```
#[track_caller]
pub fn spawn_later<F, T>(delay: Duration, f: F) -> Greenlet<T>
where
    F: FnOnce() -> T + 'static,
    T: 'static,
{
    Builder::new()
        .spawn_later(delay, f)
        .unwrap_or_else(|e| panic!("greenlet::spawn_later failed: {e}"))
}

/// A handle to a spawned greenlet; `!Send` (it belongs to its hub's thread).
///
/// Dropping the handle does not stop the greenlet (like `std::thread::JoinHandle`). Handles
/// are `Clone`; the value can be taken once.
///
/// ```
/// use greenlet::{sleep, spawn};
/// use std::time::Duration;
/// let g = spawn(|| sleep(Duration::from_millis(1)).map(|_| 7));
/// assert!(!g.is_ready());
/// assert_eq!(g.join().unwrap().unwrap(), 7);
/// ```
pub struct Greenlet<T> {
    pub(crate) core: Rc<GlCore>,
    slot: Rc<dyn ResultSlot<T>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> Greenlet<T> {
    /// The greenlet's name.
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert!(g.name().starts_with("Greenlet-"));
    /// ```
    pub fn name(&self) -> &str {
        self.core.name()
    }

    /// A number unique among this thread's greenlets.
    ///
    /// ```
    /// let (a, b) = (greenlet::spawn(|| ()), greenlet::spawn(|| ()));
    /// assert_ne!(a.id(), b.id());
    /// ```
    pub fn id(&self) -> u64 {
        self.core.id
    }

    /// An untyped handle to this greenlet, to [`unpark`](crate::park::GreenletRef::unpark) it
    /// or [`switch_to`](crate::park::switch_to) it.
    ///
    /// ```
    /// let g = greenlet::spawn(|| greenlet::park::park());
    /// greenlet::yield_now().unwrap(); // g parks
    /// g.handle().unpark();
    /// assert!(g.join().unwrap().is_ok());
    /// ```
    pub fn handle(&self) -> crate::park::GreenletRef {
        crate::park::GreenletRef::new(self.core.clone())
    }

    /// Whether the greenlet has finished (returned, panicked or was killed).
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert!(!g.is_dead());
    /// greenlet::yield_now().unwrap();
    /// assert!(g.is_dead());
    /// ```
    pub fn is_dead(&self) -> bool {
        self.core.is_dead()
    }

    /// Same as [`is_dead`](Greenlet::is_dead) (gevent's `ready()`).
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert!(!g.is_ready());
    /// ```
    pub fn is_ready(&self) -> bool {
        self.is_dead()
    }

    /// Whether the greenlet was started and has not finished: gevent's `started` (and
    /// `bool(g)`). True from the spawn on (or the [`start`](UnstartedGreenlet::start) of a
    /// created one, with a delay too), also before it first runs; false once it is dead.
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// assert!(g.is_started(), "scheduled, not run yet");
    /// g.wait(None).unwrap();
    /// assert!(!g.is_started());
    /// ```
    pub fn is_started(&self) -> bool {
        !self.core.is_dead()
    }

    /// Whether the greenlet finished cleanly: it returned, or it was killed (a kill is a
    /// requested exit, not a failure, as in gevent). False while running and after a panic.
    ///
    /// ```
    /// let ok = greenlet::spawn(|| 1);
    /// let bad = greenlet::spawn(|| panic!("no"));
    /// let killed = greenlet::spawn(|| 2);
    /// killed.kill();
    /// greenlet::yield_now().unwrap();
    /// assert!(ok.successful() && !bad.successful() && killed.successful());
    /// ```
    pub fn successful(&self) -> bool {
        matches!(
            self.core.outcome.get(),
            CoreOutcome::Success | CoreOutcome::Killed
        )
    }

    /// Whether the greenlet was killed.
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// g.kill();
    /// assert!(g.was_killed());
    /// ```
    pub fn was_killed(&self) -> bool {
        self.core.outcome.get() == CoreOutcome::Killed
    }

    /// Whether this is the greenlet that is running.
    pub(crate) fn is_current(&self) -> bool {
        Rc::ptr_eq(&self.core, &hub::current())
    }

    /// Have `token` woken when the greenlet finishes (see `wait_any`).
    pub(crate) fn add_waiter(&self, token: &Waker) {
        self.core
            .links
            .push(Link::Wake(token.g.clone(), token.serial));
    }

    /// Undo [`add_waiter`](Greenlet::add_waiter) for the waiter with `serial`.
    pub(crate) fn remove_waiter(&self, serial: u64) {
        let removed = self
            .core
            .links
            .remove(|l| matches!(l, Link::Wake(_, s) if *s == serial), true);
        drop(removed);
    }

    fn wait_dead(&self, timeout: Option<Duration>) -> Result<bool> {
        wait_finished(&self.core, timeout)
    }

    fn take(&self) -> std::result::Result<T, JoinError> {
        // Whatever it was: a scope need not report a panic that someone took (see `scope`).
        self.core.result_taken.set(true);
        match self.slot.take() {
            Some(r) => r,
            None if self.core.outcome.get() == CoreOutcome::Killed => Err(JoinError::Killed),
            None => Err(JoinError::AlreadyTaken),
        }
    }

    /// Wait for the greenlet to finish and return its value.
    ///
    /// # Errors
    /// [`JoinError::Panicked`] with the payload, [`JoinError::Killed`], or
    /// [`JoinError::Wait`] when the wait itself fails: joining yourself
    /// ([`Error::JoinSelf`]), nothing left that could finish it
    /// ([`Error::WouldBlockForever`]), an enclosing [`Timeout`](crate::Timeout).
    ///
    /// ```
    /// let g = greenlet::spawn(|| vec![1, 2, 3]);
    /// assert_eq!(g.join().unwrap(), [1, 2, 3]);
    /// ```
    pub fn join(self) -> std::result::Result<T, JoinError> {
        self.wait_dead(None)?;
        self.take()
    }

    /// Wait at most `timeout` for the greenlet to finish and take its value. On timeout the
    /// greenlet keeps running and the handle stays usable.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(30)));
    /// assert!(g.join_timeout(Duration::from_millis(1)).unwrap_err().is_timeout());
    /// assert!(g.join_timeout(Duration::from_secs(30)).unwrap().is_ok());
    /// ```
    pub fn join_timeout(&self, timeout: Duration) -> std::result::Result<T, JoinError> {
        if !self.wait_dead(Some(timeout))? {
            return Err(JoinError::Wait(Error::Timeout(
                crate::error::TimeoutId::OWN,
            )));
        }
        self.take()
    }

    /// Wait (at most `timeout`, if given) until the greenlet has finished, without taking its
    /// value. Returns whether it finished.
    ///
    /// ```
    /// let g = greenlet::spawn(|| 3);
    /// assert!(g.wait(None).unwrap());
    /// assert_eq!(g.join().unwrap(), 3);
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> Result<bool> {
        self.wait_dead(timeout)
    }

    /// Kill the greenlet and wait for it to die. Never fails and may be repeated.
    ///
    /// A greenlet that has not started never runs. A running greenlet is unwound from its
    /// current blocking call (its destructors run); its join result is
    /// [`JoinError::Killed`]. Killing the current greenlet unwinds it at once. From a hub
    /// callback the kill is only requested, not waited for.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// greenlet::yield_now().unwrap(); // let it start sleeping
    /// g.kill();
    /// assert!(g.is_dead() && g.was_killed());
    /// ```
    pub fn kill(&self) {
        self.kill_timeout(None);
    }

    /// Kill the greenlet and wait at most `timeout` (forever with `None`) for it to die.
    /// Returns whether it is dead.
    ///
    /// ```
    /// use std::time::Duration;
    /// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60)));
    /// assert!(g.kill_timeout(Some(Duration::from_secs(1))));
    /// ```
    pub fn kill_timeout(&self, timeout: Option<Duration>) -> bool {
        hub::request_kill(&self.core);
        if self.core.is_dead() || hub::current_is_hub() {
            return self.core.is_dead();
        }
        let _ = self.wait_dead(timeout);
        self.core.is_dead()
    }

    /// Run `f` in a new greenlet once this one has finished (at once if it already has).
    /// `f` runs exactly once, whatever the outcome, unless the link is removed first with
    /// [`unlink`](Greenlet::unlink).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(false));
    /// let s = seen.clone();
    /// let g = greenlet::spawn(|| 5);
    /// g.link(move || s.set(true));
    /// assert_eq!(g.join().unwrap(), 5);
    /// greenlet::yield_now().unwrap();
    /// assert!(seen.get());
    /// ```
    pub fn link(&self, f: impl FnOnce() + 'static) -> LinkHandle {
        self.link_if(|_| true, f)
    }

    /// Run `f` in a new greenlet once this one has returned a value (gevent's `link_value`);
    /// after a panic or a kill `f` is dropped without running. Exactly once, unless
    /// [unlinked](Greenlet::unlink) first.
    ///
    /// Unlike gevent, where a kill ends a greenlet with a `GreenletExit` *value*, a killed
    /// greenlet has no value here, so it fires [`link_exception`](Greenlet::link_exception)
    /// links, not these ([`successful`](Greenlet::successful) still counts a kill as clean).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(0));
    /// let (a, b) = (seen.clone(), seen.clone());
    /// let ok = greenlet::spawn(|| 1);
    /// let bad = greenlet::spawn(|| -> i32 { panic!("no") });
    /// ok.link_value(move || a.set(a.get() + 1));
    /// bad.link_value(move || b.set(b.get() + 10));
    /// greenlet::joinall(&[ok, bad], None).unwrap();
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(seen.get(), 1);
    /// ```
    pub fn link_value(&self, f: impl FnOnce() + 'static) -> LinkHandle {
        self.link_if(|o| o == CoreOutcome::Success, f)
    }

    /// Run `f` in a new greenlet once this one has panicked or been killed (gevent's
    /// `link_exception`); after a return `f` is dropped without running. Exactly once, unless
    /// [unlinked](Greenlet::unlink) first. See [`link_value`](Greenlet::link_value) for how a
    /// kill counts.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(0));
    /// let (a, b) = (seen.clone(), seen.clone());
    /// let ok = greenlet::spawn(|| ());
    /// let killed = greenlet::spawn(|| ());
    /// ok.link_exception(move || a.set(a.get() + 1));
    /// killed.link_exception(move || b.set(b.get() + 10));
    /// killed.kill();
    /// ok.join().unwrap();
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(seen.get(), 10);
    /// ```
    pub fn link_exception(&self, f: impl FnOnce() + 'static) -> LinkHandle {
        self.link_if(
            |o| matches!(o, CoreOutcome::Panicked | CoreOutcome::Killed),
            f,
        )
    }

    /// `link` for the outcomes `when` accepts.
    fn link_if(&self, when: fn(CoreOutcome) -> bool, f: impl FnOnce() + 'static) -> LinkHandle {
        if self.core.is_dead() {
            if when(self.core.outcome.get()) {
                spawn_link(self.core.name(), f);
            }
            return LinkHandle::fired(&self.core);
        }
        // Spawned from the finishing greenlet, as a raw link: the hub knows nothing of
        // `Builder`. A weak reference: the links are held by the greenlet's own record.
        let of = self.core.name().to_owned();
        let core = Rc::downgrade(&self.core);
        self.add_keyed(Box::new(move || {
            if core.upgrade().is_some_and(|c| when(c.outcome.get())) {
                spawn_link(&of, f);
            }
        }))
    }

    fn add_keyed(&self, f: Box<dyn FnOnce()>) -> LinkHandle {
        let key = NEXT_LINK_KEY.with(|k| {
            let key = k.get();
            k.set(key + 1);
            key
        });
        self.core.links.push(Link::Keyed(key, f));
        LinkHandle {
            core: self.core.clone(),
            key,
        }
    }

    /// Remove a link of this greenlet before it fires (gevent's `unlink`); its callback is
    /// dropped without running. Returns whether it was removed: false when it has fired (or is
    /// firing) already, when it was removed before, or when `handle` is another greenlet's.
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(false));
    /// let s = seen.clone();
    /// let g = greenlet::spawn(|| ());
    /// let h = g.rawlink(move || s.set(true));
    /// assert!(g.unlink(h));
    /// g.join().unwrap();
    /// assert!(!seen.get());
    /// ```
    pub fn unlink(&self, handle: LinkHandle) -> bool {
        Rc::ptr_eq(&self.core, &handle.core) && handle.unlink()
    }

    /// What the greenlet ended with, once it has finished; `None` while it has not (not
    /// started yet, or running). Its value, if any, stays for [`join`](Greenlet::join).
    ///
    /// ```
    /// use greenlet::Outcome;
    /// let g = greenlet::spawn(|| 3);
    /// assert_eq!(g.outcome(), None);
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(g.outcome(), Some(Outcome::Returned));
    /// assert_eq!(g.join().unwrap(), 3);
    /// ```
    pub fn outcome(&self) -> Option<Outcome> {
        match self.core.outcome.get() {
            CoreOutcome::Pending => None,
            CoreOutcome::Success => Some(Outcome::Returned),
            CoreOutcome::Panicked => Some(Outcome::Panicked),
            CoreOutcome::Killed => Some(Outcome::Killed),
        }
    }
}

thread_local! {
    /// The key of the next removable link (see `LinkHandle`); 0 is never handed out.
    static NEXT_LINK_KEY: std::cell::Cell<u64> = const { std::cell::Cell::new(1) };
}

/// Spawn a link callback `f` of the greenlet named `of`.
fn spawn_link(of: &str, f: impl FnOnce() + 'static) {
    if let Err(e) = Builder::new().name(format!("link of {of}")).spawn(f) {
        log::error!("cannot run a link callback of greenlet {of}: {e}");
    }
}

/// What a finished greenlet ended with ([`Greenlet::outcome`]).
///
/// ```
/// use greenlet::Outcome;
/// let g = greenlet::spawn(|| panic!("boom"));
/// greenlet::yield_now().unwrap();
/// assert_eq!(g.outcome(), Some(Outcome::Panicked));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// It returned a value (which [`Greenlet::join`] takes).
    Returned,
    /// It panicked.
    Panicked,
    /// It was killed (before it started, or unwound from a blocking call).
    Killed,
}

/// A link of a greenlet ([`Greenlet::link`], [`link_value`](Greenlet::link_value),
/// [`link_exception`](Greenlet::link_exception), [`rawlink`](Greenlet::rawlink)), to remove
/// it before it fires. Dropping the handle keeps the link.
///
/// ```
/// let g = greenlet::spawn(|| ());
/// let h = g.link(|| unreachable!("unlinked"));
/// assert!(h.unlink());
/// g.join().unwrap();
/// ```
pub struct LinkHandle {
    core: Rc<GlCore>,
    /// 0: fired already when made (the greenlet had finished).
    key: u64,
}

impl LinkHandle {
    fn fired(core: &Rc<GlCore>) -> LinkHandle {
        LinkHandle {
            core: core.clone(),
            key: 0,
        }
    }

    /// Remove the link before it fires: its callback is dropped without running. Returns
    /// whether it was removed (false once it has fired, or is firing: a link runs exactly once
    /// or not at all). Same as [`Greenlet::unlink`].
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// let h = g.rawlink(|| ());
    /// g.join().unwrap();
    /// assert!(!h.unlink()); // it ran
    /// ```
    pub fn unlink(self) -> bool {
        let mut removed = self
            .core
            .links
            .remove(|l| matches!(l, Link::Keyed(k, _) if *k == self.key), false);
        // Dropped once the list is back in place: the callback's captures are user code.
        removed.next().is_some()
    }
}

impl fmt::Debug for LinkHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LinkHandle")
            .field("greenlet", &self.core.id)
            .field("key", &self.key)
            .finish()
    }
}

/// Another handle to the same greenlet (its value can still be taken only once).
///
/// ```
/// let g = greenlet::spawn(|| 1);
/// let h = g.clone();
/// assert_eq!(g.join().unwrap(), 1);
/// assert!(h.is_dead());
/// assert!(matches!(h.join(), Err(greenlet::JoinError::AlreadyTaken)));
/// ```
impl<T> Clone for Greenlet<T> {
    fn clone(&self) -> Self {
        Greenlet {
            core: self.core.clone(),
            slot: self.slot.clone(),
            _not_send: PhantomData,
        }
    }
}

impl<T> Greenlet<T> {
    /// Run `f` right when the greenlet finishes, or now if it already has (gevent's
    /// `rawlink`): cheaper than [`link`](Greenlet::link), which spawns a greenlet for `f`,
    /// but `f` runs inside the finishing greenlet's last moments (or the caller, if finished):
    /// it must not block (blocking calls fail there) and should be short. Exactly once,
    /// unless removed first with [`unlink`](Greenlet::unlink).
    ///
    /// ```
    /// use std::{cell::Cell, rc::Rc};
    /// let seen = Rc::new(Cell::new(0));
    /// let s = seen.clone();
    /// let g = greenlet::spawn(|| 5);
    /// g.rawlink(move || s.set(s.get() + 1));
    /// assert_eq!(g.join().unwrap(), 5);
    /// assert_eq!(seen.get(), 1); // ran as the greenlet finished, exactly once
    /// ```
    pub fn rawlink(&self, f: impl FnOnce() + 'static) -> LinkHandle {
        if self.core.is_dead() {
            f();
            LinkHandle::fired(&self.core)
        } else {
            self.add_keyed(Box::new(f))
        }
    }
}

impl<T> fmt::Debug for Greenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Greenlet")
            .field("id", &self.core.id)
            .field("name", &self.core.name())
            .field("started", &self.core.started.get())
            .field("outcome", &self.core.outcome.get())
            .finish()
    }
}

/// Options for [`joinall_with`].
///
/// ```
/// let opts = greenlet::JoinAll::default().raise_error(true);
/// let _ = opts;
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct JoinAll {
    timeout: Option<Duration>,
    raise_error: bool,
}

impl JoinAll {
    /// Return early, with what finished so far, after `timeout`.
    ///
    /// ```
    /// let o = greenlet::JoinAll::default().timeout(std::time::Duration::from_secs(1));
    /// let _ = o;
    /// ```
    pub fn timeout(mut self, timeout: Duration) -> JoinAll {
        self.timeout = Some(timeout);
        self
    }

    /// Stop waiting at the first greenlet that did not finish successfully.
    ///
    /// ```
    /// let o = greenlet::JoinAll::default().raise_error(true);
    /// let _ = o;
    /// ```
    pub fn raise_error(mut self, yes: bool) -> JoinAll {
        self.raise_error = yes;
        self
    }
}

/// Wait until every greenlet has finished, or `timeout` passed. Returns the indices of those
/// that finished, in the order they finished (gevent's `joinall`).
///
/// # Errors
/// [`Error::JoinSelf`] when the calling greenlet is among `handles`; otherwise the wait's
/// errors (an enclosing [`Timeout`](crate::Timeout), nothing left that could finish them).
///
/// ```
/// use std::time::Duration;
/// let gs = vec![
///     greenlet::spawn(|| greenlet::sleep(Duration::from_secs(10))),
///     greenlet::spawn(|| Ok(())),
/// ];
/// let done = greenlet::joinall(&gs, Some(Duration::from_millis(20))).unwrap();
/// assert_eq!(done, vec![1]);
/// gs[0].kill();
/// ```
pub fn joinall<T>(handles: &[Greenlet<T>], timeout: Option<Duration>) -> Result<Vec<usize>> {
    let opts = JoinAll {
        timeout,
        ..JoinAll::default()
    };
    joinall_with(handles, opts)
}

/// [`joinall`] with options (stop at the first failure).
///
/// ```
/// let gs = vec![greenlet::spawn(|| panic!("x")), greenlet::spawn(|| ())];
/// let done = greenlet::joinall_with(&gs, greenlet::JoinAll::default().raise_error(true)).unwrap();
/// assert_eq!(done, vec![0]);
/// ```
pub fn joinall_with<T>(handles: &[Greenlet<T>], opts: JoinAll) -> Result<Vec<usize>> {
    // Waiting for yourself could never end (as for `Greenlet::join`).
    let me = hub::current();
    if handles
        .iter()
        .any(|g| !g.is_dead() && Rc::ptr_eq(&g.core, &me))
    {
        return Err(Error::JoinSelf);
    }
    drop(me);
    let deadline = opts.timeout.map(crate::timeout::deadline_after);
    let mut done: Vec<usize> = Vec::new();
    // Already finished ones first, in index order.
    for (i, g) in handles.iter().enumerate() {
        if g.is_dead() {
            done.push(i);
            if opts.raise_error && !g.successful() {
                return Ok(done);
            }
        }
    }
    // The others report, in the order they finish, through a raw link.
    let order: Rc<RefCell<Vec<usize>>> = Rc::new(RefCell::new(Vec::new()));
    let token: Rc<RefCell<Option<Waker>>> = Rc::new(RefCell::new(None));
    for (i, g) in handles.iter().enumerate() {
        if !g.is_dead() {
            let (order, token) = (order.clone(), token.clone());
            g.core.links.push(Link::Raw(Box::new(move || {
                order.borrow_mut().push(i);
                if let Some(t) = token.borrow().as_ref() {
                    t.wake();
                }
            })));
        }
    }
    while done.len() < handles.len() {
        let newly: Vec<usize> = std::mem::take(&mut *order.borrow_mut());
        for i in newly {
            done.push(i);
            if opts.raise_error && !handles[i].successful() {
                return Ok(done);
            }
        }
        if done.len() == handles.len() {
            break;
        }
        let remaining = match deadline {
            Some(d) => {
                let now = Instant::now();
                if now >= d {
                    break;
                }
                Some(d - now)
            }
            None => None,
        };
        let w = Waiter::new("joinall")?;
        *token.borrow_mut() = Some(w.waker());
        // Our own timeout is `Ok(false)` (the deadline check above then ends the wait); an
        // enclosing `Timeout`'s expiry is an error, returned instead of being taken for ours.
        let r = w.wait_for(remaining);
        token.borrow_mut().take();
        r?;
    }
    Ok(done)
}

/// The name of the current greenlet (the thread's name, or `root`, outside any greenlet).
///
/// ```
/// let g = greenlet::Builder::new().name("me").spawn(greenlet::getcurrent_name).unwrap();
/// assert_eq!(g.join().unwrap(), "me");
/// ```
pub fn getcurrent_name() -> String {
    hub::current().name().to_owned()
}

/// A greenlet created and not started yet ([`Builder::create`]): gevent's `Greenlet(f)`
/// before `start()`. Dropped unstarted, it never runs (its closure is dropped); `!Send`.
///
/// ```
/// use std::time::Duration;
/// let u = greenlet::Builder::new().create(|| "later").unwrap();
/// let g = u.start_later(Duration::from_millis(1));
/// assert_eq!(g.join().unwrap(), "later");
/// ```
pub struct UnstartedGreenlet<T> {
    /// `None` once started.
    g: Option<Greenlet<T>>,
}

impl<T> UnstartedGreenlet<T> {
    fn greenlet(&self) -> &Greenlet<T> {
        self.g
            .as_ref()
            .expect("an unstarted greenlet holds its greenlet")
    }

    /// The greenlet's name.
    ///
    /// ```
    /// let u = greenlet::Builder::new().name("w").create(|| ()).unwrap();
    /// assert_eq!(u.name(), "w");
    /// ```
    pub fn name(&self) -> &str {
        self.greenlet().name()
    }

    /// The greenlet's id (see [`Greenlet::id`]).
    ///
    /// ```
    /// let u = greenlet::Builder::new().create(|| ()).unwrap();
    /// let id = u.id();
    /// assert_eq!(u.start().id(), id);
    /// ```
    pub fn id(&self) -> u64 {
        self.greenlet().id()
    }

    /// Schedule the greenlet (gevent's `start()`): it runs once the caller next yields to the
    /// hub, as with [`spawn`]. Returns its handle.
    ///
    /// ```
    /// let g = greenlet::Builder::new().create(|| 1).unwrap().start();
    /// assert_eq!(g.join().unwrap(), 1);
    /// ```
    pub fn start(mut self) -> Greenlet<T> {
        let g = self
            .g
            .take()
            .expect("an unstarted greenlet holds its greenlet");
        hub::with_hub(|h| h.push(Callback::Switch(g.core.clone(), Reason::Wake)));
        g
    }

    /// Schedule the greenlet to start after `delay` (gevent's `start_later`). Returns its
    /// handle; killing it before then means it never runs.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let t0 = Instant::now();
    /// let u = greenlet::Builder::new().create(move || t0.elapsed()).unwrap();
    /// let g = u.start_later(Duration::from_millis(20));
    /// assert!(g.join().unwrap() >= Duration::from_millis(19));
    /// ```
    pub fn start_later(mut self, delay: Duration) -> Greenlet<T> {
        let g = self
            .g
            .take()
            .expect("an unstarted greenlet holds its greenlet");
        schedule_later(&g.core, delay);
        g
    }
}

/// Never started: the greenlet is killed, which drops its closure without running it.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// let u = greenlet::Builder::new().create(move || r.set(true)).unwrap();
/// drop(u);
/// greenlet::yield_now().unwrap();
/// assert!(!ran.get());
/// assert_eq!(Rc::strong_count(&ran), 1); // the closure is gone
/// ```
impl<T> Drop for UnstartedGreenlet<T> {
    fn drop(&mut self) {
        if let Some(g) = self.g.take() {
            // At thread exit the hub may be gone already: it dropped every greenlet then.
            if hub::has_hub() {
                hub::request_kill(&g.core);
            }
        }
    }
}

impl<T> fmt::Debug for UnstartedGreenlet<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.g {
            Some(g) => f
                .debug_struct("UnstartedGreenlet")
                .field("id", &g.core.id)
                .field("name", &g.core.name())
                .finish(),
            None => f.write_str("UnstartedGreenlet(started)"),
        }
    }
}

/// Whether `payload`, caught by [`std::panic::catch_unwind`], is a kill unwinding the current
/// greenlet ([`Greenlet::kill`], [`killall`], a server stopping) rather than a panic. Code
/// that catches panics around code that may block — a server that answers 500 when a handler
/// panics — must let a kill go on with [`std::panic::resume_unwind`], or the greenlet would
/// survive its kill.
///
/// ```
/// use std::panic::{self, AssertUnwindSafe};
/// use std::time::Duration;
/// let g = greenlet::spawn(|| {
///     let caught = panic::catch_unwind(AssertUnwindSafe(|| {
///         greenlet::sleep(Duration::from_secs(60)).unwrap();
///     }));
///     if let Err(p) = caught {
///         assert!(greenlet::is_kill(&*p));
///         panic::resume_unwind(p); // the kill goes on
///     }
/// });
/// greenlet::yield_now().unwrap();
/// g.kill();
/// assert!(g.was_killed());
/// assert!(!greenlet::is_kill(&"an ordinary panic"));
/// ```
pub fn is_kill(payload: &(dyn std::any::Any + Send)) -> bool {
    payload.is::<KillSignal>()
}

/// Kill every greenlet of `greenlets` and wait, at most `timeout` (forever with `None`), for
/// them to die (gevent's `killall`). Returns whether all are dead. Never fails.
///
/// All are asked to die first, then waited for, so their unwinding overlaps. Unstarted ones
/// never run. From a hub callback the kills are only requested. If the calling greenlet is
/// among them, it is killed last, once the others are dead or the timeout has passed (the
/// call then unwinds the caller instead of returning).
///
/// ```
/// use std::time::Duration;
/// let gs: Vec<_> = (0..3)
///     .map(|_| greenlet::spawn(|| greenlet::sleep(Duration::from_secs(60))))
///     .collect();
/// greenlet::yield_now().unwrap(); // let them start sleeping
/// assert!(greenlet::killall(&gs, Some(Duration::from_secs(10))));
/// assert!(gs.iter().all(|g| g.was_killed()));
/// ```
pub fn killall<T>(greenlets: &[Greenlet<T>], timeout: Option<Duration>) -> bool {
    let me = hub::current();
    let mut me_included = false;
    for g in greenlets {
        if Rc::ptr_eq(&g.core, &me) {
            me_included = !g.is_dead();
        } else {
            hub::request_kill(&g.core);
        }
    }
    if !hub::current_is_hub() {
        let deadline = timeout.map(crate::timeout::deadline_after);
        for g in greenlets {
            if g.is_dead() || Rc::ptr_eq(&g.core, &me) {
                continue;
            }
            let remaining = match deadline {
                Some(d) => match d.checked_duration_since(Instant::now()) {
                    Some(r) if !r.is_zero() => Some(r),
                    _ => break,
                },
                None => None,
            };
            // Our own timeout is `Ok(false)`; an enclosing `Timeout` scope ends the wait too.
            if !matches!(wait_finished(&g.core, remaining), Ok(true)) {
                break;
            }
        }
    }
    if me_included {
        hub::request_kill(&me);
    }
    greenlets.iter().all(|g| g.is_dead())
}
