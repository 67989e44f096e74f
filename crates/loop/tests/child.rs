//! Child watchers (default loop only). In a binary of its own: libev reaps every child of the
//! process once the default loop exists (so std's `wait` is never called here).
#![allow(clippy::zombie_processes)]

use ev_loop::{Child, Error, Events, Loop};
use std::cell::Cell;
use std::process::Command;
use std::rc::Rc;

#[test]
fn child_exit_status_is_reported() {
    let lp = Loop::builder().default_loop().build().unwrap();
    let child = Command::new("sh")
        .args(["-c", "sleep 0.05; exit 3"])
        .spawn()
        .unwrap();
    let pid = child.id() as i32;
    let seen = Rc::new(Cell::new(None));
    let s = seen.clone();
    let w = Child::new(&lp, pid, false, move |w, ev| {
        assert!(ev.contains(Events::CHILD));
        s.set(Some((w.rpid(), w.exit_status().unwrap().code())));
        w.stop();
    })
    .unwrap();
    w.start();
    lp.run();
    assert_eq!(seen.get(), Some((pid, Some(3))));

    // Any child (pid 0), killed by a signal.
    let child = Command::new("sleep").arg("10").spawn().unwrap();
    let pid = child.id() as i32;
    let any = Child::new(&lp, 0, false, |w, _| w.stop()).unwrap();
    any.start();
    // SAFETY: killing our own child process.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    lp.run();
    use std::os::unix::process::ExitStatusExt;
    assert_eq!(any.rpid(), pid);
    assert_eq!(any.exit_status().unwrap().signal(), Some(libc::SIGTERM));

    assert!(matches!(
        Child::new(&lp, -5, false, |_, _| {}),
        Err(Error::InvalidPid(-5))
    ));
    let own = Loop::new().unwrap();
    assert!(matches!(
        Child::new(&own, 0, false, |_, _| {}),
        Err(Error::NotDefaultLoop(_))
    ));
}
