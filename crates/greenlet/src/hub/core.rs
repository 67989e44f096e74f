//! The record of one greenlet ([`GlCore`]): its context and stack, its wait state and the
//! flags a switch checks, what it ended with ([`Outcome`]), its [`Link`]s; and the hasher of
//! the hub's registry of live greenlets ([`IdHash`]).

use super::park::PARKED;
use crate::stack::GreenletStack;
use context::Context;
use std::cell::{Cell, OnceCell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::panic;
use std::rc::Rc;

/// What a finished greenlet ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Pending,
    Success,
    Panicked,
    Killed,
}

/// A greenlet's body as its record holds it (the handles share the allocation, for the
/// result): run once, or dropped unrun when the greenlet is killed before it starts.
pub(crate) trait Body {
    /// Run the body (it catches its own panics, the kill signal included) and keep what it
    /// returned for the handles.
    fn run(self: Rc<Self>) -> Outcome;
    /// Drop the body unrun; its destructor runs in the caller.
    fn discard(self: Rc<Self>);
}

/// A callback waiting for the greenlet to finish.
pub(crate) enum Link {
    /// Wake a waiting greenlet (join).
    Wake(Rc<GlCore>, u64),
    /// Run a closure right away, in the finishing greenlet; it must not block
    /// (`Greenlet::link` spawns its greenlet from one).
    Raw(Box<dyn FnOnce()>),
    /// A [`Raw`](Link::Raw) link that can be removed before it runs (`Greenlet::unlink`),
    /// by its key.
    Keyed(u64, Box<dyn FnOnce()>),
}

/// What the scheduler knows about one greenlet (the hub and the thread's root included).
pub(crate) struct GlCore {
    pub(crate) id: u64,
    /// What few greenlets need, allocated on first use (see [`Rare`]): a greenlet that is
    /// never named, asked for its name nor given greenlet-local values does without.
    pub(super) rare: OnceCell<Box<Rare>>,
    pub(crate) spawned_at: Option<&'static panic::Location<'static>>,
    /// The id of the greenlet that spawned this one ([`NO_PARENT`] for the hub and the root):
    /// set once at spawn, for the spawn tree of `monitor::run_info_tree`. Read it with
    /// [`parent`](GlCore::parent).
    pub(super) parent_id: u64,
    /// The saved context while the greenlet is switched out.
    pub(super) ctx: Cell<Option<Context>>,
    /// Only ever set and taken whole (a `Cell`: a word less than a `RefCell`).
    pub(super) stack: Cell<Option<GreenletStack>>,
    /// The body, until the greenlet starts.
    pub(super) body: Cell<Option<Rc<dyn Body>>>,
    pub(crate) started: Cell<bool>,
    pub(crate) outcome: Cell<Outcome>,
    /// Its result was taken by a join (a scope then need not report its panic).
    pub(crate) result_taken: Cell<bool>,
    /// Killed before it started and its body is being dropped (by the killer, whose
    /// destructors may block): it must not run, nor count as dead, until that is done.
    pub(super) dropping_body: Cell<bool>,
    /// Serial of the wait the greenlet is blocked in (0: not blocked), with [`PARKED`] set
    /// while it is parked (`park`, `switch_to`). Exact while the greenlet is switched out:
    /// every way of switching out sets it first. While the greenlet runs it may still hold
    /// [`DIRECT_PARK`](super::park::DIRECT_PARK) from its last direct switch (a direct switch leaves it, saving two
    /// stores per switch), so it is never read for the running greenlet: the readers that can
    /// meet it (`unpark`, `request_kill`, introspection) check for the current greenlet first.
    pub(super) waiting: Cell<u64>,
    /// `waiting` when [`trim_parked_stacks`](super::trim::trim_parked_stacks) last gave back
    /// pages of this greenlet's stack: while the two are equal, it has not run since.
    pub(super) trimmed_wait: Cell<u64>,
    /// What the greenlet waits on, for introspection.
    pub(crate) waits_on: Cell<&'static str>,
    /// Set through `set_kill_requested` (which keeps `attention` up to date).
    pub(super) kill_requested: Cell<bool>,
    /// The id of a `Timeout` scope that expired while the greenlet was not blocked (0: none;
    /// timeout ids start at 1). Set through `set_pending_timeout`.
    pub(super) pending_timeout: Cell<u64>,
    /// `is_hub || is_dead() || kill_requested || pending_timeout != 0 || unpark_token`:
    /// whether a switch must take the slow path, in one flag for the direct switch to test.
    pub(super) attention: Cell<bool>,
    /// The id of the timeout the greenlet is being switched in for (see `switch_from`).
    pub(super) timeout_in: Cell<u64>,
    /// An `unpark` arrived while the greenlet was not parked: its next park returns at once.
    /// Set through `set_unpark_token`.
    pub(super) unpark_token: Cell<bool>,
    pub(crate) links: Links,
    pub(crate) is_hub: bool,
    /// The stack's overflow check, in one word (see [`CANARY_BIT`](super::guard::CANARY_BIT)):
    /// the top of the guard page below a guard-paged stack, or the address of a canary-mode
    /// stack's canary word with bit 0 set; 0 for neither (the root greenlet).
    pub(super) stack_check: Cell<usize>,
}

/// The links of a greenlet: a list of boxed nodes, newest first, so that the record of a
/// greenlet nobody links to spends one word on them (a `RefCell<Vec>` took four). Only
/// [`Links`]' own methods reach the list, and none runs code of the caller's while it holds
/// the list out of its cell (removed links are handed back to be dropped afterwards).
#[derive(Default)]
pub(crate) struct Links(Cell<Option<Box<LinkNode>>>);

pub(crate) struct LinkNode {
    link: Link,
    next: Option<Box<LinkNode>>,
}

/// Links taken out of a greenlet's list, in the order they were added; what is not iterated
/// is dropped with it (one node at a time: a recursive drop of a long list could overflow a
/// greenlet's stack).
pub(crate) struct LinkChain(Option<Box<LinkNode>>);

/// Reverse a list of nodes.
fn reversed(mut cur: Option<Box<LinkNode>>) -> Option<Box<LinkNode>> {
    let mut out = None;
    while let Some(mut n) = cur {
        cur = n.next.take();
        n.next = out;
        out = Some(n);
    }
    out
}

impl Links {
    pub(crate) fn push(&self, link: Link) {
        let next = self.0.take();
        self.0.set(Some(Box::new(LinkNode { link, next })));
    }

    /// Take every link, oldest first.
    pub(crate) fn take_all(&self) -> LinkChain {
        LinkChain(reversed(self.0.take()))
    }

    /// Take out the links `pred` picks (only the oldest of them unless `all`); the others stay
    /// in their order.
    pub(crate) fn remove(&self, mut pred: impl FnMut(&Link) -> bool, all: bool) -> LinkChain {
        let mut kept = None;
        let mut removed = None;
        let mut cur = reversed(self.0.take());
        let mut done = false;
        while let Some(mut n) = cur {
            cur = n.next.take();
            if !done && pred(&n.link) {
                n.next = removed;
                removed = Some(n);
                done = !all;
            } else {
                n.next = kept;
                kept = Some(n);
            }
        }
        self.0.set(kept);
        LinkChain(reversed(removed))
    }
}

impl Drop for Links {
    fn drop(&mut self) {
        drop(LinkChain(self.0.take()));
    }
}

impl Iterator for LinkChain {
    type Item = Link;

    fn next(&mut self) -> Option<Link> {
        let n = *self.0.take()?;
        self.0 = n.next;
        Some(n.link)
    }
}

impl Drop for LinkChain {
    fn drop(&mut self) {
        let mut cur = self.0.take();
        while let Some(mut n) = cur {
            cur = n.next.take();
        }
    }
}

/// [`GlCore::parent_id`] of a greenlet that no greenlet spawned (ids count up from 0, the
/// hub's, and never reach this).
const NO_PARENT: u64 = u64::MAX;

/// The parts of a greenlet's record that few greenlets use, kept out of line so that the
/// record of every other greenlet (an idle connection's, say) stays small.
#[derive(Default)]
pub(crate) struct Rare {
    /// Given at creation, or made from the id when first asked for (see `GlCore::name`):
    /// formatting `Greenlet-N` for every spawn cost a tenth of spawning and joining a
    /// greenlet.
    name: OnceCell<String>,
    /// The greenlet-local values (`local.rs`).
    pub(crate) locals: RefCell<Option<HashMap<std::any::TypeId, Box<dyn std::any::Any>>>>,
}

impl GlCore {
    pub(super) fn new(id: u64, name: Option<String>, is_hub: bool) -> GlCore {
        GlCore {
            id,
            rare: name
                .map(|n| {
                    Box::new(Rare {
                        name: OnceCell::from(n),
                        ..Rare::default()
                    })
                })
                .map(OnceCell::from)
                .unwrap_or_default(),
            spawned_at: None,
            parent_id: NO_PARENT,
            ctx: Cell::new(None),
            stack: Cell::new(None),
            body: Cell::new(None),
            started: Cell::new(true),
            outcome: Cell::new(Outcome::Pending),
            result_taken: Cell::new(false),
            dropping_body: Cell::new(false),
            waiting: Cell::new(0),
            trimmed_wait: Cell::new(0),
            waits_on: Cell::new(""),
            kill_requested: Cell::new(false),
            pending_timeout: Cell::new(0),
            attention: Cell::new(is_hub),
            timeout_in: Cell::new(0),
            unpark_token: Cell::new(false),
            links: Links::default(),
            is_hub,
            stack_check: Cell::new(0),
        }
    }

    /// The out-of-line part of the record, allocated on first use.
    pub(crate) fn rare(&self) -> &Rare {
        self.rare.get_or_init(Box::default)
    }

    /// The id of the greenlet that spawned this one (`None` for the hub and the root).
    pub(crate) fn parent(&self) -> Option<u64> {
        (self.parent_id != NO_PARENT).then_some(self.parent_id)
    }

    /// The name given at creation or made already, if any (for the overflow report, which
    /// must not allocate).
    pub(super) fn name_if_set(&self) -> Option<&str> {
        self.rare.get()?.name.get().map(String::as_str)
    }

    /// Drop the greenlet-local values (at the greenlet's end; their destructors run in the
    /// caller).
    pub(super) fn drop_locals(&self) {
        if let Some(rare) = self.rare.get() {
            drop(rare.locals.borrow_mut().take());
        }
    }

    pub(crate) fn is_dead(&self) -> bool {
        self.outcome.get() != Outcome::Pending
    }

    /// The greenlet's name: the one it was given, or `Greenlet-<id>`.
    pub(crate) fn name(&self) -> &str {
        self.rare()
            .name
            .get_or_init(|| format!("Greenlet-{}", self.id))
    }

    /// [`name`](GlCore::name) as an owned string, without making and keeping the default
    /// name in the record (for listings of every greenlet).
    pub(crate) fn name_owned(&self) -> String {
        match self.name_if_set() {
            Some(n) => n.to_owned(),
            None => format!("Greenlet-{}", self.id),
        }
    }

    pub(super) fn set_kill_requested(&self, kill: bool) {
        self.kill_requested.set(kill);
        self.update_attention();
    }

    pub(super) fn set_pending_timeout(&self, id: Option<u64>) {
        self.pending_timeout.set(id.unwrap_or(0));
        self.update_attention();
    }

    pub(super) fn set_unpark_token(&self, token: bool) {
        self.unpark_token.set(token);
        self.update_attention();
    }

    pub(super) fn update_attention(&self) {
        let a = self.is_hub
            || self.is_dead()
            || self.kill_requested.get()
            || self.pending_timeout.get() != 0
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

    pub(super) fn set_stack(&self, stack: GreenletStack) {
        self.stack_check.set(match stack.canary() {
            Some(addr) => {
                debug_assert_eq!(addr & super::guard::CANARY_BIT, 0, "an odd canary address");
                addr | super::guard::CANARY_BIT
            }
            None => stack.guard_top(),
        });
        self.stack.set(Some(stack));
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::hash::BuildHasher;

    #[test]
    fn ids_hash_deterministically() {
        for id in [0, 1, 2, 0x1234_5678, u64::MAX] {
            assert_eq!(IdHash.hash_one(id), IdHash.hash_one(id));
        }
        let live: HashMap<u64, u64, IdHash> = (0..1000).map(|id| (id, id * 3)).collect();
        assert!((0..1000).all(|id| live[&id] == id * 3));
    }

    #[test]
    fn distinct_ids_hash_apart() {
        let hashes: HashSet<u64> = (0..10_000u64).map(|id| IdHash.hash_one(id)).collect();
        assert_eq!(hashes.len(), 10_000);
        // hashbrown takes its control bytes from the top 7 bits: consecutive ids spread over
        // them too.
        let top: HashSet<u64> = (0..1000u64).map(|id| IdHash.hash_one(id) >> 57).collect();
        assert!(top.len() > 100, "{} of 128", top.len());
    }
}
