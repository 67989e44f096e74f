//! Real child processes, waited for and talked to cooperatively.

use gevent_io::process::{Child, Command, Stdio};
use greenlet::{sleep, spawn};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{eventually, generous, ms};

/// A greenlet that ticks 3 times (5 ms sleeps) and then sends `signum` to process `pid`: the
/// signal only comes if the hub runs it while the caller waits. Returns the tick count.
fn signal_after_ticks(pid: u32, signum: i32) -> (Rc<Cell<u32>>, greenlet::Greenlet<()>) {
    let ticks = Rc::new(Cell::new(0u32));
    let t = ticks.clone();
    let g = spawn(move || {
        for _ in 0..3 {
            sleep(ms(5)).unwrap();
            t.set(t.get() + 1);
        }
        // SAFETY: kill(2) on our own child, which is not reaped before this greenlet ends.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signum) }, 0);
    });
    (ticks, g)
}

#[test]
fn exit_codes_are_reported() {
    let mut c = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
    let status = c.wait().unwrap();
    assert_eq!(status.code(), Some(3));
    assert!(!status.success());
    // Waiting again returns the same status.
    assert_eq!(c.wait().unwrap().code(), Some(3));
    assert_eq!(c.try_wait().unwrap().unwrap().code(), Some(3));
    assert!(Command::new("true").status().unwrap().success());
}

#[test]
fn output_is_read_cooperatively_while_other_greenlets_run() {
    // The child writes a line, then keeps its stdout open (as `sleep`) until a greenlet kills
    // it: the read reaches the end of the stream only if the hub runs that greenlet meanwhile.
    // (A blocked hub would see the end only when `sleep` exits by itself, unkilled.)
    let mut child = Command::new("sh")
        .args(["-c", "echo hi; exec sleep 60"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut line = [0u8; 3];
    stdout.read_exact(&mut line).unwrap();
    assert_eq!(&line, b"hi\n");
    // Only now (the line is out): the ticker's kill cannot come before the `echo`.
    let (ticks, g) = signal_after_ticks(child.id(), libc::SIGKILL);
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    assert_eq!(ticks.get(), 3, "the read ended before the ticker was done");
    g.join().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGKILL),
        "the child was not killed by the ticker: {status:?}"
    );
}

#[test]
fn waiting_for_exit_does_not_block_the_hub() {
    // The child exits when a greenlet signals it, which needs the hub to run during the wait
    // (or else `sleep` exits by itself much later, unsignalled, and the check fails).
    let mut child = Command::new("sleep").arg("60").spawn().unwrap();
    let (ticks, g) = signal_after_ticks(child.id(), libc::SIGTERM);
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(libc::SIGTERM),
        "the child was not signalled by the ticker: {status:?}"
    );
    assert_eq!(ticks.get(), 3);
    g.join().unwrap();
}

#[test]
fn stdin_is_written_and_read_back_through_cat() {
    let mut child = Command::new("cat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    // More than a pipe buffer (64 KiB), so both sides must really interleave.
    let data: Vec<u8> = (0..512 * 1024u32).map(|i| (i % 251) as u8).collect();
    let expected = data.clone();
    let mut stdin = child.stdin.take().unwrap();
    let writer = spawn(move || {
        stdin.write_all(&data).unwrap();
        // Dropping stdin closes it: cat sees end of input.
    });
    let mut back = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut back).unwrap();
    writer.join().unwrap();
    assert_eq!(back.len(), expected.len());
    assert!(back == expected);
    assert!(child.wait().unwrap().success());
}

#[test]
fn wait_with_output_collects_both_streams() {
    let mut child = Command::new("sh")
        .args(["-c", "read line; echo \"out:$line\"; echo err >&2; exit 5"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.as_mut().unwrap().write_all(b"ping\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"out:ping\n");
    assert_eq!(out.stderr, b"err\n");
    assert_eq!(out.status.code(), Some(5));

    let out = Command::new("echo").arg("plain").output().unwrap();
    assert_eq!(out.stdout, b"plain\n");
    assert!(out.stderr.is_empty());
}

#[test]
fn wait_timeout_expires_then_kill_works() {
    // Killed below: it lives far longer than the generous bound on the first wait.
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    let start = Instant::now();
    let r = child.wait_timeout(ms(200)).unwrap();
    let took = start.elapsed();
    assert!(r.is_none(), "sleep 600 exited early: {r:?}");
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(5)),
        "wait_timeout took {took:?}"
    );
    child.kill().unwrap();
    let start = Instant::now();
    let status = child
        .wait_timeout(generous(Duration::from_secs(30)))
        .unwrap()
        .expect("killed child exits");
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    assert_eq!(status.signal(), Some(libc::SIGKILL));
    assert_eq!(status.code(), None);
    // Killing a reaped child is harmless.
    child.kill().unwrap();
    child.send_signal(libc::SIGTERM).unwrap();
}

#[test]
fn a_child_killed_by_a_signal_reports_it() {
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    child.send_signal(libc::SIGTERM).unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.signal(), Some(libc::SIGTERM));
    assert!(!status.success());

    let mut child = Command::new("sh")
        .args(["-c", "kill -KILL $$"])
        .spawn()
        .unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));

    // An invalid signal number is an error, not a panic.
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let e = child.send_signal(-5).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    child.kill().unwrap();
    child.wait().unwrap();
    // Also once the child is reaped (nothing is sent then, but a bad number is still bad).
    for bad in [-1, 65, i32::MAX] {
        let e = child.send_signal(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}");
    }
    child.send_signal(0).unwrap();
}

#[test]
fn many_children_are_waited_for_concurrently() {
    // Each child exits once its stdin is closed, and all stdins are closed only when all 8
    // greenlets have started their child and gone into its wait: so all 8 waits are under way
    // at once (a wait that blocked the hub would keep the next greenlet from ever starting).
    let stdins = Rc::new(std::cell::RefCell::new(Vec::new()));
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            let stdins = stdins.clone();
            spawn(move || {
                let mut c = Command::new("sh")
                    .args(["-c", &format!("read line; exit {i}")])
                    .stdin(Stdio::piped())
                    .spawn()
                    .unwrap();
                // Taken out, so that `wait` does not close it.
                stdins.borrow_mut().push(c.stdin.take().unwrap());
                c.wait().unwrap().code()
            })
        })
        .collect();
    assert!(
        eventually(Duration::from_secs(20), || stdins.borrow().len() == 8),
        "only {} children started",
        stdins.borrow().len()
    );
    assert!(waiters.iter().all(|g| !g.is_dead()));
    stdins.borrow_mut().clear(); // end of input: every child exits
    let codes: Vec<_> = waiters.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(codes, (0..8).map(Some).collect::<Vec<_>>());
}

#[test]
fn from_std_and_spawn_errors() {
    let std_child = std::process::Command::new("sh")
        .args(["-c", "echo std"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Child::from_std(std_child).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.stdout, b"std\n");
    assert!(out.status.success());

    let e = Command::new("/definitely/not/a/program")
        .spawn()
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::NotFound);
}

#[test]
fn an_enclosing_timeout_interrupts_a_wait() {
    let mut child = Command::new("sleep").arg("600").spawn().unwrap();
    let start = Instant::now();
    let r = greenlet::with_timeout(ms(50), || Ok(child.wait())).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    let took = start.elapsed();
    assert!(
        took >= ms(50) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}
