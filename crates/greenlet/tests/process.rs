//! Real child processes, waited for and talked to cooperatively.

use greenlet::process::{Child, Command, Stdio};
use greenlet::{sleep, spawn};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::os::unix::process::ExitStatusExt;
use std::rc::Rc;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A greenlet that counts 5 ms ticks until the returned flag is set.
fn ticker() -> (Rc<Cell<u32>>, Rc<Cell<bool>>, greenlet::Greenlet<()>) {
    let ticks = Rc::new(Cell::new(0u32));
    let stop = Rc::new(Cell::new(false));
    let (t, s) = (ticks.clone(), stop.clone());
    let g = spawn(move || {
        while !s.get() {
            sleep(ms(5)).unwrap();
            t.set(t.get() + 1);
        }
    });
    (ticks, stop, g)
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
    let (ticks, stop, g) = ticker();
    let mut child = Command::new("sh")
        .args(["-c", "sleep 0.2; echo hi"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let took = start.elapsed();
    assert_eq!(out, "hi\n");
    assert!(took >= ms(150), "read returned after {took:?}");
    // ~40 ticks fit in 200 ms; a blocked hub would have allowed none.
    let during_read = ticks.get();
    assert!(
        during_read >= 10,
        "ticker advanced only {during_read} times"
    );
    assert!(child.wait().unwrap().success());
    stop.set(true);
    g.join().unwrap();
}

#[test]
fn waiting_for_exit_does_not_block_the_hub() {
    let (ticks, stop, g) = ticker();
    let mut child = Command::new("sleep").arg("0.2").spawn().unwrap();
    let start = Instant::now();
    assert!(child.wait().unwrap().success());
    assert!(start.elapsed() >= ms(150));
    assert!(
        ticks.get() >= 10,
        "ticker advanced only {} times",
        ticks.get()
    );
    stop.set(true);
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
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let start = Instant::now();
    let r = child.wait_timeout(ms(200)).unwrap();
    let took = start.elapsed();
    assert!(r.is_none(), "sleep 5 exited early: {r:?}");
    assert!(
        took >= ms(100) && took <= ms(310),
        "wait_timeout took {took:?}"
    );
    child.kill().unwrap();
    let start = Instant::now();
    let status = child
        .wait_timeout(ms(2000))
        .unwrap()
        .expect("killed child exits");
    assert!(start.elapsed() < ms(1000));
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
    let start = Instant::now();
    let waiters: Vec<_> = (0..8)
        .map(|i| {
            spawn(move || {
                let mut c = Command::new("sh")
                    .args(["-c", &format!("sleep 0.1; exit {i}")])
                    .spawn()
                    .unwrap();
                c.wait().unwrap().code()
            })
        })
        .collect();
    let codes: Vec<_> = waiters.into_iter().map(|g| g.join().unwrap()).collect();
    assert_eq!(codes, (0..8).map(Some).collect::<Vec<_>>());
    // Concurrent: far less than 8 × 100 ms.
    assert!(start.elapsed() < ms(700), "took {:?}", start.elapsed());
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
    let mut child = Command::new("sleep").arg("5").spawn().unwrap();
    let start = Instant::now();
    let r = greenlet::with_timeout(ms(50), || Ok(child.wait())).unwrap();
    assert_eq!(r.unwrap_err().kind(), ErrorKind::TimedOut);
    assert!(start.elapsed() < ms(1000));
    child.kill().unwrap();
    assert_eq!(child.wait().unwrap().signal(), Some(libc::SIGKILL));
}
