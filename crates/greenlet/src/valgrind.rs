//! Valgrind client requests, without valgrind's headers.
//!
//! Greenlets switch stacks behind valgrind's back; unless it is told where each greenlet stack
//! lies, memcheck mistakes a switch between nearby stacks for a huge push or pop and reports
//! bogus invalid accesses ("client switching stacks?"). [`stack_register`] and
//! [`stack_deregister`] tell it, the way `VALGRIND_STACK_REGISTER` and
//! `VALGRIND_STACK_DEREGISTER` from `valgrind.h` do.
//!
//! A client request is a magic instruction sequence that does nothing on a real CPU (it leaves
//! the default result in place) and that valgrind's JIT recognises. It is implemented here for
//! x86_64 (the sequence and request codes are those of valgrind.h's `PLAT_amd64_linux`); on
//! other architectures every request is a no-op returning the default.

/// `VG_USERREQ__STACK_REGISTER` in valgrind.h.
const STACK_REGISTER: usize = 0x1501;
/// `VG_USERREQ__STACK_DEREGISTER` in valgrind.h.
const STACK_DEREGISTER: usize = 0x1502;

/// Issue the client request `args[0]` with arguments `args[1..]`; returns valgrind's answer, or
/// `default` when not running under valgrind.
#[cfg(target_arch = "x86_64")]
#[inline]
fn client_request(default: usize, args: &[usize; 6]) -> usize {
    let mut result = default;
    // SAFETY: the rotations add up to 128 bits, so rdi is unchanged, and `xchg rbx, rbx` is a
    // no-op: natively the sequence only clobbers flags. Under valgrind it reads the 6 words at
    // rax (a live array borrowed for this call) and writes the answer to rdx.
    unsafe {
        core::arch::asm!(
            "rol rdi, 3",
            "rol rdi, 13",
            "rol rdi, 61",
            "rol rdi, 51",
            "xchg rbx, rbx",
            in("rax") args.as_ptr(),
            inout("rdx") result,
            options(nostack, readonly),
        );
    }
    result
}

#[cfg(not(target_arch = "x86_64"))]
#[inline]
fn client_request(default: usize, _args: &[usize; 6]) -> usize {
    default
}

/// Tell valgrind that `[lo, hi)` is a stack; returns its id for [`stack_deregister`] (0 when
/// not running under valgrind).
#[inline]
pub(crate) fn stack_register(lo: usize, hi: usize) -> usize {
    // valgrind.h: `end` is the highest addressable byte.
    client_request(0, &[STACK_REGISTER, lo, hi - 1, 0, 0, 0])
}

/// Forget a stack registered with [`stack_register`].
#[inline]
pub(crate) fn stack_deregister(id: usize) {
    client_request(0, &[STACK_DEREGISTER, id, 0, 0, 0, 0]);
}
