//! Cooperative I/O for greenlets, built only on the `greenlet` crate's public wait API
//! ([`greenlet::hub::Waiter`], [`greenlet::fd`], [`greenlet::hub_loop`]): every call that would
//! block the thread switches to the hub instead, which runs the other greenlets until the
//! descriptor is ready.
//!
//! * [`source`]: the fd-readiness core, a non-blocking descriptor with a watcher per direction;
//! * [`net`]: TCP, UDP and Unix sockets shaped like `std::net`, on top of it;
//! * [`debug`]: an opt-in endpoint answering with every hub's run info (gevent's `backdoor`);
//! * [`dns`]: name resolution on the thread pool;
//! * [`fs`]: files whose blocking calls run on the thread pool (gevent's `fileobject`);
//! * [`select`]: waiting on several descriptors at once (gevent's `select`);
//! * [`server`]: `StreamServer` and `DatagramServer` (gevent's `server` module);
//! * [`signal`]: waiting for and handling signals;
//! * [`process`]: child processes whose waits and pipes are cooperative.
//!
//! (The thread pool stays in `greenlet`: its results are `AsyncResult`s that greenlets wait
//! on like any other, and it needs no descriptor.)
//!
//! ```
//! use gevent_io::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = greenlet::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 4];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"ping").unwrap();
//! let mut back = [0u8; 4];
//! client.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"ping");
//! server.join().unwrap();
//! ```

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

pub mod debug;
pub mod dns;
pub mod fs;
pub mod net;
pub mod process;
pub mod select;
pub mod server;
pub mod signal;
pub mod source;
mod sys;

/// `now + d`, saturating far in the future instead of overflowing.
pub(crate) fn deadline_after(d: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    now.checked_add(d)
        .unwrap_or_else(|| now + std::time::Duration::from_secs(100 * 365 * 24 * 3600))
}
