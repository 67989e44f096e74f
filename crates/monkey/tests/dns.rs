//! `dns` hook: `getaddrinfo` (what `ToSocketAddrs` calls) runs on the thread pool, and the
//! other greenlets run meanwhile.

use std::cell::Cell;
use std::net::ToSocketAddrs;
use std::rc::Rc;

#[test]
fn a_lookup_lets_the_other_greenlets_run_and_returns_the_answer() {
    gevent_monkey::patch_all();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let other = greenlet::spawn(move || r.set(true));
    let addrs: Vec<_> = ("localhost", 80).to_socket_addrs().unwrap().collect();
    assert!(
        !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()),
        "{addrs:?}"
    );
    assert!(ran.get(), "the other greenlet ran during the lookup");
    other.join().unwrap();
    // Errors come back as libc gives them.
    assert!("no-such-host.invalid:80".to_socket_addrs().is_err());
}

#[test]
fn a_lookup_outside_a_greenlet_is_the_plain_call() {
    gevent_monkey::patch_all();
    let n = std::thread::spawn(|| ("localhost", 80).to_socket_addrs().unwrap().count())
        .join()
        .unwrap();
    assert!(n > 0);
}

#[test]
fn gethostbyname_r_runs_off_the_hub_too() {
    gevent_monkey::patch_all();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let other = greenlet::spawn(move || r.set(true));
    // SAFETY: a zeroed hostent and a buffer of ours, valid for the call.
    let (rc, found) = unsafe {
        let mut he: libc::hostent = std::mem::zeroed();
        let mut buf = [0 as libc::c_char; 2048];
        let mut result: *mut libc::hostent = std::ptr::null_mut();
        let mut herr = 0;
        let rc = gevent_gethostbyname_r(
            c"localhost".as_ptr(),
            &mut he,
            buf.as_mut_ptr(),
            buf.len(),
            &mut result,
            &mut herr,
        );
        (rc, !result.is_null())
    };
    assert_eq!((rc, found), (0, true));
    assert!(ran.get(), "the other greenlet ran during the lookup");
    other.join().unwrap();
}

unsafe extern "C" {
    #[link_name = "gethostbyname_r"]
    fn gevent_gethostbyname_r(
        name: *const libc::c_char,
        ret: *mut libc::hostent,
        buf: *mut libc::c_char,
        len: libc::size_t,
        result: *mut *mut libc::hostent,
        h_errnop: *mut libc::c_int,
    ) -> libc::c_int;
}

#[test]
fn gethostbyname_runs_off_the_hub_and_keeps_its_answer() {
    gevent_monkey::patch_all();
    let ran = Rc::new(Cell::new(false));
    let r = ran.clone();
    let other = greenlet::spawn(move || r.set(true));
    // SAFETY: a NUL-terminated name; the answer is libc's static storage, read at once.
    let name = unsafe {
        let he = gevent_gethostbyname(c"localhost".as_ptr());
        assert!(!he.is_null());
        std::ffi::CStr::from_ptr((*he).h_name)
            .to_string_lossy()
            .into_owned()
    };
    assert!(!name.is_empty());
    assert!(ran.get(), "the other greenlet ran during the lookup");
    other.join().unwrap();
}

unsafe extern "C" {
    #[link_name = "gethostbyname"]
    fn gevent_gethostbyname(name: *const libc::c_char) -> *mut libc::hostent;
}
