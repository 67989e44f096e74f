//! The hub: one greenlet per thread that runs the libev loop and switches to whichever greenlet
//! can run next.
//!
//! Every blocking call in this crate follows one protocol: the calling greenlet registers a
//! *waker* (a watcher callback, or an entry in a primitive's wait list) and switches to the hub.
//! The hub runs the loop; when the waker fires it switches back to the waiter. Callbacks queued
//! with [`run_callback`] (including the start of every spawned greenlet) run in FIFO order from a
//! prepare watcher, before libev polls, and while any are queued the poll does not block.
//!
//! A greenlet that blocks while another greenlet is first in the run queue switches to that
//! one directly: it is what the hub would run next, and the detour through the hub costs two
//! switches. After 8192 such direct switches in a row, or the switch interval (5 ms unless
//! changed with [`set_switch_interval`]; also those of
//! [`park::switch_to`](crate::park::switch_to)), one goes through the hub, so that it still
//! runs its callbacks and polls for I/O.
//!
//! When the loop runs out of work while the thread's root greenlet waits, the waiting call
//! fails with [`Error::WouldBlockForever`] instead of hanging.
//!
//! ```
//! use greenlet::{sleep, spawn};
//! use std::time::Duration;
//!
//! let g = spawn(|| {
//!     sleep(Duration::from_millis(5)).unwrap();
//!     "slept"
//! });
//! // Joining switches to the hub, which runs the loop until `g` is done.
//! assert_eq!(g.join().unwrap(), "slept");
//! ```
//!
//! # Layout
//!
//! One concern per file, like tokio's `runtime/task`:
//!
//! * `mod.rs`: the hub itself (`HubInner`, created on first use by `hub()`) and its public
//!   facts ([`hub_loop`], [`hub_stats`]);
//! * `core.rs`: the record of one greenlet (`GlCore`), what it ends with, its links, and the
//!   hasher of the registry of live greenlets;
//! * `tls.rs`: the thread-locals (the hub, the current greenlet, wait serials), `current()`,
//!   [`has_hub`], [`in_greenlet`], and what happens to the hub at thread exit;
//! * `switch.rs`: the stack switch and what it hands over, the entry points of the hub and of
//!   a spawned greenlet, `finish`; its module doc states the invariants that make the stack
//!   switching safe;
//! * `queue.rs`: the run queue, the batches the hub runs it in ([`run_callback`]) and the
//!   budget of direct switches that bypass the hub;
//! * `wait.rs`: the wait protocol ([`Waiter`], [`Waker`], `wake`), kills and `Timeout`
//!   expiries, and the blocking calls built on it ([`sleep`], [`yield_now`], [`idle`],
//!   [`wait()`]);
//! * `timers.rs`: the pool of timers that timed waits and `Timeout` scopes take their
//!   timeout from;
//! * `park.rs`: parking and the direct switch between parked greenlets (`switch_to_parked`);
//! * `guard.rs`: the stack-overflow checks (guard page, canary).
//!
//! The hub sits below the rest of the crate (greenlet handles, primitives, scopes, all built
//! on its waits), but for one direct dependency it keeps on purpose: it tells
//! [`monitor`](crate::monitor)'s `HubMonitor` of every switch, spawn and finish by a plain
//! call, because a hook registered the other way round would put an indirect call on the
//! switch path.

mod core;
mod guard;
mod park;
mod queue;
mod switch;
mod timers;
mod tls;
mod trim;
mod wait;

pub(crate) use self::core::{Body, GlCore, Link, Outcome};
pub(crate) use guard::guard_hit;
pub(crate) use park::{park, switch_to_parked, unpark};
pub(crate) use queue::Callback;
pub use queue::run_callback;
pub(crate) use switch::Reason;
pub(crate) use timers::ScopeTimer;
pub(crate) use tls::{current, current_is_hub};
pub use tls::{has_hub, in_greenlet};
pub(crate) use trim::current_stack_floor;
pub use trim::{set_stack_trim_interval, stack_trim_interval, trim_parked_stacks};
pub(crate) use wait::{KillSignal, clear_pending_timeout, deliver_timeout_later, request_kill};
pub use wait::{Waiter, Waker, idle, sleep, wait, yield_now};

use self::core::IdHash;
use crate::error::{Error, Result};
use crate::stack::{GreenletStack, StackMode};
use context::Context;
use ev_loop::{Idle, Loop, Prepare};
use queue::{coarse_now_ns, drain_callbacks};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::panic;
use std::rc::Rc;
use switch::{greenlet_entry, hub_entry};
use tls::{CURRENT, HUB, HUB_OWNER};

/// The hub of one thread: its libev loop, its own greenlet and the thread's root greenlet, the
/// run queue (`queue.rs`), the registry of live greenlets and the counters of the
/// direct-switch budget. Owned by the thread-local `HUB_OWNER` (`tls.rs`).
pub(crate) struct HubInner {
    pub(crate) lp: Loop,
    pub(crate) gl: Rc<GlCore>,
    pub(crate) root: Rc<GlCore>,
    queue: RefCell<VecDeque<Callback>>,
    /// Runs the queued callbacks before every poll; kept here so it lives as long as the hub.
    _prepare: Prepare,
    /// Active while callbacks are queued: keeps the loop alive and the poll non-blocking.
    keepalive: Idle,
    /// The idle timers of timed waits and `Timeout` scopes (`timers.rs`), stopped.
    wait_timers: timers::TimerPool,
    /// Every greenlet that has been spawned and not yet finished.
    pub(crate) live: RefCell<HashMap<u64, Rc<GlCore>, IdHash>>,
    next_id: Cell<u64>,
    /// Incremented on every switch (for the blocking monitor).
    pub(crate) switches: Cell<u64>,
    /// `switches` when the hub last ran a callback: switches since then bypassed the hub
    /// (see `direct_budget`); set `DIRECT_SWITCH_BUDGET` back to mark the budget spent. Kept
    /// as a mark rather than a count of its own so that a direct switch stores one counter,
    /// not two.
    hub_mark: Cell<u64>,
    /// Direct switches may go on while `switches` is below this (see `direct_budget`).
    budget_end: Cell<u64>,
    /// When the hub's current batch of callbacks started (direct switches stop after
    /// `CALLBACK_BATCH_TIME`, so that the hub gets to poll).
    batch_start: Cell<u64>,
    /// How many run-queue entries have been taken off the queue (by the hub or by a direct
    /// switch).
    served: Cell<u64>,
    /// `served` once every entry that was queued when the current batch started has been
    /// taken: the batch does not end for time before that (see `batch_overrun`).
    batch_due: Cell<u64>,
    /// The hub side of the blocking monitor (inactive unless a monitor runs).
    pub(crate) monitor: crate::monitor::HubMonitor,
    /// This hub's entry in the process-wide registry of hubs
    /// ([`all_hubs_run_info`](crate::monitor::all_hubs_run_info)).
    pub(crate) registration: crate::monitor::HubRegistration,
    /// The switch interval in nanoseconds ([`set_switch_interval`]); read only where a batch
    /// looks at the clock (`batch_overrun`, `drain_callbacks`), never per switch.
    switch_interval_ns: Cell<u64>,
    /// Gives back idle stacks' pages now and then, once asked to (`trim.rs`).
    trim_timer: RefCell<Option<ev_loop::Timer>>,
}

impl HubInner {
    fn create() -> Result<Rc<HubInner>> {
        let lp = Loop::new().map_err(|e| Error::Loop(e.into()))?;
        let prepare = Prepare::new(&lp, |_, _| drain_callbacks());
        prepare.set_keep_alive(false);
        prepare.start();
        let keepalive = Idle::new(&lp, |_, _| {});
        let stack = GreenletStack::new(crate::stack::DEFAULT_STACK_SIZE, StackMode::GuardPage)
            .map_err(Error::Spawn)?;
        let gl = GlCore::new(0, Some("hub".into()), true);
        // SAFETY: the stack is stored in the same GlCore and outlives the context.
        gl.ctx
            .set(Some(unsafe { Context::new(stack.stack(), hub_entry) }));
        gl.set_stack(stack);
        crate::overflow::install();
        let root = GlCore::new(
            1,
            Some(std::thread::current().name().unwrap_or("root").into()),
            false,
        );
        let registration = crate::monitor::HubRegistration::new(&lp);
        let h = Rc::new(HubInner {
            lp,
            gl: Rc::new(gl),
            root: Rc::new(root),
            queue: RefCell::new(VecDeque::new()),
            _prepare: prepare,
            keepalive,
            wait_timers: timers::TimerPool::default(),
            live: RefCell::new(HashMap::default()),
            next_id: Cell::new(2),
            switches: Cell::new(0),
            hub_mark: Cell::new(0),
            budget_end: Cell::new(0),
            batch_start: Cell::new(coarse_now_ns()),
            served: Cell::new(0),
            batch_due: Cell::new(0),
            monitor: crate::monitor::HubMonitor::new(),
            registration,
            switch_interval_ns: Cell::new(duration_ns(queue::CALLBACK_BATCH_TIME)),
            trim_timer: RefCell::new(None),
        });
        Ok(h)
    }

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    /// The id of the running greenlet (the root's before the first switch).
    fn current_id(&self) -> u64 {
        let p = tls::current_ptr();
        if p.is_null() {
            return self.root.id;
        }
        // SAFETY: CURRENT, when set, points to the record of the running greenlet, which is
        // alive while it runs (see `tls::current`).
        unsafe { (*p).id }
    }

    /// Create a greenlet that runs `body` on a new stack, registered but not yet scheduled.
    pub(crate) fn create_greenlet(
        &self,
        name: Option<String>,
        stack_size: usize,
        stack_mode: StackMode,
        spawned_at: &'static panic::Location<'static>,
        body: Rc<dyn Body>,
    ) -> Result<Rc<GlCore>> {
        let stack = GreenletStack::new(stack_size, stack_mode).map_err(Error::Spawn)?;
        let id = self.next_id();
        let mut core = GlCore::new(id, name, false);
        core.spawned_at = Some(spawned_at);
        core.parent_id = self.current_id();
        core.started.set(false);
        // SAFETY: the stack is stored in the same GlCore and released only after the greenlet
        // finished and switched away for good.
        core.ctx
            .set(Some(unsafe { Context::new(stack.stack(), greenlet_entry) }));
        core.set_stack(stack);
        core.body.set(Some(body));
        let core = Rc::new(core);
        self.live.borrow_mut().insert(id, core.clone());
        self.monitor.on_spawn(&core);
        Ok(core)
    }
}

/// The hub of the current thread, created on first use.
pub(crate) fn hub() -> Rc<HubInner> {
    if let Some(h) = try_hub() {
        return h;
    }
    let h = HubInner::create().unwrap_or_else(|e| panic!("cannot create the hub: {e}"));
    let owned = HUB_OWNER.try_with(|o| *o.0.borrow_mut() = Some(h.clone()));
    if owned.is_err() {
        panic!("greenlets cannot be used while the thread is shutting down");
    }
    // Only now that HUB_OWNER keeps the hub: HUB and CURRENT are set back to back here and
    // cleared back to back in `HubOwner::drop`, so a non-null CURRENT means a live hub.
    HUB.with(|p| p.set(Rc::as_ptr(&h)));
    CURRENT.with(|c| c.set(Rc::as_ptr(&h.root)));
    h
}

/// Run `f` with the hub of the current thread (created on first use), without taking a count
/// on it: for the hot paths that only queue something on it.
#[inline]
pub(crate) fn with_hub<R>(f: impl FnOnce(&HubInner) -> R) -> R {
    let p = HUB.with(|p| p.get());
    if p.is_null() {
        return f(&hub());
    }
    // HUB is set only while HUB_OWNER (or, in its destructor, the frame that took the hub out
    // of it) holds an `Rc` to this hub, and that `Rc` is let go only after HUB is cleared: by
    // the thread-local's destructor or at its end, never while `f`, a call on this thread,
    // runs.
    // SAFETY: as just said, `p` points to a live hub for the whole of `f`.
    let h = unsafe { &*p };
    f(h)
}

pub(crate) fn try_hub() -> Option<Rc<HubInner>> {
    let p = HUB.with(|p| p.get());
    if p.is_null() {
        return None;
    }
    // SAFETY: HUB is set only while HUB_OWNER holds an `Rc` to this hub (it is cleared before
    // that `Rc` is dropped), so the pointer is alive; the extra count makes a new owner.
    unsafe {
        Rc::increment_strong_count(p);
        Some(Rc::from_raw(p))
    }
}

/// Facts about the current thread's hub, for tests and diagnostics.
///
/// ```
/// let g = greenlet::spawn(|| greenlet::sleep(std::time::Duration::from_millis(1)));
/// assert_eq!(greenlet::hub_stats().live_greenlets, 1);
/// g.join().unwrap().unwrap();
/// assert_eq!(greenlet::hub_stats().live_greenlets, 0);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubStats {
    /// Greenlets spawned and not yet finished.
    pub live_greenlets: usize,
    /// Callbacks queued in the hub.
    pub queued_callbacks: usize,
    /// Free stacks kept for reuse by this thread.
    pub pooled_stacks: usize,
    /// Greenlet switches so far.
    pub switches: u64,
    /// Stopped timers kept for the timeouts of later timed waits and `Timeout` scopes (at
    /// most 64).
    pub pooled_timers: usize,
}

/// See [`HubStats`].
pub fn hub_stats() -> HubStats {
    let h = hub();
    let live = h.live.borrow().len();
    let queued = h.queue.borrow().len();
    HubStats {
        live_greenlets: live,
        queued_callbacks: queued,
        pooled_stacks: crate::stack::pooled(),
        switches: h.switches.get(),
        pooled_timers: h.wait_timers.idle(),
    }
}

/// The loop the current thread's hub runs, to add watchers of your own.
///
/// ```
/// let lp = greenlet::hub_loop();
/// assert!(lp.iteration() < u32::MAX);
/// ```
pub fn hub_loop() -> Loop {
    hub().lp.clone()
}

/// The switch interval a hub starts with: 5 ms (gevent's default `getswitchinterval()`).
///
/// ```
/// use greenlet::hub::{DEFAULT_SWITCH_INTERVAL, switch_interval};
/// assert_eq!(DEFAULT_SWITCH_INTERVAL, std::time::Duration::from_millis(5));
/// assert_eq!(switch_interval(), DEFAULT_SWITCH_INTERVAL);
/// ```
pub const DEFAULT_SWITCH_INTERVAL: std::time::Duration = queue::CALLBACK_BATCH_TIME;

fn duration_ns(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// Set the switch interval of the current thread's hub (gevent's `setswitchinterval`): how
/// long greenlets may run, switching to each other or the hub running its queued callbacks,
/// before the hub stops to let libev poll for I/O and timers. Default
/// [`DEFAULT_SWITCH_INTERVAL`] (5 ms).
///
/// A smaller interval makes timers and sockets get looked at sooner behind busy greenlets, for
/// more polls; a larger one the reverse. The interval is checked on a coarse clock (a few ms
/// of resolution) and between slices of 64 direct switches, so it is a lower bound, not a
/// deadline; whatever the interval, a batch ends after 8192 direct switches in a row or
/// 100 ms. Other threads' hubs keep their own interval.
///
/// ```
/// use greenlet::hub::{set_switch_interval, switch_interval};
/// use std::time::Duration;
/// set_switch_interval(Duration::from_millis(1));
/// assert_eq!(switch_interval(), Duration::from_millis(1));
/// ```
pub fn set_switch_interval(interval: std::time::Duration) {
    hub().switch_interval_ns.set(duration_ns(interval));
}

/// The switch interval of the current thread's hub (gevent's `getswitchinterval`); see
/// [`set_switch_interval`].
///
/// ```
/// assert_eq!(greenlet::hub::switch_interval(), greenlet::hub::DEFAULT_SWITCH_INTERVAL);
/// ```
pub fn switch_interval() -> std::time::Duration {
    std::time::Duration::from_nanos(hub().switch_interval_ns.get())
}
