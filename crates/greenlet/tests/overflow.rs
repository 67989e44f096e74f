//! A stack overflow in a greenlet is reported with the greenlet's name (checked in a child
//! process, since the process aborts).

use std::process::Command;

const CHILD_ENV: &str = "GREENLET_OVERFLOW_CHILD";

#[inline(never)]
fn recurse(depth: u64, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    local[(depth % 1024) as usize] = buf[0].wrapping_add(1);
    std::hint::black_box(&mut local);
    if depth == u64::MAX {
        return 0;
    }
    recurse(depth + 1, &mut local) + local[3] as u64
}

#[test]
fn overflow_child() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return; // only meaningful when started by the test below
    }
    let g = greenlet::Builder::new()
        .name("deep-recursion")
        .stack_size(64 * 1024)
        .spawn(|| recurse(0, &mut [0u8; 1024]))
        .unwrap();
    let _ = g.join();
    unreachable!("the overflow must abort the process");
}

#[test]
fn stack_overflow_is_reported_with_the_greenlet_name() {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGABRT),
        "status {:?}, stderr: {stderr}",
        out.status
    );
    assert!(
        stderr.contains("greenlet 'deep-recursion' has overflowed its stack"),
        "stderr: {stderr}"
    );
}
