//! Stack overflow reports: a greenlet that runs off its stack hits the guard page below it; a
//! SIGSEGV/SIGBUS handler (on the thread's alternate signal stack, which Rust's runtime sets
//! up) recognises the guard page of the current greenlet, prints the greenlet's name and
//! aborts. Faults anywhere else are passed on to the handler that was installed before
//! (Rust's own, which reports overflows of the thread's main stack).

use std::mem::MaybeUninit;
use std::sync::Once;

static INSTALL: Once = Once::new();
static mut PREV_SEGV: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();
static mut PREV_BUS: MaybeUninit<libc::sigaction> = MaybeUninit::uninit();

/// Install the handler once per process.
pub(crate) fn install() {
    INSTALL.call_once(|| {
        // SAFETY: sigaction with a valid handler and valid out-pointers; the PREV_* statics
        // are written here, once, before the handler can run (it is installed by the very
        // call that fills them, and reads them only after a fault).
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = handler as *const () as usize;
            sa.sa_flags = libc::SA_SIGINFO | libc::SA_ONSTACK;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(
                libc::SIGSEGV,
                &sa,
                (&raw mut PREV_SEGV).cast::<libc::sigaction>(),
            );
            libc::sigaction(
                libc::SIGBUS,
                &sa,
                (&raw mut PREV_BUS).cast::<libc::sigaction>(),
            );
        }
    });
}

fn write_stderr(bytes: &[u8]) {
    // SAFETY: write(2) is async-signal-safe; the buffer is valid for its length.
    unsafe { libc::write(2, bytes.as_ptr().cast(), bytes.len()) };
}

extern "C" fn handler(sig: libc::c_int, info: *mut libc::siginfo_t, ctx: *mut libc::c_void) {
    // SAFETY: the kernel passes a valid siginfo for SA_SIGINFO handlers.
    let addr = unsafe { (*info).si_addr() } as usize;
    if let Some((name, id)) = crate::hub::guard_hit(addr) {
        write_stderr(b"\ngreenlet '");
        match name {
            Some(name) => write_stderr(name),
            None => {
                // `Greenlet-<id>`, spelled here without allocating.
                write_stderr(b"Greenlet-");
                let mut digits = [0u8; 20];
                let mut i = digits.len();
                let mut n = id;
                loop {
                    i -= 1;
                    digits[i] = b'0' + (n % 10) as u8;
                    n /= 10;
                    if n == 0 {
                        break;
                    }
                }
                write_stderr(&digits[i..]);
            }
        }
        write_stderr(b"' has overflowed its stack (hit its guard page); aborting\n");
        // SAFETY: abort is async-signal-safe.
        unsafe { libc::abort() };
    }
    // Not ours: hand over to the previous handler.
    // SAFETY: PREV_* were filled by `install` before this handler was installed.
    let prev = unsafe {
        if sig == libc::SIGBUS {
            (&raw const PREV_BUS).cast::<libc::sigaction>().read()
        } else {
            (&raw const PREV_SEGV).cast::<libc::sigaction>().read()
        }
    };
    if prev.sa_sigaction == libc::SIG_DFL || prev.sa_sigaction == libc::SIG_IGN {
        // Restore the default action and return: the faulting instruction runs again and
        // the process dies with the original signal.
        // SAFETY: resetting a signal to its default disposition.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    } else if prev.sa_flags & libc::SA_SIGINFO != 0 {
        // SAFETY: the previous handler was installed with SA_SIGINFO, so it has this signature.
        let f: extern "C" fn(libc::c_int, *mut libc::siginfo_t, *mut libc::c_void) =
            unsafe { std::mem::transmute(prev.sa_sigaction) };
        f(sig, info, ctx);
    } else {
        // SAFETY: a plain handler takes only the signal number.
        let f: extern "C" fn(libc::c_int) = unsafe { std::mem::transmute(prev.sa_sigaction) };
        f(sig);
    }
}
