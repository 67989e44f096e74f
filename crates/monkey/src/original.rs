//! The real calls, past the hooks (gevent's `get_original`): each goes to the kernel with a
//! raw `syscall`, so that no symbol look-up (and no recursion into a hook) happens.
//!
//! They behave as the libc functions of the same names do (`-1` and `errno` on failure; the
//! return value of [`clock_nanosleep`] is the error number, as libc's is) and block the thread
//! as those do.
//!
//! ```
//! use std::os::fd::AsRawFd;
//! let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
//! // SAFETY: the buffers are valid for the lengths given.
//! unsafe {
//!     assert_eq!(gevent_monkey::original::send(a.as_raw_fd(), b"hi".as_ptr().cast(), 2, 0), 2);
//!     let mut buf = [0u8; 2];
//!     assert_eq!(gevent_monkey::original::recv(b.as_raw_fd(), buf.as_mut_ptr().cast(), 2, 0), 2);
//! }
//! ```

#![allow(clippy::missing_safety_doc)] // one rule for all, stated here:
// # Safety
// The arguments must be valid for the system call of the same name: pointers to memory of the
// lengths given (or null where the call allows it), descriptors the caller may use.

use libc::{c_int, c_long, c_uint, c_ulong, c_void, size_t, sockaddr, socklen_t, ssize_t};

macro_rules! sys {
    ($nr:expr $(, $a:expr)*) => {
        // SAFETY: forwarded as given; the caller upholds the call's contract.
        unsafe { libc::syscall($nr $(, $a as c_long)*) }
    };
}

/// `read(2)`.
pub unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    sys!(libc::SYS_read, fd, buf, n) as ssize_t
}

/// `write(2)`.
pub unsafe fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    sys!(libc::SYS_write, fd, buf, n) as ssize_t
}

/// `readv(2)`.
pub unsafe fn readv(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    sys!(libc::SYS_readv, fd, iov, cnt) as ssize_t
}

/// `writev(2)`.
pub unsafe fn writev(fd: c_int, iov: *const libc::iovec, cnt: c_int) -> ssize_t {
    sys!(libc::SYS_writev, fd, iov, cnt) as ssize_t
}

/// `recv(2)` (`recvfrom` without an address).
pub unsafe fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract; null address pointers are allowed.
    unsafe {
        recvfrom(
            fd,
            buf,
            n,
            flags,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    }
}

/// `recvfrom(2)`.
pub unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    sys!(libc::SYS_recvfrom, fd, buf, n, flags, addr, len) as ssize_t
}

/// `send(2)` (`sendto` without an address).
pub unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's contract; a null address is allowed.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

/// `sendto(2)`.
pub unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    sys!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as ssize_t
}

/// `recvmsg(2)`.
pub unsafe fn recvmsg(fd: c_int, msg: *mut libc::msghdr, flags: c_int) -> ssize_t {
    sys!(libc::SYS_recvmsg, fd, msg, flags) as ssize_t
}

/// `sendmsg(2)`.
pub unsafe fn sendmsg(fd: c_int, msg: *const libc::msghdr, flags: c_int) -> ssize_t {
    sys!(libc::SYS_sendmsg, fd, msg, flags) as ssize_t
}

/// `accept4(2)`.
pub unsafe fn accept4(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t, flags: c_int) -> c_int {
    sys!(libc::SYS_accept4, fd, addr, len, flags) as c_int
}

/// `connect(2)`.
pub unsafe fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    sys!(libc::SYS_connect, fd, addr, len) as c_int
}

/// `close(2)`.
pub unsafe fn close(fd: c_int) -> c_int {
    sys!(libc::SYS_close, fd) as c_int
}

/// `socket(2)`.
pub unsafe fn socket(domain: c_int, ty: c_int, proto: c_int) -> c_int {
    sys!(libc::SYS_socket, domain, ty, proto) as c_int
}

/// `socketpair(2)`.
pub unsafe fn socketpair(domain: c_int, ty: c_int, proto: c_int, sv: *mut c_int) -> c_int {
    sys!(libc::SYS_socketpair, domain, ty, proto, sv) as c_int
}

/// `pipe2(2)`.
pub unsafe fn pipe2(fds: *mut c_int, flags: c_int) -> c_int {
    sys!(libc::SYS_pipe2, fds, flags) as c_int
}

/// `dup(2)`.
pub unsafe fn dup(fd: c_int) -> c_int {
    sys!(libc::SYS_dup, fd) as c_int
}

/// `dup3(2)`.
pub unsafe fn dup3(old: c_int, new: c_int, flags: c_int) -> c_int {
    sys!(libc::SYS_dup3, old, new, flags) as c_int
}

/// `fcntl(2)` with its one argument as a word.
pub unsafe fn fcntl(fd: c_int, cmd: c_int, arg: c_ulong) -> c_int {
    sys!(libc::SYS_fcntl, fd, cmd, arg) as c_int
}

/// `ioctl(2)` with its one argument as a word.
pub unsafe fn ioctl(fd: c_int, req: c_ulong, arg: c_ulong) -> c_int {
    sys!(libc::SYS_ioctl, fd, req, arg) as c_int
}

/// `setsockopt(2)`.
pub unsafe fn setsockopt(
    fd: c_int,
    level: c_int,
    name: c_int,
    val: *const c_void,
    len: socklen_t,
) -> c_int {
    sys!(libc::SYS_setsockopt, fd, level, name, val, len) as c_int
}

/// `ppoll(2)` (and `poll`, as `ppoll` with the timeout converted).
pub unsafe fn ppoll(
    fds: *mut libc::pollfd,
    n: libc::nfds_t,
    tmo: *const libc::timespec,
    mask: *const libc::sigset_t,
) -> c_int {
    // The kernel's sigset size (8 bytes), not glibc's `sigset_t`.
    sys!(libc::SYS_ppoll, fds, n, tmo, mask, 8) as c_int
}

/// `poll(2)`.
pub unsafe fn poll(fds: *mut libc::pollfd, n: libc::nfds_t, timeout_ms: c_int) -> c_int {
    let ts;
    let tmo = if timeout_ms < 0 {
        std::ptr::null()
    } else {
        ts = libc::timespec {
            tv_sec: (timeout_ms / 1000) as libc::time_t,
            tv_nsec: ((timeout_ms % 1000) as c_long) * 1_000_000,
        };
        &ts as *const libc::timespec
    };
    // SAFETY: the caller's contract; `tmo` is null or points to `ts`, alive here.
    unsafe { ppoll(fds, n, tmo, std::ptr::null()) }
}

/// `pselect6(2)` as `select`, with the timeout converted.
pub unsafe fn select(
    n: c_int,
    r: *mut libc::fd_set,
    w: *mut libc::fd_set,
    e: *mut libc::fd_set,
    tv: *mut libc::timeval,
) -> c_int {
    let ts;
    let tmo = if tv.is_null() {
        std::ptr::null()
    } else {
        // SAFETY: the caller passes a valid timeval (or null, handled above).
        let t = unsafe { *tv };
        ts = libc::timespec {
            tv_sec: t.tv_sec,
            tv_nsec: t.tv_usec as c_long * 1000,
        };
        &ts as *const libc::timespec
    };
    sys!(libc::SYS_pselect6, n, r, w, e, tmo, 0usize) as c_int
}

/// `nanosleep(2)`.
pub unsafe fn nanosleep(req: *const libc::timespec, rem: *mut libc::timespec) -> c_int {
    sys!(libc::SYS_nanosleep, req, rem) as c_int
}

/// `clock_nanosleep(2)`: returns 0 or the error number (it does not set `errno`).
pub unsafe fn clock_nanosleep(
    clock: libc::clockid_t,
    flags: c_int,
    req: *const libc::timespec,
    rem: *mut libc::timespec,
) -> c_int {
    let r = sys!(libc::SYS_clock_nanosleep, clock, flags, req, rem);
    if r < 0 {
        // SAFETY: reading this thread's errno, set by the failed syscall.
        unsafe { *libc::__errno_location() }
    } else {
        0
    }
}

/// A `c_uint` count of whole seconds as a `timespec`.
pub(crate) fn secs(s: c_uint) -> libc::timespec {
    libc::timespec {
        tv_sec: s as libc::time_t,
        tv_nsec: 0,
    }
}
