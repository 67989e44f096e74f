//! The stack-overflow checks: [`guard_hit`] names the greenlet whose guard page a fault hit
//! (for the handler in `overflow`), [`check_canary`] checks a canary-mode stack on every
//! switch.

use super::core::GlCore;
use super::tls::CURRENT;

/// Set in `GlCore::stack_check` when it holds a canary word's address rather than a guard
/// page's top (both are at least word-aligned, so bit 0 is free).
pub(super) const CANARY_BIT: usize = 1;

/// If `addr` is in the guard page of the current greenlet, its name (for the overflow
/// report). Called from a signal handler: reads only plain fields, allocates nothing.
/// Returns the name if the greenlet was given one (or it was made already), else its id (the
/// handler spells `Greenlet-<id>` itself: it must not allocate).
pub(crate) fn guard_hit(addr: usize) -> Option<(Option<&'static [u8]>, u64)> {
    let p = CURRENT.try_with(|c| c.get()).ok()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: CURRENT points at the running greenlet's live GlCore (see `current`); its guard
    // range and name are never modified after creation.
    let g = unsafe { &*p };
    let hi = g.stack_check.get();
    if hi != 0 && hi & CANARY_BIT == 0 && addr >= hi - crate::stack::page_size() && addr < hi {
        let name = g.name_if_set().map(|n| {
            // SAFETY: a name, once set, lives as long as the GlCore and never changes; the
            // caller aborts right after printing it.
            unsafe { std::mem::transmute::<&[u8], &'static [u8]>(n.as_bytes()) }
        });
        Some((name, g.id))
    } else {
        None
    }
}

/// Abort with the greenlet's name if its canary-mode stack overflowed: either its stack
/// pointer `sp` (when it switched out) is below the stack, or the canary word at the bottom was
/// overwritten. Guard-page stacks pay one load and one branch.
#[inline(always)]
pub(super) fn check_canary(g: &GlCore, sp: usize) {
    let v = g.stack_check.get();
    if v & CANARY_BIT != 0 {
        check_canary_slot(g, v & !CANARY_BIT, sp);
    }
}

#[inline(never)]
fn check_canary_slot(g: &GlCore, addr: usize, sp: usize) {
    // SAFETY: a `stack_check` with the canary bit holds the canary word of that greenlet's
    // live stack.
    if sp < addr + 64 || !unsafe { crate::stack::canary_intact(addr) } {
        canary_smashed(g);
    }
}

#[cold]
fn canary_smashed(g: &GlCore) -> ! {
    eprintln!(
        "\ngreenlet '{}' has overflowed its stack (its canary was overwritten; the stack below \
         it may be damaged too); aborting",
        g.name()
    );
    std::process::abort();
}
