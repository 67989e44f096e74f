//! `greenlet::os::fork` with a server greenlet: the child's hub keeps accepting and answering
//! on the inherited listener, runs timers and the thread pool; the parent waits for it.
//!
//! One test in its own binary: `fork` copies only the calling thread, so no other test may
//! run threads of its own while it forks.

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;

use gevent_io::net::TcpListener;
use greenlet::os::{ForkResult, fork};
use greenlet::{Event, spawn};
use std::io::{Read, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use support::{generous, ms};

/// Connections the child answers before it exits.
const CONNECTIONS: usize = 2;

/// What the child does after the fork; its result is its exit status.
fn child_main(server: greenlet::Greenlet<std::io::Result<usize>>) -> bool {
    // A greenlet sleeping on a timer wakes up in the child.
    let sleeper = spawn(|| greenlet::sleep(ms(5)).map(|()| "woke"));
    // The thread pool starts afresh in the child.
    let pooled = greenlet::threadpool::spawn_blocking(std::process::id);
    let pooled_ok = pooled.join().ok() == Some(std::process::id());
    let slept_ok = matches!(sleeper.join(), Ok(Ok("woke")));
    // The server greenlet answers the parent's connections, then returns.
    let served = greenlet::with_timeout(generous(ms(30_000)), || {
        greenlet::joinall(std::slice::from_ref(&server), None)
    });
    let served_ok = served.is_ok() && matches!(server.join(), Ok(Ok(CONNECTIONS)));
    pooled_ok && slept_ok && served_ok
}

#[test]
fn child_hub_keeps_serving_after_fork() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let ready = Event::new();
    let r = ready.clone();
    let server = spawn(move || -> std::io::Result<usize> {
        r.set();
        for _ in 0..CONNECTIONS {
            let (mut s, _) = listener.accept()?;
            write!(s, "{}", std::process::id())?;
        }
        Ok(CONNECTIONS)
    });
    // Once the wait returns, the server greenlet is blocked in `accept`.
    ready.wait().unwrap();

    match fork().unwrap() {
        ForkResult::Child => {
            let ok = catch_unwind(AssertUnwindSafe(|| child_main(server))).unwrap_or(false);
            // SAFETY: ends the child without running the test harness's exit path.
            unsafe { libc::_exit(if ok { 0 } else { 1 }) }
        }
        ForkResult::Parent { child } => {
            // Only the child answers: the parent's copy of the server goes away.
            server.kill();
            for _ in 0..CONNECTIONS {
                let mut c = std::net::TcpStream::connect(addr).unwrap();
                let mut answer = String::new();
                c.read_to_string(&mut answer).unwrap();
                assert_eq!(answer.parse::<libc::pid_t>().unwrap(), child);
            }
            let mut status = 0;
            // SAFETY: waiting for our own child, with a valid status pointer.
            let waited = unsafe { libc::waitpid(child, &mut status, 0) };
            assert_eq!(waited, child);
            assert!(
                libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0,
                "child status {status:#x}"
            );
        }
    }
}
