//! The gate: only greenlets other than the hub, on threads with a hub, cooperate; regular
//! files, the hub's own callbacks and a forked child go straight to the kernel.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[test]
fn regular_files_are_read_and_written_directly() {
    gevent_monkey::patch_all();
    let path = std::env::temp_dir().join(format!("gevent-monkey-gate-{}", std::process::id()));
    let other = greenlet::spawn(|| ());
    std::fs::File::create(&path)
        .unwrap()
        .write_all(b"plain file")
        .unwrap();
    let mut s = String::new();
    std::fs::File::open(&path)
        .unwrap()
        .read_to_string(&mut s)
        .unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(s, "plain file");
    assert!(!other.is_dead(), "no switch for a regular file");
    other.join().unwrap();
}

#[test]
fn a_sleep_inside_the_hub_is_the_real_one() {
    gevent_monkey::patch_all();
    let slept = std::rc::Rc::new(std::cell::Cell::new(None));
    let s = slept.clone();
    greenlet::run_callback(move || {
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(10)); // in the hub: cannot switch
        s.set(Some(start.elapsed()));
    });
    greenlet::yield_now().unwrap();
    assert!(slept.get().unwrap() >= Duration::from_millis(10));
}

#[test]
fn a_forked_child_is_not_patched() {
    gevent_monkey::patch_all();
    greenlet::yield_now().unwrap(); // this thread has a hub, and runs in a greenlet
    // SAFETY: the child only sleeps (through the hook, which must go to the kernel there:
    // the child's copy of the hub must not be used) and exits without unwinding.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0);
    if pid == 0 {
        let patched = gevent_monkey::is_patched();
        let start = Instant::now();
        std::thread::sleep(Duration::from_millis(20));
        let ok = !patched && start.elapsed() >= Duration::from_millis(20);
        // SAFETY: leaving the child at once, without running the parent's destructors.
        unsafe { libc::_exit(if ok { 0 } else { 1 }) };
    }
    let mut status = 0;
    // SAFETY: waiting for our own child.
    assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
    assert!(
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
        "{status}"
    );
    assert!(gevent_monkey::is_patched(), "the parent is still patched");
}
