//! A safe, single-threaded wrapper around [libev]'s event loop.
//!
//! This crate is the middle layer of the workspace: it owns libev loops and watchers on behalf
//! of safe Rust code, and the greenlet hub runs on top of it. What it guarantees:
//!
//! * **Watchers never move** while libev points at them: each lives in its own heap allocation,
//!   and that allocation is freed only after the watcher has been stopped.
//! * **Dropping is always safe**: dropping a watcher stops it; dropping a [`Loop`] while
//!   watchers exist only drops the handle (the watchers keep the C loop alive); a callback may
//!   start, stop or drop any watcher, itself included.
//! * **Panics never cross C**: a panic in a callback is caught at the boundary, the loop breaks,
//!   and the panic resumes from [`Loop::run`] once libev has returned.
//! * **Thread confinement**: [`Loop`] and every watcher are `!Send` and `!Sync`; only
//!   [`AsyncSender`] crosses threads.
//! * **Bad input is an [`Error`]**, never a libev `assert` or `abort`: negative or closed fds,
//!   invalid signal numbers, a signal another loop owns, NaN or negative times, child watchers
//!   outside the default loop.
//!
//! # Example
//!
//! ```
//! use ev_loop::{Events, Io, Loop, Timer};
//! use std::io::Write;
//! use std::os::fd::AsRawFd;
//! use std::os::unix::net::UnixStream;
//! use std::time::Duration;
//!
//! let lp = Loop::new()?;
//! let (mut tx, rx) = UnixStream::pair().unwrap();
//!
//! // Wait for `rx` to become readable.
//! let io = Io::new(&lp, rx.as_raw_fd(), Events::READ, |io, events| {
//!     assert!(events.is_readable());
//!     io.stop();
//! })?;
//! io.start();
//!
//! // Write after 10 ms.
//! let timer = Timer::new(&lp, Duration::from_millis(10), Duration::ZERO, move |_, _| {
//!     tx.write_all(b"hello").unwrap();
//! });
//! timer.start();
//!
//! lp.run(); // returns when both watchers have stopped
//! # Ok::<(), ev_loop::Error>(())
//! ```
//!
//! [libev]: http://software.schmorp.de/pkg/libev.html

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod error;
mod event_loop;
mod rc_io;
mod watcher;
mod watchers;

pub use error::{Error, Result};
pub use event_loop::{Backend, Break, Loop, LoopBuilder};
pub use rc_io::{IoHandler, RcIo};
pub use watcher::{Events, Kind, Watcher};
pub use watchers::{
    Async, AsyncSender, Check, Child, Idle, Io, Periodic, Prepare, Signal, Timer, kind,
};

/// The raw libev bindings this crate is built on.
pub use libev_sys as sys;
