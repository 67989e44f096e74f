//! Name resolution: `getaddrinfo` (what `std::net`'s `ToSocketAddrs` calls) runs on the thread
//! pool, as gevent's default resolver does, so that a slow DNS answer holds up only the greenlet
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
    let mut p = REAL.load(Ordering::Acquire);
    if p.is_null() {
        // SAFETY: dlsym with a valid NUL-terminated name; RTLD_NEXT skips this definition.
        p = unsafe { libc::dlsym(libc::RTLD_NEXT, c"getaddrinfo".as_ptr()) };
        REAL.store(p, Ordering::Release);
    }
    // SAFETY: a non-null result of that look-up is libc's getaddrinfo, of this signature.
    (!p.is_null()).then(|| unsafe { std::mem::transmute::<*mut c_void, GetAddrInfo>(p) })
}

/// The caller's arguments, carried to a pool thread.
struct Call {
    node: *const c_char,
    service: *const c_char,
    hints: *const addrinfo,
    res: *mut *mut addrinfo,
}

// SAFETY: the pointers are the caller's, valid until the hook returns, and the hook returns
// only once the pool thread is done with them (it waits for the answer whatever happens).
unsafe impl Send for Call {}

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
    let lp = greenlet::hub_loop();
    let (tx, rx) = mpsc::channel::<c_int>();
    let Ok(w) = Waiter::new_no_unwind("getaddrinfo") else {
        // SAFETY: as above.
        return unsafe { f(node, service, hints, res) };
    };
    let waker = w.waker();
    let done = ev_loop::Async::new(&lp, move |_, _| {
        waker.wake();
    });
    done.start();
    let sender = done.sender();
    let call = Call {
        node,
        service,
        hints,
        res,
    };
    let _task = greenlet::threadpool::spawn_blocking(move || {
        let call = call;
        // SAFETY: the caller's arguments, valid until the hook returns (see `Call`).
        let r = unsafe { f(call.node, call.service, call.hints, call.res) };
        let _ = tx.send(r);
        sender.send();
    });
    // Woken by the pool thread (its answer is in the channel then), or the wait ended
    // otherwise (killed, an enclosing Timeout): the lookup still writes into the caller's
    // memory, so the answer is waited for in any case, then without switching.
    let _ = w.wait(None);
    rx.recv().unwrap_or(libc::EAI_SYSTEM)
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![getaddrinfo as *const () as usize]
}
