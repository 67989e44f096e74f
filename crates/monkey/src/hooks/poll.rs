//! Waiting on many descriptors: `poll` (also what std's `connect_timeout` calls), `ppoll`,
//! `select` and the `_FORTIFY_SOURCE` variant `__poll_chk`. Cooperative, they first look
//! without waiting; if nothing is ready, the greenlet waits on one io watcher per descriptor
//! (duplicates merged) and the deadline, and then the kernel is asked once more, so that the
//! `revents` (and the sets `select` returns) are the kernel's own. A zero timeout, and a
//! `ppoll` with a signal mask (which cannot be emulated atomically), go straight to the
//! kernel.

use crate::Groups;
use crate::gate;
use crate::original;
use crate::wait::fail;
use ev_loop::{Events, Io};
use greenlet::hub::Waiter;
use libc::{c_int, nfds_t, pollfd};
use std::collections::HashMap;
use std::time::{Duration, Instant};

fn interest(events: i16) -> Events {
    let read = events & (libc::POLLIN | libc::POLLPRI | libc::POLLRDHUP) != 0;
    let write = events & libc::POLLOUT != 0;
    match (read, write) {
        (true, true) => Events::READ | Events::WRITE,
        (false, true) => Events::WRITE,
        // Only errors and hang-ups asked for: they come with readability.
        _ => Events::READ,
    }
}

/// The cooperative `poll`: `timeout` `None` waits without a limit.
fn coop_poll(fds: *mut pollfd, n: nfds_t, timeout: Option<Duration>) -> c_int {
    // SAFETY: the caller's array of `n` pollfds (so at every `original::poll` below).
    let r = unsafe { original::poll(fds, n, 0) };
    if r != 0 || timeout == Some(Duration::ZERO) {
        return r;
    }
    let deadline = timeout.map(|d| Instant::now().checked_add(d).unwrap_or_else(far_future));
    let slice: &[pollfd] = if n == 0 {
        &[]
    } else {
        // SAFETY: the caller passes `n` valid pollfds at `fds`; only read here.
        unsafe { std::slice::from_raw_parts(fds, n as usize) }
    };
    let mut merged: HashMap<c_int, Events> = HashMap::new();
    for p in slice.iter().filter(|p| p.fd >= 0) {
        let e = merged.entry(p.fd).or_default();
        *e |= interest(p.events);
    }
    loop {
        let w = match Waiter::new_no_unwind("poll") {
            Ok(w) => w,
            Err(greenlet::Error::Killed) => return fail(libc::ECANCELED) as c_int,
            Err(_) => return 0,
        };
        let lp = greenlet::hub_loop();
        let mut watchers = Vec::with_capacity(merged.len());
        for (&fd, &events) in &merged {
            let waker = w.waker();
            match Io::new(&lp, fd, events, move |_, _| {
                waker.wake();
            }) {
                Ok(io) => {
                    io.start();
                    watchers.push(io);
                }
                // A bad descriptor: the kernel's answer (POLLNVAL) is ready now.
                // SAFETY: as above.
                Err(_) => return unsafe { original::poll(fds, n, 0) },
            }
        }
        let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
        let woken = w.wait_for(left);
        drop(watchers);
        // SAFETY: as above.
        let r = unsafe { original::poll(fds, n, 0) };
        if r != 0 {
            return r;
        }
        match woken {
            Ok(true) => continue, // woken, but nothing is ready any more: wait again
            Ok(false) | Err(greenlet::Error::Timeout(_)) => return 0,
            Err(greenlet::Error::Killed) => return fail(libc::ECANCELED) as c_int,
            Err(greenlet::Error::WouldBlockForever) => return fail(libc::EDEADLK) as c_int,
            Err(_) => return fail(libc::EINTR) as c_int,
        }
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 24 * 3600)
}

#[inline]
fn cooperative() -> bool {
    gate::cooperative(Groups::POLL.bits())
}

#[unsafe(no_mangle)]
unsafe extern "C" fn poll(fds: *mut pollfd, n: nfds_t, timeout_ms: c_int) -> c_int {
    if !cooperative() || timeout_ms == 0 {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::poll(fds, n, timeout_ms) };
    }
    let timeout = (timeout_ms > 0).then(|| Duration::from_millis(timeout_ms as u64));
    coop_poll(fds, n, timeout)
}

#[unsafe(no_mangle)]
unsafe extern "C" fn __poll_chk(
    fds: *mut pollfd,
    n: nfds_t,
    timeout: c_int,
    fdslen: usize,
) -> c_int {
    if (n as usize).saturating_mul(std::mem::size_of::<pollfd>()) > fdslen {
        crate::abort_chk();
    }
    // SAFETY: the caller's arguments, checked as glibc checks them.
    unsafe { poll(fds, n, timeout) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn ppoll(
    fds: *mut pollfd,
    n: nfds_t,
    tmo: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // SAFETY: `tmo` is null or the caller's valid timespec.
    let zero = !tmo.is_null() && unsafe { (*tmo).tv_sec == 0 && (*tmo).tv_nsec == 0 };
    if !cooperative() || !mask.is_null() || zero {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::ppoll(fds, n, tmo, mask) };
    }
    let timeout = if tmo.is_null() {
        None
    } else {
        // SAFETY: checked non-null above.
        let t = unsafe { *tmo };
        if t.tv_sec < 0 || !(0..1_000_000_000).contains(&t.tv_nsec) {
            return fail(libc::EINVAL) as c_int;
        }
        Some(Duration::new(t.tv_sec as u64, t.tv_nsec as u32))
    };
    coop_poll(fds, n, timeout)
}

#[unsafe(no_mangle)]
unsafe extern "C" fn select(
    nfds: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    // SAFETY: `tv` is null or the caller's valid timeval.
    let zero = !tv.is_null() && unsafe { (*tv).tv_sec == 0 && (*tv).tv_usec == 0 };
    if !cooperative() || zero || !(0..=libc::FD_SETSIZE as c_int).contains(&nfds) {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::select(nfds, r, w, e, tv) };
    }
    let timeout = if tv.is_null() {
        None
    } else {
        // SAFETY: checked non-null above.
        let t = unsafe { *tv };
        if t.tv_sec < 0 || t.tv_usec < 0 {
            return fail(libc::EINVAL) as c_int;
        }
        Some(Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64))
    };
    let isset = |set: *mut libc::fd_set, fd: c_int| {
        let valid = !set.is_null();
        // SAFETY: each set is null or the caller's valid fd_set, and every fd is below
        // nfds <= FD_SETSIZE (so at the FD_SET/FD_ZERO calls below too).
        valid && unsafe { libc::FD_ISSET(fd, set) }
    };
    let mut fds = Vec::new();
    for fd in 0..nfds {
        let mut events = 0;
        if isset(r, fd) {
            events |= libc::POLLIN;
        }
        if isset(w, fd) {
            events |= libc::POLLOUT;
        }
        if isset(e, fd) {
            events |= libc::POLLPRI;
        }
        if events != 0 {
            fds.push(pollfd {
                fd,
                events,
                revents: 0,
            });
        }
    }
    let n = coop_poll(fds.as_mut_ptr(), fds.len() as nfds_t, timeout);
    if n < 0 {
        return n;
    }
    for set in [r, w, e] {
        if !set.is_null() {
            // SAFETY: as above.
            unsafe { libc::FD_ZERO(set) };
        }
    }
    let mut count = 0;
    for p in &fds {
        if p.revents & libc::POLLNVAL != 0 {
            return fail(libc::EBADF) as c_int;
        }
        let mut add = |set: *mut libc::fd_set, hit: bool| {
            if hit && !set.is_null() {
                // SAFETY: as above.
                unsafe { libc::FD_SET(p.fd, set) };
                count += 1;
            }
        };
        let err = p.revents & (libc::POLLERR | libc::POLLHUP) != 0;
        add(
            r,
            p.events & libc::POLLIN != 0 && (p.revents & libc::POLLIN != 0 || err),
        );
        add(
            w,
            p.events & libc::POLLOUT != 0 && (p.revents & libc::POLLOUT != 0 || err),
        );
        add(
            e,
            p.events & libc::POLLPRI != 0 && p.revents & libc::POLLPRI != 0,
        );
    }
    if !tv.is_null() {
        // Linux reports the time left; what is left after a wake-up is not tracked here.
        // SAFETY: checked non-null above.
        unsafe {
            (*tv).tv_sec = 0;
            (*tv).tv_usec = 0;
        }
    }
    count
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![
        poll as *const () as usize,
        __poll_chk as *const () as usize,
        ppoll as *const () as usize,
        select as *const () as usize,
    ]
}
