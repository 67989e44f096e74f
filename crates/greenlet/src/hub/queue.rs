//! The hub's run queue: greenlets to switch to and callbacks ([`Callback`]), run in FIFO
//! order by [`drain_callbacks`] in batches that end so that libev gets to poll
//! (`batch_overrun`: [`CALLBACK_BATCH_TIME`], [`CALLBACK_BATCH_MAX`]); and the budget of
//! direct switches, which bypass the hub by taking the front of the queue
//! ([`HubInner::take_ready`]) until the hub must run again ([`DIRECT_SWITCH_BUDGET`]).

use super::core::GlCore;
use super::switch::{Reason, switch_to};
use super::{HubInner, hub, with_hub};
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// A queued hub callback.
pub(crate) enum Callback {
    Switch(Rc<GlCore>, Reason),
    Call(Box<dyn FnOnce()>),
}

/// A monotonic clock in nanoseconds that is cheap to read (a few ns, against about 20 for
/// `Instant::now`) and coarse (a few ms): enough to tell that a batch ran past
/// `CALLBACK_BATCH_TIME`.
pub(super) fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC_COARSE exists on every Linux this builds
    // for (since 2.6.32); on failure `ts` stays zero, which only delays the check.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How long one batch of callbacks may run, by default, before the hub lets libev poll for
/// I/O (gevent's switch interval), once it has served what was queued when it started. Each
/// hub keeps its own in `HubInner::switch_interval_ns` (see [`set_switch_interval`]); this
/// is the value it starts with.
///
/// [`set_switch_interval`]: super::set_switch_interval
pub(super) const CALLBACK_BATCH_TIME: Duration = Duration::from_millis(5);

/// How long one batch may run at most, also with entries queued before it still waiting: the
/// bound on how late a timer or an fd is looked at behind a very long run queue.
const CALLBACK_BATCH_MAX: Duration = Duration::from_millis(100);

/// After this many direct switches in a row, one goes through the hub's queue, so that the
/// hub still runs its callbacks and polls for I/O between greenlets that only switch to each
/// other. At about 5 ns a switch, that is every 40 µs or so; greenlets that work between
/// switches reach the time limit first (5 ms, gevent's switch interval, read every
/// `DIRECT_SWITCH_SLICE` switches). The detour through the hub costs about 60 ns: 2 ns of the
/// 12 ns round trip when it came every 64 switches, about 0.1 ns at 1024, nothing measurable
/// now.
const DIRECT_SWITCH_BUDGET: u64 = 8192;

/// Direct switches run in slices of this many between looks at the clock (see
/// `direct_budget`).
const DIRECT_SWITCH_SLICE: u64 = 64;

impl HubInner {
    /// Whether the current batch (since `drain_callbacks` last started) should end so that
    /// libev polls: it has run past the switch interval (`CALLBACK_BATCH_TIME` unless set, on
    /// the coarse clock) and served
    /// every entry that was queued when it started, or it has run past `CALLBACK_BATCH_MAX`.
    ///
    /// Why a batch serves what it found queued before it polls again: greenlets woken by the
    /// last poll have not re-armed their io watchers until they run, and libev's epoll
    /// backend is level-triggered, so a poll in between reports their sockets again (or
    /// removes and later re-adds them to the epoll set). With thousands of connections ready
    /// at once, polling every 5 ms regardless made each poll cost as much as every ready
    /// socket while serving a fraction of them. Greenlets queued during the batch (by each
    /// other, a chain that may never end) are bounded by the time alone.
    #[inline]
    fn batch_overrun(&self) -> bool {
        let ran = coarse_now_ns().saturating_sub(self.batch_start.get());
        (ran > self.switch_interval_ns.get() && self.served.get() >= self.batch_due.get())
            || ran > CALLBACK_BATCH_MAX.as_nanos() as u64
    }

    /// Whether another direct switch may bypass the hub (`switch_from` counts it). Once the
    /// budget is spent, every switch goes through the hub until the hub has run
    /// (`drain_callbacks` grants a new one).
    ///
    /// One compare on the way: the budget is handed out `DIRECT_SWITCH_SLICE` switches at a
    /// time, and the clock is read only when a slice runs out.
    ///
    /// While a blocking monitor runs, no slice is handed out: every direct switch comes
    /// through `next_budget_slice`, which tells the monitor where it goes (`to`), so that the
    /// switch itself need not check.
    #[inline(always)]
    pub(super) fn direct_budget(&self, to: &GlCore) -> bool {
        self.switches.get() < self.budget_end.get() || self.next_budget_slice(to)
    }

    #[inline(never)]
    fn next_budget_slice(&self, to: &GlCore) -> bool {
        let switches = self.switches.get();
        if self.switches_past_hub() >= DIRECT_SWITCH_BUDGET || self.batch_overrun() {
            // Spent (by count or by time) until the hub runs again.
            self.hub_mark
                .set(switches.wrapping_sub(DIRECT_SWITCH_BUDGET));
            return false;
        }
        if self.monitor.is_active() {
            // The switch about to happen (`switch_from` counts it).
            self.monitor.on_switch(switches.wrapping_add(1), to.id);
        } else {
            self.grant_budget_slice();
        }
        true
    }

    /// Let the next `DIRECT_SWITCH_SLICE` direct switches through without a look at the clock
    /// (none while a blocking monitor runs: see `direct_budget`).
    pub(crate) fn grant_budget_slice(&self) {
        let end = if self.monitor.is_active() {
            0
        } else {
            self.switches.get().saturating_add(DIRECT_SWITCH_SLICE)
        };
        self.budget_end.set(end);
    }

    /// Switches since the hub last ran a callback.
    fn switches_past_hub(&self) -> u64 {
        self.switches.get().wrapping_sub(self.hub_mark.get())
    }

    /// For a greenlet about to block: the greenlet at the front of the run queue, taken off
    /// it, if it can be switched to directly instead of through the hub (what the hub would do
    /// next anyway). Not when a hub callback is first (it must run in the hub), nor when the
    /// direct-switch budget is spent (the hub must get to poll).
    #[inline]
    pub(super) fn take_ready(&self) -> Option<(*const GlCore, Reason)> {
        let mut q = self.queue.borrow_mut();
        match q.front() {
            Some(Callback::Switch(g, _))
                if !g.is_dead() && !g.dropping_body.get() && self.direct_budget(g) => {}
            _ => return None,
        }
        let Some(Callback::Switch(g, reason)) = q.pop_front() else {
            unreachable!("checked above");
        };
        drop(q);
        self.served.set(self.served.get() + 1);
        g.started.set(true);
        Some((Rc::as_ptr(&g), reason))
    }

    // `#[inline]` since the run queue has a file of its own: `wake` and `yield_now` (in
    // another codegen unit now) inlined it when they shared hub.rs.
    #[inline]
    pub(crate) fn push(&self, cb: Callback) {
        self.queue.borrow_mut().push_back(cb);
        if !self.keepalive.is_active() {
            self.keepalive.start();
        }
    }

    /// The ids of the greenlets queued to be switched to (for introspection).
    pub(crate) fn queued_ids(&self) -> std::collections::HashSet<u64> {
        let q = self.queue.borrow();
        q.iter()
            .filter_map(|cb| match cb {
                Callback::Switch(g, _) => Some(g.id),
                Callback::Call(_) => None,
            })
            .collect()
    }
}

/// Run the queued callbacks (from the prepare watcher, in the hub).
pub(super) fn drain_callbacks() {
    let h = hub();
    let start = Instant::now();
    h.batch_start.set(coarse_now_ns());
    h.batch_due
        .set(h.served.get() + h.queue.borrow().len() as u64);
    let mut n = 0u32;
    loop {
        let next = h.queue.borrow_mut().pop_front();
        let Some(cb) = next else { break };
        h.served.set(h.served.get() + 1);
        // The hub runs: greenlets may bypass it again for a while.
        h.hub_mark.set(h.switches.get());
        h.grant_budget_slice();
        match cb {
            Callback::Switch(g, reason) => {
                if g.is_dead() || g.dropping_body.get() {
                    continue;
                }
                if !g.started.get() {
                    g.started.set(true);
                }
                let target: *const GlCore = Rc::as_ptr(&g);
                drop(g);
                // SAFETY: `target` is registered in `live` (not dead) and so stays valid
                // until it has switched away for the last time.
                switch_to(unsafe { &*target }, reason, false);
            }
            Callback::Call(f) => {
                if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
                    log::error!(
                        "a hub callback panicked: {}",
                        crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
                    );
                }
            }
        }
        n += 1;
        // Greenlets that ran past the hub in a chain count for the time, not the number (on
        // the cheap coarse clock: this runs after most switches).
        // (Two switches are the hub's own: to the greenlet and back.)
        let chained = h.switches_past_hub() > 2 && h.batch_overrun();
        let ran = || start.elapsed();
        if chained
            || (n.is_multiple_of(64)
                && (ran() > CALLBACK_BATCH_MAX
                    || (h.served.get() >= h.batch_due.get()
                        && ran() > Duration::from_nanos(h.switch_interval_ns.get()))))
        {
            // Let libev poll for I/O; the keepalive idle watcher keeps that poll non-blocking.
            break;
        }
    }
    if h.queue.borrow().is_empty() {
        h.keepalive.stop();
    }
}

/// Queue `f` to run in the hub, in FIFO order with other callbacks, before the next poll.
///
/// The callback runs in the hub: it must not block (blocking calls fail with
/// [`Error::BlockingInHub`](crate::Error::BlockingInHub)); spawn a greenlet for work that
/// blocks.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// greenlet::run_callback(move || r.set(true));
/// greenlet::yield_now().unwrap();
/// assert!(ran.get());
/// ```
pub fn run_callback(f: impl FnOnce() + 'static) {
    with_hub(|h| h.push(Callback::Call(Box::new(f))));
}
