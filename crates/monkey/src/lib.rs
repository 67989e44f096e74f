//! Existing blocking code made cooperative (gevent's `monkey.patch_all()`): after
//! [`patch_all`], `std::net` sockets, `std::thread::sleep`, `poll` and the crates built on them
//! wait through the hub when they run in a greenlet, so that the other greenlets of the thread
//! run meanwhile, without a line of them changed.
//!
//! ```
//! use std::time::{Duration, Instant};
//!
//! gevent_monkey::patch_all();
//! let start = Instant::now();
//! let sleepers: Vec<_> = (0..20)
//!     .map(|_| greenlet::spawn(|| std::thread::sleep(Duration::from_millis(100))))
//!     .collect();
//! for s in sleepers {
//!     s.join().unwrap();
//! }
//! // Twenty sleeps of 100 ms side by side, not one after another (2 s).
//! assert!(start.elapsed() < Duration::from_millis(1500));
//! ```
//!
//! # How
//!
//! The crate defines libc's own symbols (`recv`, `send`, `accept4`, `connect`, `poll`,
//! `clock_nanosleep`, … — the full list is in the README), so that the final binary's calls, std's
//! included, reach these definitions instead of libc's; each forwards to the kernel with a raw
//! system call ([`original`]). A hook cooperates only when its group is patched, the calling
//! thread has a hub, the caller is a greenlet other than the hub, and the descriptor is a
//! socket or pipe its user left in blocking mode; everything else (plain threads, the hub
//! itself, regular files, a forked child, code inside [`unpatched`]) goes straight to the
//! kernel, unchanged. Nothing changes before `patch_all` runs.
//!
//! **The linking trap**: the linker only keeps this crate's definitions if the binary refers
//! to the crate; calling [`patch_all`] (or [`patch`]) is what makes it refer to every hook. A
//! binary that depends on the crate and never calls it keeps libc's functions: everything
//! still works, uncooperatively.
//!
//! **What stays out of reach**: calls glibc makes internally (they do not go through the
//! symbols); crates that make raw system calls themselves (rustix's `linux_raw` backend);
//! crates that run their own runtime (the sync `postgres` crate drives tokio). A
//! `std::sync::Mutex` held across a cooperative call deadlocks against another greenlet of the
//! same thread (a futex cannot be interposed). A killed greenlet inside a hooked call cannot be
//! unwound through its C caller: the call fails with `ECANCELED` (a sleep returns early), and
//! the kill unwinds the greenlet at its next ordinary blocking call.

#![deny(missing_docs)]
#![doc(test(attr(deny(warnings))))]

mod fdtable;
mod gate;
mod hooks;
pub mod original;
mod wait;

use std::sync::atomic::Ordering;

/// Groups of hooks that [`patch`] turns on.
///
/// ```
/// use gevent_monkey::Groups;
/// assert_eq!(Groups::NET | Groups::TIME | Groups::POLL | Groups::DNS, Groups::ALL);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Groups(u8);

impl Groups {
    /// Socket and pipe I/O: `recv`, `send`, `read`, `write`, `accept4`, `connect`, …
    pub const NET: Groups = Groups(1);
    /// Sleeps: `clock_nanosleep` (`std::thread::sleep`), `nanosleep`, `usleep`, `sleep`.
    pub const TIME: Groups = Groups(2);
    /// `poll`, `ppoll`, `select`.
    pub const POLL: Groups = Groups(4);
    /// Name resolution: `getaddrinfo` runs on the thread pool.
    pub const DNS: Groups = Groups(8);
    /// Every group.
    pub const ALL: Groups = Groups(15);

    /// The groups as bits.
    ///
    /// ```
    /// assert_eq!(gevent_monkey::Groups::ALL.bits(), 15);
    /// ```
    pub fn bits(self) -> u8 {
        self.0
    }
}

impl std::ops::BitOr for Groups {
    type Output = Groups;
    fn bitor(self, other: Groups) -> Groups {
        Groups(self.0 | other.0)
    }
}

/// Make every group of hooks cooperative, for every thread, from now on (gevent's
/// `patch_all`). Idempotent.
///
/// ```
/// gevent_monkey::patch_all();
/// assert!(gevent_monkey::is_patched());
/// ```
pub fn patch_all() {
    patch(Groups::ALL);
}

/// Make the given groups of hooks cooperative (the others stay as they are).
///
/// ```
/// use gevent_monkey::Groups;
/// gevent_monkey::patch(Groups::TIME);
/// assert!(gevent_monkey::is_patched());
/// ```
pub fn patch(groups: Groups) {
    anchor();
    gate::patch(groups.bits());
}

/// Whether any group is patched.
///
/// ```
/// gevent_monkey::patch_all();
/// assert!(gevent_monkey::is_patched());
/// ```
pub fn is_patched() -> bool {
    gate::PATCHED.load(Ordering::Relaxed) != 0
}

/// Run `f` with the hooks bypassed on this thread: its calls block the thread as without
/// patching (for a call that must not switch, such as one made while holding a
/// `std::sync::Mutex` another greenlet may want).
///
/// ```
/// use std::time::Duration;
/// gevent_monkey::patch_all();
/// let other = greenlet::spawn(|| ());
/// gevent_monkey::unpatched(|| std::thread::sleep(Duration::from_millis(5)));
/// assert!(!other.is_dead(), "the hub did not run during the sleep");
/// other.join().unwrap();
/// ```
pub fn unpatched<T>(f: impl FnOnce() -> T) -> T {
    struct Restore;
    impl Drop for Restore {
        fn drop(&mut self) {
            let _ = gate::BYPASS.try_with(|b| b.set(b.get().saturating_sub(1)));
        }
    }
    let _ = gate::BYPASS.try_with(|b| b.set(b.get() + 1));
    let _restore = Restore;
    f()
}

unsafe extern "C" {
    fn gevent_monkey_shim_anchor() -> libc::c_int;
}

/// Refer to every hook, so that the linker keeps all of them (and the C shim) in a binary that
/// calls [`patch`].
fn anchor() {
    let all = [
        hooks::net::hooks(),
        hooks::fd::hooks(),
        hooks::time::hooks(),
        hooks::poll::hooks(),
        hooks::dns::hooks(),
    ];
    std::hint::black_box(&all);
    // SAFETY: a C function without arguments that returns a constant.
    std::hint::black_box(unsafe { gevent_monkey_shim_anchor() });
}

/// A `_FORTIFY_SOURCE` check failed (a length larger than the buffer): what glibc does.
fn abort_chk() -> ! {
    let msg = b"*** buffer overflow detected ***: terminated\n";
    // SAFETY: writing a static message to stderr, then aborting.
    unsafe {
        original::write(2, msg.as_ptr().cast(), msg.len());
        libc::abort()
    }
}
