//! Sleeps: `clock_nanosleep` (what `std::thread::sleep` calls), `nanosleep`, `usleep`,
//! `sleep`. Cooperative, they are hub sleeps: the greenlet waits on a timer while the others
//! run. A sleep that a kill or an enclosing `Timeout` interrupts returns early as if it had
//! slept (std's `thread::sleep` would retry `EINTR` for the rest of the time, and unwinding
//! through a C caller is not possible); the kill then unwinds the greenlet at its next
//! ordinary blocking call.

use crate::Groups;
use crate::gate;
use crate::original;
use greenlet::hub::Waiter;
use libc::{c_int, c_uint, clockid_t, timespec};
use std::time::Duration;

fn duration(ts: &timespec) -> Option<Duration> {
    (ts.tv_sec >= 0 && (0..1_000_000_000).contains(&ts.tv_nsec))
        .then(|| Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32))
}

/// Sleep on the hub for `d`, without ever unwinding.
fn hub_sleep(d: Duration) {
    if let Ok(w) = Waiter::new_no_unwind("sleep") {
        let _ = w.wait_for(Some(d));
    }
}

#[inline]
fn cooperative() -> bool {
    gate::cooperative(Groups::TIME.bits())
}

#[unsafe(no_mangle)]
unsafe extern "C" fn clock_nanosleep(
    clock: clockid_t,
    flags: c_int,
    req: *const timespec,
    rem: *mut timespec,
) -> c_int {
    let known = matches!(
        clock,
        libc::CLOCK_MONOTONIC | libc::CLOCK_REALTIME | libc::CLOCK_BOOTTIME
    );
    if !cooperative() || !known || req.is_null() {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::clock_nanosleep(clock, flags, req, rem) };
    }
    // SAFETY: checked non-null; the caller passes a valid timespec.
    let Some(mut d) = duration(unsafe { &*req }) else {
        return libc::EINVAL;
    };
    if flags & libc::TIMER_ABSTIME != 0 {
        let mut now = timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        // SAFETY: a valid out pointer for a clock we checked exists.
        unsafe { libc::clock_gettime(clock, &mut now) };
        d = d.saturating_sub(duration(&now).unwrap_or_default());
    }
    hub_sleep(d);
    0
}

#[unsafe(no_mangle)]
unsafe extern "C" fn nanosleep(req: *const timespec, rem: *mut timespec) -> c_int {
    if !cooperative() || req.is_null() {
        // SAFETY: the caller's arguments, passed on unchanged.
        return unsafe { original::nanosleep(req, rem) };
    }
    // SAFETY: checked non-null; the caller passes a valid timespec.
    match duration(unsafe { &*req }) {
        Some(d) => {
            hub_sleep(d);
            0
        }
        None => crate::wait::fail(libc::EINVAL) as c_int,
    }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn usleep(us: libc::useconds_t) -> c_int {
    let ts = timespec {
        tv_sec: (us / 1_000_000) as libc::time_t,
        tv_nsec: (us % 1_000_000) as libc::c_long * 1000,
    };
    // SAFETY: a valid timespec of ours; no remainder wanted.
    unsafe { nanosleep(&ts, std::ptr::null_mut()) }
}

#[unsafe(no_mangle)]
unsafe extern "C" fn sleep(secs: c_uint) -> c_uint {
    let ts = original::secs(secs);
    let mut rem = original::secs(0);
    // SAFETY: valid timespecs of ours.
    if unsafe { nanosleep(&ts, &mut rem) } == 0 {
        0
    } else {
        rem.tv_sec as c_uint
    }
}

/// Every hook of this file, for [`crate::anchor`].
pub(crate) fn hooks() -> Vec<usize> {
    vec![
        clock_nanosleep as *const () as usize,
        nanosleep as *const () as usize,
        usleep as *const () as usize,
        sleep as *const () as usize,
    ]
}
