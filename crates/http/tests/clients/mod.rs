//! Real HTTP clients the tests run as programs (curl, ApacheBench, Python): whether they are
//! installed, and running curl.

#![allow(dead_code)] // each test file uses its own part

use std::process::Command;

/// Whether `program` runs (`program version_arg` succeeds; for wrk, which fails whatever it
/// is asked without a URL, that it starts); without it, skip (fail when `CI` is set: CI
/// installs every client).
pub(crate) fn have(program: &str, version_arg: &str) -> bool {
    let ok = Command::new(program)
        .arg(version_arg)
        .output()
        .is_ok_and(|o| o.status.success() || program == "wrk");
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing and CI is set"
        );
        eprintln!("skipping: {program} is missing");
    }
    ok
}

/// Run curl (silent, errors shown, at most 30 s) and return its standard output; panics with
/// its standard error if it fails.
pub(crate) fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Run curl as [`curl`] does, verbose: its standard output and its standard error (where
/// `-v` shows the exchange).
pub(crate) fn curl_verbose(args: &[&str]) -> (Vec<u8>, String) {
    let out = Command::new("curl")
        .args(["-sS", "-v", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "curl {args:?}: {err}");
    (out.stdout, err)
}
