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
//! switches. After 8192 such direct switches in a row, or 5 ms (also those of
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
//!     sleep(Duration::from_millis(5));
//!     "slept"
//! });
//! // Joining switches to the hub, which runs the loop until `g` is done.
//! assert_eq!(g.join().unwrap(), "slept");
//! ```
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
//!   Rust code (see `check_kill`).

use crate::error::{Error, Result, TimeoutId};
use crate::stack::{GreenletStack, StackMode};
use context::{Context, Transfer};
use ev_loop::{Break, Idle, Loop, Prepare, Timer};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

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

/// What a finished greenlet ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Success,
    Panicked,
    Killed,
}

/// The panic payload used to unwind a killed greenlet's stack.
pub(crate) struct KillSignal;

/// A callback waiting for the greenlet to finish.
pub(crate) enum Link {
    /// Wake a waiting greenlet (join).
    Wake(Rc<GlCore>, u64),
    /// Run a closure in a new greenlet (`Greenlet::link`).
    Spawn(Box<dyn FnOnce()>),
    /// Run a closure right away, in the finishing greenlet; it must not block.
    Raw(Box<dyn FnOnce()>),
}

/// What the scheduler knows about one greenlet (the hub and the thread's root included).
pub(crate) struct GlCore {
    pub(crate) id: u64,
    /// Given at creation, or made from the id when first asked for (see `name`): formatting
    /// `Greenlet-N` for every spawn cost a tenth of spawning and joining a greenlet.
    name: std::cell::OnceCell<String>,
    pub(crate) spawned_at: Option<&'static panic::Location<'static>>,
    /// The saved context while the greenlet is switched out.
    ctx: Cell<Option<Context>>,
    stack: RefCell<Option<GreenletStack>>,
    /// The body, until the greenlet starts.
    body: Cell<Option<Box<dyn FnOnce() -> Outcome>>>,
    pub(crate) started: Cell<bool>,
    pub(crate) outcome: Cell<Outcome>,
    /// Its result was taken by a join (a scope then need not report its panic).
    pub(crate) result_taken: Cell<bool>,
    /// Killed before it started and its body is being dropped (by the killer, whose
    /// destructors may block): it must not run, nor count as dead, until that is done.
    dropping_body: Cell<bool>,
    /// Serial of the wait the greenlet is blocked in (0: not blocked), with [`PARKED`] set
    /// while it is parked (`park`, `switch_to`). Exact while the greenlet is switched out:
    /// every way of switching out sets it first. While the greenlet runs it may still hold
    /// [`DIRECT_PARK`] from its last direct switch (a direct switch leaves it, saving two
    /// stores per switch), so it is never read for the running greenlet: the readers that can
    /// meet it (`unpark`, `request_kill`, introspection) check for the current greenlet first.
    waiting: Cell<u64>,
    /// What the greenlet waits on, for introspection.
    pub(crate) waits_on: Cell<&'static str>,
    /// Set through `set_kill_requested` (which keeps `attention` up to date).
    kill_requested: Cell<bool>,
    /// A `Timeout` scope expired while the greenlet was not blocked. Set through
    /// `set_pending_timeout`.
    pending_timeout: Cell<Option<u64>>,
    /// `is_hub || is_dead() || kill_requested || pending_timeout.is_some() || unpark_token`:
    /// whether a switch must take the slow path, in one flag for the direct switch to test.
    attention: Cell<bool>,
    /// The id of the timeout the greenlet is being switched in for (see `switch_from`).
    timeout_in: Cell<u64>,
    /// An `unpark` arrived while the greenlet was not parked: its next park returns at once.
    /// Set through `set_unpark_token`.
    unpark_token: Cell<bool>,
    pub(crate) links: RefCell<Vec<Link>>,
    pub(crate) is_hub: bool,
    /// The guard page below the stack, `[lo, hi)` (empty for the root greenlet).
    guard: Cell<(usize, usize)>,
    /// The canary word of a canary-mode stack (0: none).
    canary: Cell<usize>,
    pub(crate) locals: RefCell<Option<HashMap<std::any::TypeId, Box<dyn std::any::Any>>>>,
}

impl GlCore {
    fn new(id: u64, name: Option<String>, is_hub: bool) -> GlCore {
        GlCore {
            id,
            name: name.map(std::cell::OnceCell::from).unwrap_or_default(),
            spawned_at: None,
            ctx: Cell::new(None),
            stack: RefCell::new(None),
            body: Cell::new(None),
            started: Cell::new(true),
            outcome: Cell::new(Outcome::Pending),
            result_taken: Cell::new(false),
            dropping_body: Cell::new(false),
            waiting: Cell::new(0),
            waits_on: Cell::new(""),
            kill_requested: Cell::new(false),
            pending_timeout: Cell::new(None),
            attention: Cell::new(is_hub),
            timeout_in: Cell::new(0),
            unpark_token: Cell::new(false),
            links: RefCell::new(Vec::new()),
            is_hub,
            guard: Cell::new((0, 0)),
            canary: Cell::new(0),
            locals: RefCell::new(None),
        }
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.outcome.get() != Outcome::Pending
    }

    /// The greenlet's name: the one it was given, or `Greenlet-<id>`.
    pub(crate) fn name(&self) -> &str {
        self.name.get_or_init(|| format!("Greenlet-{}", self.id))
    }

    fn set_kill_requested(&self, kill: bool) {
        self.kill_requested.set(kill);
        self.update_attention();
    }

    fn set_pending_timeout(&self, id: Option<u64>) {
        self.pending_timeout.set(id);
        self.update_attention();
    }

    fn set_unpark_token(&self, token: bool) {
        self.unpark_token.set(token);
        self.update_attention();
    }

    fn update_attention(&self) {
        let a = self.is_hub
            || self.is_dead()
            || self.kill_requested.get()
            || self.pending_timeout.get().is_some()
            || self.unpark_token.get();
        self.attention.set(a);
    }

    /// What the greenlet waits on, for introspection (a direct switch leaves `waits_on` alone
    /// to save the stores). Meaningless for the running greenlet (see `waiting`).
    pub(crate) fn blocked_on(&self) -> &'static str {
        if self.waiting.get() & PARKED != 0 {
            "park"
        } else {
            self.waits_on.get()
        }
    }

    /// Whether the greenlet is registered in a wait (for introspection; not for the running
    /// greenlet, see `waiting`).
    pub(crate) fn is_waiting(&self) -> bool {
        self.waiting.get() != 0
    }

    fn set_stack(&self, stack: GreenletStack) {
        self.guard.set(stack.guard());
        self.canary.set(stack.canary().unwrap_or(0));
        *self.stack.borrow_mut() = Some(stack);
    }
}

impl fmt::Debug for GlCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "greenlet {} ({})", self.id, self.name())
    }
}

/// The hasher of the registry of live greenlets: their ids are distinct counters, so a
/// multiplication spreads them well enough, for a fraction of SipHash's cost (which was a
/// sixth of spawning and joining a greenlet). No attacker chooses the keys.
#[derive(Default, Clone, Copy)]
pub(crate) struct IdHash;

impl std::hash::BuildHasher for IdHash {
    type Hasher = IdHasher;

    fn build_hasher(&self) -> IdHasher {
        IdHasher(0)
    }
}

/// See [`IdHash`].
pub(crate) struct IdHasher(u64);

impl std::hash::Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, id: u64) {
        // Fibonacci hashing: the high bits, which hashbrown uses for its control bytes, vary.
        self.0 = (self.0 ^ id).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// A queued hub callback.
pub(crate) enum Callback {
    Switch(Rc<GlCore>, Reason),
    Call(Box<dyn FnOnce()>),
}

pub(crate) struct HubInner {
    pub(crate) lp: Loop,
    pub(crate) gl: Rc<GlCore>,
    pub(crate) root: Rc<GlCore>,
    queue: RefCell<VecDeque<Callback>>,
    /// Runs the queued callbacks before every poll; kept here so it lives as long as the hub.
    _prepare: Prepare,
    /// Active while callbacks are queued: keeps the loop alive and the poll non-blocking.
    keepalive: Idle,
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
}

thread_local! {
    /// Owns the hub; its destructor (at thread exit) kills the remaining greenlets.
    static HUB_OWNER: HubOwner = const { HubOwner(RefCell::new(None)) };
    /// The hub, for access that must also work while `HUB_OWNER` is being destroyed.
    static HUB: Cell<*const HubInner> = const { Cell::new(std::ptr::null()) };
    static CURRENT: Cell<*const GlCore> = const { Cell::new(std::ptr::null()) };
    /// Serials of waits and ids of timeouts: unique within the thread, never 0.
    static NEXT_SERIAL: Cell<u64> = const { Cell::new(1) };
}

#[inline]
fn next_serial() -> u64 {
    NEXT_SERIAL.with(|n| {
        let s = n.get();
        n.set(s + 1);
        s
    })
}

struct HubOwner(RefCell<Option<Rc<HubInner>>>);

impl Drop for HubOwner {
    fn drop(&mut self) {
        let Some(h) = self.0.borrow_mut().take() else {
            return;
        };
        // The thread is exiting on its root stack: unwind every greenlet that is still alive
        // so that its destructors run, then let the hub go.
        kill_all(&h);
        leave_loop(&h);
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

/// A monotonic clock in nanoseconds that is cheap to read (a few ns, against about 20 for
/// `Instant::now`) and coarse (a few ms): enough to tell that a batch ran past
/// `CALLBACK_BATCH_TIME`.
fn coarse_now_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; CLOCK_MONOTONIC_COARSE exists on every Linux this builds
    // for (since 2.6.32); on failure `ts` stays zero, which only delays the check.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// How long one batch of callbacks may run before the hub lets libev poll for I/O (gevent's
/// switch interval), once it has served what was queued when it started.
const CALLBACK_BATCH_TIME: Duration = Duration::from_millis(5);

/// How long one batch may run at most, also with entries queued before it still waiting: the
/// bound on how late a timer or an fd is looked at behind a very long run queue.
const CALLBACK_BATCH_MAX: Duration = Duration::from_millis(100);

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
fn current_ptr() -> *const GlCore {
    CURRENT.with(|c| c.get())
}

/// What a switch hands to the greenlet it switches in travels in the one word `resume`
/// passes, in registers: the address of the switching greenlet's `GlCore` (8-aligned), whether
/// it has finished ([`HANDOFF_DEAD`]) and the reason, in the low bits ([`HANDOFF_REASON`]:
/// wake 0, kill 1, loop exit 2, timeout 3; a timeout's id goes in the target's `timeout_in`).
const HANDOFF_REASON: usize = 3;
/// See [`HANDOFF_REASON`].
const HANDOFF_DEAD: usize = 4;
const _: () = assert!(std::mem::align_of::<GlCore>() > HANDOFF_REASON | HANDOFF_DEAD);

/// The stack pointer of a suspended context: boost.context's `fcontext_t`, which the
/// `context` crate wraps, is the address its registers were saved at.
#[inline(always)]
fn context_sp(c: &Context) -> usize {
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
fn switch_to(to: &GlCore, reason: Reason, from_dead: bool) -> Reason {
    let hp = HUB.with(|p| p.get());
    // SAFETY: HUB is non-null only while HUB_OWNER keeps the hub alive; the reference is used
    // only within `switch_from`, before the switch.
    let h = (!hp.is_null()).then(|| unsafe { &*hp });
    switch_from(h, current_ptr(), to, reason, from_dead, true)
}

/// [`switch_to`] with the hub and the current greenlet (`from`) already at hand. `publish`:
/// tell the blocking monitor (direct switches tell it from `direct_budget` instead).
#[inline(always)]
fn switch_from(
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
    let handoff = from as usize | if from_dead { HANDOFF_DEAD } else { 0 } | reason.to_bits(to);
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
    let from = unsafe { &*((handoff & !(HANDOFF_REASON | HANDOFF_DEAD)) as *const GlCore) };
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
    let stack = from.stack.borrow_mut().take();
    let id = from.id;
    drop(stack);
    if let Some(hub) = try_hub() {
        hub.live.borrow_mut().remove(&id);
    }
}

extern "C" fn greenlet_entry(t: Transfer) -> ! {
    let reason = switched_in(t);
    let me_ptr = current_ptr();
    {
        // SAFETY: we are CURRENT, registered in the hub's `live` map.
        let me = unsafe { &*me_ptr };
        let body = me.body.take();
        let outcome = if reason == Reason::Kill || me.kill_requested.get() {
            drop(body);
            Outcome::Killed
        } else {
            match body {
                // The body catches its own panics (including the kill signal).
                Some(body) => body(),
                None => Outcome::Killed,
            }
        };
        finish(me, outcome);
    }
    let hub = hub();
    let hub_gl: *const GlCore = Rc::as_ptr(&hub.gl);
    drop(hub);
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
    drop(me.locals.borrow_mut().take());
    let links = std::mem::take(&mut *me.links.borrow_mut());
    for link in links {
        match link {
            Link::Wake(g, serial) => {
                wake(&g, serial, Reason::Wake);
            }
            Link::Raw(f) => {
                if let Err(p) = panic::catch_unwind(AssertUnwindSafe(f)) {
                    log::error!(
                        "a link callback of greenlet {} panicked: {}",
                        me.name(),
                        crate::error::panic_message(p.as_ref()).unwrap_or("<non-string payload>")
                    );
                }
            }
            Link::Spawn(f) => {
                let b = crate::greenlet::Builder::new().name(format!("link of {}", me.name()));
                if let Err(e) = b.spawn(f) {
                    log::error!("cannot run a link callback of greenlet {}: {e}", me.name());
                }
            }
        }
    }
}

extern "C" fn hub_entry(t: Transfer) -> ! {
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
        let h = Rc::new(HubInner {
            lp,
            gl: Rc::new(gl),
            root: Rc::new(root),
            queue: RefCell::new(VecDeque::new()),
            _prepare: prepare,
            keepalive,
            live: RefCell::new(HashMap::default()),
            next_id: Cell::new(2),
            switches: Cell::new(0),
            hub_mark: Cell::new(0),
            budget_end: Cell::new(0),
            batch_start: Cell::new(coarse_now_ns()),
            served: Cell::new(0),
            batch_due: Cell::new(0),
            monitor: crate::monitor::HubMonitor::new(),
        });
        Ok(h)
    }

    /// Whether the current batch (since `drain_callbacks` last started) should end so that
    /// libev polls: it has run past `CALLBACK_BATCH_TIME` (on the coarse clock) and served
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
        (ran > CALLBACK_BATCH_TIME.as_nanos() as u64 && self.served.get() >= self.batch_due.get())
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
    fn direct_budget(&self, to: &GlCore) -> bool {
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
    fn take_ready(&self) -> Option<(*const GlCore, Reason)> {
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

    pub(crate) fn next_id(&self) -> u64 {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        id
    }

    pub(crate) fn push(&self, cb: Callback) {
        self.queue.borrow_mut().push_back(cb);
        if !self.keepalive.is_active() {
            self.keepalive.start();
        }
    }

    /// Create a greenlet that runs `body` on a new stack, registered but not yet scheduled.
    pub(crate) fn create_greenlet(
        &self,
        name: Option<String>,
        stack_size: usize,
        stack_mode: StackMode,
        spawned_at: &'static panic::Location<'static>,
        body: Box<dyn FnOnce() -> Outcome>,
    ) -> Result<Rc<GlCore>> {
        let stack = GreenletStack::new(stack_size, stack_mode).map_err(Error::Spawn)?;
        let id = self.next_id();
        let mut core = GlCore::new(id, name, false);
        core.spawned_at = Some(spawned_at);
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
fn drain_callbacks() {
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
            || (n % 64 == 0
                && (ran() > CALLBACK_BATCH_MAX
                    || (h.served.get() >= h.batch_due.get() && ran() > CALLBACK_BATCH_TIME)))
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
/// [`Error::BlockingInHub`]); spawn a greenlet for work that blocks.
///
/// ```
/// use std::{cell::Cell, rc::Rc};
/// let ran = Rc::new(Cell::new(false));
/// let r = ran.clone();
/// greenlet::run_callback(move || r.set(true));
/// greenlet::yield_now();
/// assert!(ran.get());
/// ```
pub fn run_callback(f: impl FnOnce() + 'static) {
    hub().push(Callback::Call(Box::new(f)));
}

/// Wake `g` if it is still blocked in the wait with `serial`. Returns whether it was.
///
/// It only queues `g`, never switches: callers (`Event::set` waking a list, watcher callbacks)
/// rely on nothing else running before it returns.
pub(crate) fn wake(g: &Rc<GlCore>, serial: u64, reason: Reason) -> bool {
    if serial == 0 || g.waiting.get() != serial {
        return false;
    }
    g.waiting.set(0);
    hub().push(Callback::Switch(g.clone(), reason));
    true
}

/// A one-shot registration of the current greenlet as waiting (gevent's `hub.Waiter`): the
/// primitive every blocking call of this crate and of the I/O layer is built on.
///
/// Create it, hand its [`Waker`] to whatever will end the wait (a watcher's callback, another
/// greenlet), then [`wait`](Waiter::wait): the greenlet switches to the hub and is switched back
/// when the waker is used, when the timeout expires, when it is killed or an enclosing
/// [`Timeout`](crate::Timeout) expires, or when nothing is left that could wake it. A wake-up
/// that comes before `wait` (even from the creating greenlet itself) is not lost. It belongs
/// to its thread (`!Send`); from other threads, use an [`AsyncResult`](crate::AsyncResult).
///
/// ```
/// use greenlet::hub::Waiter;
/// use std::time::Duration;
///
/// let w = Waiter::new("reply").unwrap();
/// let waker = w.waker();
/// greenlet::spawn(move || assert!(waker.wake()));
/// w.wait(Some(Duration::from_secs(10))).unwrap();
///
/// // Nobody wakes it: the wait's own timeout ends it.
/// let w = Waiter::new("nothing").unwrap();
/// let keep = w.waker(); // a waker alive elsewhere (the wait could still be ended)
/// assert!(w.wait(Some(Duration::from_millis(5))).unwrap_err().is_timeout());
/// assert!(!keep.wake()); // that wait is over
/// ```
pub struct Waiter {
    pub(crate) me: Rc<GlCore>,
    pub(crate) serial: u64,
}

/// Ends one [`Waiter`]'s wait; cheap to clone, `!Send`.
#[derive(Clone)]
pub struct Waker {
    pub(crate) g: Rc<GlCore>,
    pub(crate) serial: u64,
}

impl Waker {
    /// Wake the waiting greenlet (queue it to run) if it still waits in the wait this waker
    /// belongs to. Returns whether it did: `false` once that wait is over (woken, timed out,
    /// killed) or if it never began. Never switches: the caller keeps running.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let waker = w.waker();
    /// assert!(waker.wake());
    /// assert!(!waker.wake()); // the first wake-up is what the wait gets
    /// w.wait(None).unwrap();
    /// ```
    #[inline]
    pub fn wake(&self) -> bool {
        wake(&self.g, self.serial, Reason::Wake)
    }

    /// Whether the wait this waker belongs to is still going on (not yet woken or ended).
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let waker = w.waker();
    /// assert!(waker.is_waiting());
    /// waker.wake();
    /// assert!(!waker.is_waiting());
    /// # w.wait(None).unwrap();
    /// ```
    #[inline]
    pub fn is_waiting(&self) -> bool {
        self.serial != 0 && self.g.waiting.get() == self.serial
    }

    /// The name of the greenlet that waits (for error messages).
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// assert_eq!(w.waker().greenlet_name(), greenlet::getcurrent_name());
    /// ```
    pub fn greenlet_name(&self) -> &str {
        self.g.name()
    }
}

impl PartialEq for Waker {
    /// Whether both belong to the same wait.
    fn eq(&self, other: &Waker) -> bool {
        self.serial == other.serial && Rc::ptr_eq(&self.g, &other.g)
    }
}

impl Eq for Waker {}

impl fmt::Debug for Waker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waker")
            .field("greenlet", &self.g.id)
            .field("waiting", &self.is_waiting())
            .finish()
    }
}

impl fmt::Debug for Waiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Waiter")
            .field("greenlet", &self.me.id)
            .field("on", &self.me.blocked_on())
            .finish()
    }
}

impl Drop for Waiter {
    fn drop(&mut self) {
        // A waiter abandoned before (or after) its wait must not stay registered.
        if self.me.waiting.get() == self.serial {
            self.me.waiting.set(0);
        }
    }
}

impl Waiter {
    /// Register the current greenlet as waiting; `what` is what [`run_info`](crate::run_info)
    /// shows it blocked on (`"fd"`, `"reply"`, …).
    ///
    /// # Errors
    /// [`Error::BlockingInHub`] in the hub (a watcher or hub callback);
    /// [`Error::Dead`] in a finishing greenlet; [`Error::Timeout`] if an enclosing
    /// [`Timeout`](crate::Timeout) expired already. A pending kill unwinds the greenlet here.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("reply").unwrap();
    /// drop(w); // an abandoned registration ends with it
    /// ```
    pub fn new(what: &'static str) -> Result<Waiter> {
        Waiter::new_in(&hub(), what)
    }

    /// [`Waiter::new`] with the hub already at hand (saves a thread-local look-up).
    pub(crate) fn new_in(h: &HubInner, what: &'static str) -> Result<Waiter> {
        let p = current_ptr();
        let me = if p.is_null() {
            h.root.clone()
        } else {
            // SAFETY: as in `current`: CURRENT points into a live `Rc<GlCore>`; the extra
            // strong count makes the new `Rc` an owner of its own.
            unsafe {
                Rc::increment_strong_count(p);
                Rc::from_raw(p)
            }
        };
        if me.is_hub {
            return Err(Error::BlockingInHub);
        }
        if me.is_dead() {
            // A destructor running as the greenlet finishes (a greenlet-local value's): a
            // finished greenlet is never switched back to, so it must not block.
            return Err(Error::Dead);
        }
        check_kill(&me);
        if let Some(id) = me.pending_timeout.get() {
            me.set_pending_timeout(None);
            return Err(Error::Timeout(TimeoutId(id)));
        }
        let serial = next_serial();
        me.waiting.set(serial);
        me.waits_on.set(what);
        Ok(Waiter { me, serial })
    }

    /// Make the wait a park: `unpark` wakes it (so do direct switches).
    fn mark_parked(&mut self) {
        self.serial |= PARKED;
        self.me.waiting.set(self.serial);
    }

    /// The waker that ends this wait.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// assert_eq!(w.waker(), w.waker());
    /// # w.waker().wake(); w.wait(None).unwrap();
    /// ```
    pub fn waker(&self) -> Waker {
        Waker {
            g: self.me.clone(),
            serial: self.serial,
        }
    }

    /// Switch to the hub until woken, the optional timeout expires, or the loop runs dry.
    ///
    /// # Errors
    /// [`Error::Timeout`] when `timeout` expires (its id is never a
    /// [`Timeout`](crate::Timeout) scope's) or an enclosing `Timeout` does;
    /// [`Error::WouldBlockForever`] when nothing is left that could wake the greenlet. A kill
    /// unwinds the greenlet from here.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("never").unwrap();
    /// assert_eq!(w.wait(None), Err(greenlet::Error::WouldBlockForever));
    /// ```
    pub fn wait(self, timeout: Option<Duration>) -> Result<()> {
        self.wait_for(timeout).and_then(|woken| match woken {
            true => Ok(()),
            // The call's own timeout: reported like a scope's (callers that care use
            // `wait_for`).
            false => Err(Error::Timeout(TimeoutId::OWN)),
        })
    }

    /// Like [`wait`](Waiter::wait), telling the call's own timeout (`Ok(false)`) apart from an
    /// enclosing `Timeout` scope's (`Err(Error::Timeout)`), which propagates.
    ///
    /// # Errors
    /// As for [`wait`](Waiter::wait), but for the call's own timeout.
    ///
    /// ```
    /// let w = greenlet::hub::Waiter::new("x").unwrap();
    /// let _keep = w.waker();
    /// assert_eq!(w.wait_for(Some(std::time::Duration::from_millis(1))), Ok(false));
    /// ```
    pub fn wait_for(self, timeout: Option<Duration>) -> Result<bool> {
        let h = hub();
        let timer = match timeout {
            Some(d) => {
                h.lp.update_now();
                let token = self.waker();
                // `Timeout` scope ids come from their own range (from 1 << 62), so this one is
                // never a scope's.
                let id = next_serial();
                let t = Timer::new(&h.lp, d, Duration::ZERO, move |_, _| {
                    wake(&token.g, token.serial, Reason::Timeout(id));
                });
                t.start();
                Some((t, id))
            }
            None => None,
        };
        let me: *const GlCore = Rc::as_ptr(&self.me);
        let hp: *const HubInner = Rc::as_ptr(&h);
        let ready = h.take_ready();
        // Not held across the switch: a greenlet that is never resumed must not keep the hub.
        drop(h);
        // SAFETY: HUB_OWNER keeps the hub alive while greenlets of this thread run.
        let h = unsafe { &*hp };
        let reason = match ready {
            // We woke ourselves (a wake-up that came in before the wait, like AsyncResult's
            // re-check after arming): the hub would switch straight back. A `Switch(me)` can
            // only be queued while we run between `Waiter::new` and this switch, so it is for
            // this wait. Counted as a switch: `take_ready` may have told a blocking monitor
            // of it already, and the count it published must not come twice.
            Some((next, reason)) if next == me => {
                h.switches.set(h.switches.get().wrapping_add(1));
                reason
            }
            // The next greenlet in the queue runs now, without a detour through the hub.
            Some((next, reason)) => {
                // SAFETY: `next` is alive until it has run (it is in the registry of live
                // greenlets, or it is the root); nothing runs between here and the switch.
                // (`take_ready` told a blocking monitor of it already.)
                switch_from(Some(h), me, unsafe { &*next }, reason, false, false)
            }
            None => switch_from(Some(h), me, &h.gl, Reason::Wake, false, true),
        };
        match (reason, timer) {
            (Reason::Timeout(id), Some((_, own))) if id == own => {
                self.switched_back(Reason::Wake).map(|()| false)
            }
            (reason, _) => self.switched_back(reason).map(|()| true),
        }
    }

    /// What the wait ends with, once the greenlet is switched back in with `reason`.
    fn switched_back(self, reason: Reason) -> Result<()> {
        woken_with(&self.me, reason)
    }
}

/// What a wait of `me` ends with, once it is switched back in with `reason`.
fn woken_with(me: &GlCore, reason: Reason) -> Result<()> {
    // Not parked any more either (here too because a kill unwinds past the callers' reset).
    me.waiting.set(0);
    me.waits_on.set("");
    match reason {
        Reason::Wake => {
            check_kill(me);
            Ok(())
        }
        Reason::Timeout(id) => {
            check_kill(me);
            Err(Error::Timeout(TimeoutId(id)))
        }
        Reason::Kill => {
            me.set_kill_requested(false);
            panic::resume_unwind(Box::new(KillSignal));
        }
        Reason::LoopExit => Err(Error::WouldBlockForever),
    }
}

/// Unwind the current greenlet if a kill was requested while it was not blocked.
fn check_kill(me: &GlCore) {
    if me.kill_requested.get() && !me.is_hub && me.spawned_at.is_some() {
        me.set_kill_requested(false);
        panic::resume_unwind(Box::new(KillSignal));
    }
}

/// Ask `g` to die: it unwinds at its current (or next) switch point.
pub(crate) fn request_kill(g: &Rc<GlCore>) {
    if g.is_dead() || g.is_hub || g.spawned_at.is_none() {
        return;
    }
    if !g.started.get() {
        // Never ran: it never will. Its stack goes back to the pool right away.
        g.started.set(true);
        g.dropping_body.set(true);
        let dropped = panic::catch_unwind(AssertUnwindSafe(|| drop(g.body.take())));
        g.dropping_body.set(false);
        g.ctx.take();
        drop(g.stack.borrow_mut().take());
        finish(g, Outcome::Killed);
        hub().live.borrow_mut().remove(&g.id);
        if let Err(p) = dropped {
            panic::resume_unwind(p);
        }
        return;
    }
    if Rc::as_ptr(g) == current_ptr() {
        panic::resume_unwind(Box::new(KillSignal));
    }
    g.set_kill_requested(true);
    let serial = g.waiting.get();
    wake(g, serial, Reason::Kill);
}

/// Deliver a `Timeout` scope's expiry to `g`.
pub(crate) fn timeout_fired(g: &Rc<GlCore>, id: u64) {
    if g.is_dead() {
        return;
    }
    let serial = g.waiting.get();
    if !wake(g, serial, Reason::Timeout(id)) {
        g.set_pending_timeout(Some(id));
    }
}

/// Have the current greenlet's next blocking call report the expiry of the `Timeout` scope
/// `id` (it expired during a wait that could not be given up, see `scope`).
pub(crate) fn deliver_timeout_later(id: u64) {
    current().set_pending_timeout(Some(id));
}

pub(crate) fn clear_pending_timeout(g: &GlCore, id: u64) {
    if g.pending_timeout.get() == Some(id) {
        g.set_pending_timeout(None);
    }
}

/// Suspend the current greenlet for `d`. `Duration::ZERO` only yields (see [`yield_now`]).
///
/// # Errors
/// [`Error::Timeout`] when an enclosing [`Timeout`](crate::Timeout) expires first;
/// [`Error::BlockingInHub`] from a hub callback.
///
/// ```
/// use std::time::{Duration, Instant};
/// let start = Instant::now();
/// greenlet::sleep(Duration::from_millis(20)).unwrap();
/// assert!(start.elapsed() >= Duration::from_millis(19));
/// ```
pub fn sleep(d: Duration) -> Result<()> {
    if d.is_zero() {
        return yield_now();
    }
    let h = hub();
    let w = Waiter::new("sleep")?;
    h.lp.update_now();
    let token = w.waker();
    let t = Timer::new(&h.lp, d, Duration::ZERO, move |_, _| {
        token.wake();
    });
    t.start();
    drop(h);
    w.wait(None)
}

/// Let every other greenlet that is ready run once, then continue (gevent's `sleep(0)`). No
/// poll for I/O happens in between unless the batch of ready greenlets runs long.
///
/// ```
/// use std::{cell::RefCell, rc::Rc};
/// let log = Rc::new(RefCell::new(Vec::new()));
/// let l = log.clone();
/// let g = greenlet::spawn(move || l.borrow_mut().push("spawned"));
/// greenlet::yield_now().unwrap();
/// log.borrow_mut().push("after yield");
/// assert_eq!(*log.borrow(), ["spawned", "after yield"]);
/// g.join().unwrap();
/// ```
pub fn yield_now() -> Result<()> {
    let h = hub();
    let w = Waiter::new_in(&h, "yield")?;
    h.push(Callback::Switch(w.me.clone(), Reason::Wake));
    w.me.waiting.set(0);
    // Straight to the hub (what `Waiter::wait` does, without a timer or another hub look-up).
    // The `Rc` is not held across the switch: a greenlet that is never resumed (it swallows
    // its kill at thread exit) must not keep the hub alive.
    let hp: *const HubInner = Rc::as_ptr(&h);
    drop(h);
    // SAFETY: HUB_OWNER keeps the hub alive while greenlets of this thread run; `h` is used
    // only up to the switch.
    let h = unsafe { &*hp };
    let reason = switch_from(Some(h), Rc::as_ptr(&w.me), &h.gl, Reason::Wake, false, true);
    w.switched_back(reason)
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

/// Set in a greenlet's wait serial while it is parked (`next_serial` never reaches it).
const PARKED: u64 = 1 << 63;

/// The wait serial of a greenlet parked by a direct switch (with [`PARKED`] set). One value
/// serves every greenlet because nothing keeps a serial read from `waiting` to wake it later:
/// `unpark`, `request_kill` and `timeout_fired` read it when they wake.
const DIRECT_PARK: u64 = u64::MAX;

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

/// Wait until the hub's loop has nothing left to do other than what the caller itself
/// registered (gevent's `idle()`): every ready greenlet and pending callback has run.
///
/// ```
/// greenlet::idle().unwrap();
/// ```
pub fn idle() -> Result<()> {
    let h = hub();
    let w = Waiter::new("idle")?;
    let token = w.waker();
    let i = Idle::new(&h.lp, move |w, _| {
        token.wake();
        w.stop();
    });
    i.set_priority(-2).map_err(|e| Error::Loop(e.into()))?;
    i.start();
    drop(h);
    w.wait(None)
}

/// Run the hub until it has nothing left to do, or until `timeout` (gevent's `hub.join`).
/// Returns true when the loop ran out of work, false on timeout.
///
/// # Errors
/// [`Error::JoinSelf`] from a spawned greenlet (the loop cannot run dry while it is alive);
/// [`Error::BlockingInHub`] from a hub callback; [`Error::Timeout`] when an enclosing
/// [`Timeout`](crate::Timeout) expires first.
///
/// ```
/// use std::time::Duration;
/// let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(5)));
/// assert!(greenlet::wait(None).unwrap());
/// assert!(g.is_dead());
/// ```
pub fn wait(timeout: Option<Duration>) -> Result<bool> {
    let w = Waiter::new("hub")?;
    if w.me.spawned_at.is_some() {
        // Only the root greenlet hears that the loop ran dry; in a spawned greenlet it cannot
        // run dry while the caller itself is alive.
        w.me.waiting.set(0);
        return Err(Error::JoinSelf);
    }
    // The timeout's own timer must not keep the loop alive (gevent's `ref=False` timer), or
    // the loop could never run dry before it expires.
    let _timer = timeout.map(|d| {
        let h = hub();
        let token = w.waker();
        // Count from now, not from the loop's cached time (which may be a long batch old).
        h.lp.update_now();
        let t = Timer::new(&h.lp, d, Duration::ZERO, move |_, _| {
            token.wake();
        });
        t.set_keep_alive(false);
        t.start();
        t
    });
    // Our timer just wakes us (`Ok`); an `Error::Timeout` is an enclosing scope's and goes on.
    match w.wait(None) {
        Err(Error::WouldBlockForever) => Ok(true),
        Ok(()) => Ok(false),
        Err(e) => Err(e),
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
    current_ptr() == Rc::as_ptr(&hub().gl)
}

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
    let (lo, hi) = g.guard.get();
    if addr >= lo && addr < hi {
        let name = g.name.get().map(|n| {
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
/// overwritten. Guard-page stacks (canary 0) pay one load and one branch.
#[inline(always)]
fn check_canary(g: &GlCore, sp: usize) {
    let addr = g.canary.get();
    if addr != 0 {
        check_canary_slot(g, addr, sp);
    }
}

#[inline(never)]
fn check_canary_slot(g: &GlCore, addr: usize, sp: usize) {
    // SAFETY: a non-zero `canary` is the canary word of that greenlet's live stack.
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
