//! A FIFO list of blocked greenlets with hand-off, shared by the synchronization primitives
//! ([`Semaphore`](crate::Semaphore), [`Queue`](crate::Queue), [`Pool`](crate::Pool), …).
//!
//! A primitive that frees a resource (a permit, an item, a pool slot) *grants* it to the
//! longest-waiting greenlet that is still waiting ([`WaitList::grant_next`]): the resource
//! belongs to that greenlet from then on, even before it runs, so no newcomer can take it and
//! waiters are served strictly in order. Each entry can carry a payload (the item handed to a
//! getter, or the item a blocked putter offers).
//!
//! A granted greenlet can still be killed before it runs again; then the primitive's
//! `on_abandon` callback gets the grant (and payload) back while the greenlet unwinds, so
//! nothing is lost. Waiters that time out or are killed remove their own entries.

#![forbid(unsafe_code)]

use crate::error::{Error, Result};
use crate::hub::{Waiter, Waker};
use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

/// One blocked greenlet.
pub(crate) struct Entry<P> {
    token: Waker,
    granted: Cell<bool>,
    payload: RefCell<Option<P>>,
}

impl<P> Entry<P> {
    /// Put `p` into the entry (an item handed to a woken getter).
    pub(crate) fn set_payload(&self, p: P) {
        *self.payload.borrow_mut() = Some(p);
    }

    /// Take the entry's payload (the item of a woken putter).
    pub(crate) fn take_payload(&self) -> Option<P> {
        self.payload.borrow_mut().take()
    }
}

/// How a [`WaitList::wait`] ended.
#[derive(Debug)]
pub(crate) enum Woken {
    /// Granted by [`WaitList::grant_next`].
    Granted,
    /// Woken by [`WaitList::notify_all`] (no grant): look again.
    Notified,
    /// The wait's own timeout expired.
    TimedOut,
    /// The wait failed otherwise (an enclosing `Timeout`, would block forever, in the hub).
    Failed(Error),
}

/// A FIFO list of blocked greenlets. See the module docs.
///
/// A wait that ends takes its entry out: at either end at once; elsewhere (a waiter in the
/// middle timed out or was killed) the list is only swept, of every entry whose greenlet no
/// longer waits for it, once such removals add up to half its length. Scanning the list on
/// every removal made N waiters of one lock cost O(N²). A stale entry left until the sweep is
/// skipped by [`grant_next`](WaitList::grant_next).
pub(crate) struct WaitList<P = ()> {
    entries: RefCell<VecDeque<Rc<Entry<P>>>>,
    /// Removals since the last sweep that were not at either end.
    removals: Cell<usize>,
}

impl<P> Default for WaitList<P> {
    fn default() -> Self {
        WaitList {
            entries: RefCell::new(VecDeque::new()),
            removals: Cell::new(0),
        }
    }
}

impl<P> WaitList<P> {
    pub(crate) fn new() -> Self {
        WaitList::default()
    }

    /// How many greenlets are still waiting (entries of waiters that timed out or were woken
    /// but have not run yet are not counted).
    pub(crate) fn len(&self) -> usize {
        self.entries
            .borrow()
            .iter()
            .filter(|e| e.token.is_waiting())
            .count()
    }

    /// Wake the longest-waiting greenlet that still waits and mark it granted. Returns its
    /// entry (to hand it a payload or take its payload), or `None` if nobody waits.
    ///
    /// Inlined for its common case, a list nobody waits on (a lock released with no
    /// contender: once or twice per request of a server); the search is out of line.
    #[inline]
    pub(crate) fn grant_next(&self) -> Option<Rc<Entry<P>>> {
        if self.entries.borrow().is_empty() {
            return None;
        }
        self.grant_waiting()
    }

    /// [`grant_next`](WaitList::grant_next) on a list that has entries (some may be stale).
    #[inline(never)]
    fn grant_waiting(&self) -> Option<Rc<Entry<P>>> {
        loop {
            let next = self.entries.borrow_mut().pop_front();
            let e = next?;
            // A stale entry (its waiter timed out or was killed and has not removed it yet)
            // fails to wake and is skipped.
            if e.token.wake() {
                e.granted.set(true);
                return Some(e);
            }
        }
    }

    /// Wake every waiting greenlet without a grant; each sees [`Woken::Notified`].
    pub(crate) fn notify_all(&self) {
        let all = std::mem::take(&mut *self.entries.borrow_mut());
        for e in all {
            e.token.wake();
        }
    }

    /// Take out the entry of a wait that has ended (see the type's docs).
    fn remove(&self, entry: &Rc<Entry<P>>) {
        let mut q = self.entries.borrow_mut();
        if q.back().is_some_and(|e| Rc::ptr_eq(e, entry)) {
            q.pop_back();
        } else if q.front().is_some_and(|e| Rc::ptr_eq(e, entry)) {
            q.pop_front();
        } else if !entry.granted.get() {
            // (A granted entry was taken off by `grant_next` already.)
            let removals = self.removals.get() + 1;
            if removals * 2 > q.len() {
                q.retain(|e| e.token.is_waiting());
                self.removals.set(0);
            } else {
                self.removals.set(removals);
            }
        }
    }

    /// Block the current greenlet at the back of the list until it is granted, notified, its
    /// `timeout` expires or the wait fails. `payload` rides in the entry; whatever is left of
    /// it is returned.
    ///
    /// If the greenlet is killed (the wait unwinds) after it was granted, `on_abandon` gets
    /// the payload and must pass the grant on; it runs during unwinding, so it must not
    /// block or panic.
    pub(crate) fn wait(
        &self,
        what: &'static str,
        timeout: Option<Duration>,
        payload: Option<P>,
        on_abandon: impl FnOnce(Option<P>),
    ) -> (Woken, Option<P>) {
        let w = match Waiter::new(what) {
            Ok(w) => w,
            Err(e) => return (Woken::Failed(e), payload),
        };
        let entry = Rc::new(Entry {
            token: w.waker(),
            granted: Cell::new(false),
            payload: RefCell::new(payload),
        });
        self.entries.borrow_mut().push_back(entry.clone());
        let mut guard = Abandon {
            list: self,
            entry: &entry,
            on_abandon: Some(on_abandon),
        };
        // `wait_for`: its own timeout (`Ok(false)`) told apart from an enclosing `Timeout`
        // scope's (an error).
        let r: Result<bool> = w.wait_for(timeout);
        // Not unwinding: the grant (if any) is ours to use.
        guard.on_abandon = None;
        drop(guard);
        let payload = entry.take_payload();
        let woken = if entry.granted.get() {
            // A grant is only ever made through a successful wake, so `r` is Ok here.
            Woken::Granted
        } else {
            match r {
                Ok(true) => Woken::Notified,
                Ok(false) => Woken::TimedOut,
                Err(e) => Woken::Failed(e),
            }
        };
        (woken, payload)
    }
}

/// Removes the entry when the wait ends; while unwinding, hands a grant back to the primitive.
struct Abandon<'a, P, F: FnOnce(Option<P>)> {
    list: &'a WaitList<P>,
    entry: &'a Rc<Entry<P>>,
    on_abandon: Option<F>,
}

impl<P, F: FnOnce(Option<P>)> Drop for Abandon<'_, P, F> {
    fn drop(&mut self) {
        self.list.remove(self.entry);
        if let Some(f) = self.on_abandon.take() {
            let payload = self.entry.take_payload();
            if self.entry.granted.get() {
                f(payload);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` greenlets blocked in `list`, in order.
    fn waiters(list: &Rc<WaitList>, n: usize) -> Vec<crate::Greenlet<()>> {
        let gs: Vec<_> = (0..n)
            .map(|_| {
                let list = list.clone();
                crate::spawn(move || {
                    list.wait("test", None, None, |_| {});
                })
            })
            .collect();
        crate::yield_now().unwrap();
        assert_eq!(list.entries.borrow().len(), n);
        gs
    }

    #[test]
    fn ends_are_removed_at_once() {
        let list = Rc::new(WaitList::new());
        let gs = waiters(&list, 3);
        gs[2].kill();
        assert_eq!(list.entries.borrow().len(), 2);
        gs[0].kill();
        assert_eq!(list.entries.borrow().len(), 1);
        assert_eq!(list.removals.get(), 0);
        assert!(list.grant_next().is_some());
        assert!(gs[1].wait(None).unwrap());
    }

    #[test]
    fn middle_removals_sweep_at_half_the_list() {
        let list = Rc::new(WaitList::new());
        let gs = waiters(&list, 5);
        // Out of the middle: left in place, counted.
        gs[1].kill();
        gs[2].kill();
        assert_eq!(list.entries.borrow().len(), 5);
        assert_eq!(list.removals.get(), 2);
        assert_eq!(list.len(), 3);
        // A third makes the removals more than half the list: the sweep keeps the waiters.
        gs[3].kill();
        assert_eq!(list.entries.borrow().len(), 2);
        assert_eq!(list.removals.get(), 0);
        list.notify_all();
        for g in [&gs[0], &gs[4]] {
            assert!(g.wait(None).unwrap());
        }
    }
}
