//! The memory an idle keep-alive connection of the HTTP server holds, over plain TCP and over
//! TLS, behind a handler that stays shallow and behind one that takes 32 KiB of stack: the
//! server (this program with `--serve-http-idle`, pinned to the first core) answers one
//! request on each of `conns` connections, which are then held open; its resident memory
//! grows by the figure per connection. `/proc/PID/smaps` tells how much of it is anonymous
//! memory outside the heap: the greenlets' stacks but for a few pages.
//!
//! The client is plain blocking `std::net` with rustls for TLS (one connection after the
//! other: what a connection holds once idle does not depend on how its client came).

use crate::echo::{self, Running};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

/// What one idle connection holds, in bytes.
struct Held {
    total: f64,
    /// Anonymous memory that is not the heap: the stacks.
    stacks: f64,
}

/// `--serve-http-idle plain|tls shallow|deep CERT KEY ADDR`: the HTTP server the figures are
/// measured on (`CERT` and `KEY` are PEM files, read for `tls` only), with the server's own
/// stack trim interval.
pub(crate) fn serve(args: &[String]) {
    let (tls, deep, cert, key, addr) = match args {
        [t, h, cert, key, addr, ..] => (t == "tls", h == "deep", cert, key, addr.as_str()),
        _ => panic!("--serve-http-idle plain|tls shallow|deep CERT KEY ADDR"),
    };
    let mut b = gevent::http::Server::builder().addr(addr).access_log(false);
    if tls {
        let read = |p: &str| std::fs::read(p).unwrap_or_else(|e| panic!("{p}: {e}"));
        b = b.tls(gevent::http::tls::server_config_from_pem(&read(cert), &read(key)).unwrap());
    }
    let server = b
        .serve(move |_req| {
            if deep {
                deep_frame();
            }
            gevent::http::http::Response::new("ok")
        })
        .expect("bind");
    let mut out = std::io::stdout();
    writeln!(out, "listening on {}", server.local_addr().unwrap()).unwrap();
    out.flush().unwrap();
    server.serve_forever().expect("serve");
}

/// A frame of 32 KiB, every page of it written: a handler that goes as deep as one that
/// encodes a large document or calls a client library does.
#[inline(never)]
fn deep_frame() {
    let mut buf = [0u8; 32 * 1024];
    for i in (0..buf.len()).step_by(512) {
        buf[i] = 1;
    }
    std::hint::black_box(&mut buf);
}

/// The resident bytes of the process's anonymous mappings other than the heap.
fn anonymous_outside_heap(pid: u32) -> usize {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps")).expect("smaps");
    let (mut bytes, mut counted) = (0, false);
    for line in smaps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.first().is_some_and(|f| f.contains('-')) && fields.len() >= 5 {
            // A mapping's first line: an anonymous one has no pathname (a sixth field).
            counted = fields.len() == 5;
        } else if counted && let Some(kb) = line.strip_prefix("Rss:") {
            bytes += kb.trim().trim_end_matches(" kB").parse::<usize>().unwrap() * 1024;
        }
    }
    bytes
}

/// Open `n` connections to `s`, each answered `requests` requests one after the other, and
/// keep them in `held`.
fn open(
    s: &Running,
    n: usize,
    requests: usize,
    tls: Option<&Arc<rustls::ClientConfig>>,
    held: &mut Vec<Box<dyn ReadWrite>>,
) {
    const REQUEST: &[u8] = b"GET /status HTTP/1.1\r\nHost: example.com\r\n\
                             User-Agent: probe/1.0\r\nAccept: */*\r\n\r\n";
    for _ in 0..n {
        let tcp = TcpStream::connect(s.addr).expect("connect");
        let mut c: Box<dyn ReadWrite> = match tls {
            Some(config) => {
                let session =
                    rustls::ClientConnection::new(config.clone(), "localhost".try_into().unwrap())
                        .unwrap();
                Box::new(rustls::StreamOwned::new(session, tcp))
            }
            None => Box::new(tcp),
        };
        for _ in 0..requests {
            c.write_all(REQUEST).expect("send a request");
            let mut got = Vec::new();
            let mut buf = [0u8; 1024];
            while !got.ends_with(b"\r\n\r\nok") {
                let k = c.read(&mut buf).expect("read the response");
                assert!(k > 0, "the server closed after {got:?}");
                got.extend_from_slice(&buf[..k]);
            }
        }
        held.push(c);
    }
}

trait ReadWrite: Read + Write {}
impl<T: Read + Write> ReadWrite for T {}

/// What one idle connection of the server started with `transport` and `handler` holds once
/// it was answered `requests` requests one after the other: at once, and (if `swept`) again
/// after the hub's next sweep of parked stacks.
fn measure(
    transport: &str,
    handler: &str,
    (requests, swept): (usize, bool),
    pem: (&str, &str),
    client: &Arc<rustls::ClientConfig>,
    conns: usize,
) -> (Held, Option<Held>) {
    let mut cmd = std::process::Command::new(std::env::current_exe().expect("the program"));
    cmd.args(["--serve-http-idle", transport, handler, pem.0, pem.1]);
    let s = echo::start_command(cmd, "the idle HTTP server");
    let tls = (transport == "tls").then_some(client);
    let mut held = Vec::with_capacity(conns + 200);
    // The first connections grow what grows with the connections (the server's tables,
    // libev's arrays), so that the measured ones mostly do not. One request each: what they
    // hold does not change much when the hub sweeps (a page at most, on 200).
    // Each time, the server is let finish with the last connection first (it writes its
    // response before it waits again; the wait is what gives back what it held).
    let settle = Duration::from_millis(200);
    open(&s, 200, 1, tls, &mut held);
    std::thread::sleep(settle);
    let (rss, other) = (s.rss_bytes(), anonymous_outside_heap(s.pid()));
    let held_now = |s: &Running| Held {
        total: s.rss_bytes().saturating_sub(rss) as f64 / conns as f64,
        stacks: anonymous_outside_heap(s.pid()).saturating_sub(other) as f64 / conns as f64,
    };
    open(&s, conns, requests, tls, &mut held);
    std::thread::sleep(settle);
    let now = held_now(&s);
    let swept = swept.then(|| {
        // The hub's timer fires every interval from the server's start: once at least after
        // the last connection went idle.
        std::thread::sleep(gevent::http::STACK_TRIM_INTERVAL + Duration::from_millis(1500));
        held_now(&s)
    });
    (now, swept)
}

/// The figures: `http_idle_<transport>[_deep_handler]_bytes`, and `http_idle_plain_deep_burst`
/// and `…_burst_swept` (three requests per connection, before and after the hub's sweep), each
/// with its `…_stack_bytes`.
pub(crate) fn figures(quick: bool) {
    let conns = if quick { 500 } else { 3_000 };
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = std::env::temp_dir();
    let tag = std::process::id();
    let (cert_path, key_path) = (
        dir.join(format!("gevent-bench-{tag}-cert.pem")),
        dir.join(format!("gevent-bench-{tag}-key.pem")),
    );
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let client = gevent::http::tls::client_config_from_pem(cert.cert.pem().as_bytes()).unwrap();
    let pem = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let report = |name: &str, held: &Held| {
        crate::report(&format!("{name}_bytes"), held.total, "bytes");
        crate::report(&format!("{name}_stack_bytes"), held.stacks, "bytes");
    };
    for transport in ["plain", "tls"] {
        for handler in ["shallow", "deep"] {
            let (held, _) = measure(transport, handler, (1, false), pem, &client, conns);
            let name = match handler {
                "deep" => format!("http_idle_{transport}_deep_handler"),
                _ => format!("http_idle_{transport}"),
            };
            report(&name, &held);
        }
    }
    // Three requests back to back on each connection, behind the deep handler: the second
    // and third come within the second of the first's trim, so the connection keeps their
    // depth until the hub's sweep (the server's default interval, 10 s).
    let (now, swept) = measure("plain", "deep", (3, true), pem, &client, conns);
    report("http_idle_plain_deep_burst", &now);
    report(
        "http_idle_plain_deep_burst_swept",
        &swept.expect("measured after a sweep"),
    );
    std::fs::remove_file(&cert_path).ok();
    std::fs::remove_file(&key_path).ok();
}
