//! The hub's pool of wait timers: the timer of a timed wait ([`Waiter::wait_for`] with a
//! timeout) is taken from here and given back when the wait ends, so that a timed wait costs
//! a libev heap insertion and removal, not a watcher's allocation, closure and destruction.
//!
//! Each pooled timer has one callback for its whole life, made when the timer is: it wakes
//! whatever wait the timer is armed for at the time ([`Armed`]), and nothing once that wait
//! has taken it off. A timer is always stopped before it is disarmed and given back (which
//! also drops an event libev has pending for it), so a later wait that is given the same timer
//! cannot be woken by the expiry of an earlier one; and the wake-up itself is for the armed
//! wait's serial only, like any [`Waker`]'s.
//!
//! [`Waiter::wait_for`]: super::Waiter::wait_for

use super::switch::Reason;
use super::wait::{Waker, wake};
use ev_loop::{Loop, Timer};
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// How many idle timers a hub keeps at most. A wait hands its timer back as it ends and the
/// next wait takes one, so a handful covers even thousands of greenlets doing timed waits in
/// turn; the bound keeps a burst of concurrent timed waits from leaving its peak behind.
pub(crate) const MAX_IDLE_TIMERS: usize = 64;

/// The wait a pooled timer is armed for (`None` while it is idle or once it fired).
type Armed = Rc<Cell<Option<Waker>>>;

/// A timer of the pool, with the slot its callback reads.
pub(super) struct WaitTimer {
    timer: Timer,
    armed: Armed,
}

/// The idle timers of one hub. The timers keep the loop alive while they run (as a wait's own
/// timer always did: a timed wait ends by its timeout, not by the loop running dry); stopped
/// in the pool, they keep nothing alive.
#[derive(Default)]
pub(super) struct TimerPool {
    idle: RefCell<Vec<WaitTimer>>,
}

impl TimerPool {
    /// Start a timer that ends the wait of `waker` after `d` (from the loop's cached time:
    /// the caller updates it) with `Reason::Timeout(waker.serial)`. Kept out of line, like
    /// [`give_back`](TimerPool::give_back), so that untimed waits do not carry its code.
    #[inline(never)]
    pub(super) fn arm(&self, lp: &Loop, d: Duration, waker: Waker) -> WaitTimer {
        let idle = self.idle.borrow_mut().pop();
        let t = idle.unwrap_or_else(|| {
            let armed: Armed = Rc::new(Cell::new(None));
            let slot = armed.clone();
            let timer = Timer::new(lp, Duration::ZERO, Duration::ZERO, move |_, _| {
                if let Some(w) = slot.take() {
                    wake(&w.g, w.serial, Reason::Timeout(w.serial));
                }
            });
            WaitTimer { timer, armed }
        });
        t.armed.set(Some(waker));
        t.timer.set(d, Duration::ZERO);
        t.timer.start();
        t
    }

    /// Stop `t`, disarm it and keep it for the next wait (or drop it if enough are idle).
    #[inline(never)]
    pub(super) fn give_back(&self, t: WaitTimer) {
        t.timer.stop();
        // Drops the wait's greenlet reference before the timer idles.
        t.armed.set(None);
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
