//! Greenlets on libev, with gevent's semantics and `std::thread`'s API shape.
//!
//! Each OS thread gets a **hub** on first use: a greenlet that runs a libev loop (through the
//! safe `ev-loop` crate). Code in greenlets is written in blocking style; every blocking call
//! ([`sleep`], [`Greenlet::join`], [`Event::wait`], …) registers a watcher or a wait-list entry
//! and switches to the hub, which switches back when it fires. When nothing could ever wake a
//! waiting call, it fails with [`Error::WouldBlockForever`] instead of hanging.
//!
//! # Example
//!
//! ```
//! use greenlet::{joinall, sleep, spawn, Event};
//! use std::time::Duration;
//!
//! let go = Event::new();
//! let workers: Vec<_> = (0..3)
//!     .map(|i| {
//!         let go = go.clone();
//!         spawn(move || {
//!             go.wait().unwrap();
//!             sleep(Duration::from_millis(5)).unwrap();
//!             i * 10
//!         })
//!     })
//!     .collect();
//! go.set();
//! assert_eq!(joinall(&workers, None).unwrap().len(), 3);
//! let results: Vec<i32> = workers.into_iter().map(|g| g.join().unwrap()).collect();
//! assert_eq!(results, [0, 10, 20]);
//! ```

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod error;
mod event;
pub mod fd;
mod greenlet;
pub mod hub;
mod local;
mod lock;
pub mod monitor;
pub mod os;
mod overflow;
pub mod park;
mod pool;
mod queue;
mod scope;
mod stack;
pub mod threadpool;
mod timeout;
mod valgrind;
mod wait_any;
mod waitlist;

pub use error::{Error, JoinError, LoopError, Result, TimeoutId};
pub use event::{AsyncError, AsyncResult, AsyncSetter, Event};
pub use greenlet::{
    Builder, Greenlet, JoinAll, LinkHandle, Outcome, UnstartedGreenlet, getcurrent_name, is_kill,
    joinall, joinall_with, killall, spawn, spawn_later,
};
pub use hub::{
    HubStats, hub_loop, hub_stats, idle, run_callback, set_switch_interval, sleep, switch_interval,
    trim_parked_stacks, wait, yield_now,
};
pub use local::Local;
pub use lock::{BoundedSemaphore, Lock, LockGuard, RLock, RLockGuard, ReleaseError, Semaphore};
pub use monitor::{format_run_info, run_info};
pub use os::{ForkResult, fork};
pub use pool::{Group, Imap, ImapUnordered, Pool, TrySpawnError};
pub use queue::{
    Channel, JoinableQueue, LifoQueue, PriorityQueue, Queue, QueueError, QueueIter, SimpleQueue,
};
pub use scope::{Scope, ScopedGreenlet, scope};
pub use stack::{DEFAULT_STACK_SIZE, StackMode, set_default_stack_mode, trim_stack};
pub use timeout::{Timeout, with_timeout, with_timeout_or};
pub use wait_any::{Iwait, Waitable, iwait, wait_any};
