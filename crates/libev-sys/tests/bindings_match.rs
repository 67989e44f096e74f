//! The committed `src/bindings.rs` must be exactly what bindgen generates today from
//! `wrapper.h` with the defines in `config.rs`. Needs libclang at run time; CI installs it (and
//! sets `CI=true`, which turns a missing libclang into a failure instead of a skip).

#[path = "../config.rs"]
#[allow(dead_code)]
mod config;

#[path = "../bindgen_builder.rs"]
mod bindgen_builder;

use std::path::PathBuf;

#[test]
fn bindings_match() {
    if let Err(e) = std::panic::catch_unwind(bindgen::clang_version) {
        let msg = e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "libclang could not be loaded".into());
        if std::env::var_os("CI").is_some() {
            panic!("libclang is required for the bindings check in CI: {msg}");
        }
        eprintln!("SKIPPED bindings_match: libclang not available ({msg}); install libclang-dev");
        return;
    }
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let libev_dir = crate_dir.join("../../vendor/libev").canonicalize().unwrap();
    let generated = bindgen_builder::generate(&crate_dir, &libev_dir);
    let committed = std::fs::read_to_string(crate_dir.join("src/bindings.rs")).unwrap();
    if generated != committed {
        let out = std::env::temp_dir().join("libev-sys-bindings.generated.rs");
        std::fs::write(&out, &generated).unwrap();
        panic!(
            "src/bindings.rs is stale: bindgen now generates {} (diff it against the committed \
             file, or regenerate with `cargo build -p libev-sys --features bindgen`)",
            out.display()
        );
    }
}
