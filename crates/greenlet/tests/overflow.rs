//! A stack overflow in a greenlet is reported with the greenlet's name (checked in a child
//! process, since the process aborts).

use std::process::Command;

const CHILD_ENV: &str = "GREENLET_OVERFLOW_CHILD";

/// Recurse until 80 KiB of stack are used (16 KiB past the end of a 64 KiB stack), then switch
/// out at the bottom (where a canary-mode stack is checked).
#[inline(never)]
fn recurse(start: usize, buf: &mut [u8; 1024]) -> u64 {
    let mut local = [0u8; 1024];
    local[7] = buf[0].wrapping_add(1);
    std::hint::black_box(&mut local);
    let here = local.as_ptr() as usize;
    if start - here > 80 * 1024 {
        let _ = greenlet::yield_now();
        return 0;
    }
    recurse(start, &mut local) + local[3] as u64
}

#[test]
fn overflow_child() {
    let Some(mode) = std::env::var_os(CHILD_ENV) else {
        return; // only meaningful when started by the tests below
    };
    let named = mode != "guard-unnamed";
    let mode = if mode == "canary" {
        greenlet::StackMode::Canary
    } else {
        greenlet::StackMode::GuardPage
    };
    // In canary mode the overflow runs into the slot below: give it a (parked) neighbour.
    let park = greenlet::Event::new();
    let p = park.clone();
    let _neighbour = greenlet::Builder::new()
        .stack_mode(mode)
        .stack_size(64 * 1024)
        .spawn(move || p.wait())
        .unwrap();
    greenlet::yield_now().unwrap();
    let b = if named {
        greenlet::Builder::new().name("deep-recursion")
    } else {
        greenlet::Builder::new()
    };
    let g = b
        .stack_mode(mode)
        .stack_size(64 * 1024)
        .spawn(|| {
            let top = [0u8; 1];
            recurse(
                std::hint::black_box(&top).as_ptr() as usize,
                &mut [0u8; 1024],
            )
        })
        .unwrap();
    let _ = g.join();
    unreachable!("the overflow must abort the process");
}

#[test]
fn stack_overflow_is_reported_with_the_greenlet_name() {
    check_child("guard");
}

#[test]
fn canary_stack_overflow_is_reported_with_the_greenlet_name() {
    check_child("canary");
}

#[test]
fn an_unnamed_greenlet_is_reported_by_its_default_name() {
    // The name is made from the id only when asked for; the signal handler, which must not
    // allocate, spells it itself.
    check_child("guard-unnamed");
}

fn check_child(mode: &str) {
    let out = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "overflow_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, mode)
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
    let name = if mode == "guard-unnamed" {
        // `Greenlet-<id>`: the digits of some id.
        let at = stderr
            .find("greenlet 'Greenlet-")
            .map(|i| i + "greenlet 'Greenlet-".len());
        let rest = at.map(|i| &stderr[i..]).unwrap_or_default();
        let digits = rest.chars().take_while(|c| c.is_ascii_digit()).count();
        assert!(digits > 0, "mode {mode}, stderr: {stderr}");
        format!("Greenlet-{}", &rest[..digits])
    } else {
        "deep-recursion".to_owned()
    };
    assert!(
        stderr.contains(&format!("greenlet '{name}' has overflowed its stack")),
        "mode {mode}, stderr: {stderr}"
    );
    assert!(
        stderr.contains(if mode == "canary" {
            "canary"
        } else {
            "guard page"
        }),
        "stderr: {stderr}"
    );
}
