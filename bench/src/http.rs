//! The HTTP benchmarks: requests per second of `GET /plaintext` over keep-alive connections,
//! one request in flight per connection or a pipelined batch of them.
//!
//! Each server runs in a process of its own pinned to the first core, the way the echo sweep
//! runs its servers (see [`crate::echo`]); the load client is a thread of this program pinned
//! to the second core, on plain epoll with non-blocking sockets. The servers:
//!
//! * the callback-only C libev server (`csrc/http_hello.c`, the floor), which answers every
//!   request head with a fixed response;
//! * this runtime's server, `gevent::http` with the handler of `examples/http_hello.rs`,
//!   which is this program started with `--serve-http ADDR`.
//!
//! The client connects every connection, makes one warm-up round (each connection's batch
//! answered, so each has been accepted and served once), then counts the responses that
//! arrive within the measured time: each connection sends `depth` requests in one write,
//! reads until all `depth` responses have come back (each framed by its `Content-Length`,
//! each checked to be a `200`), then sends the next batch.

use crate::echo::{self, Running};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::{Duration, Instant};

/// An HTTP server to measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    /// The callback-only C libev server.
    C,
    /// `gevent::http` with the handler of `examples/http_hello.rs`.
    Gevent,
}

/// Start `server` on a free loopback port, pinned to the first core.
fn start(server: Server) -> Running {
    let cmd = match server {
        Server::C => std::process::Command::new(gevent::c_reference::HTTP_SERVER),
        Server::Gevent => {
            let mut c = std::process::Command::new(
                std::env::current_exe().expect("the bench program's path"),
            );
            c.arg("--serve-http");
            c
        }
    };
    echo::start_command(cmd, &format!("the {server:?} HTTP server"))
}

/// What one measurement found.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measured {
    /// Responses per second.
    pub(crate) rps: f64,
    /// The server's CPU time over the measured time (near 1.0: the server was the limit).
    pub(crate) server_busy: f64,
    /// The server's user-space CPU time per response, in nanoseconds.
    pub(crate) user_ns: f64,
    /// The server's kernel CPU time per response, in nanoseconds.
    pub(crate) system_ns: f64,
}

/// Requests per second through `server` with `conns` keep-alive connections each keeping
/// `depth` requests in flight, for `dur` (a new server process for each measurement).
pub(crate) fn throughput(server: Server, conns: usize, depth: usize, dur: Duration) -> Measured {
    let s = start(server);
    let s = &s;
    std::thread::scope(|scope| {
        scope
            .spawn(move || {
                pin_current_thread(1);
                let fail = |what: &str, e: io::Error| -> ! {
                    panic!("{what} the {server:?} HTTP server: {e}")
                };
                let mut load = Load::connect(s.addr, conns, depth)
                    .unwrap_or_else(|e| fail("connecting to", e));
                load.round(Duration::from_secs(60))
                    .unwrap_or_else(|e| fail("the warm-up round against", e));
                let (user, system) = s.cpu_times();
                let (responses, elapsed) = load
                    .run(dur)
                    .unwrap_or_else(|e| fail("the load against", e));
                let secs = elapsed.as_secs_f64();
                let (user_after, system_after) = s.cpu_times();
                let (user, system) = (user_after - user, system_after - system);
                let per_response = |d: Duration| d.as_nanos() as f64 / responses.max(1) as f64;
                Measured {
                    rps: responses as f64 / secs,
                    server_busy: (user + system).as_secs_f64() / secs,
                    user_ns: per_response(user),
                    system_ns: per_response(system),
                }
            })
            .join()
            .expect("the load client")
    })
}

/// Resident memory of `server` per idle keep-alive connection: `conns` connections that were
/// each answered one request, then held open (the server's RSS after, minus before, divided
/// by `conns`).
pub(crate) fn idle_rss_per_conn(server: Server, conns: usize) -> f64 {
    let s = start(server);
    let before = s.rss_bytes();
    let mut load = Load::connect(s.addr, conns, 1)
        .unwrap_or_else(|e| panic!("connecting to the {server:?} HTTP server: {e}"));
    load.round(Duration::from_secs(120))
        .unwrap_or_else(|e| panic!("one request a connection to the {server:?} HTTP server: {e}"));
    let after = s.rss_bytes();
    drop(load);
    after.saturating_sub(before) as f64 / conns as f64
}

/// Pin the calling thread to `cpu` (when the machine has more than one).
fn pin_current_thread(cpu: usize) {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) > 1 {
        // SAFETY: a zeroed cpu_set_t is the empty set; CPU_SET and sched_setaffinity only
        // touch that set on this stack (pid 0: the calling thread).
        unsafe {
            let mut set: libc::cpu_set_t = std::mem::zeroed();
            libc::CPU_SET(cpu, &mut set);
            libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set);
        }
    }
}

/// One connection of the load client.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Bytes in `buf` (the start of a response not complete yet).
    len: usize,
    /// Responses of the current batch still to come.
    left: usize,
}

/// The load client: `conns` connections registered with one epoll instance.
struct Load {
    conns: Vec<Conn>,
    epoll: OwnedFd,
    batch: Vec<u8>,
    depth: usize,
}

impl Load {
    fn connect(addr: SocketAddr, conns: usize, depth: usize) -> io::Result<Load> {
        // SAFETY: epoll_create1 takes no pointers; the descriptor it returns is owned here.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        if epfd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: epfd is a fresh descriptor that nothing else owns.
        let epoll = unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(epfd) };
        let mut list = Vec::with_capacity(conns);
        for i in 0..conns {
            let stream = TcpStream::connect(addr)?;
            stream.set_nodelay(true)?;
            stream.set_nonblocking(true)?;
            let mut ev = libc::epoll_event {
                events: libc::EPOLLIN as u32,
                u64: i as u64,
            };
            // SAFETY: both descriptors are open; ev is a valid epoll_event the kernel copies.
            if unsafe {
                libc::epoll_ctl(
                    epoll.as_raw_fd(),
                    libc::EPOLL_CTL_ADD,
                    stream.as_raw_fd(),
                    &mut ev,
                )
            } < 0
            {
                return Err(io::Error::last_os_error());
            }
            list.push(Conn {
                stream,
                // Room for a whole batch's responses (about 150 bytes each) many times over.
                buf: vec![0; 4096 * depth.max(4)],
                len: 0,
                left: 0,
            });
        }
        let batch = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(depth);
        Ok(Load {
            conns: list,
            epoll,
            batch,
            depth,
        })
    }

    /// Send the next batch of requests on connection `i`.
    fn send(&mut self, i: usize) -> io::Result<()> {
        let c = &mut self.conns[i];
        // A batch of at most a few KiB into an empty socket buffer: written whole at once.
        let n = (&c.stream).write(&self.batch)?;
        if n != self.batch.len() {
            return Err(io::Error::other("a short write of a request batch"));
        }
        c.left = self.depth;
        Ok(())
    }

    /// Wait up to `timeout` for readiness: how many of `events` were filled.
    fn wait(&self, events: &mut [libc::epoll_event], timeout: Duration) -> io::Result<usize> {
        // SAFETY: events is a writable array of events.len() epoll_events.
        let n = unsafe {
            libc::epoll_wait(
                self.epoll.as_raw_fd(),
                events.as_mut_ptr(),
                events.len() as i32,
                timeout.as_millis().min(i32::MAX as u128) as i32,
            )
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::Interrupted {
                Ok(0)
            } else {
                Err(e)
            };
        }
        Ok(n as usize)
    }

    /// Read what connection `i` has; returns how many responses were completed.
    fn receive(&mut self, i: usize) -> io::Result<usize> {
        let c = &mut self.conns[i];
        let n = match (&c.stream).read(&mut c.buf[c.len..]) {
            Ok(0) => return Err(io::Error::other("the server closed a connection")),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(0),
            Err(e) => return Err(e),
        };
        c.len += n;
        let mut start = 0;
        let mut done = 0;
        while let Some(size) = response_size(&c.buf[start..c.len])? {
            start += size;
            done += 1;
        }
        if done > c.left {
            return Err(io::Error::other("more responses than requests"));
        }
        c.left -= done;
        c.buf.copy_within(start..c.len, 0);
        c.len -= start;
        if c.len == c.buf.len() {
            return Err(io::Error::other("a response larger than the read buffer"));
        }
        Ok(done)
    }

    /// One batch on every connection, answered within `limit`.
    fn round(&mut self, limit: Duration) -> io::Result<()> {
        for i in 0..self.conns.len() {
            self.send(i)?;
        }
        let deadline = Instant::now() + limit;
        let mut pending = self.conns.len();
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        while pending > 0 {
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "{pending} connections not answered in {limit:?}"
                )));
            }
            let n = self.wait(&mut events, Duration::from_millis(100))?;
            for ev in &events[..n] {
                let i = ev.u64 as usize;
                if self.conns[i].left > 0 && self.receive(i)? > 0 && self.conns[i].left == 0 {
                    pending -= 1;
                }
            }
        }
        Ok(())
    }

    /// Keep every connection busy for `dur`: returns the responses and the time measured.
    fn run(&mut self, dur: Duration) -> io::Result<(u64, Duration)> {
        let start = Instant::now();
        for i in 0..self.conns.len() {
            self.send(i)?;
        }
        let mut responses = 0u64;
        let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
        loop {
            let now = Instant::now();
            if now - start >= dur {
                return Ok((responses, now - start));
            }
            let n = self.wait(&mut events, Duration::from_millis(100))?;
            for ev in &events[..n] {
                let i = ev.u64 as usize;
                responses += self.receive(i)? as u64;
                if self.conns[i].left == 0 {
                    self.send(i)?;
                }
            }
        }
    }
}

/// The size of the complete response at the start of `buf`, or `None` if it is not all
/// there yet. Errors on anything but a `200` with a `Content-Length`.
fn response_size(buf: &[u8]) -> io::Result<Option<usize>> {
    let mut pos = 0;
    let mut length = None;
    loop {
        let Some(nl) = buf[pos..].iter().position(|&b| b == b'\n') else {
            return Ok(None);
        };
        let line = &buf[pos..pos + nl];
        if pos == 0 && !line.starts_with(b"HTTP/1.1 200 ") {
            return Err(io::Error::other(format!(
                "not a 200: {:?}",
                String::from_utf8_lossy(line)
            )));
        }
        pos += nl + 1;
        if line == b"\r" {
            break;
        }
        const NAME: &[u8] = b"content-length:";
        if line.len() > NAME.len() && line[..NAME.len()].eq_ignore_ascii_case(NAME) {
            let value = std::str::from_utf8(&line[NAME.len()..])
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            length = Some(value.ok_or_else(|| io::Error::other("a bad Content-Length"))?);
        }
    }
    let length = length.ok_or_else(|| io::Error::other("a response without Content-Length"))?;
    Ok((buf.len() >= pos + length).then_some(pos + length))
}

/// The HTTP example, compiled into the bench program for its handler (its `main` is unused).
#[path = "../../examples/http_hello.rs"]
#[allow(dead_code)]
mod example;

/// `--serve-http ADDR`: `gevent::http` with the handler of `examples/http_hello.rs`.
pub(crate) fn serve_gevent(addr: &str) {
    let server = gevent::http::Server::builder()
        .addr(addr)
        .server_header(Some("gevent".into()))
        .serve(example::handle)
        .expect("bind");
    let mut out = io::stdout();
    writeln!(out, "listening on {}", server.local_addr().unwrap()).unwrap();
    out.flush().unwrap();
    server.serve_forever().expect("serve");
}

#[cfg(test)]
mod tests {
    use super::response_size;

    #[test]
    fn frames_responses_by_content_length() {
        let one = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nDate: x\r\n\r\nabc";
        assert_eq!(response_size(one).unwrap(), Some(one.len()));
        assert_eq!(response_size(&one[..one.len() - 1]).unwrap(), None);
        assert_eq!(response_size(&one[..20]).unwrap(), None);
        let two = [&one[..], b"HTTP/1.1 200 OK\r\n"].concat();
        assert_eq!(response_size(&two).unwrap(), Some(one.len()));
        assert!(response_size(b"HTTP/1.1 404 Not Found\r\n").is_err());
        assert!(response_size(b"HTTP/1.1 200 OK\r\n\r\n").is_err());
    }
}
