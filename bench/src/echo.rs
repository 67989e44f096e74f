//! The echo benchmarks: each server runs in a process of its own, pinned to the first core, and
//! the C load client (`csrc/echo_client.c`, plain epoll) runs in another, pinned to the second;
//! at 10,000 connections each side needs 10,000 descriptors, so both raise their limit to the
//! hard one.
//!
//! The servers: the C libev echo server (`csrc/echo_server.c`, the baseline), this runtime's
//! echo server (the code of `examples/echo_server.rs`: one greenlet per connection, a 4 KiB
//! buffer), the same server written with `std::net` only and made cooperative by
//! `gevent::monkey::patch_all()` (the code of `examples/monkey_echo.rs`) and, as a peer, the
//! same server on tokio's current-thread runtime. The Rust servers are this program itself,
//! started with `--serve-echo rust|monkey|tokio`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

/// The read buffer of each connection of both Rust servers (the C server's is malloc'd at
/// 64 KiB, of which a 64-byte echo touches one page).
pub(crate) const BUF_SIZE: usize = 4096;

/// An echo server to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    /// The callback-only C libev server.
    C,
    /// This runtime's greenlet-per-connection server.
    Gevent,
    /// The same server on tokio's current-thread runtime.
    Tokio,
    /// The same server with `std::net` sockets, after `gevent::monkey::patch_all()`.
    Monkey,
}

impl Server {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Server::C => "c",
            Server::Gevent => "rust",
            Server::Tokio => "tokio",
            Server::Monkey => "monkey",
        }
    }
}

/// Raise this process's descriptor limit to the hard limit (children inherit it).
pub(crate) fn raise_fd_limit() {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid out pointer / in pointer to an rlimit.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < rl.rlim_max {
            rl.rlim_cur = rl.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

/// Start `cmd` pinned to `cpu` (when the machine has more than one).
pub(crate) fn pinned(mut cmd: Command, cpu: usize) -> Command {
    use std::os::unix::process::CommandExt;
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // SAFETY: the closure runs in the forked child before exec and only calls
        // sched_setaffinity on a set on its own stack (async-signal-safe, allocates nothing).
        unsafe {
            cmd.pre_exec(move || {
                let mut set: libc::cpu_set_t = std::mem::zeroed();
                libc::CPU_SET(cpu, &mut set);
                libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
                Ok(())
            });
        }
    }
    cmd
}

/// A running server process; killed when dropped.
pub(crate) struct Running {
    child: Child,
    pub addr: SocketAddr,
    _stdout: BufReader<ChildStdout>,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}

impl Running {
    /// The CPU time the server has used so far, in user space and in the kernel.
    pub(crate) fn cpu_times(&self) -> (Duration, Duration) {
        let s = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id()))
            .expect("the server's /proc/PID/stat");
        // After the command name in parentheses: state is field 3, utime 14, stime 15.
        let rest = &s[s.rfind(')').expect("a /proc/PID/stat line") + 2..];
        let f: Vec<&str> = rest.split_whitespace().collect();
        // SAFETY: sysconf only reads a configuration value.
        let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
        let time =
            |ticks: &str| Duration::from_nanos(ticks.parse::<u64>().unwrap() * 1_000_000_000 / hz);
        (time(f[11]), time(f[12]))
    }

    /// The server's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory, in bytes.
    pub(crate) fn rss_bytes(&self) -> usize {
        let s = std::fs::read_to_string(format!("/proc/{}/statm", self.child.id()))
            .expect("the server's /proc/PID/statm");
        let pages: usize = s.split_whitespace().nth(1).unwrap().parse().unwrap();
        pages * 4096
    }
}

/// Start `server` on a free loopback port, pinned to the first core.
pub(crate) fn start(server: Server) -> Running {
    let cmd = match server {
        Server::C => Command::new(gevent::c_reference::ECHO_SERVER),
        Server::Gevent | Server::Tokio | Server::Monkey => {
            let mut c = Command::new(std::env::current_exe().expect("the bench program's path"));
            c.arg("--serve-echo").arg(server.name());
            c
        }
    };
    start_command(cmd, &format!("the {server:?} echo server"))
}

/// Start the server program `cmd` with a `127.0.0.1:0` argument, pinned to the first core,
/// and read the address from its `listening on ADDR` line.
pub(crate) fn start_command(mut cmd: Command, what: &str) -> Running {
    cmd.arg("127.0.0.1:0").stdout(Stdio::piped());
    let mut child = pinned(cmd, 0)
        .spawn()
        .unwrap_or_else(|e| panic!("start {what}: {e}"));
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from {what}: {line:?}"))
        .parse()
        .unwrap();
    Running {
        child,
        addr,
        _stdout: stdout,
    }
}

fn client(addr: SocketAddr, conns: usize, secs: f64) -> Command {
    let mut cmd = Command::new(gevent::c_reference::ECHO_CLIENT);
    cmd.arg(addr.to_string())
        .arg(conns.to_string())
        .arg(secs.to_string())
        .stdout(Stdio::piped());
    pinned(cmd, 1)
}

/// Messages per second through `server` with `conns` connections for `dur` (a new server
/// process for each measurement).
pub(crate) fn throughput(server: Server, conns: usize, dur: Duration) -> f64 {
    let s = start(server);
    let out = client(s.addr, conns, dur.as_secs_f64())
        .output()
        .expect("run the echo client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "echo client against {server:?} with {conns} connections failed: {}{}",
        text,
        String::from_utf8_lossy(&out.stderr)
    );
    // "messages N seconds S msgs_per_sec R"
    text.split_whitespace()
        .nth(5)
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| panic!("unexpected echo client output: {text:?}"))
}

/// Resident memory of `server` per idle connection: `conns` connections that were each sent
/// one byte and echoed once, then held open (the server's RSS after, minus before, divided
/// by `conns`).
pub(crate) fn idle_rss_per_conn(server: Server, conns: usize) -> f64 {
    let s = start(server);
    let before = s.rss_bytes();
    let mut c = client(s.addr, conns, 0.0)
        .arg("1")
        .stdin(Stdio::piped())
        .spawn()
        .expect("run the echo client");
    let mut line = String::new();
    BufReader::new(c.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(
        line.trim(),
        format!("idle {conns}"),
        "the idle client failed"
    );
    let after = s.rss_bytes();
    drop(c.stdin.take()); // the client exits
    c.wait().ok();
    after.saturating_sub(before) as f64 / conns as f64
}

/// `--serve-echo gevent ADDR`: this runtime's echo server (the code of
/// `examples/echo_server.rs`, with its 4 KiB buffer).
pub(crate) fn serve_gevent(addr: &str) {
    let listener = gevent::net::TcpListener::bind(addr).expect("bind");
    announce(listener.local_addr().unwrap());
    while let Ok((mut conn, _)) = listener.accept() {
        conn.set_nodelay(true).ok();
        gevent::spawn(move || {
            let mut buf = vec![0u8; BUF_SIZE];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

/// `--serve-echo monkey ADDR`: the echo server written with `std::net` only, after
/// `gevent::monkey::patch_all()` (the code of `examples/monkey_echo.rs`, with its 4 KiB buffer).
pub(crate) fn serve_monkey(addr: &str) {
    gevent::monkey::patch_all();
    let listener = std::net::TcpListener::bind(addr).expect("bind");
    announce(listener.local_addr().unwrap());
    loop {
        let (mut conn, _) = match listener.accept() {
            Ok(c) => c,
            Err(_) => {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            }
        };
        conn.set_nodelay(true).ok();
        gevent::spawn(move || {
            let mut buf = vec![0u8; BUF_SIZE];
            while let Ok(n @ 1..) = conn.read(&mut buf) {
                if conn.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
    }
}

/// `--serve-echo tokio ADDR`: the same server on tokio's current-thread runtime.
pub(crate) fn serve_tokio(addr: &str) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .expect("a tokio runtime");
    rt.block_on(async {
        let listener = tokio::net::TcpListener::bind(addr).await.expect("bind");
        announce(listener.local_addr().unwrap());
        while let Ok((mut conn, _)) = listener.accept().await {
            conn.set_nodelay(true).ok();
            tokio::spawn(async move {
                let mut buf = vec![0u8; BUF_SIZE];
                while let Ok(n @ 1..) = conn.read(&mut buf).await {
                    if conn.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                }
            });
        }
    });
}

fn announce(addr: SocketAddr) {
    let mut out = std::io::stdout();
    writeln!(out, "listening on {addr}").unwrap();
    out.flush().unwrap();
}
