//! What the hooks know of each descriptor, process-wide: a lock-free table indexed by fd.
//!
//! Each entry holds the descriptor's kind (socket, pipe, something else, or not known yet),
//! whether the *user* asked for non-blocking mode (from `socket`/`accept4`/`pipe2` flags,
//! `fcntl(F_SETFL)`, `ioctl(FIONBIO)`), and the `SO_RCVTIMEO`/`SO_SNDTIMEO` the user set. It is
//! filled from the start, also before patching (the hooks that create and change descriptors
//! always record), cleared by `close` and copied by `dup*`. A descriptor the hooks never saw
//! (inherited, or made by a call that is not hooked) is looked at once with `fstat` and
//! `fcntl(F_GETFL)` when first used. Descriptors past the table's end are never made
//! cooperative.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

const MAX_FDS: usize = 1 << 16;

const KIND_MASK: u32 = 0b11;
const UNKNOWN: u32 = 0;
const SOCKET: u32 = 1;
const PIPE: u32 = 2;
const OTHER: u32 = 3;
const USER_NONBLOCK: u32 = 1 << 2;

/// What a descriptor is, as far as cooperation goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Socket,
    Pipe,
    Other,
}

struct Entry {
    state: AtomicU32,
    /// Receive timeout in ms (low 32 bits) and send timeout (high 32 bits); 0 is none.
    timeouts: AtomicU64,
}

static TABLE: [Entry; MAX_FDS] = [const {
    Entry {
        state: AtomicU32::new(UNKNOWN),
        timeouts: AtomicU64::new(0),
    }
}; MAX_FDS];

fn entry(fd: i32) -> Option<&'static Entry> {
    usize::try_from(fd).ok().and_then(|i| TABLE.get(i))
}

/// The descriptor's kind, found with `fstat` the first time it is asked for.
pub(crate) fn kind(fd: i32) -> Kind {
    let Some(e) = entry(fd) else {
        return Kind::Other;
    };
    let mut st = e.state.load(Relaxed);
    if st & KIND_MASK == UNKNOWN {
        st = detect(fd);
        e.state.store(st, Relaxed);
    }
    match st & KIND_MASK {
        SOCKET => Kind::Socket,
        PIPE => Kind::Pipe,
        _ => Kind::Other,
    }
}

/// Look at an fd the hooks did not see being made.
fn detect(fd: i32) -> u32 {
    // SAFETY: fstat writes only the buffer it is given, which is ours and large enough.
    let mut sb: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: as above; an invalid fd only fails with EBADF.
    if unsafe { libc::fstat(fd, &mut sb) } != 0 {
        return UNKNOWN;
    }
    let kind = match sb.st_mode & libc::S_IFMT {
        libc::S_IFSOCK => SOCKET,
        libc::S_IFIFO => PIPE,
        _ => OTHER,
    };
    // SAFETY: F_GETFL only reads the descriptor's status flags (through the real call).
    let flags = unsafe { crate::original::fcntl(fd, libc::F_GETFL, 0) };
    let nonblock = if flags >= 0 && flags & libc::O_NONBLOCK != 0 {
        USER_NONBLOCK
    } else {
        0
    };
    kind | nonblock
}

/// A descriptor just made (by `socket`, `accept4`, `pipe2`, …), with the user's mode.
pub(crate) fn made(fd: i32, kind: Kind, nonblocking: bool) {
    if let Some(e) = entry(fd) {
        let k = match kind {
            Kind::Socket => SOCKET,
            Kind::Pipe => PIPE,
            Kind::Other => OTHER,
        };
        e.state
            .store(k | if nonblocking { USER_NONBLOCK } else { 0 }, Relaxed);
        e.timeouts.store(0, Relaxed);
    }
}

/// Whether the user put the descriptor in non-blocking mode.
pub(crate) fn user_nonblocking(fd: i32) -> bool {
    kind(fd); // fills the entry if it is new
    entry(fd).is_some_and(|e| e.state.load(Relaxed) & USER_NONBLOCK != 0)
}

/// The user set or cleared non-blocking mode.
pub(crate) fn set_user_nonblocking(fd: i32, on: bool) {
    if let Some(e) = entry(fd) {
        kind(fd);
        if on {
            e.state.fetch_or(USER_NONBLOCK, Relaxed);
        } else {
            e.state.fetch_and(!USER_NONBLOCK, Relaxed);
        }
    }
}

fn ms(d: Option<Duration>) -> u64 {
    d.map_or(0, |d| d.as_millis().clamp(1, u32::MAX as u128) as u64)
}

fn from_ms(v: u64) -> Option<Duration> {
    (v != 0).then(|| Duration::from_millis(v))
}

/// The user's `SO_RCVTIMEO` (`None`: no timeout).
pub(crate) fn recv_timeout(fd: i32) -> Option<Duration> {
    entry(fd).and_then(|e| from_ms(e.timeouts.load(Relaxed) & 0xffff_ffff))
}

/// The user's `SO_SNDTIMEO` (`None`: no timeout).
pub(crate) fn send_timeout(fd: i32) -> Option<Duration> {
    entry(fd).and_then(|e| from_ms(e.timeouts.load(Relaxed) >> 32))
}

/// Record a `SO_RCVTIMEO` (`send: false`) or `SO_SNDTIMEO`.
pub(crate) fn set_timeout(fd: i32, send: bool, d: Option<Duration>) {
    if let Some(e) = entry(fd) {
        let v = ms(d);
        let _ = e.timeouts.fetch_update(Relaxed, Relaxed, |t| {
            Some(if send {
                (t & 0xffff_ffff) | (v << 32)
            } else {
                (t & !0xffff_ffff) | v
            })
        });
    }
}

/// The descriptor was closed: forget it.
pub(crate) fn closed(fd: i32) {
    if let Some(e) = entry(fd) {
        e.state.store(UNKNOWN, Relaxed);
        e.timeouts.store(0, Relaxed);
    }
}

/// `to` is now a duplicate of `from` (same open file, so the same mode and timeouts).
pub(crate) fn duplicated(from: i32, to: i32) {
    kind(from);
    if let (Some(a), Some(b)) = (entry(from), entry(to)) {
        b.state.store(a.state.load(Relaxed), Relaxed);
        b.timeouts.store(a.timeouts.load(Relaxed), Relaxed);
    }
}
