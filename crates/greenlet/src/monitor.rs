//! Introspection and a blocking monitor: what every greenlet of this thread is doing
//! ([`run_info`], gevent's `gevent.util.format_run_info`), and a background thread that reports
//! greenlets that keep the hub from running ([`start_monitor`], gevent's `max_blocking_time`
//! monitor).
//!
//! Greenlets are cooperative: one that computes for a long time without reaching a blocking
//! call stalls every other greenlet of its thread. The monitor notices that the hub's thread has
//! not switched greenlets for longer than a threshold although it is not idle in the loop's poll,
//! and reports the greenlet that is running. It only *reports* (through `log::warn!`, an
//! optional callback and [`MonitorHandle::reports`]): CPU-bound code is never interrupted. When
//! the hub runs again after a reported block, it logs a dump of all its greenlets (name, state,
//! what each waits on, where it was spawned; [`MonitorHandle::last_dump`]).
//!
//! ```
//! use greenlet::monitor::{GreenletState, run_info, start_monitor};
//! use std::time::{Duration, Instant};
//!
//! let sleeper = greenlet::Builder::new()
//!     .name("sleeper")
//!     .spawn(|| greenlet::sleep(Duration::from_millis(20)))
//!     .unwrap();
//! greenlet::yield_now().unwrap(); // let it start sleeping
//! let info = run_info();
//! let s = info.iter().find(|g| g.name == "sleeper").unwrap();
//! assert_eq!(s.state, GreenletState::Blocked { on: "sleep" });
//! sleeper.join().unwrap().unwrap();
//!
//! // A greenlet that spins without yielding is reported by name. (It spins until the report
//! // is there: when the report comes depends on when the monitor thread gets to run.)
//! let monitor = start_monitor(Duration::from_millis(20));
//! let busy = greenlet::Builder::new()
//!     .name("busy")
//!     .spawn(move || {
//!         let start = Instant::now();
//!         while monitor.reports().is_empty() && start.elapsed() < Duration::from_secs(30) {
//!             std::hint::spin_loop();
//!         }
//!         monitor.stop()
//!     })
//!     .unwrap();
//! let reports = busy.join().unwrap();
//! assert_eq!(reports[0].greenlet_name, "busy");
//! ```
//!
//! # When a report comes
//!
//! The monitor samples the hub's switch counter from its own thread every half threshold; it
//! does not read the clock at each switch (that would add a clock read to every switch). A
//! block is therefore reported between `max_blocking_time` and about one and a half times it
//! after the hub's last switch, never earlier — but only once the monitor thread is
//! scheduled: on a loaded machine, or under valgrind, which runs one thread at a time, a
//! report can come much later, and a block not much longer than the threshold can go
//! unreported. [`BlockingReport::blocked_for`] counts from the monitor's first sight of the
//! stalled counter, so it never overstates the block.

use crate::hub::{self, GlCore, HubInner};
use ev_loop::{Check, Prepare};
use std::cell::{Cell, RefCell};
use std::collections::{HashMap, HashSet, VecDeque};
use std::fmt;
use std::marker::PhantomData;
use std::panic::Location;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------------------------
// Introspection
// ---------------------------------------------------------------------------------------------

/// What a greenlet is doing, as seen by [`run_info`].
///
/// ```
/// use greenlet::monitor::{GreenletState, run_info};
/// let g = greenlet::spawn(|| ());
/// let info = run_info();
/// let me = info.iter().find(|i| i.state == GreenletState::Running).unwrap();
/// assert_eq!(me.name, greenlet::getcurrent_name());
/// let spawned = info.iter().find(|i| i.id == g.id()).unwrap();
/// assert_eq!(spawned.state, GreenletState::NotStarted);
/// assert_eq!(spawned.state.to_string(), "not started");
/// g.join().unwrap();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GreenletState {
    /// Spawned, but it has not run yet (it may be scheduled, or waiting for its
    /// [`spawn_later`](crate::spawn_later) delay).
    NotStarted,
    /// The greenlet that called [`run_info`].
    Running,
    /// Scheduled to run: it runs once the current greenlet yields to the hub. The hub itself is
    /// reported as ready whenever another greenlet runs.
    Ready,
    /// Suspended in a blocking call until something wakes it.
    Blocked {
        /// What it waits on: `"sleep"`, `"Event"`, `"join"`, `"fd"`, `"Lock"`, …
        on: &'static str,
    },
    /// Finished (seen only while it is still being cleaned up, for example from its own link
    /// callbacks).
    Dead,
}

impl fmt::Display for GreenletState {
    /// `not started`, `running`, `ready`, `blocked on WHAT` or `dead`.
    ///
    /// ```
    /// use greenlet::monitor::GreenletState;
    /// assert_eq!(GreenletState::Blocked { on: "sleep" }.to_string(), "blocked on sleep");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GreenletState::NotStarted => f.write_str("not started"),
            GreenletState::Running => f.write_str("running"),
            GreenletState::Ready => f.write_str("ready"),
            GreenletState::Blocked { on: "" } => f.write_str("blocked"),
            GreenletState::Blocked { on } => write!(f, "blocked on {on}"),
            GreenletState::Dead => f.write_str("dead"),
        }
    }
}

/// Which kind of greenlet a [`GreenletInfo`] describes.
///
/// ```
/// use greenlet::monitor::{GreenletKind, run_info};
/// let info = run_info();
/// assert_eq!(info.iter().filter(|i| i.kind == GreenletKind::Hub).count(), 1);
/// assert_eq!(info.iter().filter(|i| i.kind == GreenletKind::Root).count(), 1);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GreenletKind {
    /// The hub, which runs the loop (named `hub`).
    Hub,
    /// The thread's own stack (named after the thread, or `root`).
    Root,
    /// A greenlet spawned with [`spawn`](crate::spawn) or a [`Builder`](crate::Builder).
    Spawned,
}

/// One greenlet of the current thread, as listed by [`run_info`].
///
/// Its [`Display`](fmt::Display) form is one line: id, name, state and where it was spawned.
///
/// ```
/// use greenlet::monitor::run_info;
/// let g = greenlet::Builder::new().name("worker").spawn(|| ()).unwrap();
/// let line = run_info().iter().find(|i| i.id == g.id()).unwrap().to_string();
/// assert!(line.contains("\"worker\" not started, spawned at "), "{line}");
/// assert!(line.contains(file!()), "{line}");
/// g.join().unwrap();
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GreenletInfo {
    /// The greenlet's id ([`Greenlet::id`](crate::Greenlet::id)); the hub is 0, the thread's
    /// root greenlet 1.
    pub id: u64,
    /// The greenlet's name.
    pub name: String,
    /// What it is doing.
    pub state: GreenletState,
    /// Hub, root or spawned.
    pub kind: GreenletKind,
    /// Where it was spawned (`None` for the hub and the root greenlet).
    pub spawned_at: Option<&'static Location<'static>>,
    /// The id of the greenlet that spawned it (`None` for the hub and the root greenlet): the
    /// hub (0) for a greenlet spawned from a hub callback. The parent may have finished since
    /// (see [`run_info_tree`]).
    ///
    /// ```
    /// let g = greenlet::spawn(|| ());
    /// let info = greenlet::run_info();
    /// assert_eq!(info.iter().find(|i| i.id == g.id()).unwrap().parent, Some(1)); // the root
    /// g.join().unwrap();
    /// ```
    pub parent: Option<u64>,
}

impl fmt::Display for GreenletInfo {
    /// `ID "NAME" STATE, spawned at FILE:LINE:COLUMN` (or `(hub)` / `(thread root)`).
    ///
    /// ```
    /// let info = greenlet::run_info();
    /// let hub = info.iter().find(|i| i.id == 0).unwrap();
    /// assert_eq!(hub.to_string(), "0 \"hub\" ready (hub)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?} {}", self.id, self.name, self.state)?;
        match (self.kind, self.spawned_at) {
            (_, Some(at)) => write!(f, ", spawned at {at}"),
            (GreenletKind::Hub, None) => f.write_str(" (hub)"),
            (_, None) => f.write_str(" (thread root)"),
        }
    }
}

fn state_of(g: &GlCore, current: &GlCore, queued: &HashSet<u64>) -> GreenletState {
    if g.is_dead() {
        GreenletState::Dead
    } else if std::ptr::eq(g, current) {
        GreenletState::Running
    } else if !g.started.get() {
        GreenletState::NotStarted
    } else if queued.contains(&g.id) {
        GreenletState::Ready
    } else if g.is_waiting() {
        GreenletState::Blocked { on: g.blocked_on() }
    } else {
        // Switched out without waiting and not queued: the hub while another greenlet runs.
        GreenletState::Ready
    }
}

/// Every greenlet of the current thread's hub: the hub itself, the thread's root greenlet and
/// every spawned greenlet that has not finished, ordered by id (gevent's `format_run_info`,
/// as data). Creates the hub if the thread has none yet.
///
/// ```
/// use greenlet::monitor::GreenletState;
/// let e = greenlet::Event::new();
/// let w = e.clone();
/// let waiter = greenlet::spawn(move || w.wait());
/// let id = waiter.id();
/// greenlet::yield_now().unwrap();
/// let info = greenlet::run_info();
/// let g = info.iter().find(|i| i.id == id).unwrap();
/// assert_eq!(g.state, GreenletState::Blocked { on: "Event" });
/// e.set();
/// waiter.join().unwrap().unwrap();
/// assert!(greenlet::run_info().iter().all(|i| i.id != id));
/// ```
pub fn run_info() -> Vec<GreenletInfo> {
    let h = hub::hub();
    let current = hub::current();
    let queued = h.queued_ids();
    // Sorted by the map's keys, so that sorting does not visit every record, and the records
    // are not touched (no reference count taken) before they are visited in id order, which
    // is about the order they were allocated in.
    let live = h.live.borrow();
    let mut all: Vec<(u64, &Rc<GlCore>)> = vec![(h.gl.id, &h.gl), (h.root.id, &h.root)];
    all.extend(live.iter().map(|(id, g)| (*id, g)));
    all.sort_unstable_by_key(|(id, _)| *id);
    all.iter()
        .map(|&(_, g)| GreenletInfo {
            id: g.id,
            name: g.name_owned(),
            state: state_of(g, &current, &queued),
            kind: if g.is_hub {
                GreenletKind::Hub
            } else if Rc::ptr_eq(g, &h.root) {
                GreenletKind::Root
            } else {
                GreenletKind::Spawned
            },
            spawned_at: g.spawned_at,
            parent: g.parent(),
        })
        .collect()
}

/// [`run_info`] as text: one line per greenlet (see [`GreenletInfo`]'s `Display`), each
/// ending in a newline.
///
/// ```
/// let g = greenlet::Builder::new().name("w").spawn(|| ()).unwrap();
/// let text = greenlet::format_run_info();
/// assert_eq!(text.lines().count(), 3); // hub, root, w
/// assert!(text.lines().any(|l| l.contains("\"w\" not started")));
/// g.join().unwrap();
/// ```
pub fn format_run_info() -> String {
    let mut out = String::new();
    for info in run_info() {
        out.push_str(&info.to_string());
        out.push('\n');
    }
    out
}

/// One greenlet in the spawn tree of [`run_info_tree`]: its [`GreenletInfo`] and how deep it
/// sits (0 for the thread's root greenlet).
///
/// ```
/// let tree = greenlet::monitor::run_info_tree();
/// assert_eq!(tree[0].depth, 0);
/// assert_eq!(tree[0].info.kind, greenlet::monitor::GreenletKind::Root);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct TreeEntry {
    /// Levels below the root greenlet.
    pub depth: usize,
    /// The greenlet.
    pub info: GreenletInfo,
}

/// [`run_info`] as the tree of who spawned whom (gevent's `GreenletTree`), in depth-first
/// order: the thread's root greenlet first (depth 0), under it the hub and every greenlet it
/// spawned, each followed by the greenlets it spawned, siblings by id. A greenlet whose parent
/// has finished hangs under the root greenlet.
///
/// ```
/// use greenlet::monitor::run_info_tree;
/// let go = greenlet::Event::new();
/// let g = go.clone();
/// let parent = greenlet::Builder::new()
///     .name("parent")
///     .spawn(move || {
///         let child = greenlet::Builder::new().name("child").spawn(move || g.wait()).unwrap();
///         let tree = run_info_tree();
///         let depth = |name: &str| tree.iter().find(|e| e.info.name == name).unwrap().depth;
///         assert_eq!((depth("parent"), depth("child")), (1, 2));
///         child
///     })
///     .unwrap();
/// let child = parent.join().unwrap();
/// // Its parent is gone: the child now hangs under the root.
/// let tree = run_info_tree();
/// assert_eq!(tree.iter().find(|e| e.info.name == "child").unwrap().depth, 1);
/// go.set();
/// child.join().unwrap().unwrap();
/// ```
pub fn run_info_tree() -> Vec<TreeEntry> {
    let infos = run_info();
    let Some(root) = infos
        .iter()
        .find(|i| i.kind == GreenletKind::Root)
        .map(|i| i.id)
    else {
        return infos
            .into_iter()
            .map(|info| TreeEntry { depth: 0, info })
            .collect();
    };
    let ids: HashSet<u64> = infos.iter().map(|i| i.id).collect();
    // Children by parent id, in id order (`run_info` is sorted by id).
    let mut children: HashMap<u64, Vec<usize>> = HashMap::new();
    for (n, i) in infos.iter().enumerate() {
        if i.id == root {
            continue;
        }
        let parent = match i.parent {
            Some(p) if ids.contains(&p) && p != i.id => p,
            _ => root,
        };
        children.entry(parent).or_default().push(n);
    }
    let mut out = Vec::with_capacity(infos.len());
    let mut slots: Vec<Option<GreenletInfo>> = infos.into_iter().map(Some).collect();
    let root_slot = slots
        .iter()
        .position(|i| i.as_ref().is_some_and(|i| i.id == root));
    let mut stack: Vec<(usize, usize)> = root_slot.map(|n| (n, 0)).into_iter().collect();
    while let Some((n, depth)) = stack.pop() {
        let Some(info) = slots[n].take() else {
            continue;
        };
        if let Some(kids) = children.get(&info.id) {
            stack.extend(kids.iter().rev().map(|&k| (k, depth + 1)));
        }
        out.push(TreeEntry { depth, info });
    }
    out
}

/// [`run_info_tree`] as text: one line per greenlet (see [`GreenletInfo`]'s `Display`),
/// indented by two spaces per level, each ending in a newline.
///
/// ```
/// let g = greenlet::Builder::new()
///     .name("outer")
///     .spawn(|| {
///         let inner = greenlet::Builder::new().name("inner").spawn(|| ()).unwrap();
///         let text = greenlet::monitor::format_run_info_tree();
///         inner.join().unwrap();
///         text
///     })
///     .unwrap();
/// let text = g.join().unwrap();
/// let lines: Vec<&str> = text.lines().collect();
/// assert!(!lines[0].starts_with(' ')); // the root greenlet
/// assert!(lines.iter().any(|l| l.starts_with("  ") && l.contains("\"outer\" running")));
/// assert!(lines.iter().any(|l| l.starts_with("    ") && l.contains("\"inner\" not started")));
/// ```
pub fn format_run_info_tree() -> String {
    let mut out = String::new();
    for e in run_info_tree() {
        for _ in 0..e.depth {
            out.push_str("  ");
        }
        out.push_str(&e.info.to_string());
        out.push('\n');
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Switch assertions (gevent's `gevent.testing` `assert_switches`)
// ---------------------------------------------------------------------------------------------

/// Run `f` and count the greenlet switches of the current thread's hub while it ran: whether
/// code cooperates (a nonzero count) or runs without ever giving other greenlets a chance (0).
/// Creates the hub if the thread has none.
///
/// ```
/// use greenlet::monitor::count_switches;
/// let ((), n) = count_switches(|| greenlet::yield_now().unwrap());
/// assert!(n > 0);
/// let (sum, n) = count_switches(|| (1..=10).sum::<u32>());
/// assert_eq!((sum, n), (55, 0));
/// ```
pub fn count_switches<T>(f: impl FnOnce() -> T) -> (T, u64) {
    let h = hub::hub();
    let before = h.switches.get();
    let value = f();
    let after = h.switches.get();
    (value, after.wrapping_sub(before))
}

/// Run `f` and panic unless the hub switched greenlets while it ran (gevent's
/// `assert_switches`); returns what `f` returned.
///
/// # Panics
/// If `f` ran without a single switch (or if `f` panics).
///
/// ```
/// let v = greenlet::monitor::assert_switches(|| {
///     greenlet::sleep(std::time::Duration::from_millis(1)).unwrap();
///     7
/// });
/// assert_eq!(v, 7);
/// ```
#[track_caller]
pub fn assert_switches<T>(f: impl FnOnce() -> T) -> T {
    let (value, n) = count_switches(f);
    assert!(
        n > 0,
        "expected the closure to switch greenlets, it never did"
    );
    value
}

/// Run `f` and panic if the hub switched greenlets while it ran: `f` must not block
/// cooperatively (gevent's `assert_switches` with `max_blocking_time` unset, inverted);
/// returns what `f` returned.
///
/// # Panics
/// If `f` switched at least once (or if `f` panics).
///
/// ```
/// let e = greenlet::Event::new();
/// e.set();
/// // Waiting on a set event returns at once, without switching.
/// greenlet::monitor::assert_no_switch(|| e.wait().unwrap());
/// ```
#[track_caller]
pub fn assert_no_switch<T>(f: impl FnOnce() -> T) -> T {
    let (value, n) = count_switches(f);
    assert!(
        n == 0,
        "expected the closure not to switch greenlets, it switched {n} times"
    );
    value
}

// ---------------------------------------------------------------------------------------------
// The hub side of the monitor
// ---------------------------------------------------------------------------------------------

/// State the hub thread publishes for monitor threads while at least one monitor runs.
struct Tracking {
    /// The hub's switch counter.
    switches: AtomicU64,
    /// The id of the running greenlet.
    current: AtomicU64,
    /// The hub is blocked in the loop's poll (idle).
    in_poll: AtomicBool,
    /// Names of the hub's greenlets, by id (maintained only while a monitor runs).
    names: Mutex<HashMap<u64, String>>,
    /// A monitor reported a block: the hub dumps its greenlets when it next gets to run.
    dump_wanted: AtomicBool,
    /// The last such dump ([`format_run_info`]).
    last_dump: Mutex<Option<String>>,
}

impl Tracking {
    fn names(&self) -> MutexGuard<'_, HashMap<u64, String>> {
        self.names.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Held by the hub: inactive (one `Cell<bool>` check per switch) unless a monitor runs.
pub(crate) struct HubMonitor {
    active: Cell<bool>,
    /// How many [`MonitorHandle`]s use `tracking`.
    users: Cell<usize>,
    tracking: RefCell<Option<Arc<Tracking>>>,
    /// The prepare (before the poll) and check (after it) watchers that maintain `in_poll`.
    watchers: RefCell<Option<(Prepare, Check)>>,
}

impl HubMonitor {
    pub(crate) fn new() -> HubMonitor {
        HubMonitor {
            active: Cell::new(false),
            users: Cell::new(0),
            tracking: RefCell::new(None),
            watchers: RefCell::new(None),
        }
    }

    /// Whether a monitor is watching this hub.
    #[inline]
    pub(crate) fn is_active(&self) -> bool {
        self.active.get()
    }

    /// Called on every switch, with the new switch count and the greenlet switched to.
    #[inline]
    pub(crate) fn on_switch(&self, switches: u64, to: u64) {
        if self.active.get() {
            self.publish_switch(switches, to);
        }
    }

    #[cold]
    fn publish_switch(&self, switches: u64, to: u64) {
        if let Some(t) = self.tracking.borrow().as_ref() {
            t.current.store(to, Ordering::Relaxed);
            // A switch means the hub is not polling (it is either leaving or not in the poll).
            t.in_poll.store(false, Ordering::Relaxed);
            t.switches.store(switches, Ordering::Release);
        }
    }

    /// A greenlet was created.
    pub(crate) fn on_spawn(&self, g: &GlCore) {
        if self.active.get()
            && let Some(t) = self.tracking.borrow().as_ref()
        {
            t.names().insert(g.id, g.name().to_owned());
        }
    }

    /// A greenlet finished.
    pub(crate) fn on_finish(&self, id: u64) {
        if self.active.get()
            && let Some(t) = self.tracking.borrow().as_ref()
        {
            t.names().remove(&id);
        }
    }

    /// Start publishing (or share what is already published) for one more monitor.
    fn acquire(h: &HubInner) -> Arc<Tracking> {
        let m = &h.monitor;
        m.users.set(m.users.get() + 1);
        if let Some(t) = m.tracking.borrow().as_ref() {
            return t.clone();
        }
        let mut names = HashMap::new();
        names.insert(h.gl.id, h.gl.name().to_owned());
        names.insert(h.root.id, h.root.name().to_owned());
        for (id, g) in h.live.borrow().iter() {
            names.insert(*id, g.name().to_owned());
        }
        let tracking = Arc::new(Tracking {
            switches: AtomicU64::new(h.switches.get()),
            current: AtomicU64::new(hub::current().id),
            in_poll: AtomicBool::new(false),
            names: Mutex::new(names),
            dump_wanted: AtomicBool::new(false),
            last_dump: Mutex::new(None),
        });
        // The prepare watcher runs last among the prepare watchers (after the hub's own, which
        // runs the greenlets), right before libev polls; the check watcher runs first after
        // the poll.
        let t = tracking.clone();
        let prepare = Prepare::new(&h.lp, move |_, _| {
            if t.dump_wanted.swap(false, Ordering::AcqRel) {
                dump_after_block(&t);
            }
            t.in_poll.store(true, Ordering::Release);
        });
        let t = tracking.clone();
        let check = Check::new(&h.lp, move |_, _| t.in_poll.store(false, Ordering::Release));
        // Both are new, so neither active nor pending: the priorities are in range and accepted.
        let _ = prepare.set_priority(libev_sys::EV_MINPRI);
        let _ = check.set_priority(libev_sys::EV_MAXPRI);
        prepare.set_keep_alive(false);
        check.set_keep_alive(false);
        prepare.start();
        check.start();
        // If the hub is in the middle of running its prepare watchers (we were called from a
        // greenlet), the new one missed this round: feed it so it still runs before this poll.
        prepare.feed(ev_loop::Events::PREPARE);
        *m.tracking.borrow_mut() = Some(tracking.clone());
        *m.watchers.borrow_mut() = Some((prepare, check));
        m.active.set(true);
        // Direct switches stop skipping the monitor (see `HubInner::direct_budget`).
        h.grant_budget_slice();
        tracking
    }

    /// One monitor fewer; the last one turns publishing off.
    fn release(&self) {
        let users = self.users.get().saturating_sub(1);
        self.users.set(users);
        if users == 0 {
            self.active.set(false);
            let watchers = self.watchers.borrow_mut().take();
            drop(watchers);
            let tracking = self.tracking.borrow_mut().take();
            drop(tracking);
        }
    }
}

/// What the hub does when it runs again after a reported block (from the monitor's prepare
/// watcher, right before the loop polls: every greenlet that was ready has run): log every
/// greenlet, with its state, what it waits on and where it was spawned, and keep the text for
/// [`MonitorHandle::last_dump`]. gevent prints its dump while the hub is still blocked, from
/// the monitor's thread; here the records belong to the hub's thread, so the dump comes as soon
/// as that thread is back.
#[cold]
fn dump_after_block(t: &Tracking) {
    let text = format_run_info();
    log::warn!("the hub runs again after a reported block; its greenlets:\n{text}");
    *t.last_dump.lock().unwrap_or_else(PoisonError::into_inner) = Some(text);
}

// ---------------------------------------------------------------------------------------------
// The monitor thread
// ---------------------------------------------------------------------------------------------

/// How many reports a [`MonitorHandle`] keeps (the oldest are dropped first).
const KEPT_REPORTS: usize = 128;

/// One detection of a greenlet that kept the hub from running.
///
/// ```
/// use std::time::{Duration, Instant};
/// let monitor = greenlet::monitor::start_monitor(Duration::from_millis(20));
/// let g = greenlet::Builder::new()
///     .name("spinner")
///     .spawn(move || {
///         let start = Instant::now();
///         while monitor.reports().is_empty() && start.elapsed() < Duration::from_secs(30) {}
///         monitor.stop()
///     })
///     .unwrap();
/// let reports = g.join().unwrap();
/// let report = reports.into_iter().find(|r| r.greenlet_name == "spinner").unwrap();
/// assert!(report.blocked_for >= Duration::from_millis(20));
/// assert!(report.to_string().contains("\"spinner\""));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BlockingReport {
    /// The id of the greenlet that was running.
    pub greenlet_id: u64,
    /// Its name (`hub` when a hub callback or watcher blocked).
    pub greenlet_name: String,
    /// How long the hub had not run when this was detected (at least the threshold).
    pub blocked_for: Duration,
    /// The monitor's threshold.
    pub max_blocking_time: Duration,
}

impl fmt::Display for BlockingReport {
    /// A one-line description, as logged.
    ///
    /// ```
    /// # use std::time::{Duration, Instant};
    /// # let monitor = greenlet::monitor::start_monitor(Duration::from_millis(20));
    /// # let start = Instant::now();
    /// # while monitor.reports().is_empty() && start.elapsed() < Duration::from_secs(30) {}
    /// # greenlet::yield_now().unwrap();
    /// for r in monitor.reports() {
    ///     println!("{r}");
    /// }
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "greenlet {} {:?} has kept the hub from running for {} ms (max_blocking_time {} ms); \
             it is not interrupted",
            self.greenlet_id,
            self.greenlet_name,
            self.blocked_for.as_millis(),
            self.max_blocking_time.as_millis()
        )
    }
}

/// Shared between a [`MonitorHandle`] and its thread.
struct Control {
    stop: Mutex<bool>,
    wake: Condvar,
    reports: Mutex<VecDeque<BlockingReport>>,
}

type ReportCallback = Box<dyn FnMut(&BlockingReport) + Send>;

/// A running blocking monitor (see [`start_monitor`]). Dropping it (or [`stop`](Self::stop))
/// stops the monitor thread. It belongs to the thread whose hub it watches (`!Send`).
///
/// ```
/// let monitor = greenlet::monitor::start_monitor(std::time::Duration::from_secs(1));
/// assert!(monitor.reports().is_empty());
/// drop(monitor); // stops the thread
/// ```
pub struct MonitorHandle {
    control: Arc<Control>,
    tracking: Arc<Tracking>,
    thread: Option<JoinHandle<()>>,
    max_blocking_time: Duration,
    _not_send: PhantomData<*const ()>,
}

/// Start a monitor thread for the current thread's hub (gevent's `max_blocking_time`).
///
/// Every `max_blocking_time / 2` the thread checks whether the hub's thread has switched
/// greenlets since it last looked. When it has not for at least `max_blocking_time`, and the
/// hub is not idle in the loop's poll, the running greenlet (not yielding) is reported (see
/// [when a report comes](self#when-a-report-comes): possibly much later) through `log::warn!` and recorded in [`MonitorHandle::reports`]. A blocking episode is reported once,
/// however long it lasts. Blocking code — CPU-bound loops, blocking system calls that bypass
/// the hub, `std::thread::sleep` — is only reported, never interrupted.
///
/// While no monitor runs the hub pays one flag check per switch; while one does, a few relaxed
/// atomic stores per switch and a map update per spawned or finished greenlet. Several monitors
/// may watch the same hub.
///
/// # Panics
/// If the monitor thread cannot be spawned.
///
/// ```
/// use std::time::Duration;
/// let monitor = greenlet::monitor::start_monitor(Duration::from_millis(200));
/// // Sleeping is idling in the hub's poll: not blocking.
/// greenlet::sleep(Duration::from_millis(450)).unwrap();
/// assert!(monitor.reports().is_empty());
/// monitor.stop();
/// ```
pub fn start_monitor(max_blocking_time: Duration) -> MonitorHandle {
    start(max_blocking_time, None)
}

/// [`start_monitor`] that also calls `on_report` (on the monitor thread) for every report.
///
/// # Panics
/// If the monitor thread cannot be spawned.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use std::time::{Duration, Instant};
/// let seen = Arc::new(Mutex::new(Vec::new()));
/// let s = seen.clone();
/// let monitor = greenlet::monitor::start_monitor_with(Duration::from_millis(20), move |r| {
///     s.lock().unwrap().push(r.greenlet_name.clone());
/// });
/// let start = Instant::now();
/// // The root greenlet blocks the hub until the report is there.
/// while seen.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(30) {}
/// monitor.stop();
/// assert_eq!(*seen.lock().unwrap(), [greenlet::getcurrent_name()]);
/// ```
pub fn start_monitor_with(
    max_blocking_time: Duration,
    on_report: impl FnMut(&BlockingReport) + Send + 'static,
) -> MonitorHandle {
    start(max_blocking_time, Some(Box::new(on_report)))
}

fn start(max_blocking_time: Duration, on_report: Option<ReportCallback>) -> MonitorHandle {
    let h = hub::hub();
    let tracking = HubMonitor::acquire(&h);
    drop(h);
    let control = Arc::new(Control {
        stop: Mutex::new(false),
        wake: Condvar::new(),
        reports: Mutex::new(VecDeque::new()),
    });
    let c = control.clone();
    let t = tracking.clone();
    let spawned = std::thread::Builder::new()
        .name("greenlet-monitor".into())
        .spawn(move || monitor_thread(t, c, max_blocking_time, on_report));
    match spawned {
        Ok(thread) => MonitorHandle {
            control,
            tracking,
            thread: Some(thread),
            max_blocking_time,
            _not_send: PhantomData,
        },
        Err(e) => {
            if let Some(h) = hub::try_hub() {
                h.monitor.release();
            }
            panic!("cannot start the greenlet monitor thread: {e}");
        }
    }
}

fn monitor_thread(
    tracking: Arc<Tracking>,
    control: Arc<Control>,
    threshold: Duration,
    mut on_report: Option<ReportCallback>,
) {
    let period = (threshold / 2).max(Duration::from_millis(1));
    let mut last_switches = tracking.switches.load(Ordering::Acquire);
    let mut last_change = Instant::now();
    let mut reported = false;
    let mut stop = control.stop.lock().unwrap_or_else(PoisonError::into_inner);
    loop {
        let deadline = crate::timeout::deadline_after(period);
        while !*stop {
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            stop = control
                .wake
                .wait_timeout(stop, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        if *stop {
            return;
        }
        let now = Instant::now();
        let switches = tracking.switches.load(Ordering::Acquire);
        if switches != last_switches || tracking.in_poll.load(Ordering::Acquire) {
            last_switches = switches;
            last_change = now;
            reported = false;
            continue;
        }
        let blocked_for = now - last_change;
        if reported || blocked_for < threshold {
            continue;
        }
        let id = tracking.current.load(Ordering::Relaxed);
        let name = tracking.names().get(&id).cloned();
        // The hub may have moved on while we looked the name up: then it was not blocked.
        if tracking.switches.load(Ordering::Acquire) != last_switches {
            continue;
        }
        reported = true;
        tracking.dump_wanted.store(true, Ordering::Release);
        let report = BlockingReport {
            greenlet_id: id,
            greenlet_name: name.unwrap_or_else(|| format!("Greenlet-{id}")),
            blocked_for,
            max_blocking_time: threshold,
        };
        // Report without holding the stop lock, so that `stop` is never held up by a callback
        // for longer than the callback runs.
        drop(stop);
        log::warn!("{report}");
        if let Some(cb) = on_report.as_mut() {
            cb(&report);
        }
        {
            let mut reports = control
                .reports
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if reports.len() == KEPT_REPORTS {
                reports.pop_front();
            }
            reports.push_back(report);
        }
        stop = control.stop.lock().unwrap_or_else(PoisonError::into_inner);
    }
}

impl MonitorHandle {
    /// The reports so far, oldest first (the most recent 128 are kept).
    ///
    /// ```
    /// let monitor = greenlet::monitor::start_monitor(std::time::Duration::from_secs(5));
    /// greenlet::sleep(std::time::Duration::from_millis(5)).unwrap();
    /// assert_eq!(monitor.reports(), []);
    /// ```
    pub fn reports(&self) -> Vec<BlockingReport> {
        let reports = self
            .control
            .reports
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        reports.iter().cloned().collect()
    }

    /// The hub's greenlets as they were when it ran again after the last reported block
    /// (by this monitor or another one on the same hub), one line each as in
    /// [`format_run_info`]: name, state, what it waits on, where it was spawned. `None` before
    /// the first. The same text is logged at `warn` level, after the report's line.
    ///
    /// ```
    /// use std::time::{Duration, Instant};
    /// let monitor = greenlet::monitor::start_monitor(Duration::from_millis(20));
    /// let waiter = greenlet::Builder::new()
    ///     .name("waiter")
    ///     .spawn(|| greenlet::sleep(Duration::from_secs(3600)))
    ///     .unwrap();
    /// greenlet::yield_now().unwrap();
    /// assert_eq!(monitor.last_dump(), None);
    /// // Block the hub until the monitor reports it, then let the hub run again.
    /// let start = Instant::now();
    /// while monitor.reports().is_empty() && start.elapsed() < Duration::from_secs(30) {}
    /// greenlet::sleep(Duration::from_millis(1)).unwrap();
    /// let dump = monitor.last_dump().unwrap();
    /// assert!(dump.lines().any(|l| l.contains("\"waiter\" blocked on sleep")), "{dump}");
    /// waiter.kill();
    /// ```
    pub fn last_dump(&self) -> Option<String> {
        self.tracking
            .last_dump
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The threshold this monitor was started with.
    ///
    /// ```
    /// use std::time::Duration;
    /// let monitor = greenlet::monitor::start_monitor(Duration::from_millis(300));
    /// assert_eq!(monitor.max_blocking_time(), Duration::from_millis(300));
    /// ```
    pub fn max_blocking_time(&self) -> Duration {
        self.max_blocking_time
    }

    /// Stop the monitor thread and wait for it to exit (same as dropping the handle). Returns
    /// the reports it made.
    ///
    /// ```
    /// let monitor = greenlet::monitor::start_monitor(std::time::Duration::from_secs(5));
    /// assert!(monitor.stop().is_empty());
    /// ```
    pub fn stop(mut self) -> Vec<BlockingReport> {
        self.shutdown();
        self.reports()
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        *self
            .control
            .stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = true;
        self.control.wake.notify_all();
        if thread.join().is_err() {
            log::error!("the greenlet monitor's report callback panicked");
        }
        // The handle is `!Send`: this is the hub's thread. During thread exit the hub may
        // already be gone, and its watchers with it.
        if let Some(h) = hub::try_hub() {
            h.monitor.release();
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl fmt::Debug for MonitorHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MonitorHandle")
            .field("max_blocking_time", &self.max_blocking_time)
            .field("running", &self.thread.is_some())
            .finish()
    }
}

// ---------------------------------------------------------------------------------------------
// Every hub of the process
// ---------------------------------------------------------------------------------------------

/// What another thread needs to ask one hub for its run info: an async watcher on the hub's
/// loop, and the channels of the pending requests.
struct HubSlot {
    key: u64,
    thread: std::thread::ThreadId,
    thread_name: String,
    wake: ev_loop::AsyncSender,
    pending: Mutex<Vec<std::sync::mpsc::Sender<String>>>,
}

/// The live hubs of the process, in creation order.
static HUBS: Mutex<Vec<Arc<HubSlot>>> = Mutex::new(Vec::new());

fn hubs() -> MutexGuard<'static, Vec<Arc<HubSlot>>> {
    HUBS.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A hub's entry in the process-wide registry (held by `HubInner`): registered when the hub
/// is created, removed when the thread's hub is torn down (or this is dropped).
pub(crate) struct HubRegistration {
    key: u64,
    /// Answers the requests of [`all_hubs_run_info`] on the hub's thread; never keeps the
    /// loop alive.
    _watcher: ev_loop::Async,
}

impl HubRegistration {
    pub(crate) fn new(lp: &ev_loop::Loop) -> HubRegistration {
        static NEXT_KEY: AtomicU64 = AtomicU64::new(1);
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let answer: Arc<Mutex<Option<Arc<HubSlot>>>> = Arc::new(Mutex::new(None));
        let a = answer.clone();
        let watcher = ev_loop::Async::new(lp, move |_, _| {
            let slot = a.lock().unwrap_or_else(PoisonError::into_inner).clone();
            if let Some(slot) = slot {
                slot.answer();
            }
        });
        watcher.set_keep_alive(false);
        watcher.start();
        let current = std::thread::current();
        let slot = Arc::new(HubSlot {
            key,
            thread: current.id(),
            thread_name: current.name().unwrap_or("<unnamed>").to_owned(),
            wake: watcher.sender(),
            pending: Mutex::new(Vec::new()),
        });
        *answer.lock().unwrap_or_else(PoisonError::into_inner) = Some(slot.clone());
        hubs().push(slot);
        HubRegistration {
            key,
            _watcher: watcher,
        }
    }

    /// Leave the registry (idempotent).
    pub(crate) fn unregister(&self) {
        hubs().retain(|s| s.key != self.key);
    }

    /// In the child of a `fork`: only the calling thread exists, so only its hub stays
    /// registered. If another thread held the registry's lock at the fork, it stays locked in
    /// the child and nothing is changed (`try_lock`: never blocks).
    pub(crate) fn keep_only_current_thread_after_fork() {
        let me = std::thread::current().id();
        if let Ok(mut hubs) = HUBS.try_lock() {
            hubs.retain(|s| s.thread == me);
        }
    }
}

impl Drop for HubRegistration {
    fn drop(&mut self) {
        self.unregister();
    }
}

impl HubSlot {
    /// On the hub's thread, from its loop: answer every pending request.
    fn answer(&self) {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        if pending.is_empty() {
            return;
        }
        let text = format_run_info();
        for tx in pending {
            let _ = tx.send(text.clone());
        }
    }
}

/// The run info of one hub thread, as collected by [`all_hubs_run_info`].
///
/// ```
/// let all = greenlet::monitor::all_hubs_run_info(std::time::Duration::from_millis(100));
/// assert!(all.iter().all(|h| !h.thread_name.is_empty()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HubRunInfo {
    /// The hub's thread.
    pub thread: std::thread::ThreadId,
    /// Its name (`<unnamed>` for a thread without one), as when the hub was created.
    pub thread_name: String,
    /// Its [`format_run_info`], or `None` if the hub did not answer within the timeout: a
    /// greenlet (or a hub callback) kept it from running its loop, or the thread is blocked
    /// outside the hub.
    pub run_info: Option<String>,
}

impl fmt::Display for HubRunInfo {
    /// `thread "NAME" (ThreadId(N)):` and the run info lines indented by two spaces, or a line
    /// saying that the hub did not answer.
    ///
    /// ```
    /// greenlet::yield_now().unwrap(); // this thread has a hub
    /// let all = greenlet::monitor::all_hubs_run_info(std::time::Duration::ZERO);
    /// let me = all.iter().find(|h| h.thread == std::thread::current().id()).unwrap();
    /// assert!(me.to_string().contains("\"hub\""));
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "thread {:?} ({:?})", self.thread_name, self.thread)?;
        match &self.run_info {
            Some(text) => {
                f.write_str(":\n")?;
                for line in text.lines() {
                    writeln!(f, "  {line}")?;
                }
                Ok(())
            }
            None => writeln!(
                f,
                ": did not answer in time (a greenlet or a blocking call keeps its hub from \
                 running)"
            ),
        }
    }
}

/// The [`format_run_info`] of every hub of the process, each produced on its own thread:
/// callable from any thread, with or without a hub (the stand-in for gevent's backdoor, with
/// `gevent_io::debug` serving it over a socket).
///
/// Every live hub is asked at once (through an async watcher on its loop, which answers
/// when the hub next runs its loop) and waited for at most `timeout` in all; a hub that is
/// busy (a greenlet computing without yielding) cannot answer and is reported with
/// `run_info: None`. The calling thread's own hub, if any, is described directly. Hubs are
/// listed in creation order; a hub leaves the list when its thread's hub is torn down.
///
/// ```
/// use std::time::Duration;
/// let t = std::thread::spawn(|| {
///     let g = greenlet::Builder::new()
///         .name("far-away")
///         .spawn(|| greenlet::sleep(Duration::from_millis(200)))
///         .unwrap();
///     g.join().unwrap().unwrap();
/// });
/// // Ask until the other thread's greenlet has been spawned (or the thread is done).
/// let text = loop {
///     let text: String = greenlet::monitor::all_hubs_run_info(Duration::from_millis(100))
///         .iter()
///         .map(|h| h.to_string())
///         .collect();
///     if text.contains("\"far-away\"") || t.is_finished() {
///         break text;
///     }
///     std::thread::yield_now();
/// };
/// t.join().unwrap();
/// assert!(text.contains("\"far-away\" blocked on sleep"), "{text}");
/// ```
pub fn all_hubs_run_info(timeout: Duration) -> Vec<HubRunInfo> {
    let slots: Vec<Arc<HubSlot>> = hubs().clone();
    let me = std::thread::current().id();
    let mut asked = Vec::with_capacity(slots.len());
    for slot in &slots {
        if slot.thread == me {
            asked.push(None);
            continue;
        }
        let (tx, rx) = std::sync::mpsc::channel();
        slot.pending
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(tx);
        // A hub gone since the snapshot drops the request: `recv` then fails at once.
        if !slot.wake.send() {
            slot.pending
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clear();
        }
        asked.push(Some(rx));
    }
    let deadline = crate::timeout::deadline_after(timeout);
    slots
        .iter()
        .zip(asked)
        .map(|(slot, rx)| {
            let run_info = match rx {
                None => hub::has_hub().then(format_run_info),
                Some(rx) => rx
                    .recv_timeout(deadline.saturating_duration_since(Instant::now()))
                    .ok(),
            };
            HubRunInfo {
                thread: slot.thread,
                thread_name: slot.thread_name.clone(),
                run_info,
            }
        })
        .collect()
}
