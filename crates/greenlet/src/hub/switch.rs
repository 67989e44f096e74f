//! The stack switch: [`switch_to`] / [`switch_from`] resume another greenlet's context,
//! handing it one word (the hand-off: who switched, whether it finished, and why); the
//! greenlet switched in reads it back in [`switched_in`]. Also the entry points of a spawned
//! greenlet ([`greenlet_entry`]) and of the hub ([`hub_entry`]), and [`finish`].
//!
//! # Safety of the stack switching
//!
//! Greenlets run on separate stacks and switch with `context`'s `resume`. The invariants:
//!
//! * Only the thread that created a hub ever switches between its greenlets (every handle is
//!   `!Send`).
//! * A greenlet's saved `Context` is taken out (`Cell::take`) exactly when it is resumed and put
//!   back by whoever it switches to, so a context is never resumed twice.
//! * A greenlet's stack is released only after the greenlet has finished and switched away for
//!   the last time, by the greenlet it switched to.
//! * Panics never cross a switch: each greenlet's body runs inside `catch_unwind`, and killing
//!   a suspended greenlet resumes it with a flag so that it unwinds its own stack in ordinary
//!   Rust code (see `check_kill`, in `wait.rs`).

use super::core::{GlCore, Link, Outcome};
use super::guard::check_canary;
use super::tls::{CURRENT, HUB, current_ptr};
use super::wait::wake;
use super::{HubInner, hub, try_hub, with_hub};
use context::{Context, Transfer};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;

/// The reason a greenlet is switched in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Reason {
    /// Started, or woken by the thing it waited for.
    Wake,
    /// A timeout expired.
    Timeout(u64),
    /// Killed: unwind.
    Kill,
    /// The loop ran out of work (only ever sent to the root greenlet).
    LoopExit,
}

/// What a switch hands to the greenlet it switches in travels in the one word `resume`
/// passes, in registers: the address of the switching greenlet's `GlCore` (8-aligned), whether
/// it has finished ([`HANDOFF_DEAD`]) and the reason, in the low bits ([`HANDOFF_REASON`]:
/// wake 0, kill 1, loop exit 2, timeout 3; a timeout's id goes in the target's `timeout_in`).
const HANDOFF_REASON: usize = 3;
/// See [`HANDOFF_REASON`].
const HANDOFF_DEAD: usize = 4;
const _: () = assert!(std::mem::align_of::<GlCore>() > HANDOFF_REASON | HANDOFF_DEAD);

/// The hand-off word of a switch from `from` to `to` (see [`HANDOFF_REASON`]).
#[inline(always)]
fn handoff_word(from: *const GlCore, from_dead: bool, reason: Reason, to: &GlCore) -> usize {
    from as usize | if from_dead { HANDOFF_DEAD } else { 0 } | reason.to_bits(to)
}

/// The switching greenlet's `GlCore`, from a hand-off word.
#[inline(always)]
fn handoff_sender(handoff: usize) -> *const GlCore {
    (handoff & !(HANDOFF_REASON | HANDOFF_DEAD)) as *const GlCore
}

/// The stack pointer of a suspended context: boost.context's `fcontext_t`, which the
/// `context` crate wraps, is the address its registers were saved at.
#[inline(always)]
pub(super) fn context_sp(c: &Context) -> usize {
    const _: () = assert!(std::mem::size_of::<Context>() == std::mem::size_of::<usize>());
    // SAFETY: `Context` is `#[repr(C)]` around a single `&'static c_void` (checked to be one
    // word above), so its bits are that pointer; reading them as an integer changes nothing.
    unsafe { std::mem::transmute_copy::<Context, usize>(c) }
}

/// Switch from the current greenlet to `to`. Returns the reason this greenlet is switched back
/// in with.
///
/// Always inlined: after a stack switch every return up the call chain is mispredicted (the
/// CPU's return-stack predictions belong to the other stack), so each call level between the
/// user's code and `jump_fcontext` costs a few nanoseconds per switch.
#[inline(always)]
pub(super) fn switch_to(to: &GlCore, reason: Reason, from_dead: bool) -> Reason {
    let hp = HUB.with(|p| p.get());
    // SAFETY: HUB is non-null only while HUB_OWNER keeps the hub alive; the reference is used
    // only within `switch_from`, before the switch.
    let h = (!hp.is_null()).then(|| unsafe { &*hp });
    switch_from(h, current_ptr(), to, reason, from_dead, true)
}

/// [`switch_to`] with the hub and the current greenlet (`from`) already at hand. `publish`:
/// tell the blocking monitor (direct switches tell it from `direct_budget` instead).
#[inline(always)]
pub(super) fn switch_from(
    h: Option<&HubInner>,
    from: *const GlCore,
    to: &GlCore,
    reason: Reason,
    from_dead: bool,
    publish: bool,
) -> Reason {
    // (Not `unwrap_or_else` with a closure: capturing `to` by reference would make it spill
    // to the stack on every switch.)
    let Some(ctx) = to.ctx.take() else {
        no_saved_context(to)
    };
    CURRENT.with(|c| c.set(to));
    if let Some(h) = h {
        h.switches.set(h.switches.get().wrapping_add(1));
        if publish {
            h.monitor.on_switch(h.switches.get(), to.id);
        }
    }
    let handoff = handoff_word(from, from_dead, reason, to);
    // SAFETY: `ctx` is the saved context of `to`, taken out so it is resumed only once; `to`'s
    // stack is alive (released only after it finishes).
    let t = unsafe { ctx.resume(handoff) };
    switched_in(t)
}

/// Runs first in a greenlet that was just switched in: store the context of the greenlet that
/// switched to us, or release its stack if it finished.
#[inline(always)]
fn switched_in(t: Transfer) -> Reason {
    let handoff = t.data;
    if handoff & (HANDOFF_REASON | HANDOFF_DEAD) != 0 {
        return switched_in_other(t);
    }
    // A wake-up from a greenlet that lives on (the common case, written out for the direct
    // switch).
    // SAFETY: every resume passes the switching greenlet's GlCore (CURRENT then, alive: kept
    // by the hub's registry of live greenlets, or by the hub itself for its own greenlet and
    // the root) with flags in the low bits, here all clear (see `switch_from`).
    let from = unsafe { &*(handoff as *const GlCore) };
    keep_context(from, t);
    Reason::Wake
}

/// [`switched_in`] for another reason than a wake-up, or from a greenlet that has finished.
#[inline(never)]
fn switched_in_other(t: Transfer) -> Reason {
    let handoff = t.data;
    // SAFETY: as in `switched_in`; a finished greenlet's GlCore stays alive until the
    // cleanup in `release_finished`.
    let from = unsafe { &*handoff_sender(handoff) };
    // SAFETY: CURRENT is the greenlet being switched in, alive (see `current`).
    let reason = Reason::from_bits(handoff & HANDOFF_REASON, unsafe { &*current_ptr() });
    if handoff & HANDOFF_DEAD != 0 {
        release_finished(from, t);
    } else {
        keep_context(from, t);
    }
    reason
}

/// Keep the context of `from`, which just switched out alive, for switching back to it; and
/// check its canary-mode stack, once per switch, here on the next greenlet's stack.
#[inline(always)]
fn keep_context(from: &GlCore, t: Transfer) {
    check_canary(from, context_sp(&t.context));
    from.ctx.set(Some(t.context));
}

impl Reason {
    /// The reason's bits in the hand-off word (see [`HANDOFF_REASON`]); a timeout's id goes
    /// to `to`, the greenlet being switched to.
    #[inline(always)]
    fn to_bits(self, to: &GlCore) -> usize {
        match self {
            Reason::Wake => 0,
            Reason::Kill => 1,
            Reason::LoopExit => 2,
            Reason::Timeout(id) => {
                to.timeout_in.set(id);
                3
            }
        }
    }

    /// The reason from its bits, read by `me`, the greenlet switched in.
    fn from_bits(bits: usize, me: &GlCore) -> Reason {
        match bits {
            0 => Reason::Wake,
            1 => Reason::Kill,
            2 => Reason::LoopExit,
            _ => Reason::Timeout(me.timeout_in.get()),
        }
    }
}

#[cold]
#[inline(never)]
fn no_saved_context(g: &GlCore) -> ! {
    panic!("internal error: {g:?} has no saved context to resume")
}

/// The greenlet that switched to us has finished: forget its context and free its stack.
#[inline(never)]
fn release_finished(from: &GlCore, t: Transfer) {
    check_canary(from, context_sp(&t.context));
    // It will never run again: forget its context (a plain pointer) and return its stack to
    // the pool. We are on another stack now, so this is safe.
    let _ = t.context;
    let stack = from.stack.take();
    let id = from.id;
    drop(stack);
    if let Some(hub) = try_hub() {
        hub.live.borrow_mut().remove(&id);
    }
}

pub(super) extern "C" fn greenlet_entry(t: Transfer) -> ! {
    let reason = switched_in(t);
    let me_ptr = current_ptr();
    {
        // SAFETY: we are CURRENT, registered in the hub's `live` map.
        let me = unsafe { &*me_ptr };
        let body = me.body.take();
        let outcome = if reason == Reason::Kill || me.kill_requested.get() {
            if let Some(body) = body {
                body.discard();
            }
            Outcome::Killed
        } else {
            match body {
                // The body catches its own panics (including the kill signal).
                Some(body) => body.run(),
                None => Outcome::Killed,
            }
        };
        finish(me, outcome);
    }
    let hub_gl: *const GlCore = with_hub(|h| Rc::as_ptr(&h.gl));
    // SAFETY: the hub greenlet outlives every greenlet of its thread.
    switch_to(unsafe { &*hub_gl }, Reason::Wake, true);
    unreachable!("a finished greenlet was resumed");
}

/// Mark `me` finished and notify its links.
pub(crate) fn finish(me: &GlCore, outcome: Outcome) {
    me.outcome.set(outcome);
    // A finished greenlet must not park by a direct switch (its locals' destructors may call
    // `switch_to`): the slow path refuses with `Error::Dead`.
    me.update_attention();
    me.waiting.set(0);
    if let Some(h) = try_hub() {
        h.monitor.on_finish(me.id);
    }
    // Greenlet-local values die with the greenlet (their destructors run here, on its stack).
    me.drop_locals();
    let links = me.links.take_all();
    for link in links {
        match link {
            Link::Wake(g, serial) => {
                wake(&g, serial, Reason::Wake);
            }
            Link::Raw(f) | Link::Keyed(_, f) => {
                if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
                    log::error!(
                        "a link callback of greenlet {} panicked: {}",
                        me.name(),
                        crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
                    );
                }
            }
        }
    }
}

pub(super) extern "C" fn hub_entry(t: Transfer) -> ! {
    switched_in(t);
    loop {
        let h = hub();
        let lp = h.lp.clone();
        let root = h.root.clone();
        drop(h);
        let result = panic::catch_unwind(AssertUnwindSafe(|| lp.run()));
        if let Err(p) = result {
            log::error!(
                "a hub callback panicked: {}",
                crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
            );
            continue;
        }
        drop(lp);
        // Nothing is left that could wake anyone: tell the root greenlet.
        root.waiting.set(0);
        let r: *const GlCore = Rc::as_ptr(&root);
        drop(root);
        // SAFETY: the root greenlet lives as long as the hub.
        switch_to(unsafe { &*r }, Reason::LoopExit, false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handoff_round_trips_every_reason() {
        let from = GlCore::new(7, None, false);
        let to = GlCore::new(8, None, false);
        let reasons = [
            Reason::Wake,
            Reason::Kill,
            Reason::LoopExit,
            Reason::Timeout(42),
            Reason::Timeout(1 << 62),
        ];
        for reason in reasons {
            for dead in [false, true] {
                let word = handoff_word(&from, dead, reason, &to);
                assert_eq!(handoff_sender(word), &from as *const GlCore);
                assert_eq!(word & HANDOFF_DEAD != 0, dead);
                // The greenlet switched in reads the reason (a timeout's id from its own
                // record).
                assert_eq!(Reason::from_bits(word & HANDOFF_REASON, &to), reason);
                // `switched_in`'s fast path takes exactly the wake-ups from a live greenlet.
                let fast = word & (HANDOFF_REASON | HANDOFF_DEAD) == 0;
                assert_eq!(fast, reason == Reason::Wake && !dead);
            }
        }
    }
}
