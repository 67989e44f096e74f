//! The wait protocol every blocking call is built on: a [`Waiter`] registers the current
//! greenlet as waiting with a fresh serial, its [`Waker`]s (or [`wake`]) end that wait only,
//! and the greenlet switches out until then. Kills ([`request_kill`], [`check_kill`]) and
//! `Timeout` expiries ([`timeout_fired`]) end a wait the same way, with another [`Reason`].
//! The blocking calls of the hub itself: [`sleep`], [`yield_now`], [`idle`], [`wait`].

use super::core::{GlCore, Outcome};
use super::queue::Callback;
use super::switch::{Reason, finish, switch_from};
use super::timers::{Armed, Taken};
use super::tls::{current, current_ptr, next_serial};
use super::{HubInner, hub, with_hub};
use crate::error::{Error, Result, TimeoutId};
use ev_loop::{Idle, Timer};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::Duration;

/// The panic payload used to unwind a killed greenlet's stack.
pub(crate) struct KillSignal;

/// Wake `g` if it is still blocked in the wait with `serial`. Returns whether it was.
///
/// It only queues `g`, never switches: callers (`Event::set` waking a list, watcher callbacks)
/// rely on nothing else running before it returns.
pub(crate) fn wake(g: &Rc<GlCore>, serial: u64, reason: Reason) -> bool {
    if serial == 0 || g.waiting.get() != serial {
        return false;
    }
    g.waiting.set(0);
    with_hub(|h| h.push(Callback::Switch(g.clone(), reason)));
    true
}

/// A one-shot registration of the current greenlet as waiting (gevent's `hub.Waiter`): the
/// primitive every blocking call of this crate and of the I/O layer is built on.
///
/// Create it, hand its [`Waker`] to whatever will end the wait (a watcher's callback, another
/// greenlet), then [`wait`](Waiter::wait): the greenlet switches to the hub and is switched back
/// when the waker is used, when the timeout expires, when it is killed or an enclosing
/// [`Timeout`](crate::Timeout) expires, or when nothing is left that could wake it. A wake-up
/// that comes before `wait` (even from the creating greenlet itself) is not lost. It belongs
/// to its thread (`!Send`); from other threads, use an [`AsyncResult`](crate::AsyncResult).
///
/// ```
/// use greenlet::hub::Waiter;
/// use std::time::Duration;
///
/// let w = Waiter::new("reply").unwrap();
/// let waker = w.waker();
/// greenlet::spawn(move || assert!(waker.wake()));
/// w.wait(Some(Duration::from_secs(10))).unwrap();
///
/// // Nobody wakes it: the wait's own timeout ends it.
/// let w = Waiter::new("nothing").unwrap();
/// let keep = w.waker(); // a waker alive elsewhere (the wait could still be ended)
/// assert!(w.wait(Some(Duration::from_millis(5))).unwrap_err().is_timeout());
/// assert!(!keep.wake()); // that wait is over
/// ```
pub struct Waiter {
    pub(crate) me: Rc<GlCore>,
    pub(crate) serial: u64,
    /// A kill unwinds the greenlet (`false`: it is reported as `Error::Killed`).
    unwind: bool,
}

/// Ends one [`Waiter`]'s wait; cheap to clone, `!Send`.
#[derive(Clone)]
pub struct Waker {
    pub(crate) g: Rc<GlCore>,
    pub(crate) serial: u64,
}

impl Waker {
    /// Wake the waiting greenlet (queue it to run) if it still waits in the wait this waker
    /// belongs to. Returns whether it did: `false` once that wait is over (woken, timed out,
    /// killed) or if it never began. Never switches: the caller keeps running.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let waker = w.waker();
    /// assert!(waker.wake());
    /// assert!(!waker.wake()); // the first wake-up is what the wait gets
    /// w.wait(None).unwrap();
    /// ```
    #[inline]
    pub fn wake(&self) -> bool {
        wake(&self.g, self.serial, Reason::Wake)
    }

    /// Whether the wait this waker belongs to is still going on (not yet woken or ended).
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let waker = w.waker();
    /// assert!(waker.is_waiting());
    /// waker.wake();
    /// assert!(!waker.is_waiting());
    /// # w.wait(None).unwrap();
    /// ```
    #[inline]
    pub fn is_waiting(&self) -> bool {
        self.serial != 0 && self.g.waiting.get() == self.serial
    }

    /// The name of the greenlet that waits (for error messages).
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// assert_eq!(w.waker().greenlet_name(), greenlet::getcurrent_name());
    /// ```
    pub fn greenlet_name(&self) -> &str {
        self.g.name()
    }
}

impl PartialEq for Waker {
    /// Whether both belong to the same wait.
    fn eq(&self, other: &Waker) -> bool {
        self.serial == other.serial && Rc::ptr_eq(&self.g, &other.g)
    }
}

impl Eq for Waker {}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("greenlet", &self.g.id)
            .field("waiting", &self.is_waiting())
            .finish()
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("greenlet", &self.me.id)
            .field("on", &self.me.blocked_on())
            .finish()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // A waiter abandoned before (or after) its wait must not stay registered.
        if self.me.waiting.get() == self.serial {
            self.me.waiting.set(0);
        }
    }
}

impl Waiter {
    /// Register the current greenlet as waiting; `what` is what [`run_info`](crate::run_info)
    /// shows it blocked on (`"fd"`, `"reply"`, …).
    ///
    /// # Errors
    /// [`Error::BlockingInHub`] in the hub (a watcher or hub callback);
    /// [`Error::Dead`] in a finishing greenlet; [`Error::Timeout`] if an enclosing
    /// [`Timeout`](crate::Timeout) expired already. A pending kill unwinds the greenlet here.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("reply").unwrap();
    /// drop(w); // an abandoned registration ends with it
    /// ```
    pub fn new(what: &'static str) -> Result<Waiter> {
        with_hub(|h| Waiter::new_in(h, what))
    }

    /// [`Waiter::new`] for code that must not unwind: a function called from C, such as a
    /// hook in front of a system call (unwinding through a C frame is undefined behaviour). A
    /// kill requested before or during the wait ends it with [`Error::Killed`] instead of
    /// unwinding the greenlet, and stays requested: the greenlet's next ordinary blocking call
    /// unwinds it.
    ///
    /// # Errors
    /// As for [`Waiter::new`], and [`Error::Killed`] if a kill is pending.
    ///
    /// ```
    /// use greenlet::{Error, hub::Waiter, spawn, yield_now};
    /// let g = spawn(|| {
    ///     let w = Waiter::new_no_unwind("x").unwrap();
    ///     let _keep = w.waker();
    ///     let r = w.wait(None); // the kill comes here: reported, not unwound
    ///     assert_eq!(r, Err(Error::Killed));
    ///     greenlet::sleep(std::time::Duration::ZERO).unwrap(); // the kill unwinds here
    ///     unreachable!();
    /// });
    /// yield_now().unwrap();
    /// g.kill();
    /// assert!(g.join().is_err());
    /// ```
    pub fn new_no_unwind(what: &'static str) -> Result<Waiter> {
        with_hub(|h| Waiter::new_with(h, what, false))
    }

    /// [`Waiter::new`] with the hub already at hand (saves a thread-local look-up).
    #[inline]
    pub(crate) fn new_in(h: &HubInner, what: &'static str) -> Result<Waiter> {
        Waiter::new_with(h, what, true)
    }

    #[inline]
    fn new_with(h: &HubInner, what: &'static str, unwind: bool) -> Result<Waiter> {
        let p = current_ptr();
        let me = if p.is_null() {
            h.root.clone()
        } else {
            // SAFETY: as in `current`: CURRENT points into a live `Rc<GlCore>`; the extra
            // strong count makes the new `Rc` an owner of its own.
            unsafe {
                Rc::increment_strong_count(p);
                Rc::from_raw(p)
            }
        };
        if me.is_hub {
            return Err(Error::BlockingInHub);
        }
        if me.is_dead() {
            // A destructor running as the greenlet finishes (a greenlet-local value's): a
            // finished greenlet is never switched back to, so it must not block.
            return Err(Error::Dead);
        }
        if unwind {
            check_kill(&me);
        } else if kill_pending(&me) {
            return Err(Error::Killed);
        }
        if let id @ 1.. = me.pending_timeout.get() {
            me.set_pending_timeout(None);
            return Err(Error::Timeout(TimeoutId(id)));
        }
        let serial = next_serial();
        me.waiting.set(serial);
        me.waits_on.set(what);
        Ok(Waiter { me, serial, unwind })
    }

    /// The waker that ends this wait.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// assert_eq!(w.waker(), w.waker());
    /// # w.waker().wake(); w.wait(None).unwrap();
    /// ```
    pub fn waker(&self) -> Waker {
        Waker {
            g: self.me.clone(),
            serial: self.serial,
        }
    }

    /// Switch to the hub until woken, the optional timeout expires, or the loop runs dry.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `timeout` expires (its id is never a
    /// [`Timeout`](crate::Timeout) scope's) or an enclosing `Timeout` does;
    /// [`Error::WouldBlockForever`] when nothing is left that could wake the greenlet. A kill
    /// unwinds the greenlet from here.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("never").unwrap();
    /// assert_eq!(w.wait(None), Err(greenlet::Error::WouldBlockForever));
    /// ```
    pub fn wait(self, timeout: Option<Duration>) -> Result<()> {
        self.wait_for(timeout).and_then(|woken| match woken {
            true => Ok(()),
            // The call's own timeout: reported like a scope's (callers that care use
            // `wait_for`).
            false => Err(Error::Timeout(TimeoutId::OWN)),
        })
    }

    /// Like [`wait`](Waiter::wait), telling the call's own timeout (`Ok(false)`) apart from an
    /// enclosing `Timeout` scope's (`Err(Error::Timeout)`), which propagates.
    ///
    /// A timeout's timer is one of the hub's stopped timers, taken for the wait and given back
    /// when it ends: only a wait that finds none idle makes one (the hub keeps up to 64, see
    /// [`HubStats::pooled_timers`](crate::HubStats::pooled_timers)).
    ///
    /// # Errors
    /// As for [`wait`](Waiter::wait), but for the call's own timeout.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let _keep = w.waker();
    /// assert_eq!(w.wait_for(Some(std::time::Duration::from_millis(1))), Ok(false));
    /// ```
    pub fn wait_for(self, timeout: Option<Duration>) -> Result<bool> {
        // No count is taken on the hub: a greenlet that is never resumed must not keep it.
        // `h` is also used after the switch (the timer goes back to the hub's pool when this
        // greenlet resumes or unwinds); one never resumed never gets there.
        let hp: *const HubInner = with_hub(std::ptr::from_ref);
        // SAFETY: HUB_OWNER keeps the hub alive while greenlets of this thread run, and a
        // greenlet resumes or unwinds only while it is alive (at thread exit the teardown
        // kills greenlets holding a reference of its own).
        let h = unsafe { &*hp };
        // The timeout's timer comes from the hub's pool and goes back to it when the wait
        // ends (`timers.rs`); it ends this wait only, with `Reason::Timeout(self.serial)`,
        // which is never a `Timeout` scope's id: those count up from 1 << 62, which serials
        // never reach, and would need 2^62 scopes to reach a park's serial (bit 63 set).
        let timer = timeout.map(|d| h.wait_timers.arm(&h.lp, d, Armed::Wait(self.waker())));
        let me: *const GlCore = Rc::as_ptr(&self.me);
        let ready = h.take_ready();
        // Given back however the wait ends, also when a kill unwinds the greenlet from it.
        let timer = Taken {
            pool: &h.wait_timers,
            timer,
        };
        let reason = match ready {
            // We woke ourselves (a wake-up that came in before the wait, like AsyncResult's
            // re-check after arming): the hub would switch straight back. A `Switch(me)` can
            // only be queued while we run between `Waiter::new` and this switch, so it is for
            // this wait. Counted as a switch: `take_ready` may have told a blocking monitor
            // of it already, and the count it published must not come twice.
            Some((next, reason)) if next == me => {
                h.switches.set(h.switches.get().wrapping_add(1));
                reason
            }
            // The next greenlet in the queue runs now, without a detour through the hub.
            Some((next, reason)) => {
                // SAFETY: `next` is alive until it has run (it is in the registry of live
                // greenlets, or it is the root); nothing runs between here and the switch.
                // (`take_ready` told a blocking monitor of it already.)
                switch_from(Some(h), me, unsafe { &*next }, reason, false, false)
            }
            None => switch_from(Some(h), me, &h.gl, Reason::Wake, false, true),
        };
        let timed = timer.timer.is_some();
        drop(timer);
        match reason {
            Reason::Timeout(id) if timed && id == self.serial => {
                self.switched_back(Reason::Wake).map(|()| false)
            }
            reason => self.switched_back(reason).map(|()| true),
        }
    }

    /// What the wait ends with, once the greenlet is switched back in with `reason`.
    fn switched_back(self, reason: Reason) -> Result<()> {
        if self.unwind {
            woken_with(&self.me, reason)
        } else {
            woken_without_unwinding(&self.me, reason)
        }
    }
}

/// What a wait of `me` ends with, once it is switched back in with `reason`.
pub(super) fn woken_with(me: &GlCore, reason: Reason) -> Result<()> {
    // Not parked any more either (here too because a kill unwinds past the callers' reset).
    me.waiting.set(0);
    me.waits_on.set("");
    match reason {
        Reason::Wake => {
            check_kill(me);
            Ok(())
        }
        Reason::Timeout(id) => {
            check_kill(me);
            Err(Error::Timeout(TimeoutId(id)))
        }
        Reason::Kill => {
            me.set_kill_requested(false);
            panic::resume_unwind(Box::new(KillSignal));
        }
        Reason::LoopExit => Err(Error::WouldBlockForever),
    }
}

/// `woken_with` for a [`Waiter::new_no_unwind`] wait: a kill is an error and stays requested.
#[cold]
fn woken_without_unwinding(me: &GlCore, reason: Reason) -> Result<()> {
    me.waiting.set(0);
    me.waits_on.set("");
    match reason {
        Reason::Kill => Err(Error::Killed),
        _ if kill_pending(me) => Err(Error::Killed),
        Reason::Wake => Ok(()),
        Reason::Timeout(id) => Err(Error::Timeout(TimeoutId(id))),
        Reason::LoopExit => Err(Error::WouldBlockForever),
    }
}

/// Whether a kill of `me` (a spawned greenlet) waits to be delivered.
fn kill_pending(me: &GlCore) -> bool {
    me.kill_requested.get() && !me.is_hub && me.spawned_at.is_some()
}

/// Unwind the current greenlet if a kill was requested while it was not blocked.
fn check_kill(me: &GlCore) {
    if kill_pending(me) {
        me.set_kill_requested(false);
        panic::resume_unwind(Box::new(KillSignal));
    }
}

/// Ask `g` to die: it unwinds at its current (or next) switch point.
pub(crate) fn request_kill(g: &Rc<GlCore>) {
    if g.is_dead() || g.is_hub || g.spawned_at.is_none() {
        return;
    }
    if !g.started.get() {
        // Never ran: it never will. Its stack goes back to the pool right away.
        g.started.set(true);
        g.dropping_body.set(true);
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| {
            if let Some(body) = g.body.take() {
                body.discard();
            }
        }));
        g.dropping_body.set(false);
        g.ctx.take();
        drop(g.stack.take());
        finish(g, Outcome::Killed);
        with_hub(|h| h.live.borrow_mut().remove(&g.id));
        if let Err(p) = dropped {
            panic::resume_unwind(p);
        }
        return;
    }
    if Rc::as_ptr(g) == current_ptr() {
        panic::resume_unwind(Box::new(KillSignal));
    }
    g.set_kill_requested(true);
    let serial = g.waiting.get();
    wake(g, serial, Reason::Kill);
}

/// Deliver a `Timeout` scope's expiry to `g`.
pub(super) fn timeout_fired(g: &Rc<GlCore>, id: u64) {
    if g.is_dead() {
        return;
    }
    let serial = g.waiting.get();
    if !wake(g, serial, Reason::Timeout(id)) {
        g.set_pending_timeout(Some(id));
    }
}

/// Have the current greenlet's next blocking call report the expiry of the `Timeout` scope
/// `id` (it expired during a wait that could not be given up, see `scope`).
pub(crate) fn deliver_timeout_later(id: u64) {
    current().set_pending_timeout(Some(id));
}

pub(crate) fn clear_pending_timeout(g: &GlCore, id: u64) {
    if g.pending_timeout.get() == id {
        g.set_pending_timeout(None);
    }
}

/// Suspend the current greenlet for `d`. `Duration::ZERO` only yields (see [`yield_now`]).
///
/// # Errors
/// [`Error::Timeout`] when an enclosing [`Timeout`](crate::Timeout) expires first;
/// [`Error::BlockingInHub`] from a hub callback.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// greenlet::sleep(Duration::from_millis(20)).unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(19));
/// ```
pub fn sleep(d: Duration) -> Result<()> {
    if d.is_zero() {
        return yield_now();
    }
    // Its own timeout is how the sleep ends (on a timer from the hub's pool); nothing else
    // gets a waker for it.
    Waiter::new("sleep")?.wait_for(Some(d)).map(|_| ())
}

/// Let every other greenlet that is ready run once, then continue (gevent's `sleep(0)`). No
/// poll for I/O happens in between unless the batch of ready greenlets runs long.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// let g = greenlet::spawn(move || l.borrow_mut().push("spawned"));
/// greenlet::yield_now().unwrap();
/// log.borrow_mut().push("after yield");
/// assert_eq!(*log.borrow(), ["spawned", "after yield"]);
/// g.join().unwrap();
/// ```
pub fn yield_now() -> Result<()> {
    // No count is taken on the hub: a greenlet that is never resumed (it swallows its kill at
    // thread exit) must not keep it alive.
    let hp: *const HubInner = with_hub(std::ptr::from_ref);
    // SAFETY: HUB_OWNER keeps the hub alive while greenlets of this thread run; `h` is used
    // only up to the switch.
    let h = unsafe { &*hp };
    let w = Waiter::new_in(h, "yield")?;
    h.push(Callback::Switch(w.me.clone(), Reason::Wake));
    w.me.waiting.set(0);
    // Straight to the hub (what `Waiter::wait` does, without a timer or another hub look-up).
    let reason = switch_from(Some(h), Rc::as_ptr(&w.me), &h.gl, Reason::Wake, false, true);
    w.switched_back(reason)
}

/// Wait until the hub's loop has nothing left to do other than what the caller itself
/// registered (gevent's `idle()`): every ready greenlet and pending callback has run.
///
/// ```
/// greenlet::idle().unwrap();
/// ```
pub fn idle() -> Result<()> {
    let h = hub();
    let w = Waiter::new("idle")?;
    let token = w.waker();
    let i = Idle::new(&h.lp, move |w, _| {
        token.wake();
        w.stop();
    });
    i.set_priority(-2).map_err(|e| Error::Loop(e.into()))?;
    i.start();
    drop(h);
    w.wait(None)
}

/// Run the hub until it has nothing left to do, or until `timeout` (gevent's `hub.join`).
/// Returns true when the loop ran out of work, false on timeout.
///
/// # Errors
/// [`Error::JoinSelf`] from a spawned greenlet (the loop cannot run dry while it is alive);
/// [`Error::BlockingInHub`] from a hub callback; [`Error::Timeout`] when an enclosing
/// [`Timeout`](crate::Timeout) expires first.
///
/// ```
/// use std::time::Duration;
/// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(5)));
/// assert!(greenlet::wait(None).unwrap());
/// assert!(g.is_dead());
/// ```
pub fn wait(timeout: Option<Duration>) -> Result<bool> {
    let w = Waiter::new("hub")?;
    if w.me.spawned_at.is_some() {
        // Only the root greenlet hears that the loop ran dry; in a spawned greenlet it cannot
        // run dry while the caller itself is alive.
        w.me.waiting.set(0);
        return Err(Error::JoinSelf);
    }
    // The timeout's own timer must not keep the loop alive (gevent's `ref=False` timer), or
    // the loop could never run dry before it expires.
    let _timer = timeout.map(|d| {
        let h = hub();
        let token = w.waker();
        // Count from now, not from the loop's cached time (which may be a long batch old).
        h.lp.update_now();
        let t = Timer::new(&h.lp, d, Duration::ZERO, move |_, _| {
            token.wake();
        });
        t.set_keep_alive(false);
        t.start();
        t
    });
    // Our timer just wakes us (`Ok`); an `Error::Timeout` is an enclosing scope's and goes on.
    match w.wait(None) {
        Err(Error::WouldBlockForever) => Ok(true),
        Ok(()) => Ok(false),
        Err(e) => Err(e),
    }
}
