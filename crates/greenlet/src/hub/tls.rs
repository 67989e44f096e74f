//! The thread-locals of the hub: the hub itself (owned by [`HUB_OWNER`], whose destructor
//! unwinds the remaining greenlets at thread exit, and reachable through [`HUB`]), the
//! running greenlet ([`CURRENT`]) and the counter of wait serials; and what reads them
//! without creating a hub ([`has_hub`], [`in_greenlet`]).

use super::core::GlCore;
use super::queue::Callback;
use super::wait::{request_kill, wait};
use super::{HubInner, hub, hub_loop, with_hub};
use ev_loop::Break;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

thread_local! {
    /// Owns the hub; its destructor (at thread exit) kills the remaining greenlets.
    pub(super) static HUB_OWNER: HubOwner = const { HubOwner(RefCell::new(None)) };
    /// The hub, for access that must also work while `HUB_OWNER` is being destroyed.
    pub(super) static HUB: Cell<*const HubInner> = const { Cell::new(std::ptr::null()) };
    /// The running greenlet's record (null before the hub exists and after it is gone).
    pub(super) static CURRENT: Cell<*const GlCore> = const { Cell::new(std::ptr::null()) };
    /// Serials of waits: unique within the thread, never 0.
    pub(super) static NEXT_SERIAL: Cell<u64> = const { Cell::new(1) };
}

#[inline]
pub(super) fn next_serial() -> u64 {
    NEXT_SERIAL.with(|n| {
        let s = n.get();
        n.set(s + 1);
        s
    })
}

/// What `HUB_OWNER` holds: the thread's hub, once created.
pub(super) struct HubOwner(pub(super) RefCell<Option<Rc<HubInner>>>);

impl Drop for HubOwner {
    fn drop(&mut self) {
        let Some(h) = self.0.borrow_mut().take() else {
            return;
        };
        // The thread is exiting on its root stack: unwind every greenlet that is still alive
        // so that its destructors run, then let the hub go.
        kill_all(&h);
        leave_loop(&h);
        h.registration.unregister();
        HUB.with(|p| p.set(std::ptr::null()));
        CURRENT.with(|c| c.set(std::ptr::null()));
        drop(h);
    }
}

/// Kill every live greenlet of `h` and run the hub until they are gone (a few rounds at most:
/// a greenlet that swallows its kill is left behind).
pub(crate) fn kill_all(h: &Rc<HubInner>) {
    let cur = CURRENT.with(|c| c.get());
    if !cur.is_null() && cur != Rc::as_ptr(&h.root) {
        return;
    }
    for _ in 0..3 {
        let live: Vec<Rc<GlCore>> = h.live.borrow().values().cloned().collect();
        if live.is_empty() {
            return;
        }
        for g in &live {
            request_kill(g);
        }
        drop(live);
        // Runs the queued kills; returns once the loop has nothing left (or after a bound).
        let _ = wait(Some(Duration::from_secs(1)));
    }
    let left = h.live.borrow().len();
    if left > 0 {
        log::warn!("{left} greenlets survived being killed at hub shutdown");
    }
}

/// Make the hub greenlet return from its loop. Suspended inside it (in `drain_callbacks`), its
/// stack holds references to the hub, which would then never be freed at thread exit: its
/// libev loop (and descriptor), its stack and everything they own would leak.
fn leave_loop(h: &Rc<HubInner>) {
    let cur = CURRENT.with(|c| c.get());
    if !cur.is_null() && cur != Rc::as_ptr(&h.root) {
        return;
    }
    for _ in 0..3 {
        h.push(Callback::Call(Box::new(|| {
            hub_loop().break_loop(Break::All)
        })));
        // `Ok(true)`: the root was switched to from `hub_entry`, after the loop returned.
        if let Ok(true) = wait(None) {
            return;
        }
    }
}

/// The greenlet running now (the root if nothing was switched to yet).
pub(crate) fn current() -> Rc<GlCore> {
    let h = hub();
    let p = CURRENT.with(|c| c.get());
    if p.is_null() {
        return h.root.clone();
    }
    // CURRENT always points into an `Rc<GlCore>` that is alive: the hub's own two, or a
    // greenlet registered in `live` (it leaves `live` only after it switched away for the last
    // time, and CURRENT is updated on every switch).
    // SAFETY: see above; the extra strong count makes the returned `Rc` an owner of its own.
    unsafe {
        Rc::increment_strong_count(p);
        Rc::from_raw(p)
    }
}

#[inline]
pub(super) fn current_ptr() -> *const GlCore {
    CURRENT.with(|c| c.get())
}

/// Whether the calling thread has a hub. Never creates one, never allocates, and is
/// async-signal-safe (it reads one thread-local pointer): what code that may run on any thread
/// (a hook in front of a system call, a signal handler) asks before it cooperates.
///
/// ```
/// std::thread::spawn(|| {
///     assert!(!greenlet::hub::has_hub());
///     greenlet::yield_now().unwrap(); // creates the hub
///     assert!(greenlet::hub::has_hub());
/// })
/// .join()
/// .unwrap();
/// ```
#[inline]
pub fn has_hub() -> bool {
    HUB.try_with(|p| !p.get().is_null()).unwrap_or(false)
}

/// Whether the caller runs in a greenlet other than the hub, on a thread that has a hub: the
/// thread's root greenlet or a spawned one, which may block cooperatively. False on a thread
/// without a hub and inside the hub (its watcher and hub callbacks must not block). Like
/// [`has_hub`], it never creates a hub, never allocates and is async-signal-safe.
///
/// ```
/// std::thread::spawn(|| {
///     assert!(!greenlet::hub::in_greenlet()); // no hub yet
///     let g = greenlet::spawn(greenlet::hub::in_greenlet);
///     assert!(g.join().unwrap());
///     assert!(greenlet::hub::in_greenlet()); // the root greenlet
///     greenlet::run_callback(|| assert!(!greenlet::hub::in_greenlet())); // the hub
///     greenlet::yield_now().unwrap();
/// })
/// .join()
/// .unwrap();
/// ```
#[inline]
pub fn in_greenlet() -> bool {
    if !has_hub() {
        return false;
    }
    let p = CURRENT.try_with(|c| c.get()).unwrap_or(std::ptr::null());
    // SAFETY: CURRENT, when set, points to the GlCore of the running greenlet, which stays
    // alive while it runs (it is this very caller, or the hub's own record); null means the
    // root greenlet runs before its first switch.
    p.is_null() || !unsafe { (*p).is_hub }
}

pub(crate) fn current_is_hub() -> bool {
    with_hub(|h| current_ptr() == Rc::as_ptr(&h.gl))
}
