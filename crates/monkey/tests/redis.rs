//! The sync `redis` client, a crate nobody here wrote and unchanged, against a real
//! `redis-server`: after `patch_all()` its std sockets wait through the hub, so hundreds of
//! connections in greenlets of one thread are served side by side.
//!
//! Needs `redis-server` (Debian package `redis-server`); without it the tests are skipped with a
//! message, except with `CI` set, where they fail.

use std::cell::Cell;
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use redis::Commands;

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::generous;

/// A `redis-server` of the test's own on a free loopback port, killed when dropped (a failing
/// test included).
struct Server {
    child: Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `redis-server` and waits until it accepts connections; `None` (with a message) when it
/// is not installed and `CI` is not set. The port is one the system had free a moment before;
/// if it was taken meanwhile (the other test of this file may have been given the same one),
/// the server does not start there, and another port is tried: a server is used only once it
/// says it is the process this test started.
fn start_redis() -> Option<Server> {
    if Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_err()
    {
        assert!(
            std::env::var_os("CI").is_none(),
            "redis-server is not installed (apt-get install -y redis-server)"
        );
        eprintln!("skipped: redis-server is not installed (apt-get install -y redis-server)");
        return None;
    }
    for _ in 0..5 {
        if let Some(server) = try_start_redis() {
            return Some(server);
        }
    }
    panic!("redis-server could not be started on a free port in 5 tries");
}

/// One try of [`start_redis`]: `None` when the server is not the one it started.
fn try_start_redis() -> Option<Server> {
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let child = Command::new("redis-server")
        .args(["--save", "", "--appendonly", "no", "--bind", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .stdout(Stdio::null())
        .spawn()
        .expect("start redis-server");
    let mut server = Server { child, port };
    let deadline = Instant::now() + generous(Duration::from_secs(20));
    loop {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        if server.child.try_wait().unwrap().is_some() {
            // It could not listen there: the port was taken meanwhile.
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "redis-server did not accept connections on port {port} within 20 s"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query(&mut client(&server).get_connection().unwrap())
        .unwrap();
    let pid = info
        .lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse::<u32>().ok());
    (pid == Some(server.child.id())).then_some(server)
}

/// Aborts the whole test process, killing the server first, if it is still alive after `limit`:
/// an uncooperative call shows as a hang, and this turns it into a failure with a message.
struct Watchdog {
    _alive: mpsc::Sender<()>,
}

fn watchdog(what: &'static str, limit: Duration, server_pid: u32) -> Watchdog {
    let (tx, rx) = mpsc::channel::<()>();
    // A plain thread: it has no hub, so its wait is a real one.
    std::thread::spawn(move || {
        if rx.recv_timeout(limit) == Err(mpsc::RecvTimeoutError::Timeout) {
            eprintln!("{what}: still running after {limit:?}, a call did not cooperate; aborting");
            // SAFETY: kill(2) on the pid of the child this test started; no memory involved.
            unsafe { libc::kill(server_pid as libc::pid_t, libc::SIGKILL) };
            std::process::abort();
        }
    });
    Watchdog { _alive: tx }
}

fn client(server: &Server) -> redis::Client {
    redis::Client::open(format!("redis://127.0.0.1:{}/", server.port)).unwrap()
}

#[test]
fn two_hundred_blpops_in_greenlets_of_one_thread_wait_side_by_side() {
    let Some(server) = start_redis() else { return };
    let _watchdog = watchdog(
        "blpop",
        generous(Duration::from_secs(60)),
        server.child.id(),
    );
    gevent_monkey::patch_all();
    let n = 200;
    let inside = Rc::new(Cell::new(0usize));
    let max_inside = Rc::new(Cell::new(0usize));
    let connected = Rc::new(Cell::new(0usize));
    let all_connected = greenlet::Event::new();
    let start = Instant::now();
    let greenlets: Vec<_> = (0..n)
        .map(|i| {
            let client = client(&server);
            let (inside, max_inside) = (inside.clone(), max_inside.clone());
            let (connected, all_connected) = (connected.clone(), all_connected.clone());
            greenlet::spawn(move || {
                let mut con = client.get_connection().unwrap();
                // Every connection is open before the first BLPOP goes out, so that how many
                // are inside BLPOP at once does not depend on how fast the others connect.
                connected.set(connected.get() + 1);
                if connected.get() == n {
                    all_connected.set();
                }
                all_connected.wait().unwrap();
                inside.set(inside.get() + 1);
                max_inside.set(max_inside.get().max(inside.get()));
                let popped: Option<(String, String)> =
                    con.blpop(format!("gevent-monkey:empty:{i}"), 0.2).unwrap();
                inside.set(inside.get() - 1);
                popped
            })
        })
        .collect();
    for g in greenlets {
        assert_eq!(
            g.join().unwrap(),
            None,
            "BLPOP on an empty key times out with nil"
        );
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{n} BLPOPs of 0.2 s: at most {} inside BLPOP at once, {elapsed:?} in all",
        max_inside.get()
    );
    assert_eq!(inside.get(), 0);
    // Uncooperative, each BLPOP would hold the thread for its 0.2 s: one at a time, 40 s.
    assert_eq!(
        max_inside.get(),
        n,
        "every BLPOP was waiting at the same time"
    );
    assert!(elapsed < generous(Duration::from_secs(10)), "{elapsed:?}");
}

#[test]
fn ten_thousand_set_get_pairs_from_a_hundred_greenlets() {
    let Some(server) = start_redis() else { return };
    let _watchdog = watchdog(
        "set/get",
        generous(Duration::from_secs(60)),
        server.child.id(),
    );
    gevent_monkey::patch_all();
    let (greenlets, per) = (100, 100);
    let inside = Rc::new(Cell::new(0usize));
    let max_inside = Rc::new(Cell::new(0usize));
    let start = Instant::now();
    let handles: Vec<_> = (0..greenlets)
        .map(|g| {
            let client = client(&server);
            let (inside, max_inside) = (inside.clone(), max_inside.clone());
            greenlet::spawn(move || {
                let mut con = client.get_connection().unwrap();
                for i in 0..per {
                    let key = format!("gevent-monkey:{g}:{i}");
                    let value = format!("value {g}/{i} {}", "x".repeat(i));
                    inside.set(inside.get() + 1);
                    max_inside.set(max_inside.get().max(inside.get()));
                    let () = con.set(&key, &value).unwrap();
                    let got: String = con.get(&key).unwrap();
                    inside.set(inside.get() - 1);
                    assert_eq!(got, value, "{key}");
                }
            })
        })
        .collect();
    for h in handles {
        h.join().unwrap();
    }
    let elapsed = start.elapsed();
    eprintln!(
        "{} SET/GET pairs from {greenlets} greenlets: at most {} greenlets inside a SET/GET at \
         once, {elapsed:?} in all",
        greenlets * per,
        max_inside.get()
    );
    assert!(
        max_inside.get() > 1,
        "the greenlets' round trips overlapped"
    );
    // Every value is there, read back on a fresh connection.
    let mut con = client(&server).get_connection().unwrap();
    let got: String = con.get("gevent-monkey:99:99").unwrap();
    assert_eq!(got, format!("value 99/99 {}", "x".repeat(99)));
}
