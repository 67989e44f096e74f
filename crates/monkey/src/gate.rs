//! The gate every hook asks first: cooperate, or go straight to the kernel.
//!
//! A hook cooperates only when its group is patched, the calling thread has a hub, the caller
//! is a greenlet other than the hub, and nothing bypasses the hooks on this thread
//! ([`unpatched`](crate::unpatched)). The per-fd part of the rule (a socket or pipe in blocking
//! mode) is the hooks' own. The gate reads one atomic and three thread-locals: it never creates
//! a hub, never allocates, never logs, and is async-signal-safe. A forked child starts
//! unpatched (its hub is a copy of the parent's, whose loop it must not touch).

use std::cell::Cell;
use std::sync::Once;
use std::sync::atomic::{AtomicU8, Ordering};

/// The patched groups, as [`crate::Groups`] bits.
pub(crate) static PATCHED: AtomicU8 = AtomicU8::new(0);

thread_local! {
    /// Depth of [`crate::unpatched`] calls on this thread.
    pub(crate) static BYPASS: Cell<u32> = const { Cell::new(0) };
}

/// Whether a hook of `group` should cooperate now.
#[inline]
pub(crate) fn cooperative(group: u8) -> bool {
    PATCHED.load(Ordering::Relaxed) & group != 0
        && BYPASS.try_with(|b| b.get() == 0).unwrap_or(false)
        && greenlet::hub::in_greenlet()
}

extern "C" fn unpatch_in_child() {
    PATCHED.store(0, Ordering::Relaxed);
}

/// Turn on `bits` (and, once, make forked children start unpatched).
pub(crate) fn patch(bits: u8) {
    static AT_FORK: Once = Once::new();
    AT_FORK.call_once(|| {
        // SAFETY: registers a child handler that only stores to an atomic (async-signal-safe,
        // as a handler that runs in a forked child must be).
        unsafe { libc::pthread_atfork(None, None, Some(unpatch_in_child)) };
    });
    PATCHED.fetch_or(bits, Ordering::SeqCst);
}
