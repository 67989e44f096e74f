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

/// Upload `len` bytes to `url` (an echo) with `curl -T` (after `args`), asking for
/// `100 Continue` (curl does itself only above 1 MiB): asserts that the 100 came and that the
/// body came back whole.
pub(crate) fn curl_upload_after_continue(args: &[&str], url: &str, len: u32) {
    let file = std::env::temp_dir().join(format!(
        "gevent-http-upload-{}-{len}-{}",
        std::process::id(),
        args.len()
    ));
    let data: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let mut all = args.to_vec();
    all.extend([
        "-H",
        "Expect: 100-continue",
        "-T",
        file.to_str().unwrap(),
        url,
    ]);
    let (back, err) = curl_verbose(&all);
    std::fs::remove_file(&file).unwrap();
    assert!(err.contains("> Expect: 100-continue"), "{err}");
    assert!(err.contains("< HTTP/1.1 100 Continue"), "{err}");
    assert!(back == data, "{len} bytes sent, {} came back", back.len());
}
