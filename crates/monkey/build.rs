//! Compiles the C shim: the variadic libc functions (`fcntl`, `fcntl64`, `ioctl`) that stable
//! Rust cannot define. Each takes its one optional argument and calls the Rust hook.
//!
//! Also compiles the tests' fixture `csrc/fortify_probe.c` with `-D_FORTIFY_SOURCE=2`, as
//! Debian builds its C libraries; a binary keeps it only if it calls it (the tests do).

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    cc::Build::new()
        .file("csrc/shim.c")
        .opt_level(2)
        .warnings(true)
        .compile("gevent_monkey_shim");

    println!("cargo:rerun-if-changed=csrc/fortify_probe.c");
    cc::Build::new()
        .file("csrc/fortify_probe.c")
        .opt_level(2)
        .define("_FORTIFY_SOURCE", "2")
        .compile("gevent_monkey_fortify_probe");
}
