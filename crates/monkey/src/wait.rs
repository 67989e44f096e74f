//! The one wait-and-retry every cooperative hook goes through (libgo's `hook.cpp` shape), and
//! the per-thread registry of the descriptors greenlets of this thread wait on.
//!
//! A descriptor a greenlet waits on gets a borrowed [`Source`] (the I/O layer's fd-readiness
//! core: one one-shot watcher per direction, armed only while someone waits), kept until the
//! descriptor is closed through the `close` hook, which first wakes the greenlets waiting on it
//! (they fail with `EBADF`) and drops the watchers, so that libev never watches a closed or
//! reused number.

use crate::fdtable;
use gevent_io::source::Source;
use libc::c_int;
use std::cell::RefCell;
use std::collections::HashMap;
use std::io;
use std::rc::Rc;

thread_local! {
    static SOURCES: RefCell<HashMap<c_int, Rc<Source>>> = RefCell::new(HashMap::new());
}

fn source(fd: c_int) -> Option<Rc<Source>> {
    SOURCES
        .try_with(|m| {
            let mut m = m.try_borrow_mut().ok()?;
            Some(
                m.entry(fd)
                    .or_insert_with(|| Rc::new(Source::borrow_raw(fd)))
                    .clone(),
            )
        })
        .ok()
        .flatten()
}

/// The descriptor is about to be closed (or replaced by `dup2`): wake its waiters on this
/// thread and drop its watchers.
pub(crate) fn forget(fd: c_int) {
    let s = SOURCES
        .try_with(|m| m.try_borrow_mut().ok().and_then(|mut m| m.remove(&fd)))
        .ok()
        .flatten();
    if let Some(s) = s {
        s.close();
    }
}

/// Set `errno` and return -1.
pub(crate) fn fail(errno: c_int) -> isize {
    // SAFETY: this thread's errno location is always valid.
    unsafe { *libc::__errno_location() = errno };
    -1
}

/// The current `errno`.
pub(crate) fn errno() -> c_int {
    // SAFETY: as above.
    unsafe { *libc::__errno_location() }
}

/// What a failed cooperative wait tells a C caller.
fn errno_of(e: &io::Error) -> c_int {
    if let Some(n) = e.raw_os_error() {
        return n;
    }
    if let Some(g) = e
        .get_ref()
        .and_then(|x| x.downcast_ref::<greenlet::Error>())
    {
        return match g {
            // Not EINTR: std and most C code retry EINTR, and a killed greenlet must get out.
            greenlet::Error::Killed => libc::ECANCELED,
            greenlet::Error::Timeout(_) => libc::ETIMEDOUT,
            greenlet::Error::WouldBlockForever => libc::EDEADLK,
            _ => libc::EIO,
        };
    }
    match e.kind() {
        // The descriptor's own SO_RCVTIMEO/SO_SNDTIMEO: what Linux reports for them.
        io::ErrorKind::TimedOut => libc::EAGAIN,
        // Another greenlet of this thread already waits in this direction.
        io::ErrorKind::ResourceBusy => libc::EBUSY,
        _ => libc::EIO,
    }
}

/// Run `op` — the real call, made non-blocking by itself (`MSG_DONTWAIT`, or a readiness
/// check) — until it does not fail with `EAGAIN`, waiting cooperatively for readability
/// (`write: false`) or writability in between, each wait at most the descriptor's
/// `SO_RCVTIMEO`/`SO_SNDTIMEO`. `EINTR` is retried. Returns what `op` returned, or -1 with
/// `errno` set.
pub(crate) fn retry(fd: c_int, write: bool, mut op: impl FnMut(c_int) -> isize) -> isize {
    let Some(s) = source(fd) else {
        return op(fd);
    };
    let r = if write {
        s.set_write_timeout(fdtable::send_timeout(fd));
        s.write_with(&mut op)
    } else {
        s.set_read_timeout(fdtable::recv_timeout(fd));
        s.read_with(&mut op)
    };
    match r {
        Ok(n) => n as isize,
        Err(e) => fail(errno_of(&e)),
    }
}

/// Wait until `fd` is ready (readable, or writable with `write`), at most `timeout`:
/// `Ok(())`, or `Err(errno)`.
pub(crate) fn ready(
    fd: c_int,
    write: bool,
    timeout: Option<std::time::Duration>,
) -> Result<(), c_int> {
    let Some(s) = source(fd) else {
        return Ok(());
    };
    let check = |fd: c_int| -> isize {
        let events = if write { libc::POLLOUT } else { libc::POLLIN };
        let mut p = libc::pollfd {
            fd,
            events,
            revents: 0,
        };
        // SAFETY: one valid pollfd, no waiting.
        let n = unsafe { crate::original::poll(&mut p, 1, 0) };
        match n {
            0 => fail(libc::EAGAIN),
            n if n < 0 => -1,
            _ if p.revents & libc::POLLNVAL != 0 => fail(libc::EBADF),
            _ => 0,
        }
    };
    let r = if write {
        s.set_write_timeout(timeout);
        s.write_with(check)
    } else {
        s.set_read_timeout(timeout);
        s.read_with(check)
    };
    r.map(drop).map_err(|e| errno_of(&e))
}
