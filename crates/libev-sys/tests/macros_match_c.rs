//! Every Rust re-implementation in `libev_sys::macros` leaves a watcher in exactly the state the
//! C macro (compiled into the `evshim_*` shim functions) does.

use libev_sys::macros::*;
use libev_sys::*;
use std::mem::{MaybeUninit, size_of};
use std::os::raw::c_int;
use std::ptr;

fn bytes<T>(v: &T) -> Vec<u8> {
    // SAFETY: reading the bytes of a fully initialised plain-old-data value; every watcher
    // below starts from all-0xAB bytes, so padding is initialised too.
    unsafe { std::slice::from_raw_parts(v as *const T as *const u8, size_of::<T>()).to_vec() }
}

fn filled<T>() -> T {
    let mut v = MaybeUninit::<T>::uninit();
    // SAFETY: the watcher structs are plain C data for which any byte pattern is valid
    // (pointers may hold garbage, callbacks are `Option<fn>` and are overwritten before use).
    unsafe {
        ptr::write_bytes(v.as_mut_ptr(), 0xAB, 1);
        v.assume_init()
    }
}

unsafe extern "C" fn cb_io(_: *mut ev_loop, _: *mut ev_io, _: c_int) {}
unsafe extern "C" fn cb_timer(_: *mut ev_loop, _: *mut ev_timer, _: c_int) {}
unsafe extern "C" fn cb_watcher(_: *mut ev_loop, _: *mut ev_watcher, _: c_int) {}

#[test]
fn init_and_io_set_match() {
    let (mut a, mut b): (ev_io, ev_io) = (filled(), filled());
    // SAFETY: both watchers are valid, inactive, and only used on this thread.
    unsafe {
        ev_io_init(&mut a, Some(cb_io), 7, EV_READ | EV_WRITE);
        evshim_init(ptr::addr_of_mut!(b).cast(), Some(cb_watcher));
        evshim_io_set(&mut b, 7, EV_READ | EV_WRITE);
        // The callbacks differ by design; align them before comparing the rest.
        ev_set_cb(&mut a, None);
        evshim_set_cb(ptr::addr_of_mut!(b).cast(), None);
    }
    assert_eq!(bytes(&a), bytes(&b));
    assert_eq!(a.events, EV_READ | EV_WRITE | EV__IOFDSET);

    // SAFETY: as above.
    unsafe {
        ev_io_modify(&mut a, EV_WRITE);
        evshim_io_modify(&mut b, EV_WRITE);
    }
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn set_cb_matches() {
    let (mut a, mut b): (ev_timer, ev_timer) = (filled(), filled());
    // SAFETY: valid inactive watchers.
    unsafe {
        ev_set_cb(&mut a, Some(cb_timer));
        evshim_set_cb(
            ptr::addr_of_mut!(b).cast(),
            Some(std::mem::transmute::<
                unsafe extern "C" fn(*mut ev_loop, *mut ev_timer, c_int),
                unsafe extern "C" fn(*mut ev_loop, *mut ev_watcher, c_int),
            >(cb_timer)),
        );
    }
    assert_eq!(bytes(&a), bytes(&b));
}

#[test]
fn timer_periodic_signal_child_set_match() {
    let (mut a, mut b): (ev_timer, ev_timer) = (filled(), filled());
    // SAFETY: valid inactive watchers.
    unsafe {
        ev_timer_set(&mut a, 1.5, 0.25);
        evshim_timer_set(&mut b, 1.5, 0.25);
    }
    assert_eq!(bytes(&a), bytes(&b));

    let (mut a, mut b): (ev_periodic, ev_periodic) = (filled(), filled());
    // SAFETY: valid inactive watchers.
    unsafe {
        ev_periodic_set(&mut a, 10.0, 3.0);
        evshim_periodic_set(&mut b, 10.0, 3.0);
        assert_eq!(ev_periodic_at(&a), evshim_periodic_at(&b));
    }
    assert_eq!(bytes(&a), bytes(&b));

    let (mut a, mut b): (ev_signal, ev_signal) = (filled(), filled());
    // SAFETY: valid inactive watchers.
    unsafe {
        ev_signal_set(&mut a, 10);
        evshim_signal_set(&mut b, 10);
    }
    assert_eq!(bytes(&a), bytes(&b));

    for trace in [false, true] {
        let (mut a, mut b): (ev_child, ev_child) = (filled(), filled());
        // SAFETY: valid inactive watchers.
        unsafe {
            ev_child_set(&mut a, 1234, trace);
            evshim_child_set(&mut b, 1234, if trace { 17 } else { 0 });
        }
        assert_eq!(bytes(&a), bytes(&b));
    }
}

#[test]
fn accessors_match() {
    let mut w: ev_prepare = filled();
    // SAFETY: valid watcher; the accessors only read/write the common prefix.
    unsafe {
        ev_prepare_init(&mut w, None);
        for pri in [-2, -1, 0, 1, 2] {
            ev_set_priority(&mut w, pri);
            assert_eq!(ev_priority(&w), pri);
            assert_eq!(evshim_priority(ptr::addr_of!(w).cast()), pri);
        }
        for (active, pending) in [(0, 0), (1, 0), (0, 3), (5, 2)] {
            w.active = active;
            w.pending = pending;
            assert_eq!(
                ev_is_active(&w),
                evshim_is_active(ptr::addr_of!(w).cast()) != 0
            );
            assert_eq!(
                ev_is_pending(&w),
                evshim_is_pending(ptr::addr_of!(w).cast()) != 0
            );
        }
        let mut a: ev_async = filled();
        ev_async_init(&mut a, None);
        for sent in [0, 1] {
            a.sent = sent;
            assert_eq!(ev_async_pending(&a), evshim_async_pending(&a) != 0);
        }
    }
}

#[test]
fn default_loop_check_matches() {
    // SAFETY: loops are created and destroyed on this thread only; this test binary's other
    // tests never touch the default loop.
    unsafe {
        let own = ev_loop_new(EVFLAG_AUTO);
        assert!(!ev_is_default_loop(own));
        assert_eq!(evshim_is_default_loop(own), 0);
        let def = ev_default_loop(EVFLAG_AUTO);
        assert!(ev_is_default_loop(def));
        assert_eq!(evshim_is_default_loop(def), 1);
        ev_loop_destroy(own);
        ev_loop_destroy(def);
        assert!(!ev_is_default_loop(def));
        assert_eq!(evshim_is_default_loop(def), 0);
    }
}

#[test]
fn shim_reports_the_vendored_version() {
    // SAFETY: plain C functions without arguments.
    unsafe {
        assert_eq!(evshim_version_major(), 4);
        assert_eq!(evshim_version_minor(), 33);
        assert_eq!((ev_version_major(), ev_version_minor()), (4, 33));
    }
}
