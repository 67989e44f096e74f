//! Name resolution: `getaddrinfo` (what `std::net`'s `ToSocketAddrs` calls), `gethostbyname`,
//! `gethostbyname2` and their `_r` variants run on the thread pool, as gevent's default resolver does, so that a slow DNS answer holds up only the greenlet
//! that asked. The real function is found with `dlsym(RTLD_NEXT)`: no system call stands in
//! for it.
//!
//! The lookup writes into the caller's memory, so the greenlet waits for it to finish whatever
//! happens: killed during the wait, it waits on without switching (blocking the thread for
//! the rest of the lookup) and returns the answer; the kill unwinds it at its next ordinary
//! blocking call.

use crate::Groups;
use crate::gate;
use greenlet::hub::Waiter;
use libc::{addrinfo, c_char, c_int, c_void};
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::mpsc;

type GetAddrInfo = unsafe extern "C" fn(
    *const c_char,
    *const c_char,
    *const addrinfo,
    *mut *mut addrinfo,
) -> c_int;

/// libc's `getaddrinfo`, looked up once.
fn real() -> Option<GetAddrInfo> {
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let p = lookup(&REAL, c"getaddrinfo");
    // SAFETY: a non-null result of that look-up is libc's getaddrinfo, of this signature.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, GetAddrInfo>(p) })
}

/// Pointers of the caller's, carried to a pool thread.
struct Carried<T>(T);

// SAFETY: what is carried are the caller's pointers, valid until the hook returns, and the
// hook returns only once the pool thread is done with them ([`on_pool`] waits for the answer
// whatever happens).
unsafe impl<T> Send for Carried<T> {}

/// Run `f` on the thread pool and wait for its answer: cooperatively, and once the wait is
/// ended otherwise (killed, an enclosing Timeout), on without switching, since `f` may be
/// writing into the caller's memory.
fn on_pool<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel::<T>();
    let w = Waiter::new_no_unwind("getaddrinfo").ok();
    let done = w.as_ref().map(|w| {
        let waker = w.waker();
        let done = ev_loop::Async::new(&greenlet::hub_loop(), move |_, _| {
            waker.wake();
        });
        done.start();
        done
    });
    let sender = done.as_ref().map(|d| d.sender());
    let _task = greenlet::threadpool::spawn_blocking(move || {
        let _ = tx.send(f());
        if let Some(s) = sender {
            s.send();
        }
    });
    if let Some(w) = w {
        let _ = w.wait(None);
    }
    rx.recv().expect("the pool thread answers")
}

#[unsafe(no_mangle)]
unsafe extern "C" fn getaddrinfo(
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
) -> c_int {
    let Some(f) = real() else {
        return libc::EAI_SYSTEM;
    };
    if !gate::cooperative(Groups::DNS.bits()) {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { f(node, service, hints, res) };
    }
    let args = Carried((node, service, hints, res));
    on_pool(move || {
        let args = args;
        let (node, service, hints, res) = args.0;
        // SAFETY: the caller's arguments, valid until the hook returns (see `Carried`).
        unsafe { f(node, service, hints, res) }
    })
}

type GetHostByNameR = unsafe extern "C" fn(
    *const c_char,
    *mut libc::hostent,
    *mut c_char,
    libc::size_t,
    *mut *mut libc::hostent,
    *mut c_int,
) -> c_int;

/// libc's `gethostbyname_r`, looked up once.
fn real_gethostbyname_r() -> Option<GetHostByNameR> {
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let p = lookup(&REAL, c"gethostbyname_r");
    // SAFETY: a non-null result of that look-up is libc's gethostbyname_r, of this signature.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, GetHostByNameR>(p) })
}

#[unsafe(no_mangle)]
unsafe extern "C" fn gethostbyname_r(
    name: *const c_char,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    let Some(f) = real_gethostbyname_r() else {
        return libc::ENOSYS;
    };
    if !gate::cooperative(Groups::DNS.bits()) {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { f(name, ret, buf, len, result, h_errnop) };
    }
    let args = Carried((name, ret, buf, len, result, h_errnop));
    on_pool(move || {
        let args = args;
        let (name, ret, buf, len, result, h_errnop) = args.0;
        // SAFETY: the caller's arguments, valid until the hook returns (see `Carried`).
        unsafe { f(name, ret, buf, len, result, h_errnop) }
    })
}

type GetHostByName2R = unsafe extern "C" fn(
    *const c_char,
    c_int,
    *mut libc::hostent,
    *mut c_char,
    libc::size_t,
    *mut *mut libc::hostent,
    *mut c_int,
) -> c_int;

type GetHostByName2 = unsafe extern "C" fn(*const c_char, c_int) -> *mut libc::hostent;

unsafe extern "C" {
    /// glibc's thread-local `h_errno`.
    fn __h_errno_location() -> *mut c_int;
}

/// libc's function `name` (NUL-terminated), looked up once into `slot`.
fn lookup(slot: &AtomicPtr<c_void>, name: &std::ffi::CStr) -> *mut c_void {
    let mut p = slot.load(Ordering::Acquire);
    if p.is_null() {
        // SAFETY: dlsym with a valid NUL-terminated name; RTLD_NEXT skips this definition.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, name.as_ptr()) };
        slot.store(p, Ordering::Release);
    }
    p
}

#[unsafe(no_mangle)]
unsafe extern "C" fn gethostbyname2_r(
    name: *const c_char,
    af: c_int,
    ret: *mut libc::hostent,
    buf: *mut c_char,
    len: libc::size_t,
    result: *mut *mut libc::hostent,
    h_errnop: *mut c_int,
) -> c_int {
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let p = lookup(&REAL, c"gethostbyname2_r");
    if p.is_null() {
        return libc::ENOSYS;
    }
    // SAFETY: the look-up found libc's gethostbyname2_r, of this signature.
    let f = unsafe { std::mem::transmute::<*mut c_void, GetHostByName2R>(p) };
    if !gate::cooperative(Groups::DNS.bits()) {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { f(name, af, ret, buf, len, result, h_errnop) };
    }
    let args = Carried((name, ret, buf, len, result, h_errnop));
    on_pool(move || {
        let args = args;
        let (name, ret, buf, len, result, h_errnop) = args.0;
        // SAFETY: the caller's arguments, valid until the hook returns (see `Carried`).
        unsafe { f(name, af, ret, buf, len, result, h_errnop) }
    })
}

/// `gethostbyname2` and `gethostbyname` (not reentrant: the answer is in libc's own static
/// storage, which the pool thread fills and the caller reads, as without the hook); the pool
/// thread's `h_errno` is carried back to the caller's.
fn by_name_on_pool(name: *const c_char, af: c_int) -> *mut libc::hostent {
    static REAL: AtomicPtr<c_void> = AtomicPtr::new(std::ptr::null_mut());
    let p = lookup(&REAL, c"gethostbyname2");
    if p.is_null() {
        return std::ptr::null_mut();
    }
    // SAFETY: the look-up found libc's gethostbyname2, of this signature.
    let f = unsafe { std::mem::transmute::<*mut c_void, GetHostByName2>(p) };
    if !gate::cooperative(Groups::DNS.bits()) {
        // SAFETY: the caller's argument, passed on unchanged.
        return unsafe { f(name, af) };
    }
    let arg = Carried(name);
    let (answer, herr) = on_pool(move || {
        let arg = arg;
        // SAFETY: the caller's name, valid until the hook returns (see `Carried`); then this
        // thread's h_errno, always valid.
        unsafe {
            let answer = f(arg.0, af);
            (Carried(answer), *__h_errno_location())
        }
    });
    // SAFETY: this thread's h_errno location is always valid.
    unsafe { *__h_errno_location() = herr };
    answer.0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn gethostbyname2(name: *const c_char, af: c_int) -> *mut libc::hostent {
    by_name_on_pool(name, af)
}

#[unsafe(no_mangle)]
unsafe extern "C" fn gethostbyname(name: *const c_char) -> *mut libc::hostent {
    by_name_on_pool(name, libc::AF_INET)
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![
        getaddrinfo as *const () as usize,
        gethostbyname_r as *const () as usize,
        gethostbyname2_r as *const () as usize,
        gethostbyname2 as *const () as usize,
        gethostbyname as *const () as usize,
    ]
}
