//! Giving back the stack pages of greenlets that are switched out ([`trim_parked_stacks`]):
//! what [`trim_stack`](crate::trim_stack) does for the running greenlet, for all the others.

use super::core::GlCore;
use super::park::DIRECT_PARK;
use super::switch::context_sp;
use super::tls::{CURRENT, current_ptr};
use super::{has_hub, hub_loop, with_hub};
use ev_loop::Timer;
use std::time::Duration;

/// Give back to the system the stack pages of every other greenlet this thread's hub runs
/// (not the hub's own) that lie below the frames it is switched out in (their saved
/// registers are the lowest thing in use): the pages it touched when it last went deeper
/// than it now waits. A greenlet that has waited in the same wait since the last call is
/// left alone (nothing of its stack can have changed), so a call costs a `madvise` for each
/// greenlet that ran since the last one. The free stacks the thread keeps for new greenlets
/// are given back too, each once after it was freed. Returns the bytes given back, resident
/// or not; 0 on a thread without a hub.
///
/// Meant to be called now and then ([`set_stack_trim_interval`] has the hub do it): after a
/// burst of work, greenlets that went deep and then wait long with shallow frames
/// (connections of a keep-alive pool, workers waiting on a queue) otherwise keep every page
/// they touched.
///
/// ```
/// #[inline(never)]
/// fn deep() {
///     let mut buf = [0u8; 64 * 1024];
///     for i in (0..buf.len()).step_by(512) { buf[i] = 1; }
///     std::hint::black_box(&mut buf);
/// }
/// let ev = std::rc::Rc::new(greenlet::Event::new());
/// let e = ev.clone();
/// let g = greenlet::spawn(move || {
///     deep();
///     e.wait().unwrap(); // parked with shallow frames
/// });
/// greenlet::yield_now().unwrap();
/// assert!(greenlet::trim_parked_stacks() >= 64 * 1024);
/// assert_eq!(greenlet::trim_parked_stacks(), 0); // nothing ran since
/// ev.set();
/// g.join().unwrap();
/// ```
pub fn trim_parked_stacks() -> usize {
    if !has_hub() {
        return 0;
    }
    let parked: usize = with_hub(|h| {
        let current = current_ptr();
        h.live
            .borrow()
            .values()
            .filter(|g| !std::ptr::eq(&***g, current))
            .map(|g| trim_parked(g))
            .sum()
    });
    parked + crate::stack::trim_pooled()
}

/// [`trim_parked_stacks`] for one greenlet that is not running.
fn trim_parked(g: &GlCore) -> usize {
    // Its wait's serial: unique to that wait, so an unchanged one means it has not run
    // since its last trim. Direct parks and greenlets not blocked (queued to run, not
    // started) carry no serial of their own: they are trimmed each time.
    let wait = g.waiting.get();
    if wait != 0 && wait != DIRECT_PARK && wait == g.trimmed_wait.get() {
        return 0;
    }
    // Only one that owns its stack and is switched out on it: its saved context is then the
    // lowest of its stack in use. (A finished greenlet has neither; the root's stack is the
    // thread's.)
    let Some((floor, canary)) = owned_stack_floor(g) else {
        return 0;
    };
    let ctx = g.ctx.take();
    let sp = ctx.as_ref().map(context_sp);
    g.ctx.set(ctx);
    let Some(sp) = sp else {
        return 0;
    };
    g.trimmed_wait.set(wait);
    // SAFETY: the stack is this greenlet's own (it holds it), and the greenlet is switched
    // out with its registers saved at `sp`: below that nothing of it is in use, and nothing
    // else points there (a greenlet's stack below its frames is nobody's).
    unsafe { crate::stack::release_below(floor, canary, sp) }
}

/// The lowest address of the stack `g` owns, and whether it is a canary-mode one (whose
/// lowest page it shares with the stack below it); `None` if it owns none (the thread's root
/// greenlet, a finished one).
fn owned_stack_floor(g: &GlCore) -> Option<(usize, bool)> {
    let stack = g.stack.take()?;
    let floor = (stack.bounds().0, stack.canary().is_some());
    g.stack.set(Some(stack));
    Some(floor)
}

/// [`owned_stack_floor`] of the running greenlet: `None` on the thread's own stack, or on a
/// thread without a hub.
pub(crate) fn current_stack_floor() -> Option<(usize, bool)> {
    let p = CURRENT.try_with(|c| c.get()).ok()?;
    if p.is_null() {
        return None;
    }
    // SAFETY: CURRENT points at the running greenlet's live GlCore (see `tls::current`).
    owned_stack_floor(unsafe { &*p })
}

/// Have this thread's hub call [`trim_parked_stacks`] every `interval` (`None`: no more), from
/// a timer that does not keep the loop running. Off by default; the HTTP server turns it on
/// (every ten seconds) on the threads it serves on, if nothing else set it.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(greenlet::hub::stack_trim_interval(), None);
/// greenlet::hub::set_stack_trim_interval(Some(Duration::from_secs(10)));
/// assert_eq!(greenlet::hub::stack_trim_interval(), Some(Duration::from_secs(10)));
/// greenlet::sleep(Duration::from_millis(1)).unwrap(); // the timer does not hold the loop up
/// greenlet::hub::set_stack_trim_interval(None);
/// ```
pub fn set_stack_trim_interval(interval: Option<Duration>) {
    let timer = interval.filter(|d| !d.is_zero()).map(|d| {
        let lp = hub_loop();
        let t = Timer::new(&lp, d, d, |_, _| {
            trim_parked_stacks();
        });
        t.set_keep_alive(false);
        t.start();
        t
    });
    // The old timer, if any, is stopped as it is dropped (outside the borrow).
    let old = with_hub(|h| h.trim_timer.replace(timer));
    drop(old);
}

/// The interval set with [`set_stack_trim_interval`], if any.
///
/// ```
/// assert_eq!(greenlet::hub::stack_trim_interval(), None);
/// ```
pub fn stack_trim_interval() -> Option<Duration> {
    with_hub(|h| h.trim_timer.borrow().as_ref().map(Timer::repeat))
}
