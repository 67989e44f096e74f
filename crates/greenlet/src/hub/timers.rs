//! The hub's pool of timers: the timer of a timed wait ([`Waiter::wait_for`] with a timeout)
//! and of a [`Timeout`] scope is taken from here and given back when the wait or the scope
//! ends, so that a timeout costs a libev heap insertion and removal, not a watcher's
//! allocation, closure and destruction.
//!
//! Each pooled timer has one callback for its whole life, made when the timer is: it ends
//! whatever the timer is armed for at the time ([`Armed`]: a wait, or a scope's greenlet), and
//! nothing once that has taken it off. A timer is always stopped before it is disarmed and
//! given back (which also drops an event libev has pending for it), so a later wait or scope
//! that is given the same timer cannot be ended by the expiry of an earlier one. A wait's
//! wake-up is for that wait's serial only, like any [`Waker`]'s; a scope's expiry goes to its
//! greenlet, to end whatever it waits for then (or its next wait), as `Timeout` promises.
//!
//! [`Waiter::wait_for`]: super::Waiter::wait_for
//! [`Timeout`]: crate::Timeout

use super::switch::Reason;
use super::wait::{Waker, timeout_fired, wake};
use super::{GlCore, HubInner, hub, try_hub};
use ev_loop::{Loop, Timer};
use std::cell::{Cell, RefCell};
use std::rc::{Rc, Weak};
use std::time::Duration;

/// How many idle timers a hub keeps at most. A wait or scope hands its timer back as it ends
/// and the next one takes it, so a handful covers even thousands of greenlets doing timed
/// waits in turn; the bound keeps a burst of concurrent ones from leaving its peak behind.
pub(crate) const MAX_IDLE_TIMERS: usize = 64;

/// What a pooled timer ends when it fires.
pub(super) enum Armed {
    /// A timed wait's own timeout: that wait only, with `Reason::Timeout(serial)`.
    Wait(Waker),
    /// A `Timeout` scope: whatever its greenlet waits for then, or else its next wait.
    Scope { g: Rc<GlCore>, id: u64 },
}

/// What a pooled timer's callback reads.
#[derive(Default)]
struct Slot {
    /// `None` while the timer is idle, or once it fired.
    armed: Cell<Option<Armed>>,
    /// Whether it fired since it was last armed.
    fired: Cell<bool>,
}

/// A timer of the pool, with the slot its callback reads.
pub(super) struct WaitTimer {
    timer: Timer,
    slot: Rc<Slot>,
}

/// The idle timers of one hub. The timers keep the loop alive while they run (as a wait's own
/// timer always did: a timed wait ends by its timeout, not by the loop running dry); stopped
/// in the pool, they keep nothing alive.
#[derive(Default)]
pub(super) struct TimerPool {
    idle: RefCell<Vec<WaitTimer>>,
}

impl TimerPool {
    /// Start a timer that ends what `armed` says after `d` from now (the loop's time is
    /// updated first: its cached time may be a long batch old). Kept out of line, like
    /// [`give_back`](TimerPool::give_back), so that untimed waits do not carry its code.
    #[inline(never)]
    pub(super) fn arm(&self, lp: &Loop, d: Duration, armed: Armed) -> WaitTimer {
        lp.update_now();
        let idle = self.idle.borrow_mut().pop();
        let t = idle.unwrap_or_else(|| {
            let slot = Rc::new(Slot::default());
            let s = slot.clone();
            let timer = Timer::new(lp, Duration::ZERO, Duration::ZERO, move |_, _| {
                match s.armed.take() {
                    Some(Armed::Wait(w)) => {
                        wake(&w.g, w.serial, Reason::Timeout(w.serial));
                    }
                    Some(Armed::Scope { g, id }) => {
                        s.fired.set(true);
                        timeout_fired(&g, id);
                    }
                    None => {}
                }
            });
            WaitTimer { timer, slot }
        });
        t.slot.armed.set(Some(armed));
        t.slot.fired.set(false);
        t.timer.set(d, Duration::ZERO);
        t.timer.start();
        t
    }

    /// Stop `t`, disarm it and keep it for the next wait (or drop it if enough are idle).
    #[inline(never)]
    pub(super) fn give_back(&self, t: WaitTimer) {
        t.timer.stop();
        // Drops the wait's or the scope's greenlet reference before the timer idles.
        t.slot.armed.set(None);
        let mut idle = self.idle.borrow_mut();
        if idle.len() < MAX_IDLE_TIMERS {
            idle.push(t);
            return;
        }
        drop(idle);
        drop(t);
    }

    /// How many idle timers the pool holds.
    pub(super) fn idle(&self) -> usize {
        self.idle.borrow().len()
    }
}

/// A taken timer, given back to its pool when the wait ends, however it ends (a kill unwinds
/// through here).
pub(super) struct Taken<'a> {
    pub(super) pool: &'a TimerPool,
    pub(super) timer: Option<WaitTimer>,
}

impl Drop for Taken<'_> {
    fn drop(&mut self) {
        if let Some(t) = self.timer.take() {
            self.pool.give_back(t);
        }
    }
}

/// The timer of a [`Timeout`](crate::Timeout) scope: one of its hub's pooled timers, armed to
/// end the waits of greenlet `g` with the scope's id, and given back to that hub's pool when
/// dropped (or simply dropped if that hub is gone: a scope does not keep its hub alive).
pub(crate) struct ScopeTimer {
    hub: Weak<HubInner>,
    timer: Option<WaitTimer>,
}

impl ScopeTimer {
    /// Start a timer that expires the scope `id` of `g` after `d` from now.
    pub(crate) fn start(d: Duration, g: Rc<GlCore>, id: u64) -> ScopeTimer {
        let h = hub();
        let timer = h.wait_timers.arm(&h.lp, d, Armed::Scope { g, id });
        ScopeTimer {
            hub: Rc::downgrade(&h),
            timer: Some(timer),
        }
    }

    /// Whether it still runs (it has neither fired nor been stopped).
    pub(crate) fn is_active(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| t.timer.is_active())
    }

    /// Whether it fired.
    pub(crate) fn fired(&self) -> bool {
        self.timer.as_ref().is_some_and(|t| t.slot.fired.get())
    }
}

impl Drop for ScopeTimer {
    fn drop(&mut self) {
        let Some(t) = self.timer.take() else {
            return;
        };
        // Only into the pool of the hub it came from, and only while that hub is the thread's.
        match (self.hub.upgrade(), try_hub()) {
            (Some(mine), Some(now)) if Rc::ptr_eq(&mine, &now) => mine.wait_timers.give_back(t),
            _ => drop(t),
        }
    }
}
