//! Compiles the C shim: the variadic libc functions (`fcntl`, `fcntl64`, `ioctl`) that stable
//! Rust cannot define. Each takes its one optional argument and calls the Rust hook.

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.c");
    cc::Build::new()
        .file("csrc/shim.c")
        .opt_level(2)
        .warnings(true)
        .compile("gevent_monkey_shim");
}
