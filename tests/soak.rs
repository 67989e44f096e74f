//! Soak: waves of 5,000 concurrent TCP connections echo random payloads (1 B to 64 KiB per
//! message) through a `StreamServer` on another thread, for about a minute
//! (`GEVENT_SOAK_SECS`, default 60). Both sides check every byte against a keyed stream, and
//! both sides close early or reset some connections on purpose. After every wave nothing may
//! be left behind on either thread: live greenlets, watchers (existing and active), open file
//! descriptors (`/proc/self/fd`) all return to their figures before the wave.
//!
//! Every other wave is HTTP: 2,000 concurrent clients of a `gevent::http` server on the same
//! thread, keep-alive and pipelined requests, fixed-length and chunked uploads echoed back and
//! checked, and clients that give up in the middle of a head or a body (closing or resetting);
//! the same figures must come back after each of those waves too.
//!
//! The test is alone in its binary so that the descriptor count sees nothing but the soak.

use gevent::net::TcpStream;
use gevent::server::StreamServer;
use gevent::{AsyncResult, hub_loop, hub_stats, spawn};
use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const CONNS: usize = 5000;
/// Concurrent clients of an HTTP wave.
const HTTP_CONNS: usize = 2000;
const MAX_MESSAGE: usize = 64 * 1024;
/// No connection may take longer than this to finish (a hang is a failure, not a stuck test).
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// splitmix64: the source of every random choice and of the payload bytes.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(1);
        mix(self.0 ^ 0x5851_f42d_4c95_7f2d)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Walk the payload of a connection from stream position `offset`: byte `i` is a function of
/// the connection's seed and `i`, so the server and the client each check what they receive
/// without sharing state. Calls `f(k, byte)` for `k` in `0..len`.
fn payload(seed: u64, offset: u64, len: usize, mut f: impl FnMut(usize, u8)) {
    let word = |i: u64| mix(seed ^ (i >> 3).wrapping_mul(0x2545_f491_4f6c_dd1d));
    let mut w = word(offset);
    for k in 0..len {
        let i = offset + k as u64;
        if i & 7 == 0 {
            w = word(i);
        }
        f(k, (w >> ((i & 7) * 8)) as u8);
    }
}

fn fill(seed: u64, offset: u64, buf: &mut [u8]) {
    payload(seed, offset, buf.len(), |k, b| buf[k] = b);
}

/// Stream position of the first byte of `data` (which starts at `offset`) that is wrong.
fn first_mismatch(seed: u64, offset: u64, data: &[u8]) -> Option<u64> {
    let mut bad = None;
    payload(seed, offset, data.len(), |k, b| {
        if bad.is_none() && data[k] != b {
            bad = Some(offset + k as u64);
        }
    });
    bad
}

/// How a connection ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The client sends everything, shuts down its write side and reads the whole echo, then
    /// EOF from the server.
    Normal,
    /// The client stops in the middle of a message and closes.
    ClientClose,
    /// The client stops in the middle of a message and resets (linger 0).
    ClientReset,
    /// The server closes right after echoing `limit` bytes (all the client sends).
    ServerClose,
    /// The server resets the connection after echoing `limit` bytes (fewer than are sent).
    ServerReset,
}

impl Mode {
    fn pick(rng: &mut Rng) -> Mode {
        match rng.below(20) {
            0..=9 => Mode::Normal,
            10..=11 => Mode::ClientClose,
            12..=13 => Mode::ClientReset,
            14..=16 => Mode::ServerClose,
            _ => Mode::ServerReset,
        }
    }

    fn code(self) -> u8 {
        self as u8
    }

    fn from_code(c: u8) -> Option<Mode> {
        [
            Mode::Normal,
            Mode::ClientClose,
            Mode::ClientReset,
            Mode::ServerClose,
            Mode::ServerReset,
        ]
        .get(c as usize)
        .copied()
    }
}

/// Failures and byte counts, shared by both threads.
#[derive(Default)]
struct Tally {
    failures: Mutex<Vec<String>>,
    failure_count: AtomicUsize,
    client_checked: AtomicU64,
    server_checked: AtomicU64,
    connections: AtomicU64,
    /// Resets and broken pipes seen by clients (server resets) and by the server (client aborts).
    client_saw_abort: AtomicU64,
    server_saw_abort: AtomicU64,
    /// HTTP requests answered and checked, and HTTP clients that gave up on purpose.
    http_requests: AtomicU64,
    http_aborts: AtomicU64,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failure_count.fetch_add(1, Ordering::Relaxed);
        let mut f = self.failures.lock().unwrap();
        if f.len() < 20 {
            f.push(what);
        }
    }
}

fn aborted(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        ErrorKind::ConnectionReset | ErrorKind::BrokenPipe | ErrorKind::ConnectionAborted
    )
}

/// The server side of one connection: read the header, then echo while checking every byte.
fn serve(mut conn: TcpStream, tally: &Tally) {
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let mut header = [0u8; 17];
    if let Err(e) = conn.read_exact(&mut header) {
        // Only a client that gives up early may go before its header is through.
        if !aborted(&e) && e.kind() != ErrorKind::UnexpectedEof {
            tally.fail(format!("server: reading a header: {e}"));
        }
        return;
    }
    let seed = u64::from_le_bytes(header[..8].try_into().unwrap());
    let limit = u64::from_le_bytes(header[8..16].try_into().unwrap());
    let Some(mode) = Mode::from_code(header[16]) else {
        tally.fail(format!("server: bad mode {}", header[16]));
        return;
    };
    let client_aborts = matches!(mode, Mode::ClientClose | Mode::ClientReset);
    let mut buf = vec![0u8; 16 * 1024];
    let mut offset = 0u64;
    loop {
        let want = if matches!(mode, Mode::ServerClose | Mode::ServerReset) {
            (limit - offset).min(buf.len() as u64) as usize
        } else {
            buf.len()
        };
        if want == 0 {
            break;
        }
        let n = match conn.read(&mut buf[..want]) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if client_aborts && aborted(&e) => {
                tally.server_saw_abort.fetch_add(1, Ordering::Relaxed);
                return;
            }
            Err(e) => {
                tally.fail(format!("server {seed:x} {mode:?}: read at {offset}: {e}"));
                return;
            }
        };
        if let Some(at) = first_mismatch(seed, offset, &buf[..n]) {
            tally.fail(format!("server {seed:x} {mode:?}: wrong byte at {at}"));
            return;
        }
        tally.server_checked.fetch_add(n as u64, Ordering::Relaxed);
        offset += n as u64;
        if let Err(e) = conn.write_all(&buf[..n]) {
            if client_aborts && aborted(&e) {
                tally.server_saw_abort.fetch_add(1, Ordering::Relaxed);
            } else {
                tally.fail(format!("server {seed:x} {mode:?}: write at {offset}: {e}"));
            }
            return;
        }
    }
    match mode {
        Mode::ServerReset => conn.set_linger(Some(Duration::ZERO)).unwrap(),
        Mode::ServerClose if offset != limit => {
            tally.fail(format!("server {seed:x}: EOF at {offset} before {limit}"));
        }
        Mode::Normal | Mode::ClientClose | Mode::ClientReset | Mode::ServerClose => {}
    }
    // Dropping `conn` closes (or, with linger 0, resets) the connection.
}

/// The client side of one connection. A writer greenlet sends while this one reads, so that
/// neither side waits on a full socket buffer.
fn client(addr: SocketAddr, seed: u64, tally: Arc<Tally>) {
    let mut rng = Rng(seed);
    let mode = Mode::pick(&mut rng);
    let messages: Vec<usize> = (0..1 + rng.below(4))
        .map(|_| {
            let bits = rng.below(17);
            1 + rng.below(1 << bits) as usize
        })
        .collect();
    let total: u64 = messages.iter().map(|&m| m as u64).sum();
    // Client aborts stop somewhere inside the payload; a server reset happens somewhere in it.
    let cut = rng.below(total);
    let limit = match mode {
        Mode::ServerClose => total,
        Mode::ServerReset => cut,
        _ => u64::MAX,
    };
    let to_send = match mode {
        Mode::ClientClose | Mode::ClientReset => cut,
        _ => total,
    };
    let conn = match TcpStream::connect(addr) {
        Ok(c) => Rc::new(c),
        Err(e) => return tally.fail(format!("client {seed:x}: connect: {e}")),
    };
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let writer = {
        let conn = conn.clone();
        spawn(move || -> std::io::Result<()> {
            let mut w = &*conn;
            let mut header = [0u8; 17];
            header[..8].copy_from_slice(&seed.to_le_bytes());
            header[8..16].copy_from_slice(&limit.to_le_bytes());
            header[16] = mode.code();
            w.write_all(&header)?;
            let mut msg = vec![0u8; MAX_MESSAGE];
            let mut offset = 0u64;
            for len in messages {
                let len = (len as u64).min(to_send - offset) as usize;
                fill(seed, offset, &mut msg[..len]);
                w.write_all(&msg[..len])?;
                offset += len as u64;
            }
            if mode == Mode::Normal {
                conn.shutdown(Shutdown::Write)?;
            }
            Ok(())
        })
    };
    let server_ends = matches!(mode, Mode::ServerClose | Mode::ServerReset);
    // How much of the echo the client reads before it gives up (aborting modes) or expects
    // the end of the stream.
    let read_until = match mode {
        Mode::ClientClose | Mode::ClientReset => rng.below(to_send + 1),
        Mode::ServerReset => limit,
        _ => total,
    };
    let mut r = &*conn;
    let mut buf = vec![0u8; 16 * 1024];
    let mut offset = 0u64;
    let mut outcome: std::io::Result<usize> = Ok(1);
    while offset < read_until {
        let want = (read_until - offset).min(buf.len() as u64) as usize;
        outcome = r.read(&mut buf[..want]);
        let n = match outcome {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if let Some(at) = first_mismatch(seed, offset, &buf[..n]) {
            return tally.fail(format!("client {seed:x} {mode:?}: wrong echo byte at {at}"));
        }
        tally.client_checked.fetch_add(n as u64, Ordering::Relaxed);
        offset += n as u64;
    }
    if matches!(&outcome, Err(e) if aborted(e)) {
        tally.client_saw_abort.fetch_add(1, Ordering::Relaxed);
    }
    match mode {
        Mode::Normal | Mode::ServerClose => {
            if offset < total {
                return tally.fail(format!(
                    "client {seed:x} {mode:?}: echo ended at {offset} of {total}: {outcome:?}"
                ));
            }
            // Then the server's close: EOF.
            match r.read(&mut buf) {
                Ok(0) => {}
                other => {
                    return tally.fail(format!(
                        "client {seed:x} {mode:?}: expected EOF after the echo, got {other:?}"
                    ));
                }
            }
        }
        Mode::ServerReset => {
            // Some of the echo may be lost to the reset; what came must be right (checked
            // above), and then the connection must end, by reset or EOF.
            if let Ok(1..) = outcome {
                match r.read(&mut buf) {
                    Ok(0) => {}
                    Err(e) if aborted(&e) => {
                        tally.client_saw_abort.fetch_add(1, Ordering::Relaxed);
                    }
                    other => {
                        return tally.fail(format!(
                            "client {seed:x} ServerReset: no end after {offset} bytes: {other:?}"
                        ));
                    }
                }
            }
        }
        Mode::ClientClose | Mode::ClientReset => {
            if let Err(e) = outcome {
                return tally.fail(format!("client {seed:x} {mode:?}: read: {e}"));
            }
        }
    }
    // The writer: only a server that ends the connection early may make it fail.
    match writer.join() {
        Ok(Ok(())) => {}
        Ok(Err(e)) if server_ends && aborted(&e) => {
            tally.client_saw_abort.fetch_add(1, Ordering::Relaxed);
        }
        other => return tally.fail(format!("client {seed:x} {mode:?}: writer: {other:?}")),
    }
    if mode == Mode::ClientReset {
        conn.set_linger(Some(Duration::ZERO)).unwrap();
    }
    tally.connections.fetch_add(1, Ordering::Relaxed);
    // The last `Rc` goes here: the connection closes (or resets).
}

/// The HTTP wave's application: `POST /echo/SEED` checks the body against the payload of
/// `SEED` and answers it back; `GET /bytes/SEED/LEN` answers `LEN` payload bytes.
fn http_app(
    req: gevent::http::http::Request<gevent::http::Body>,
    tally: &Tally,
) -> gevent::http::http::Response<Vec<u8>> {
    use gevent::http::http::{Response, StatusCode};
    let path = req.uri().path().to_owned();
    let parts: Vec<&str> = path.split('/').collect();
    let num = |i: usize| parts.get(i).and_then(|p| u64::from_str_radix(p, 16).ok());
    match (parts.get(1).copied(), num(2), num(3)) {
        (Some("echo"), Some(seed), _) => {
            let mut body = Vec::new();
            if let Err(e) = req.into_body().read_to_end(&mut body) {
                if aborted(&e) || e.kind() == ErrorKind::UnexpectedEof {
                    tally.server_saw_abort.fetch_add(1, Ordering::Relaxed);
                } else {
                    tally.fail(format!("http server {seed:x}: body: {e}"));
                }
                return Response::builder().status(400).body(Vec::new()).unwrap();
            }
            if let Some(at) = first_mismatch(seed, 0, &body) {
                tally.fail(format!("http server {seed:x}: body byte {at} wrong"));
            }
            tally
                .server_checked
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            Response::new(body)
        }
        (Some("bytes"), Some(seed), Some(len)) => {
            let mut body = vec![0u8; len as usize];
            fill(seed, 0, &mut body);
            Response::new(body)
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(Vec::new())
            .unwrap(),
    }
}

/// How an HTTP client behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpMode {
    /// A few requests one after another on one connection.
    KeepAlive,
    /// A few requests written at once, then the responses read in order.
    Pipelined,
    /// One upload with `Transfer-Encoding: chunked` in chunks of random sizes.
    Chunked,
    /// Gives up in the middle of a request head (closing), or of a body (resetting).
    AbortHead,
    AbortBody,
}

/// One request of an HTTP client: the bytes to send, and the seed and length of the body to
/// expect back.
fn http_request(rng: &mut Rng, seed: u64, chunked: bool) -> (Vec<u8>, u64, usize) {
    let bits = rng.below(15);
    let len = rng.below(1 << bits) as usize;
    if rng.below(2) == 0 && !chunked {
        let head = format!("GET /bytes/{seed:x}/{len:x} HTTP/1.1\r\nHost: soak\r\n\r\n");
        return (head.into_bytes(), seed, len);
    }
    let mut body = vec![0u8; len];
    fill(seed, 0, &mut body);
    let mut req = if chunked {
        format!("POST /echo/{seed:x} HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n")
            .into_bytes()
    } else {
        format!("POST /echo/{seed:x} HTTP/1.1\r\nHost: soak\r\nContent-Length: {len}\r\n\r\n")
            .into_bytes()
    };
    if chunked {
        let mut rest = &body[..];
        while !rest.is_empty() {
            let n = (1 + rng.below(4096) as usize).min(rest.len());
            req.extend_from_slice(format!("{n:x}\r\n").as_bytes());
            req.extend_from_slice(&rest[..n]);
            req.extend_from_slice(b"\r\n");
            rest = &rest[n..];
        }
        req.extend_from_slice(b"0\r\n\r\n");
    } else {
        req.extend_from_slice(&body);
    }
    (req, seed, len)
}

/// Read one `Content-Length`-framed response from `conn` (with `buf` holding what was read
/// past the previous one): its status and body.
fn http_response(mut conn: &TcpStream, buf: &mut Vec<u8>) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(ErrorKind::InvalidData, what.to_owned());
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 16];
        let mut r = httparse::Response::new(&mut headers);
        if let httparse::Status::Complete(n) = r.parse(buf).map_err(|_| bad("bad response"))? {
            let status = r.code.unwrap_or(0);
            let len: usize = r
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.parse().ok())
                .ok_or_else(|| bad("no content-length"))?;
            while buf.len() < n + len {
                let got = conn.read(&mut chunk)?;
                if got == 0 {
                    return Err(bad("EOF in a response body"));
                }
                buf.extend_from_slice(&chunk[..got]);
            }
            let body = buf[n..n + len].to_vec();
            buf.drain(..n + len);
            return Ok((status, body));
        }
        let got = conn.read(&mut chunk)?;
        if got == 0 {
            return Err(bad("EOF before a response"));
        }
        buf.extend_from_slice(&chunk[..got]);
    }
}

fn http_client(addr: SocketAddr, seed: u64, tally: Arc<Tally>) {
    let mut rng = Rng(seed);
    let mode = match rng.below(10) {
        0..=3 => HttpMode::KeepAlive,
        4..=5 => HttpMode::Pipelined,
        6..=7 => HttpMode::Chunked,
        8 => HttpMode::AbortHead,
        _ => HttpMode::AbortBody,
    };
    let conn = match TcpStream::connect(addr) {
        Ok(c) => Rc::new(c),
        Err(e) => return tally.fail(format!("http client {seed:x}: connect: {e}")),
    };
    conn.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    conn.set_write_timeout(Some(IO_TIMEOUT)).unwrap();
    let requests: Vec<(Vec<u8>, u64, usize)> = (0..1 + rng.below(6))
        .map(|i| http_request(&mut rng, mix(seed ^ i), mode == HttpMode::Chunked))
        .collect();
    let check = |got: std::io::Result<(u16, Vec<u8>)>, want_seed: u64, want_len: usize| match got {
        Ok((200, body)) if body.len() == want_len => {
            if let Some(at) = first_mismatch(want_seed, 0, &body) {
                tally.fail(format!("http client {seed:x}: response byte {at} wrong"));
            }
            tally
                .client_checked
                .fetch_add(body.len() as u64, Ordering::Relaxed);
            tally.http_requests.fetch_add(1, Ordering::Relaxed);
        }
        other => tally.fail(format!(
            "http client {seed:x} {mode:?}: wanted 200 with {want_len} bytes, got {:?}",
            other.map(|(s, b)| (s, b.len()))
        )),
    };
    let mut buf = Vec::new();
    match mode {
        HttpMode::KeepAlive | HttpMode::Chunked => {
            for (req, s, len) in &requests {
                if let Err(e) = (&*conn).write_all(req) {
                    return tally.fail(format!("http client {seed:x}: write: {e}"));
                }
                check(http_response(&conn, &mut buf), *s, *len);
            }
        }
        HttpMode::Pipelined => {
            let all: Vec<u8> = requests.iter().flat_map(|r| r.0.clone()).collect();
            // Written by a greenlet of its own: the responses may fill the socket buffers
            // before all the requests are sent.
            let writer = {
                let w = conn.clone();
                spawn(move || (&*w).write_all(&all))
            };
            for (_, s, len) in &requests {
                check(http_response(&conn, &mut buf), *s, *len);
            }
            if let Err(e) = writer.join().unwrap() {
                tally.fail(format!("http client {seed:x}: pipelined write: {e}"));
            }
        }
        HttpMode::AbortHead | HttpMode::AbortBody => {
            let (req, _, _) = &requests[0];
            let head_end = req.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
            let cut = if mode == HttpMode::AbortHead || head_end == req.len() {
                1 + rng.below(head_end as u64 - 1) as usize
            } else {
                head_end + rng.below((req.len() - head_end) as u64) as usize
            };
            if let Err(e) = (&*conn).write_all(&req[..cut]) {
                return tally.fail(format!("http client {seed:x}: write: {e}"));
            }
            if rng.below(2) == 0 {
                conn.set_linger(Some(Duration::ZERO)).unwrap();
            }
            tally.http_aborts.fetch_add(1, Ordering::Relaxed);
        }
    }
    tally.connections.fetch_add(1, Ordering::Relaxed);
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// What a thread has alive: greenlets, watchers, active watchers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Alive {
    greenlets: usize,
    watchers: usize,
    active: usize,
}

fn alive_here() -> Alive {
    let lp = hub_loop();
    let stats = hub_stats();
    Alive {
        greenlets: stats.live_greenlets,
        // Not counted: the stopped timers the hub keeps for later timed waits (a bounded pool,
        // tested on its own in the greenlet crate), which a wave's timeouts leave behind.
        watchers: lp.watcher_count() - stats.pooled_timers,
        active: lp.active_watchers(),
    }
}

/// The server thread's figures, published by a greenlet of its own every few milliseconds.
#[derive(Default)]
struct ServerView {
    greenlets: AtomicUsize,
    watchers: AtomicUsize,
    active: AtomicUsize,
    handlers: AtomicUsize,
    /// How many times the figures were published.
    rounds: AtomicUsize,
}

impl ServerView {
    fn get(&self) -> (Alive, usize) {
        (
            Alive {
                greenlets: self.greenlets.load(Ordering::Acquire),
                watchers: self.watchers.load(Ordering::Acquire),
                active: self.active.load(Ordering::Acquire),
            },
            self.handlers.load(Ordering::Acquire),
        )
    }
}

/// Two connections per `CONNS` plus margin: raise the soft descriptor limit as far as needed.
fn raise_fd_limit(need: u64) -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid out pointer.
    assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
    if lim.rlim_cur < need {
        lim.rlim_cur = need.min(lim.rlim_max);
        // SAFETY: a valid pointer; the soft limit stays within the hard one.
        assert_eq!(unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) }, 0);
    }
    lim.rlim_cur
}

#[test]
fn soak_5000_connections_random_payloads_closes_and_resets_leak_nothing() {
    let secs: u64 = std::env::var("GEVENT_SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let limit = raise_fd_limit(2 * CONNS as u64 + 256);
    let conns = CONNS.min((limit as usize).saturating_sub(256) / 2);
    assert!(
        conns == CONNS,
        "RLIMIT_NOFILE allows {limit} descriptors: {} are needed for {CONNS} connections",
        2 * CONNS + 256
    );
    let tally = Arc::new(Tally::default());
    let view = Arc::new(ServerView::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let server_thread = {
        let (tally, view) = (tally.clone(), view.clone());
        std::thread::spawn(move || {
            let stop = AsyncResult::<(), ()>::new();
            let t = tally.clone();
            let server = StreamServer::new("127.0.0.1:0", move |conn, _| serve(conn, &t));
            server.start().unwrap();
            let server = Rc::new(server);
            let t = tally.clone();
            let http = Rc::new(
                gevent::http::Server::builder()
                    .addr("127.0.0.1:0")
                    .access_log(false)
                    .header_read_timeout(IO_TIMEOUT)
                    .serve(move |req| http_app(req, &t))
                    .unwrap(),
            );
            let s = server.clone();
            let h = http.clone();
            let v = view.clone();
            let publisher = spawn(move || {
                loop {
                    let a = alive_here();
                    v.greenlets.store(a.greenlets, Ordering::Release);
                    v.watchers.store(a.watchers, Ordering::Release);
                    v.active.store(a.active, Ordering::Release);
                    v.handlers
                        .store(s.connections() + h.connections(), Ordering::Release);
                    v.rounds.fetch_add(1, Ordering::AcqRel);
                    if gevent::sleep(Duration::from_millis(5)).is_err() {
                        return;
                    }
                }
            });
            addr_tx
                .send((
                    server.local_addr().unwrap(),
                    http.local_addr().unwrap(),
                    stop.setter(),
                ))
                .unwrap();
            let _ = stop.wait(None);
            let left =
                server.stop(Some(Duration::from_secs(5))) + http.stop(Some(Duration::from_secs(5)));
            publisher.kill();
            left
        })
    };
    let (addr, http_addr, remote_stop) = addr_rx.recv().unwrap();

    // Wait until the server has published its resting figures from a greenlet woken by its
    // timer (the second round: the first runs right after the spawn), then take every baseline.
    let waiting = Instant::now();
    while view.rounds.load(Ordering::Acquire) < 2 {
        assert!(
            waiting.elapsed() < Duration::from_secs(30),
            "the server never published its figures"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    let server_rest = view.get();
    assert_eq!(
        server_rest.1, 0,
        "no handler runs before the first connection"
    );
    gevent::idle().unwrap();
    let client_rest = alive_here();
    let fds_rest = open_fds();

    let start = Instant::now();
    let deadline = start + Duration::from_secs(secs);
    let mut waves = 0u64;
    let mut expected = 0u64;
    while waves < 2 || Instant::now() < deadline {
        let http_wave = waves % 2 == 1;
        let n = if http_wave { HTTP_CONNS } else { conns };
        expected += n as u64;
        let clients: Vec<_> = (0..n as u64)
            .map(|i| {
                let tally = tally.clone();
                let seed = mix((waves << 32) | i);
                if http_wave {
                    spawn(move || http_client(http_addr, seed, tally))
                } else {
                    spawn(move || client(addr, seed, tally))
                }
            })
            .collect();
        for c in clients {
            c.join().expect("a client greenlet panicked");
        }
        waves += 1;

        // Nothing may be left: on this thread at once, on the server thread once its handlers
        // have seen the last closes.
        // (Once the hub has run its queue: its keep-alive idle watcher is active while
        // callbacks are queued.)
        gevent::idle().unwrap();
        assert_eq!(
            alive_here(),
            client_rest,
            "client thread after wave {waves}"
        );
        // A client that gave up may have closed its end before the server even accepted the
        // connection: the server then accepts it later, with its figures at rest until then,
        // and holds its descriptor for a moment. So both are awaited; a leak stays.
        let settle = Instant::now();
        let (server_now, fds_now) = loop {
            let now = (view.get(), open_fds());
            if now == (server_rest, fds_rest) || settle.elapsed() > Duration::from_secs(30) {
                break now;
            }
            gevent::sleep(Duration::from_millis(10)).unwrap();
        };
        assert_eq!(server_now, server_rest, "server thread after wave {waves}");
        assert_eq!(fds_now, fds_rest, "open descriptors after wave {waves}");
        let failures = tally.failure_count.load(Ordering::Relaxed);
        assert_eq!(
            failures,
            0,
            "after wave {waves}: {failures} failures, the first ones:\n{}",
            tally.failures.lock().unwrap().join("\n")
        );
    }
    remote_stop.set(());
    assert_eq!(server_thread.join().unwrap(), 0, "handlers left at stop");
    let elapsed = start.elapsed();
    let done = tally.connections.load(Ordering::Relaxed);
    assert_eq!(done, expected);
    let (client_aborts, server_aborts) = (
        tally.client_saw_abort.load(Ordering::Relaxed),
        tally.server_saw_abort.load(Ordering::Relaxed),
    );
    eprintln!(
        "soak: {waves} waves (of {conns} echo or {HTTP_CONNS} HTTP connections) in {elapsed:.1?}; {} MiB checked by \
         clients, {} MiB by the server; resets seen: {client_aborts} by clients, \
         {server_aborts} by the server; {} HTTP requests answered, {} HTTP clients gave up",
        tally.client_checked.load(Ordering::Relaxed) >> 20,
        tally.server_checked.load(Ordering::Relaxed) >> 20,
        tally.http_requests.load(Ordering::Relaxed),
        tally.http_aborts.load(Ordering::Relaxed),
    );
    assert!(tally.http_requests.load(Ordering::Relaxed) > 0);
    // Some HTTP clients gave up mid-head or mid-body, and no wave leaked anything after them.
    assert!(tally.http_aborts.load(Ordering::Relaxed) > 0);
    // The early ends really happened: each side saw the other reset connections.
    assert!(client_aborts > 0 && server_aborts > 0);
}
