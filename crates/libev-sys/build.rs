//! Builds the vendored libev (and the macro shim) with `cc`, after checking that every vendored
//! file is byte-for-byte the upstream 4.33 file. With the `bindgen` feature it also regenerates
//! the bindings into `$OUT_DIR/bindings.rs`; otherwise the committed `src/bindings.rs` is used.

#[path = "config.rs"]
mod config;

#[cfg(feature = "bindgen")]
#[path = "bindgen_builder.rs"]
mod bindgen_builder;

use sha2::{Digest, Sha256};
use std::env;
use std::fs;
use std::path::{Path, PathBuf};

/// sha256 of `vendor/libev/SHA256SUMS`, the list of per-file checksums. Pinning the list here
/// means neither a vendored file nor the list can change without this build noticing.
const SHA256SUMS_DIGEST: &str = "72d96d8d43da66713226e1fa17b78972f136a3e2297cc3f4efd111e8d229b1d3";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn sha256_file(path: &Path) -> String {
    let data = fs::read(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    hex(&Sha256::digest(&data))
}

/// Fail the build loudly if any vendored libev file differs from upstream 4.33.
fn verify_vendored(libev_dir: &Path) {
    let sums_path = libev_dir.join("SHA256SUMS");
    let digest = sha256_file(&sums_path);
    assert_eq!(
        digest, SHA256SUMS_DIGEST,
        "vendor/libev/SHA256SUMS was modified (sha256 {digest}); the vendored libev must stay \
         pristine 4.33 (see vendor/libev/PROVENANCE.md)"
    );
    let sums = fs::read_to_string(&sums_path).expect("read SHA256SUMS");
    for line in sums.lines().filter(|l| !l.trim().is_empty()) {
        let (want, name) = line
            .split_once("  ")
            .unwrap_or_else(|| panic!("malformed SHA256SUMS line: {line:?}"));
        let file = libev_dir.join(name.trim());
        println!("cargo:rerun-if-changed={}", file.display());
        let got = sha256_file(&file);
        assert_eq!(
            got, want,
            "vendored libev file {name} does not match upstream libev 4.33 (sha256 {got}, \
             expected {want}); restore it from the release tarball"
        );
    }
}

fn main() {
    let crate_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").unwrap());
    let libev_dir = crate_dir.join("../../vendor/libev");
    let libev_dir = libev_dir
        .canonicalize()
        .unwrap_or_else(|e| panic!("vendored libev not found at {}: {e}", libev_dir.display()));
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=config.rs");
    println!("cargo:rerun-if-changed=wrapper.h");
    println!("cargo:rerun-if-changed=shim/ev_shim.c");
    println!("cargo:rerun-if-changed=shim/ev_shim.h");
    println!(
        "cargo:rerun-if-changed={}",
        libev_dir.join("SHA256SUMS").display()
    );

    verify_vendored(&libev_dir);

    let mut build = cc::Build::new();
    build
        .include(&libev_dir)
        .include(&crate_dir)
        .opt_level(2)
        // libev's own code is not ours to fix: its warnings are silenced, never patched.
        .warnings(false)
        .extra_warnings(false)
        .flag_if_supported("-w")
        .flag_if_supported("-fno-strict-aliasing");
    for (name, value) in config::DEFINES {
        build.define(name, Some(*value));
    }
    for src in config::C_SOURCES {
        build.file(libev_dir.join(src));
    }
    build.file(crate_dir.join("shim/ev_shim.c"));
    build.compile("ev");
    // libev needs libm (floor, fmod) on Linux.
    println!("cargo:rustc-link-lib=m");

    // Dependents (the root package builds C reference programs against the same libev) read
    // these as DEP_EV_INCLUDE / DEP_EV_DEFINES / DEP_EV_LIB_DIR.
    let out_dir = PathBuf::from(env::var("OUT_DIR").unwrap());
    println!("cargo:include={}", libev_dir.display());
    println!("cargo:lib_dir={}", out_dir.display());
    let defines: Vec<String> = config::DEFINES
        .iter()
        .map(|(n, v)| format!("{n}={v}"))
        .collect();
    println!("cargo:defines={}", defines.join("|"));

    #[cfg(feature = "bindgen")]
    {
        let text = bindgen_builder::generate(&crate_dir, &libev_dir);
        fs::write(out_dir.join("bindings.rs"), text).expect("write bindings.rs");
    }
}
