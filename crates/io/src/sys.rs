//! The system calls a [`Source`](crate::source::Source) makes on its own descriptor, made with
//! `syscall(2)` rather than through libc's functions of the same names.
//!
//! A program that links the monkey crate (the `gevent/monkey` feature) has those names
//! interposed: every `read` or `send` in the process goes through a hook that asks whether
//! to cooperate before it reaches the kernel, patched or not. A source's descriptor is
//! non-blocking and its waits are its own, so the hook could only ever answer "straight to
//! the kernel"; going there directly saves asking, on every call.
//!
//! Each behaves as the libc function does: the count, or `-1` with `errno` set. Only the
//! calls on a descriptor that exists go here: the ones that make or close a descriptor
//! (`accept4`, `close`) still go through libc, where the hooks keep their table of
//! descriptors right for a number used again.
//!
//! # Safety
//! The arguments must be valid for the system call of the same name: pointers to memory of
//! the lengths given (or null where the call allows it), a descriptor the caller may use.

use libc::{c_int, c_long, c_void, size_t, sockaddr, socklen_t, ssize_t};

/// `syscall(2)` with the call's number and arguments, each widened to the `long` the kernel
/// takes.
macro_rules! syscall {
    ($nr:expr $(, $arg:expr)*) => {
        // SAFETY: the caller passes arguments valid for the call (this module's contract).
        unsafe { libc::syscall($nr $(, $arg as c_long)*) }
    };
}

/// `read(2)`.
pub(crate) unsafe fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    syscall!(libc::SYS_read, fd, buf, n) as ssize_t
}

/// `send(2)`: `sendto(2)` without an address.
pub(crate) unsafe fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments (this module's contract); no address is what send(2) is.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

/// `recvfrom(2)`.
pub(crate) unsafe fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    syscall!(libc::SYS_recvfrom, fd, buf, n, flags, addr, len) as ssize_t
}

/// `sendto(2)`.
pub(crate) unsafe fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    syscall!(libc::SYS_sendto, fd, buf, n, flags, addr, len) as ssize_t
}
