//! Rust equivalents of libev's function-like macros.
//!
//! Each function does exactly what the C macro of the same name does (see `ev.h`), field for
//! field; the `macros_match_c` test runs every one next to the C macro (through the `evshim_*`
//! functions compiled from `shim/ev_shim.c`) and compares the resulting watcher bytes.
//!
//! All of them are `unsafe`: they take raw watcher pointers, which must be valid and properly
//! aligned, and libev forbids changing most fields while a watcher is active.
//!
//! ```
//! use libev_sys::{ev_io, macros::*, EV_READ};
//! let mut io = ev_io::default();
//! // SAFETY: `io` is a valid, inactive watcher on this stack frame.
//! unsafe {
//!     ev_io_init(&mut io, None, 0, EV_READ);
//!     assert_eq!(io.fd, 0);
//!     assert!(!ev_is_active(&io));
//! }
//! ```

use crate::raw::*;
use std::os::raw::c_int;

/// Implemented by every libev watcher struct, all of which start with the `EV_WATCHER` fields
/// (`active`, `pending`, `priority`, `data`, `cb`), so a pointer to one can be viewed as a
/// pointer to [`ev_watcher`].
///
/// # Safety
///
/// Only for `#[repr(C)]` structs whose layout begins with exactly the fields of `ev_watcher`.
pub unsafe trait Watcher {}

// SAFETY: each of these bindgen structs is libev's watcher struct, which `ev.h` declares with
// `EV_WATCHER (type)` (or `EV_WATCHER_LIST`/`EV_WATCHER_TIME`, which begin with `EV_WATCHER`) as
// its first member list; bindgen's layout tests check the offsets.
unsafe impl Watcher for ev_watcher {}
// SAFETY: see above.
unsafe impl Watcher for ev_watcher_list {}
// SAFETY: see above.
unsafe impl Watcher for ev_watcher_time {}
// SAFETY: see above.
unsafe impl Watcher for ev_io {}
// SAFETY: see above.
unsafe impl Watcher for ev_timer {}
// SAFETY: see above.
unsafe impl Watcher for ev_periodic {}
// SAFETY: see above.
unsafe impl Watcher for ev_signal {}
// SAFETY: see above.
unsafe impl Watcher for ev_child {}
// SAFETY: see above.
unsafe impl Watcher for ev_stat {}
// SAFETY: see above.
unsafe impl Watcher for ev_idle {}
// SAFETY: see above.
unsafe impl Watcher for ev_prepare {}
// SAFETY: see above.
unsafe impl Watcher for ev_check {}
// SAFETY: see above.
unsafe impl Watcher for ev_fork {}
// SAFETY: see above.
unsafe impl Watcher for ev_cleanup {}
// SAFETY: see above.
unsafe impl Watcher for ev_embed {}
// SAFETY: see above.
unsafe impl Watcher for ev_async {}

/// A callback for a watcher of type `W`, as libev calls it.
pub type Callback<W> = Option<unsafe extern "C" fn(*mut ev_loop, *mut W, c_int)>;

#[inline(always)]
fn base<W: Watcher>(w: *mut W) -> *mut ev_watcher {
    w.cast()
}

/// `ev_init(w, cb)`: mark the watcher inactive and not pending, priority 0, set the callback.
///
/// # Safety
/// `w` must be valid for writes and not active in any loop.
#[inline]
pub unsafe fn ev_init<W: Watcher>(w: *mut W, cb: Callback<W>) {
    let b = base(w);
    // SAFETY: the caller guarantees `w` is valid; `Watcher` guarantees the `ev_watcher` prefix.
    unsafe {
        (*b).active = 0;
        (*b).pending = 0;
        (*b).priority = 0;
        ev_set_cb(w, cb);
    }
}

/// `ev_set_cb(w, cb)`: replace the callback.
///
/// # Safety
/// `w` must be valid for writes.
#[inline]
pub unsafe fn ev_set_cb<W: Watcher>(w: *mut W, cb: Callback<W>) {
    // SAFETY: a C function pointer taking `*mut W` has the same representation and ABI as one
    // taking `*mut ev_watcher` (both are thin data pointers); libev calls it with the watcher it
    // was registered on, which is a `W`. This is exactly the cast the C macro performs.
    unsafe {
        (*base(w)).cb = std::mem::transmute::<Callback<W>, Callback<ev_watcher>>(cb);
    }
}

/// `ev_is_active(w)`: whether the watcher is started.
///
/// # Safety
/// `w` must be valid for reads.
#[inline(always)]
pub unsafe fn ev_is_active<W: Watcher>(w: *const W) -> bool {
    // SAFETY: the caller guarantees `w` is valid; the prefix is an `ev_watcher`.
    unsafe { (*(w as *const ev_watcher)).active != 0 }
}

/// `ev_is_pending(w)`: whether the watcher has an event waiting for its callback.
///
/// # Safety
/// `w` must be valid for reads.
#[inline(always)]
pub unsafe fn ev_is_pending<W: Watcher>(w: *const W) -> bool {
    // SAFETY: as for `ev_is_active`.
    unsafe { (*(w as *const ev_watcher)).pending != 0 }
}

/// `ev_priority(w)`.
///
/// # Safety
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_priority<W: Watcher>(w: *const W) -> c_int {
    // SAFETY: as for `ev_is_active`.
    unsafe { (*(w as *const ev_watcher)).priority }
}

/// `ev_set_priority(w, pri)`. libev clamps out-of-range values when the watcher is started.
///
/// # Safety
/// `w` must be valid for writes and neither active nor pending.
#[inline]
pub unsafe fn ev_set_priority<W: Watcher>(w: *mut W, priority: c_int) {
    // SAFETY: as for `ev_init`.
    unsafe { (*base(w)).priority = priority }
}

/// `ev_io_set(w, fd, events)`.
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_io_set(w: *mut ev_io, fd: c_int, events: c_int) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe {
        (*w).fd = fd;
        (*w).events = events | EV__IOFDSET;
    }
}

/// `ev_io_modify(w, events)`: change the events but keep the "fd changed" flag as it is.
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_io_modify(w: *mut ev_io, events: c_int) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe { (*w).events = ((*w).events & EV__IOFDSET) | events }
}

/// `ev_io_init(w, cb, fd, events)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_io_init(w: *mut ev_io, cb: Callback<ev_io>, fd: c_int, events: c_int) {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        ev_init(w, cb);
        ev_io_set(w, fd, events);
    }
}

/// `ev_timer_set(w, after, repeat)`.
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_timer_set(w: *mut ev_timer, after: ev_tstamp, repeat: ev_tstamp) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe {
        (*w).at = after;
        (*w).repeat = repeat;
    }
}

/// `ev_timer_init(w, cb, after, repeat)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_timer_init(
    w: *mut ev_timer,
    cb: Callback<ev_timer>,
    after: ev_tstamp,
    repeat: ev_tstamp,
) {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        ev_init(w, cb);
        ev_timer_set(w, after, repeat);
    }
}

/// `ev_periodic_set(w, offset, interval, NULL)` (no reschedule callback).
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_periodic_set(w: *mut ev_periodic, offset: ev_tstamp, interval: ev_tstamp) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe {
        (*w).offset = offset;
        (*w).interval = interval;
        (*w).reschedule_cb = None;
    }
}

/// `ev_periodic_init(w, cb, offset, interval, NULL)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_periodic_init(
    w: *mut ev_periodic,
    cb: Callback<ev_periodic>,
    offset: ev_tstamp,
    interval: ev_tstamp,
) {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        ev_init(w, cb);
        ev_periodic_set(w, offset, interval);
    }
}

/// `ev_periodic_at(w)`: the absolute time of the next trigger.
///
/// # Safety
/// `w` must be valid for reads.
#[inline]
pub unsafe fn ev_periodic_at(w: *const ev_periodic) -> ev_tstamp {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe { (*w).at }
}

/// `ev_signal_set(w, signum)`.
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_signal_set(w: *mut ev_signal, signum: c_int) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe { (*w).signum = signum }
}

/// `ev_signal_init(w, cb, signum)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_signal_init(w: *mut ev_signal, cb: Callback<ev_signal>, signum: c_int) {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        ev_init(w, cb);
        ev_signal_set(w, signum);
    }
}

/// `ev_child_set(w, pid, trace)`: `pid` 0 means any child; `trace` also reports stops.
///
/// # Safety
/// `w` must be valid for writes and not active.
#[inline]
pub unsafe fn ev_child_set(w: *mut ev_child, pid: c_int, trace: bool) {
    // SAFETY: the caller guarantees `w` is valid.
    unsafe {
        (*w).pid = pid;
        (*w).flags = trace as c_int;
    }
}

/// `ev_child_init(w, cb, pid, trace)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_child_init(w: *mut ev_child, cb: Callback<ev_child>, pid: c_int, trace: bool) {
    // SAFETY: forwarded caller guarantees.
    unsafe {
        ev_init(w, cb);
        ev_child_set(w, pid, trace);
    }
}

/// `ev_idle_init`, `ev_prepare_init`, `ev_check_init`, `ev_async_init`, `ev_fork_init` and
/// `ev_cleanup_init` are all plain [`ev_init`] (their `_set` macros do nothing).
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_prepare_init(w: *mut ev_prepare, cb: Callback<ev_prepare>) {
    // SAFETY: forwarded caller guarantees.
    unsafe { ev_init(w, cb) }
}

/// `ev_check_init(w, cb)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_check_init(w: *mut ev_check, cb: Callback<ev_check>) {
    // SAFETY: forwarded caller guarantees.
    unsafe { ev_init(w, cb) }
}

/// `ev_idle_init(w, cb)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_idle_init(w: *mut ev_idle, cb: Callback<ev_idle>) {
    // SAFETY: forwarded caller guarantees.
    unsafe { ev_init(w, cb) }
}

/// `ev_async_init(w, cb)`.
///
/// # Safety
/// As for [`ev_init`].
#[inline]
pub unsafe fn ev_async_init(w: *mut ev_async, cb: Callback<ev_async>) {
    // SAFETY: forwarded caller guarantees.
    unsafe { ev_init(w, cb) }
}

/// `ev_async_pending(w)`: whether `ev_async_send` was called and the event not yet delivered.
///
/// # Safety
/// `w` must be valid for reads. The field is written by other threads through
/// `ev_async_send`; this is a racy snapshot exactly like the C macro.
#[inline]
pub unsafe fn ev_async_pending(w: *const ev_async) -> bool {
    // SAFETY: the caller guarantees `w` is valid; a volatile read mirrors C's `sig_atomic_t
    // volatile` field.
    unsafe { std::ptr::read_volatile(&(*w).sent) != 0 }
}

/// `ev_is_default_loop(loop)`: whether `lp` is the default loop.
///
/// # Safety
/// Reads libev's global `ev_default_loop_ptr`; `lp` is only compared, never dereferenced.
#[inline]
pub unsafe fn ev_is_default_loop(lp: *mut ev_loop) -> bool {
    // SAFETY: reading a global pointer that libev writes only in ev_default_loop and
    // ev_loop_destroy; the caller accepts the same race the C inline function has.
    unsafe { !lp.is_null() && lp == std::ptr::addr_of!(crate::ev_default_loop_ptr).read() }
}
