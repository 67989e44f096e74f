//! Scoped greenlets: `std::thread::scope` for greenlets. Greenlets spawned in a scope may
//! borrow from the caller's stack, because the scope does not return until every one of them
//! has finished.
//!
//! ```
//! let mut words = vec!["apple", "kiwi"];
//! let total = std::cell::Cell::new(0);
//! greenlet::scope(|s| {
//!     // Borrows `words` and `total`, which outlive the scope.
//!     s.spawn(|| total.set(total.get() + words.len()));
//!     let longest = s.spawn(|| words.iter().map(|w| w.len()).max());
//!     assert_eq!(longest.join().unwrap(), Some(5));
//! }); // waits for the first greenlet too
//! assert_eq!(total.get(), 2);
//! words.push("fig"); // the borrows have ended
//! ```
//!
//! How the end of a scope behaves, beyond `std::thread::scope`:
//! - Greenlets can be stopped: when the scope's owner is killed, or an enclosing
//!   [`Timeout`](crate::Timeout) expires while the owner waits at the end of the scope, or the
//!   wait would block forever ([`Error::WouldBlockForever`](crate::Error::WouldBlockForever),
//!   which only the thread's root greenlet hears: a spawned owner waits like any join), the
//!   scope kills the greenlets still running and waits for them to unwind. Then the kill goes
//!   on unwinding the owner, and the timeout is reported by the owner's next blocking call.
//! - Nothing unwinds out of the scope before its greenlets are dead: a panic while it waits
//!   (from the destructor of a closure that a kill drops before it ran, say) is raised after
//!   the wait. Should anything escape anyway, the process aborts rather than let a greenlet
//!   outlive what it borrows.
//! - A greenlet that keeps running after being killed (it catches the kill) keeps the scope
//!   waiting, as a thread that never ends keeps `std::thread::scope` waiting.

#![forbid(unsafe_code)]

use crate::error::{Error, JoinError};
use crate::greenlet::{Builder, Greenlet};
use crate::hub::{self, GlCore, KillSignal};
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// The scope handed to the closure of [`scope`]: spawn greenlets that borrow from outside it
/// with [`Scope::spawn`] (or [`Builder::spawn_scoped`]). `!Send`.
///
/// ```
/// let names = ["a", "bb"];
/// let lens = greenlet::scope(|s: &greenlet::Scope<'_, '_>| {
///     let gs: Vec<_> = names.iter().map(|n| s.spawn(move || n.len())).collect();
///     gs.into_iter().map(|g| g.join().unwrap()).collect::<Vec<_>>()
/// });
/// assert_eq!(lens, [1, 2]);
/// ```
pub struct Scope<'scope, 'env: 'scope> {
    /// Every greenlet spawned in the scope (only their untyped cores: nothing that borrows).
    children: RefCell<Vec<Rc<GlCore>>>,
    // Invariant in both lifetimes, as in `std::thread::Scope`.
    scope: PhantomData<&'scope mut &'scope ()>,
    env: PhantomData<&'env mut &'env ()>,
    _not_send: PhantomData<*const ()>,
}

/// A handle to a greenlet spawned in a [`Scope`]; it cannot outlive the scope. The other
/// methods of [`Greenlet`] (`is_dead`, `kill`, `wait`, `handle`, …) are reached through
/// `Deref`; a `Greenlet` cloned from it, or its [`handle`](Greenlet::handle), may outlive the
/// scope when its value type allows, and then refers to a finished greenlet.
///
/// ```
/// greenlet::scope(|s| {
///     let g = s.spawn(|| 2 + 2);
///     assert!(!g.is_dead());
///     assert_eq!(g.join().unwrap(), 4);
/// });
/// ```
pub struct ScopedGreenlet<'scope, T> {
    inner: Greenlet<T>,
    scope: PhantomData<&'scope ()>,
}

/// Run `f` with a [`Scope`] in which greenlets may borrow anything that outlives the call;
/// returns `f`'s result once every greenlet spawned in the scope has finished.
///
/// # Panics
/// - If a greenlet of the scope panicked and its result was not taken (by `join` or
///   `join_timeout`), once all have finished, like `std::thread::scope`. A panic of `f` itself
///   is passed on, also after all have finished.
/// - When called in a hub callback or from a finished greenlet's destructors, where nothing
///   can wait for the greenlets.
///
/// ```
/// let mut counts = [0u32; 3];
/// greenlet::scope(|s| {
///     for (i, c) in counts.iter_mut().enumerate() {
///         s.spawn(move || {
///             greenlet::yield_now().unwrap(); // they interleave
///             *c = i as u32 * 10;
///         });
///     }
/// });
/// assert_eq!(counts, [0, 10, 20]);
/// ```
#[track_caller]
pub fn scope<'env, F, T>(f: F) -> T
where
    F: for<'scope> FnOnce(&'scope Scope<'scope, 'env>) -> T,
{
    let me = hub::current();
    if me.is_hub {
        panic!(
            "greenlet::scope cannot be used in a hub callback: it could not wait for its greenlets"
        );
    }
    if me.is_dead() {
        panic!(
            "greenlet::scope cannot be used by a finished greenlet: it could not wait for its greenlets"
        );
    }
    drop(me);
    let scope = Scope {
        children: RefCell::new(Vec::new()),
        scope: PhantomData,
        env: PhantomData,
        _not_send: PhantomData,
    };
    let result = panic::catch_unwind(AssertUnwindSafe(|| f(&scope)));
    // Nothing may unwind out of here before every greenlet is dead: a destructor of an
    // unstarted greenlet's closure (dropped by a kill), or a logger, is user code.
    let guard = AbortOnUnwind;
    let mut unwind = None;
    if matches!(&result, Err(p) if p.is::<KillSignal>()) {
        // The owner was killed in `f`: its greenlets go with it.
        scope.kill_children(&mut unwind);
    }
    let timeout = scope.join_all(&mut unwind);
    std::mem::forget(guard);
    let result = match result {
        Ok(v) => v,
        Err(payload) => panic::resume_unwind(payload),
    };
    if let Some(payload) = unwind {
        panic::resume_unwind(payload);
    }
    if let Some(id) = timeout {
        hub::deliver_timeout_later(id);
    }
    let panicked = scope
        .children
        .borrow()
        .iter()
        .any(|g| g.outcome.get() == hub::Outcome::Panicked && !g.result_taken.get());
    if panicked {
        panic!("a scoped greenlet panicked");
    }
    result
}

impl<'scope, 'env> Scope<'scope, 'env> {
    /// Spawn a greenlet that may borrow anything that outlives the scope (see [`scope`]).
    ///
    /// # Panics
    /// If no stack can be allocated; use [`Builder::spawn_scoped`] to handle that as an error.
    ///
    /// ```
    /// let data = vec![1, 2, 3];
    /// let sum = greenlet::scope(|s| s.spawn(|| data.iter().sum::<i32>()).join().unwrap());
    /// assert_eq!(sum, 6);
    /// ```
    #[track_caller]
    pub fn spawn<F, T>(&'scope self, f: F) -> ScopedGreenlet<'scope, T>
    where
        F: FnOnce() -> T + 'scope,
        T: 'scope,
    {
        Builder::new()
            .spawn_scoped(self, f)
            .unwrap_or_else(|e| panic!("greenlet::Scope::spawn failed: {e}"))
    }

    /// Register a greenlet spawned in the scope (see [`Builder::spawn_scoped`]).
    pub(crate) fn adopt(&self, core: Rc<GlCore>) {
        self.children.borrow_mut().push(core);
    }

    /// Wait until every greenlet of the scope has finished, whatever happens to the wait:
    /// an unwinding kill, an enclosing `Timeout`'s expiry or a wait that would block forever
    /// make it kill the rest and go on waiting. Returns what to pass on afterwards.
    fn join_all(&self, unwind: &mut Option<Payload>) -> Option<u64> {
        let mut timeout = None;
        loop {
            let next = self
                .children
                .borrow()
                .iter()
                .find(|g| !g.is_dead())
                .cloned();
            let Some(g) = next else { break };
            match panic::catch_unwind(AssertUnwindSafe(|| {
                crate::greenlet::wait_finished(&g, None)
            })) {
                Ok(Ok(_)) => continue,
                Ok(Err(Error::Timeout(id))) => {
                    timeout.get_or_insert(id.0);
                }
                Ok(Err(e)) => {
                    contain(unwind, || {
                        log::debug!("stopping the greenlets of a scope: {e}")
                    });
                }
                Err(payload) => {
                    if !payload.is::<KillSignal>() {
                        contain(unwind, || {
                            log::error!("unexpected panic while a scope waited for its greenlets")
                        });
                    }
                    keep(unwind, payload);
                }
            }
            self.kill_children(unwind);
        }
        timeout
    }

    /// Ask every greenlet of the scope to die (they unwind at their next switch point).
    /// Killing one that never started drops its closure here, which may panic or block (and
    /// be killed): kept in `unwind` for after the wait.
    fn kill_children(&self, unwind: &mut Option<Payload>) {
        let children = self.children.borrow().clone();
        for g in &children {
            contain(unwind, || hub::request_kill(g));
        }
    }
}

type Payload = Box<dyn std::any::Any + Send>;

/// Run `f`, keeping a panic of it in `unwind` (the first one) instead of unwinding.
fn contain(unwind: &mut Option<Payload>, f: impl FnOnce()) {
    if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
        keep(unwind, p);
    }
}

fn keep(unwind: &mut Option<Payload>, p: Payload) {
    if unwind.is_none() {
        *unwind = Some(p);
    } else {
        crate::error::drop_payload(p);
    }
}

/// Armed while a scope waits for its greenlets: unwinding then would let them outlive what
/// they borrow.
struct AbortOnUnwind;

impl Drop for AbortOnUnwind {
    fn drop(&mut self) {
        eprintln!("greenlet::scope unwound while its greenlets ran; aborting");
        std::process::abort();
    }
}

impl fmt::Debug for Scope<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("greenlets", &self.children.borrow().len())
            .finish()
    }
}

impl<'scope, T> ScopedGreenlet<'scope, T> {
    pub(crate) fn new(inner: Greenlet<T>) -> ScopedGreenlet<'scope, T> {
        ScopedGreenlet {
            inner,
            scope: PhantomData,
        }
    }

    /// Wait for the greenlet to finish and return its value (see [`Greenlet::join`]).
    ///
    /// # Errors
    /// As [`Greenlet::join`].
    ///
    /// ```
    /// let name = String::from("kiwi");
    /// greenlet::scope(|s| assert_eq!(s.spawn(|| name.len()).join().unwrap(), 4));
    /// ```
    pub fn join(self) -> std::result::Result<T, JoinError> {
        self.inner.join()
    }
}

impl<T> std::ops::Deref for ScopedGreenlet<'_, T> {
    type Target = Greenlet<T>;

    fn deref(&self) -> &Greenlet<T> {
        &self.inner
    }
}

impl<T> fmt::Debug for ScopedGreenlet<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
