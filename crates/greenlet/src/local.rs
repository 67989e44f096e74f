//! Greenlet-local storage: [`Local`] gives every greenlet its own value, the way
//! `thread_local!` gives every thread its own (gevent's `local`).
//!
//! Each greenlet (the thread's root greenlet and the hub included) sees a separate value,
//! created lazily by the `Local`'s constructor on first use and dropped when that greenlet
//! finishes.
//!
//! ```
//! use greenlet::{spawn, Local};
//! use std::cell::Cell;
//!
//! let requests: Local<Cell<u32>> = Local::new(|| Cell::new(0));
//! requests.with(|n| n.set(n.get() + 5));
//! let r = requests.clone();
//! let g = spawn(move || {
//!     r.with(|n| n.set(n.get() + 1)); // this greenlet's own counter
//!     r.with(|n| n.get())
//! });
//! assert_eq!(g.join().unwrap(), 1);
//! assert_eq!(requests.with(|n| n.get()), 5); // the root's counter is untouched
//! ```

#![forbid(unsafe_code)]

use crate::hub::{self, GlCore};
use std::any::{Any, TypeId};
use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Every `Local`'s values in one greenlet, by `Local` id. Stored in the greenlet's
/// `GlCore::locals` map under this type's `TypeId`, so it is dropped when the greenlet
/// finishes.
struct Slots(RefCell<HashMap<u64, Rc<dyn Any>>>);

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// This greenlet's slots, created on first use. `None` while the greenlet's locals are being
/// dropped (at its end).
fn slots(g: &GlCore) -> Option<Rc<Slots>> {
    let mut locals = g.rare().locals.try_borrow_mut().ok()?;
    let map = locals.get_or_insert_with(HashMap::new);
    let entry = map
        .entry(TypeId::of::<Slots>())
        .or_insert_with(|| Box::new(Rc::new(Slots(RefCell::new(HashMap::new())))));
    entry.downcast_ref::<Rc<Slots>>().cloned()
}

/// A value per greenlet, created on first use by a constructor and dropped when its greenlet
/// finishes. Clones share the same slot (each greenlet still has one value); `!Send`.
///
/// Values are only reachable through shared references ([`with`](Local::with)); use a
/// `Cell` or `RefCell` inside for mutation, or replace the value with [`set`](Local::set).
///
/// ```
/// use greenlet::Local;
/// let name: Local<String> = Local::new(greenlet::getcurrent_name);
/// let n = name.clone();
/// let g = greenlet::Builder::new().name("worker").spawn(move || n.with(|s| s.clone())).unwrap();
/// assert_eq!(g.join().unwrap(), "worker");
/// ```
pub struct Local<T> {
    id: u64,
    init: Rc<dyn Fn() -> T>,
}

impl<T> Clone for Local<T> {
    fn clone(&self) -> Self {
        Local {
            id: self.id,
            init: self.init.clone(),
        }
    }
}

impl<T: 'static> Local<T> {
    /// A new greenlet-local slot whose value in each greenlet is made by `init` on first use
    /// (`init` runs in that greenlet).
    ///
    /// ```
    /// let l = greenlet::Local::new(|| vec![1, 2, 3]);
    /// assert_eq!(l.with(|v| v.len()), 3);
    /// ```
    pub fn new(init: impl Fn() -> T + 'static) -> Local<T> {
        Local {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            init: Rc::new(init),
        }
    }

    /// The current greenlet's value, created now if needed.
    fn value(&self) -> Rc<T> {
        let me = hub::current();
        let Some(slots) = slots(&me) else {
            // The greenlet is finishing and its values are being dropped (a destructor uses
            // a `Local`): hand out a fresh value that is not stored.
            return Rc::new((self.init)());
        };
        let found = slots.0.borrow().get(&self.id).cloned();
        let v = match found {
            Some(v) => v,
            None => {
                // No borrow is held while `init` runs: it may use other `Local`s.
                let fresh: Rc<dyn Any> = Rc::new((self.init)());
                let mut map = slots.0.borrow_mut();
                map.entry(self.id).or_insert(fresh).clone()
            }
        };
        v.downcast::<T>()
            .unwrap_or_else(|_| unreachable!("a Local's slot holds its own type"))
    }

    /// Run `f` with the current greenlet's value (created by the constructor if this greenlet
    /// has none yet), and return what it returns.
    ///
    /// ```
    /// use std::cell::RefCell;
    /// let log = greenlet::Local::new(|| RefCell::new(Vec::new()));
    /// log.with(|l| l.borrow_mut().push("root"));
    /// let l = log.clone();
    /// greenlet::spawn(move || l.with(|l| assert!(l.borrow().is_empty()))).join().unwrap();
    /// assert_eq!(log.with(|l| l.borrow().len()), 1);
    /// ```
    pub fn with<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        let v = self.value();
        f(&v)
    }

    /// Replace the current greenlet's value (dropping the old one, if any).
    ///
    /// ```
    /// let l = greenlet::Local::new(|| 0);
    /// l.set(7);
    /// assert_eq!(l.get(), 7);
    /// ```
    pub fn set(&self, value: T) {
        let me = hub::current();
        let Some(slots) = slots(&me) else { return };
        let old = slots.0.borrow_mut().insert(self.id, Rc::new(value));
        // The old value's destructor runs with no borrow held.
        drop(old);
    }

    /// A copy of the current greenlet's value.
    ///
    /// ```
    /// let l = greenlet::Local::new(|| String::from("default"));
    /// assert_eq!(l.get(), "default");
    /// ```
    pub fn get(&self) -> T
    where
        T: Clone,
    {
        self.with(T::clone)
    }
}

impl<T> fmt::Debug for Local<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Local").field("id", &self.id).finish()
    }
}
