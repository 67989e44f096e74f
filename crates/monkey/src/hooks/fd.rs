//! Calls that make, change, copy and close descriptors: they never wait, but keep the table of
//! what each descriptor is and what mode its user asked for (`socket`, `socketpair`, `pipe`,
//! `pipe2`, `dup`, `dup2`, `dup3`, `close`, `setsockopt` for the timeouts, and — through the C
//! shim, as they are variadic — `fcntl`, `fcntl64` and `ioctl`). They record always, also
//! before patching, so that the table is right when patching starts.

use crate::fdtable::{self, Kind};
use crate::original;
use crate::wait;
use libc::{c_int, c_ulong, c_void, socklen_t};
use std::time::Duration;

#[unsafe(no_mangle)]
unsafe extern "C" fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let fd = unsafe { original::socket(domain, ty, proto) };
    if fd >= 0 {
        fdtable::made(fd, Kind::Socket, ty & libc::SOCK_NONBLOCK != 0);
    }
    fd
}

#[unsafe(no_mangle)]
unsafe extern "C" fn socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::socketpair(domain, ty, proto, sv) };
    if r == 0 {
        for i in 0..2 {
            // SAFETY: the call succeeded, so it filled both slots of the caller's array.
            let fd = unsafe { *sv.add(i) };
            fdtable::made(fd, Kind::Socket, ty & libc::SOCK_NONBLOCK != 0);
        }
    }
    r
}

#[unsafe(no_mangle)]
unsafe extern "C" fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::pipe2(fds, flags) };
    if r == 0 {
        for i in 0..2 {
            // SAFETY: the call succeeded, so it filled both slots of the caller's array.
            let fd = unsafe { *fds.add(i) };
            fdtable::made(fd, Kind::Pipe, flags & libc::O_NONBLOCK != 0);
        }
    }
    r
}

#[unsafe(no_mangle)]
unsafe extern "C" fn pipe(fds: *mut c_int) -> c_int {
    // SAFETY: the caller's array; pipe is pipe2 without flags.
    unsafe { pipe2(fds, 0) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn close(fd: c_int) -> c_int {
    // Greenlets of this thread waiting on it wake with EBADF and their watchers go, before the
    // number can be reused.
    wait::forget(fd);
    fdtable::closed(fd);
    // SAFETY: the caller's descriptor.
    unsafe { original::close(fd) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn dup(fd: c_int) -> c_int {
    // SAFETY: the caller's descriptor.
    let new = unsafe { original::dup(fd) };
    if new >= 0 {
        fdtable::duplicated(fd, new);
    }
    new
}

#[unsafe(no_mangle)]
unsafe extern "C" fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    if old != new {
        // `new` is closed by the call if it is open.
        wait::forget(new);
    }
    // SAFETY: the caller's descriptors.
    let r = unsafe { original::dup3(old, new, flags) };
    if r >= 0 {
        fdtable::duplicated(old, r);
    }
    r
}

#[unsafe(no_mangle)]
unsafe extern "C" fn dup2(old: c_int, new: c_int) -> c_int {
    if old == new {
        // dup2 of a descriptor onto itself checks it and does nothing (dup3 would refuse).
        // SAFETY: F_GETFD only checks the descriptor.
        return if unsafe { original::fcntl(old, libc::F_GETFD, 0) } < 0 {
            -1
        } else {
            new
        };
    }
    // SAFETY: the caller's descriptors.
    unsafe { dup3(old, new, 0) }
}

/// `fcntl`, `fcntl64` (called by the C shim with the one argument as a word).
#[unsafe(no_mangle)]
unsafe extern "C" fn gevent_monkey_fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::fcntl(fd, cmd, arg) };
    if r >= 0 {
        match cmd {
            libc::F_SETFL => {
                fdtable::set_user_nonblocking(fd, arg as c_int & libc::O_NONBLOCK != 0)
            }
            libc::F_DUPFD | libc::F_DUPFD_CLOEXEC => fdtable::duplicated(fd, r),
            _ => {}
        }
    }
    r
}

/// `ioctl` (called by the C shim with the one argument as a word).
#[unsafe(no_mangle)]
unsafe extern "C" fn gevent_monkey_ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::ioctl(fd, req, arg) };
    if r == 0 && req == libc::FIONBIO as c_ulong && arg != 0 {
        // SAFETY: FIONBIO's argument points to an int, which the call just read.
        let on = unsafe { *(arg as *const c_int) } != 0;
        fdtable::set_user_nonblocking(fd, on);
    }
    r
}

#[unsafe(no_mangle)]
unsafe extern "C" fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::setsockopt(fd, level, name, val, len) };
    if r == 0
        && level == libc::SOL_SOCKET
        && (name == libc::SO_RCVTIMEO || name == libc::SO_SNDTIMEO)
        && len as usize >= std::mem::size_of::<libc::timeval>()
    {
        // SAFETY: the kernel accepted it as a timeval of this size.
        let tv = unsafe { *(val as *const libc::timeval) };
        let d = Duration::from_secs(tv.tv_sec.max(0) as u64)
            + Duration::from_micros(tv.tv_usec.max(0) as u64);
        fdtable::set_timeout(fd, name == libc::SO_SNDTIMEO, (!d.is_zero()).then_some(d));
    }
    r
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![
        socket as *const () as usize,
        socketpair as *const () as usize,
        pipe2 as *const () as usize,
        pipe as *const () as usize,
        close as *const () as usize,
        dup as *const () as usize,
        dup3 as *const () as usize,
        dup2 as *const () as usize,
        gevent_monkey_fcntl as *const () as usize,
        gevent_monkey_ioctl as *const () as usize,
        setsockopt as *const () as usize,
    ]
}
