//! **gevent for Rust**: greenlets on the real libev, so that services are written in plain
//! blocking style while one thread serves thousands of connections.
//!
//! This crate is the facade. It re-exports the layers of the workspace, each of which can be
//! used on its own (arrows point down: each crate uses only the ones below it):
//!
//! * the greenlet layer (`greenlet`) at the top level: [`spawn`], [`scope`], [`joinall`],
//!   [`wait_any`], [`sleep`], [`Timeout`], [`Event`], [`AsyncResult`], locks, queues, pools,
//!   and the modules [`hub`] (with the public wait API: [`hub::Waiter`], [`hub::has_hub`],
//!   [`hub::in_greenlet`]), [`park`], [`monitor`], [`os`] ([`fork`]) and [`threadpool`];
//! * the I/O layer (`gevent-io`): [`net`] (sockets, and [`net::wait_fd`] for descriptors of
//!   your own), [`source`] (the fd-readiness core under the sockets), [`dns`], [`server`],
//!   [`signal`], [`process`], [`debug`] (every hub's run info over a socket);
//! * [`ev`]: the safe, single-threaded event loop and its watchers (`ev-loop`);
//! * [`sys`]: the raw libev 4.33 bindings (`libev-sys`), built from the vendored C sources;
//!
//! and gives the paths of the C reference programs the benchmarks compare against
//! ([`c_reference`]).
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! let jobs: Vec<_> = ["localhost", "127.0.0.1"]
//!     .into_iter()
//!     .map(|host| gevent::spawn(move || gevent::dns::lookup_host(host)))
//!     .collect();
//! let finished = gevent::joinall(&jobs, Some(Duration::from_secs(2))).unwrap();
//! assert_eq!(finished.len(), 2);
//! for job in jobs {
//!     assert!(!job.join().unwrap().unwrap().is_empty());
//! }
//! ```
//!
//! The loop layer on its own:
//!
//! ```
//! use gevent::ev::{Loop, Timer};
//! use std::time::Duration;
//!
//! let lp = Loop::new()?;
//! let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| println!("tick"));
//! t.start();
//! lp.run();
//! # Ok::<(), gevent::ev::Error>(())
//! ```

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]
#![forbid(unsafe_code)]

pub use ev_loop as ev;
pub use libev_sys as sys;

/// Existing blocking code made cooperative (`gevent.monkey`): see [`monkey::patch_all`].
/// Behind the `monkey` feature.
#[cfg(feature = "monkey")]
pub use gevent_monkey as monkey;

// The I/O layer.
/// The HTTP/1.1 server (`gevent.pywsgi`, package `gevent-http`): see [`http::Server`].
pub use gevent_http as http;
pub use gevent_io::{debug, dns, fs, net, process, select, server, signal, source};

// The greenlet layer: its modules, then its items.
pub use greenlet::{
    AsyncError, AsyncResult, AsyncSetter, BoundedSemaphore, Builder, Channel, DEFAULT_STACK_SIZE,
    Error, Event, ForkResult, Greenlet, Group, HubStats, Imap, ImapUnordered, Iwait, JoinAll,
    JoinError, JoinableQueue, LifoQueue, LinkHandle, Local, Lock, LockGuard, LoopError, Outcome,
    Pool, PriorityQueue, Queue, QueueError, QueueIter, RLock, RLockGuard, ReleaseError, Result,
    Scope, ScopedGreenlet, Semaphore, SimpleQueue, StackMode, Timeout, TimeoutId, TrySpawnError,
    UnstartedGreenlet, Waitable,
};
pub use greenlet::{
    fork, format_run_info, getcurrent_name, hub_loop, hub_stats, idle, is_kill, iwait, joinall,
    joinall_with, killall, run_callback, run_info, scope, set_default_stack_mode,
    set_switch_interval, sleep, spawn, spawn_later, switch_interval, trim_parked_stacks,
    trim_stack, wait, wait_any, with_timeout, with_timeout_or, yield_now,
};
pub use greenlet::{hub, monitor, os, park, threadpool};

/// The C programs built by this package's `build.rs` against the same vendored libev, used as
/// the baseline in tests and benchmarks.
pub mod c_reference {
    /// Path of the callback-only libev echo server written in C (`csrc/echo_server.c`). Run it
    /// with a `HOST:PORT` argument (port 0 picks a free one); it prints
    /// `listening on HOST:PORT` once it accepts connections.
    ///
    /// ```
    /// assert!(std::path::Path::new(gevent::c_reference::ECHO_SERVER).exists());
    /// ```
    pub const ECHO_SERVER: &str = env!("GEVENT_C_ECHO_SERVER");

    /// Path of the echo load client written in C on plain epoll (`csrc/echo_client.c`): run
    /// it as `echo_client HOST:PORT CONNS SECONDS [SIZE]`; it keeps one SIZE-byte message in
    /// flight per connection and prints `messages N seconds S msgs_per_sec R`. With SECONDS 0
    /// it echoes once per connection, prints `idle CONNS` and holds the connections until its
    /// standard input closes.
    ///
    /// ```
    /// assert!(std::path::Path::new(gevent::c_reference::ECHO_CLIENT).exists());
    /// ```
    pub const ECHO_CLIENT: &str = env!("GEVENT_C_ECHO_CLIENT");

    /// Path of the callback-only libev HTTP/1.1 server written in C (`csrc/http_hello.c`),
    /// the floor of the HTTP benchmarks: run it with a `HOST:PORT` argument like
    /// [`ECHO_SERVER`]; it answers every request head, keep-alive and pipelined, with
    /// `200 OK` and `Hello, World!`.
    ///
    /// ```
    /// assert!(std::path::Path::new(gevent::c_reference::HTTP_SERVER).exists());
    /// ```
    pub const HTTP_SERVER: &str = env!("GEVENT_C_HTTP_SERVER");
}

/// The README's code blocks, compiled and run as doctests.
#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
