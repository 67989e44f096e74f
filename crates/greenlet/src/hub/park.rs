//! Parking: [`park`] blocks the current greenlet until [`unpark`] (an unpark that comes
//! first leaves a token), and [`switch_to_parked`] hands the thread straight to a parked
//! greenlet, without the hub, while parking the caller: the ~10 ns switch of
//! [`park::switch_to`](crate::park::switch_to).

use super::core::GlCore;
use super::switch::{Reason, switch_from};
use super::tls::{HUB, current_ptr};
use super::wait::{Waiter, wake, woken_with};
use crate::error::{Error, Result};
use std::rc::Rc;
use std::time::Duration;

/// Set in a greenlet's wait serial while it is parked (`next_serial` never reaches it).
pub(super) const PARKED: u64 = 1 << 63;

/// The wait serial of a greenlet parked by a direct switch (with [`PARKED`] set). One value
/// serves every greenlet because nothing keeps a serial read from `waiting` to wake it later:
/// `unpark`, `request_kill` and `timeout_fired` read it when they wake.
pub(super) const DIRECT_PARK: u64 = u64::MAX;

impl Waiter {
    /// Make the wait a park: `unpark` wakes it (so do direct switches).
    fn mark_parked(&mut self) {
        self.serial |= PARKED;
        self.me.waiting.set(self.serial);
    }
}

/// Park the current greenlet until [`unpark`] (or a direct [`switch_to_parked`]), the
/// optional timeout, a kill or an enclosing `Timeout`. Returns at once, consuming it, if an
/// unpark token is waiting. `Ok(false)` on the call's own timeout.
pub(crate) fn park(timeout: Option<Duration>) -> Result<bool> {
    let mut w = Waiter::new("park")?;
    if w.me.unpark_token.get() {
        w.me.set_unpark_token(false);
        return Ok(true);
    }
    // Cleared again by `woken_with`, however the wait ends.
    w.mark_parked();
    w.wait_for(timeout)
}

/// Wake `g` if it is parked; otherwise leave it a token so that its next park returns at once.
pub(crate) fn unpark(g: &Rc<GlCore>) {
    if g.is_dead() {
        return;
    }
    // The running greenlet is not parked, whatever its `waiting` says (see `GlCore::waiting`).
    let serial = g.waiting.get();
    let running = std::ptr::eq(Rc::as_ptr(g), current_ptr());
    if running || !(serial & PARKED != 0 && wake(g, serial, Reason::Wake)) {
        g.set_unpark_token(true);
    }
}

/// Unpark `target` and park the current greenlet (discarding an unpark token it had: it waits
/// for a switch or an unpark that comes after this call). When `target` is parked, switch to
/// it directly, without going through the hub's queue.
///
/// The direct path is written out here rather than through `Waiter` and takes no reference
/// counts: it is the whole cost of a switch between two greenlets. Always inlined, like
/// `switch_to`, to keep call levels out of the switch.
#[inline(always)]
pub(crate) fn switch_to_parked(target: &Rc<GlCore>) -> Result<()> {
    let cur = current_ptr();
    if cur.is_null() || target.waiting.get() & PARKED == 0 {
        return switch_to_parked_slow(target);
    }
    // SAFETY: a non-null CURRENT means a live hub in HUB: the two are set back to back once
    // HUB_OWNER holds the hub (`hub()`) and cleared back to back before it lets go
    // (`HubOwner::drop`), with no code in between; used before the switch.
    let h = unsafe { &*HUB.with(|p| p.get()) };
    // SAFETY: a non-null CURRENT is the running greenlet's GlCore, kept alive by the hub (the
    // root and the hub greenlet) or by the registry of live greenlets (which it leaves only
    // after switching away for the last time, so not while this call runs on its stack).
    let me = unsafe { &*cur };
    // The slow path deals with everything unusual: the hub itself, a switch to ourselves, a
    // pending kill or Timeout expiry, an unpark token to discard, a finished greenlet (all
    // but the switch to ourselves set `attention`), a spent budget.
    if me.attention.get() || std::ptr::eq(me, Rc::as_ptr(target)) || !h.direct_budget(target) {
        return switch_to_parked_slow(target);
    }
    // Only live reads of `waiting` (unpark, a direct switch, a kill, a Timeout scope) ever
    // wake a parked greenlet, never a stale token, so this one serial serves every direct
    // park. (An unpark token to discard took the slow path: it sets `attention`.)
    me.waiting.set(DIRECT_PARK);
    // Take over `target`'s wait and run it now instead of queueing it. Its `waiting` is left
    // as it is: `woken_with` clears it if `target` parked through a `Waiter`, and one that
    // parked here keeps DIRECT_PARK while it runs, as we do when we come back (see
    // `GlCore::waiting`). The blocking monitor hears of direct switches from `direct_budget`.
    let reason = switch_from(Some(h), cur, target, Reason::Wake, false, false);
    if reason == Reason::Wake && !me.attention.get() {
        return Ok(());
    }
    woken_with(me, reason)
}

/// `switch_to_parked` when `target` is not parked (or the direct-switch budget is spent, or a
/// kill is pending): unpark it and park through the hub.
#[inline(never)]
fn switch_to_parked_slow(target: &Rc<GlCore>) -> Result<()> {
    if target.is_dead() {
        return Err(Error::Dead);
    }
    let w = Waiter::new("park")?;
    if Rc::ptr_eq(&w.me, target) {
        return Ok(());
    }
    let mut w = w;
    w.me.set_unpark_token(false);
    w.mark_parked();
    unpark(target);
    w.wait(None)
}
