//! Data and connection calls on sockets and pipes: `recv`, `recvfrom`, `recvmsg`, `send`,
//! `sendto`, `sendmsg`, `read`, `write`, `readv`, `writev`, `accept`, `accept4`, `connect`,
//! and the `_FORTIFY_SOURCE` variants `__read_chk`, `__recv_chk`, `__recvfrom_chk`.
//!
//! On a socket a data call cooperates with a per-call `MSG_DONTWAIT` (the descriptor itself
//! stays blocking, for children, other threads and std's `splice` paths), and waits for
//! readiness on `EAGAIN`. On a pipe, and for `accept` (no per-call flag exists for them), it
//! waits for readiness first and then makes the blocking call, which then returns at once —
//! unless another thread or process took the data in between, in which case it blocks the
//! thread as it would have without the hook.

use crate::fdtable::{self, Kind};
use crate::gate;
use crate::original;
use crate::wait::{self, fail};
use crate::{Groups, abort_chk};
use libc::{c_int, c_void, iovec, msghdr, size_t, sockaddr, socklen_t, ssize_t};

/// How a call on `fd` goes: straight to the kernel, or cooperatively.
enum Path {
    Kernel,
    Socket,
    Pipe,
}

#[inline]
fn path(fd: c_int, flags: c_int) -> Path {
    // Standard input, output and error are never cooperative: std holds its stdout lock (a
    // futex) across the write, and a switch while holding it would deadlock the next greenlet
    // that prints.
    if fd <= 2 || !gate::cooperative(Groups::NET.bits()) || flags & libc::MSG_DONTWAIT != 0 {
        return Path::Kernel;
    }
    match fdtable::kind(fd) {
        _ if fdtable::user_nonblocking(fd) => Path::Kernel,
        Kind::Socket => Path::Socket,
        Kind::Pipe => Path::Pipe,
        Kind::Other => Path::Kernel,
    }
}

/// A pipe (or a call with no per-call flag): wait for readiness, then make the blocking call.
fn ready_then(fd: c_int, write: bool, call: impl FnOnce() -> isize) -> isize {
    let timeout = if write {
        fdtable::send_timeout(fd)
    } else {
        fdtable::recv_timeout(fd)
    };
    match wait::ready(fd, write, timeout) {
        Ok(()) => call(),
        Err(e) => fail(e),
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn recvfrom(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    match path(fd, flags) {
        // SAFETY: the caller's arguments, passed on unchanged.
        Path::Socket => wait::retry(fd, false, |fd| unsafe {
            original::recvfrom(fd, buf, n, flags | libc::MSG_DONTWAIT, addr, len)
        }),
        // SAFETY: as above.
        Path::Pipe => ready_then(fd, false, || unsafe {
            original::recvfrom(fd, buf, n, flags, addr, len)
        }),
        // SAFETY: as above.
        Path::Kernel => unsafe { original::recvfrom(fd, buf, n, flags, addr, len) },
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn recv(fd: c_int, buf: *mut c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments; null address pointers are allowed.
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

#[unsafe(no_mangle)]
unsafe extern "C" fn recvmsg(fd: c_int, msg: *mut msghdr, flags: c_int) -> ssize_t {
    match path(fd, flags) {
        // SAFETY: the caller's arguments, passed on unchanged.
        Path::Socket => wait::retry(fd, false, |fd| unsafe {
            original::recvmsg(fd, msg, flags | libc::MSG_DONTWAIT)
        }),
        // SAFETY: as above.
        Path::Pipe => ready_then(fd, false, || unsafe { original::recvmsg(fd, msg, flags) }),
        // SAFETY: as above.
        Path::Kernel => unsafe { original::recvmsg(fd, msg, flags) },
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn sendto(
    fd: c_int,
    buf: *const c_void,
    n: size_t,
    flags: c_int,
    addr: *const sockaddr,
    len: socklen_t,
) -> ssize_t {
    match path(fd, flags) {
        // SAFETY: the caller's arguments, passed on unchanged.
        Path::Socket => wait::retry(fd, true, |fd| unsafe {
            original::sendto(fd, buf, n, flags | libc::MSG_DONTWAIT, addr, len)
        }),
        // SAFETY: as above.
        Path::Pipe => ready_then(fd, true, || unsafe {
            original::sendto(fd, buf, n, flags, addr, len)
        }),
        // SAFETY: as above.
        Path::Kernel => unsafe { original::sendto(fd, buf, n, flags, addr, len) },
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn send(fd: c_int, buf: *const c_void, n: size_t, flags: c_int) -> ssize_t {
    // SAFETY: the caller's arguments; a null address is allowed.
    unsafe { sendto(fd, buf, n, flags, std::ptr::null(), 0) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn sendmsg(fd: c_int, msg: *const msghdr, flags: c_int) -> ssize_t {
    match path(fd, flags) {
        // SAFETY: the caller's arguments, passed on unchanged.
        Path::Socket => wait::retry(fd, true, |fd| unsafe {
            original::sendmsg(fd, msg, flags | libc::MSG_DONTWAIT)
        }),
        // SAFETY: as above.
        Path::Pipe => ready_then(fd, true, || unsafe { original::sendmsg(fd, msg, flags) }),
        // SAFETY: as above.
        Path::Kernel => unsafe { original::sendmsg(fd, msg, flags) },
    }
}

/// `read`/`readv` (`write`/`writev`) on a socket as the equivalent `recvmsg` (`sendmsg`)
/// with `MSG_DONTWAIT`.
fn socket_readv(fd: c_int, iov: *const iovec, cnt: c_int, write: bool) -> isize {
    wait::retry(fd, write, |fd| {
        // SAFETY: a zeroed msghdr is valid; only the iovec fields are set, from the caller's.
        let mut msg: msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = iov as *mut iovec;
        msg.msg_iovlen = cnt.max(0) as _;
        // SAFETY: the caller's iovec array, passed on unchanged.
        unsafe {
            if write {
                original::sendmsg(fd, &msg, libc::MSG_DONTWAIT)
            } else {
                original::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT)
            }
        }
    })
}

/// `read`, `write`, `readv`, `writev`: on a socket the equivalent `recvmsg`/`sendmsg` with
/// `MSG_DONTWAIT`; on a pipe readiness first, then `call`; otherwise `call` at once. A
/// descriptor the table wrongly holds for a socket (closed and reused behind the hooks' back)
/// fails with `ENOTSOCK`: it is looked at again and the call made as it now is.
fn stream_call(
    fd: c_int,
    iov: *const iovec,
    cnt: c_int,
    write: bool,
    call: impl Fn() -> isize,
) -> isize {
    match path(fd, 0) {
        Path::Socket => {
            let r = socket_readv(fd, iov, cnt, write);
            if r < 0 && wait::errno() == libc::ENOTSOCK {
                fdtable::closed(fd);
                return stream_call(fd, iov, cnt, write, call);
            }
            r
        }
        Path::Pipe => ready_then(fd, write, call),
        Path::Kernel => call(),
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn read(fd: c_int, buf: *mut c_void, n: size_t) -> ssize_t {
    let iov = iovec {
        iov_base: buf,
        iov_len: n,
    };
    // SAFETY: the caller's arguments, passed on unchanged.
    stream_call(fd, &iov, 1, false, || unsafe { original::read(fd, buf, n) })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn write(fd: c_int, buf: *const c_void, n: size_t) -> ssize_t {
    let iov = iovec {
        iov_base: buf as *mut c_void,
        iov_len: n,
    };
    // SAFETY: the caller's arguments, passed on unchanged.
    stream_call(fd, &iov, 1, true, || unsafe { original::write(fd, buf, n) })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn readv(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    stream_call(fd, iov, cnt, false, || unsafe {
        original::readv(fd, iov, cnt)
    })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn writev(fd: c_int, iov: *const iovec, cnt: c_int) -> ssize_t {
    // SAFETY: the caller's arguments, passed on unchanged.
    stream_call(fd, iov, cnt, true, || unsafe {
        original::writev(fd, iov, cnt)
    })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn accept4(
    fd: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
    flags: c_int,
) -> c_int {
    let r = match path(fd, 0) {
        // SAFETY: the caller's arguments, passed on unchanged.
        Path::Socket => ready_then(fd, false, || unsafe {
            original::accept4(fd, addr, len, flags) as isize
        }) as c_int,
        // SAFETY: as above.
        _ => unsafe { original::accept4(fd, addr, len, flags) },
    };
    if r >= 0 {
        fdtable::made(r, Kind::Socket, flags & libc::SOCK_NONBLOCK != 0);
    }
    r
}

#[unsafe(no_mangle)]
unsafe extern "C" fn accept(fd: c_int, addr: *mut sockaddr, len: *mut socklen_t) -> c_int {
    // SAFETY: the caller's arguments; accept is accept4 without flags.
    unsafe { accept4(fd, addr, len, 0) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn connect(fd: c_int, addr: *const sockaddr, len: socklen_t) -> c_int {
    if !matches!(path(fd, 0), Path::Socket) {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::connect(fd, addr, len) };
    }
    // No per-call flag exists for connect: the kernel's O_NONBLOCK is set for the call itself
    // (the user's view, kept in the table, stays blocking), then the wait is for writability.
    // SAFETY: F_GETFL/F_SETFL on the caller's descriptor.
    let flags = unsafe { original::fcntl(fd, libc::F_GETFL, 0) };
    if flags < 0 {
        return -1;
    }
    // SAFETY: as above.
    unsafe { original::fcntl(fd, libc::F_SETFL, (flags | libc::O_NONBLOCK) as _) };
    // SAFETY: the caller's arguments, passed on unchanged.
    let r = unsafe { original::connect(fd, addr, len) };
    let e = wait::errno();
    // SAFETY: restores the flags read above.
    unsafe { original::fcntl(fd, libc::F_SETFL, flags as _) };
    if r == 0 || e != libc::EINPROGRESS {
        if r < 0 {
            fail(e);
        }
        return r;
    }
    if let Err(e) = wait::ready(fd, true, fdtable::send_timeout(fd)) {
        // A blocking connect that ran out of SO_SNDTIMEO reports EINPROGRESS.
        return fail(if e == libc::EAGAIN {
            libc::EINPROGRESS
        } else {
            e
        }) as c_int;
    }
    let mut err: c_int = 0;
    let mut l = std::mem::size_of::<c_int>() as socklen_t;
    // SAFETY: SO_ERROR into a c_int of ours.
    let r = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_ERROR,
            (&raw mut err).cast(),
            &mut l,
        )
    };
    if r < 0 {
        return -1;
    }
    if err != 0 {
        return fail(err) as c_int;
    }
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn __read_chk(fd: c_int, buf: *mut c_void, n: size_t, buflen: size_t) -> ssize_t {
    if n > buflen {
        abort_chk();
    }
    // SAFETY: the caller's arguments, checked as glibc checks them.
    unsafe { read(fd, buf, n) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn __recv_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
) -> ssize_t {
    if n > buflen {
        abort_chk();
    }
    // SAFETY: as above.
    unsafe { recv(fd, buf, n, flags) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn __recvfrom_chk(
    fd: c_int,
    buf: *mut c_void,
    n: size_t,
    buflen: size_t,
    flags: c_int,
    addr: *mut sockaddr,
    len: *mut socklen_t,
) -> ssize_t {
    if n > buflen {
        abort_chk();
    }
    // SAFETY: as above.
    unsafe { recvfrom(fd, buf, n, flags, addr, len) }
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![
        recvfrom as *const () as usize,
        recv as *const () as usize,
        recvmsg as *const () as usize,
        sendto as *const () as usize,
        send as *const () as usize,
        sendmsg as *const () as usize,
        read as *const () as usize,
        write as *const () as usize,
        readv as *const () as usize,
        writev as *const () as usize,
        accept4 as *const () as usize,
        accept as *const () as usize,
        connect as *const () as usize,
        __read_chk as *const () as usize,
        __recv_chk as *const () as usize,
        __recvfrom_chk as *const () as usize,
    ]
}
