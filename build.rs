//! Builds the C reference programs that the workspace tests and benchmarks compare against,
//! against the very libev the Rust crates use (found through libev-sys's `links = "ev"`
//! metadata: `DEP_EV_INCLUDE`, `DEP_EV_LIB_DIR`, `DEP_EV_DEFINES`).
//!
//! The path of each program is exported to the crate as an environment variable at compile
//! time, e.g. `env!("GEVENT_C_ECHO_SERVER")`.

use std::env;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    let include = env::var("DEP_EV_INCLUDE").expect("libev-sys must publish DEP_EV_INCLUDE");
    let lib_dir = env::var("DEP_EV_LIB_DIR").expect("libev-sys must publish DEP_EV_LIB_DIR");
    let defines = env::var("DEP_EV_DEFINES").expect("libev-sys must publish DEP_EV_DEFINES");
    let out = PathBuf::from(env::var("OUT_DIR").unwrap());

    // The servers' shared listener and accept code.
    println!("cargo:rerun-if-changed=csrc/listen.h");
    for (name, env_name) in [
        ("echo_server", "GEVENT_C_ECHO_SERVER"),
        ("echo_client", "GEVENT_C_ECHO_CLIENT"),
        ("http_hello", "GEVENT_C_HTTP_SERVER"),
    ] {
        let src = PathBuf::from(format!("csrc/{name}.c"));
        println!("cargo:rerun-if-changed={}", src.display());
        let exe = out.join(format!("c_{name}"));
        // Use the C compiler `cc` would use, with the same libev configuration.
        let compiler = cc::Build::new().opt_level(2).get_compiler();
        let mut cmd = Command::new(compiler.path());
        cmd.args(compiler.args()).arg("-I").arg(&include).arg("-w");
        for d in defines.split('|').filter(|d| !d.is_empty()) {
            cmd.arg(format!("-D{d}"));
        }
        cmd.arg(&src)
            .arg("-o")
            .arg(&exe)
            .arg(format!("-L{lib_dir}"))
            .arg("-lev")
            .arg("-lm");
        let status = cmd
            .status()
            .unwrap_or_else(|e| panic!("cannot run the C compiler for {name}: {e}"));
        assert!(
            status.success(),
            "compiling {} failed: {cmd:?}",
            src.display()
        );
        println!("cargo:rustc-env={env_name}={}", exe.display());
    }
}
