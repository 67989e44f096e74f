//! The server on a free loopback port, driven by raw bytes over std sockets, curl and Python's
//! http.client. The server runs on its own thread's hub; the clients block on this one.

mod clients;
#[path = "../../greenlet/tests/support/mod.rs"]
mod support;

use clients::{curl, curl_upload_after_continue, have};
use gevent_http::{Body, Builder, IntoBody, RequestExt, ResponseBody, Server, StreamBody};
use http::{Request, Response, StatusCode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};
use support::generous;

/// The test application: `/echo` answers the body, `/ignore` does not read it, `/panic`
/// panics; anything else answers `METHOD URI`.
fn app(req: Request<Body>) -> Response<ResponseBody> {
    let (parts, body) = routes(req).into_parts();
    Response::from_parts(parts, body.into_body())
}

thread_local! {
    static KEPT: std::cell::RefCell<Option<Body>> = const { std::cell::RefCell::new(None) };
    static SPAWNED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

fn routes(req: Request<Body>) -> Response<ResponseBody> {
    match req.uri().path() {
        "/stream" => {
            let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
            return Response::new(StreamBody(std::io::Cursor::new(data)).into_body());
        }
        "/write" => {
            return Response::new(ResponseBody::writer(|w| {
                w.write_all(b"one,")?;
                w.write_all(b"")?;
                w.write_all(b"two")
            }));
        }
        "/sized" => {
            let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
            return Response::new(ResponseBody::sized(std::io::Cursor::new(data), 100_000));
        }
        // A reader with more than it says (only what it says is sent), or less (the
        // connection ends with the body cut short).
        "/sized-long" => {
            return Response::new(ResponseBody::sized(&b"twenty bytes or more"[..], 6));
        }
        "/sized-short" => return Response::new(ResponseBody::sized(&b"ten bytes."[..], 100)),
        "/sized-cut" => {
            let data = std::io::Cursor::new(vec![b'x'; 200_000]);
            return Response::new(ResponseBody::sized(data, 1_000_000));
        }
        "/file" => {
            let path =
                std::env::temp_dir().join(format!("gevent-http-file-{}", std::process::id()));
            std::fs::write(&path, b"a file's bytes").unwrap();
            let file = std::fs::File::open(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            return Response::new(file.into_body());
        }
        // A body kept past its request, and read during a later one.
        "/keep" => {
            KEPT.with(|k| *k.borrow_mut() = Some(req.into_body()));
            return Response::new("kept".into_body());
        }
        // A body read to its last byte (but not to its end) and kept.
        "/keep-read" => {
            let mut body = req.into_body();
            let mut got = [0u8; 5];
            body.read_exact(&mut got).unwrap();
            KEPT.with(|k| *k.borrow_mut() = Some(body));
            return Response::new(format!("kept {}", String::from_utf8_lossy(&got)).into_body());
        }
        "/read-kept" => {
            let mut kept = KEPT.with(|k| k.borrow_mut().take()).unwrap();
            let mut got = Vec::new();
            let text = match kept.read_to_end(&mut got) {
                Ok(_) => format!("read {:?}", String::from_utf8_lossy(&got)),
                Err(e) => format!("{e}; from {}", kept.peer_addr()),
            };
            let mut own = String::new();
            req.into_body().read_to_string(&mut own).unwrap();
            return Response::new(format!("{text}; own {own}").into_body());
        }
        // The body read by a greenlet of the handler's, which answers at once; what it read
        // is asked for by the next request.
        "/spawn-reader" => {
            let body = req.into_body();
            greenlet::spawn(move || read_for_spawned_result(body));
            // Let it start reading (and wait for the body) before the answer.
            greenlet::yield_now().unwrap();
            return Response::new("spawned".into_body());
        }
        // A greenlet that reads the body once the answer is out (and the body drained).
        "/spawn-late-reader" => {
            let body = req.into_body();
            greenlet::spawn(move || read_for_spawned_result(body));
            return Response::new("spawned".into_body());
        }
        // A refused answer (an informational status is not one) whose body reads the
        // request's body when it is dropped.
        "/drop-reads" => {
            return Response::builder()
                .status(103)
                .body(StreamBody(ReadsOnDrop(Some(req.into_body()))).into_body())
                .unwrap();
        }
        "/spawned-result" => {
            let text = SPAWNED.with(|s| s.borrow_mut().take()).unwrap_or_default();
            return Response::new(text.into_body());
        }
        // A streamed answer that turns the request down.
        "/stream-refusal" => {
            return Response::builder()
                .status(StatusCode::PAYLOAD_TOO_LARGE)
                .body(StreamBody(std::io::Cursor::new(b"too large".to_vec())).into_body())
                .unwrap();
        }
        // The request's body streamed back as it is read.
        "/stream-echo" => return Response::new(StreamBody(req.into_body()).into_body()),
        // Switches to a protocol that echoes one line.
        "/up" => {
            return Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .header("connection", "upgrade")
                .header("upgrade", "echo")
                .body(ResponseBody::upgrade(|mut io| {
                    let mut line = Vec::new();
                    let mut b = [0u8; 1];
                    while io.read(&mut b).unwrap_or(0) == 1 {
                        line.push(b[0]);
                        if b[0] == b'\n' {
                            break;
                        }
                    }
                    let _ = io.write_all(&line);
                }))
                .unwrap();
        }
        "/early-hints" => {
            return Response::builder()
                .status(StatusCode::from_u16(103).unwrap())
                .body(ResponseBody::Full(Vec::new()))
                .unwrap();
        }
        // 200 with an upgrade body, or 101 without one: the handler's mistake, answered 500.
        "/bad-upgrade" => return Response::new(ResponseBody::upgrade(|_| {})),
        "/bad-101" => {
            return Response::builder()
                .status(StatusCode::SWITCHING_PROTOCOLS)
                .body(ResponseBody::Full(Vec::new()))
                .unwrap();
        }
        // A header value with CR, LF or NUL in it, which only the unchecked constructor
        // makes (and only where `http` is built without debug assertions: the workspace's
        // dev profile builds it so, for this).
        "/bad-value" => {
            let raw: &'static [u8] = match req.uri().query() {
                Some("lf") => b"a\nx-injected: lf",
                Some("cr") => b"a\rx-injected: cr",
                Some("nul") => b"a\0x-injected: nul",
                _ => b"a\r\nx-injected: crlf",
            };
            // SAFETY: the bytes are ASCII, so valid UTF-8, which is all the constructor
            // asks of them.
            let value = unsafe { http::HeaderValue::from_maybe_shared_unchecked(raw) };
            return Response::builder()
                .header("x-bad", value)
                .body(ResponseBody::Static(b"not sent"))
                .unwrap();
        }
        "/panic-midway" => {
            return Response::new(ResponseBody::writer(|w| {
                w.write_all(b"begun")?;
                w.flush()?;
                panic!("a body writer panics after the head went out");
            }));
        }
        "/thread" => {
            let name = std::thread::current().name().unwrap_or("?").to_owned();
            return Response::new(name.into_body());
        }
        // A streamed body with a status that carries none: never sent.
        "/304-streamed" => {
            return Response::builder()
                .status(StatusCode::NOT_MODIFIED)
                .body(StreamBody(&b"must not be sent"[..]).into_body())
                .unwrap();
        }
        _ => {}
    }
    let (parts, body) = bytes_routes(req).into_parts();
    Response::from_parts(parts, body.into_body())
}

/// Read `body` whole, for `/spawned-result` to answer: its text, or `error: ` and why not.
fn read_for_spawned_result(mut body: Body) {
    let mut got = String::new();
    let text = match body.read_to_string(&mut got) {
        Ok(_) => got,
        Err(e) => format!("error: {e}"),
    };
    SPAWNED.with(|s| *s.borrow_mut() = Some(text));
}

/// A reader of nothing that reads the body it holds when it is dropped.
struct ReadsOnDrop(Option<Body>);

impl Read for ReadsOnDrop {
    fn read(&mut self, _: &mut [u8]) -> std::io::Result<usize> {
        Ok(0)
    }
}

impl Drop for ReadsOnDrop {
    fn drop(&mut self) {
        if let Some(body) = self.0.take() {
            read_for_spawned_result(body);
        }
    }
}

fn bytes_routes(req: Request<Body>) -> Response<Vec<u8>> {
    let path = req.uri().path().to_owned();
    let line = format!("{} {}", req.method(), req.uri());
    match path.as_str() {
        "/echo" => {
            let mut body = Vec::new();
            if req.into_body().read_to_end(&mut body).is_err() {
                return Response::builder().status(499).body(Vec::new()).unwrap();
            }
            Response::new(body)
        }
        "/panic" => panic!("handler panics on purpose"),
        "/close" => Response::builder()
            .header("connection", "close")
            .body(b"closing".to_vec())
            .unwrap(),
        "/conn" => {
            let (peer, local) = (req.peer_addr(), req.local_addr().unwrap());
            Response::new(format!("{peer} {local} {}", req.is_tls()).into_bytes())
        }
        "/conn-body" => {
            let body = req.into_body();
            let (peer, local) = (body.peer_addr(), body.local_addr().unwrap());
            Response::new(format!("{peer} {local} {}", body.is_tls()).into_bytes())
        }
        "/empty" => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Vec::new())
            .unwrap(),
        // A body given with a status that carries none: never sent.
        "/204-with-body" | "/304-with-body" => {
            let status = if req.uri().path() == "/204-with-body" {
                204
            } else {
                304
            };
            Response::builder()
                .status(status)
                .body(b"must not be sent".to_vec())
                .unwrap()
        }
        _ => Response::new(line.into_bytes()),
    }
}

fn start_with(configure: fn(Builder) -> Builder) -> SocketAddr {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let server = configure(Server::builder().addr("127.0.0.1:0"))
            .serve(app)
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    rx.recv().unwrap()
}

fn start() -> SocketAddr {
    start_with(|b| b)
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(generous(Duration::from_secs(10))))
        .unwrap();
    s
}

/// A parsed response.
#[derive(Debug)]
struct Resp {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Reads responses from one connection, keeping what follows.
struct Reader {
    s: TcpStream,
    buf: Vec<u8>,
}

impl Reader {
    fn new(s: TcpStream) -> Reader {
        Reader { s, buf: Vec::new() }
    }

    /// Read what comes next: 0 when the server closed the connection (a FIN, or a reset when
    /// it closed with bytes of ours unread). Panics when nothing came within the read
    /// timeout: a server gone silent is not one that closed.
    fn more(&mut self) -> usize {
        let mut b = [0u8; 4096];
        let n = match self.s.read(&mut b) {
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => 0,
            Err(e) => panic!(
                "neither data nor a close within the read timeout ({e}); have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        };
        self.buf.extend_from_slice(&b[..n]);
        n
    }

    /// The next response (content-length framed), `None` at EOF. `head` says whether the
    /// request was HEAD.
    fn next(&mut self, head: bool) -> Option<Resp> {
        loop {
            let mut hs = [httparse::EMPTY_HEADER; 32];
            let mut r = httparse::Response::new(&mut hs);
            if let httparse::Status::Complete(n) = r.parse(&self.buf).unwrap() {
                let status = r.code.unwrap();
                let headers: Vec<(String, String)> = r
                    .headers
                    .iter()
                    .map(|h| {
                        (
                            h.name.to_owned(),
                            String::from_utf8_lossy(h.value).into_owned(),
                        )
                    })
                    .collect();
                let len = headers
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                    .map_or(0, |(_, v)| v.parse::<usize>().unwrap());
                let len = if head || status == 100 || status == 204 {
                    0
                } else {
                    len
                };
                while self.buf.len() < n + len {
                    assert!(self.more() > 0, "EOF in a body");
                }
                let body = self.buf[n..n + len].to_vec();
                self.buf.drain(..n + len);
                return Some(Resp {
                    status,
                    headers,
                    body,
                });
            }
            if self.more() == 0 {
                assert!(self.buf.is_empty(), "EOF in a head: {:?}", self.buf);
                return None;
            }
        }
    }

    fn send(&mut self, raw: &[u8]) {
        self.s.write_all(raw).unwrap();
    }

    /// Send `request` (method and target) with `Expect: 100-continue` and a `body` of 5
    /// bytes, which goes out once the 100 Continue is back.
    fn send_after_continue(&mut self, request: &[u8], body: &[u8; 5]) {
        self.send(request);
        self.send(b" HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(self.next(false).unwrap().status, 100);
        self.send(body);
    }

    /// The next byte of the connection.
    fn next_byte(&mut self) -> u8 {
        while self.buf.is_empty() {
            assert!(self.more() > 0, "EOF");
        }
        self.buf.remove(0)
    }

    /// A chunked body (after its head), decoded.
    fn chunked_body(&mut self) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                line.push(self.next_byte());
            }
            let n =
                usize::from_str_radix(std::str::from_utf8(&line[..line.len() - 2]).unwrap(), 16)
                    .unwrap();
            while self.buf.len() < n + 2 {
                assert!(self.more() > 0, "EOF in a chunk");
            }
            body.extend(self.buf.drain(..n));
            assert_eq!(self.buf.drain(..2).collect::<Vec<u8>>(), b"\r\n");
            if n == 0 {
                return body;
            }
        }
    }
}

/// A thread that sends `piece` on a stream at intervals, at most 100 times, until stopped.
struct Trickle {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<usize>,
}

impl Trickle {
    fn start(s: &TcpStream, piece: &'static [u8], every: Duration) -> Trickle {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let s = s.try_clone().unwrap();
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut sent = 0;
            while sent < 100
                && !stopped.load(std::sync::atomic::Ordering::SeqCst)
                && (&s).write_all(piece).is_ok()
            {
                sent += 1;
                std::thread::sleep(every);
            }
            sent
        });
        Trickle { stop, thread }
    }

    /// Stop it; how many pieces it sent.
    fn stop(self) -> usize {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.thread.join().unwrap()
    }
}

fn exchange(addr: SocketAddr, raw: &[u8]) -> Vec<Resp> {
    let mut r = Reader::new(connect(addr));
    r.send(raw);
    let mut all = Vec::new();
    while let Some(resp) = r.next(false) {
        all.push(resp);
    }
    all
}

#[test]
fn keep_alive_and_pipelining_in_order() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\nHEAD /c HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    let b = r.next(false).unwrap();
    assert_eq!(b.text(), "GET /b");
    assert!(b.header("date").is_some());
    let c = r.next(true).unwrap();
    assert_eq!(c.header("content-length"), Some("7"));
    // still open: another request on the same connection
    r.send(b"GET /empty HTTP/1.1\r\nHost: x\r\n\r\n");
    let e = r.next(false).unwrap();
    assert_eq!(e.status, 204);
    assert_eq!(e.header("content-length"), None);
    r.send(b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let d = r.next(false).unwrap();
    assert_eq!(
        (d.text().as_str(), d.header("connection")),
        ("GET /d", Some("close"))
    );
    assert!(r.next(false).is_none());
}

#[test]
fn the_handler_knows_the_peer_the_local_address_and_that_it_is_not_tls() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    let me = r.s.local_addr().unwrap();
    r.send(b"GET /conn HTTP/1.1\r\nHost: a\r\n\r\nGET /conn-body HTTP/1.1\r\nHost: a\r\n\r\n");
    let want = format!("{me} {addr} false");
    assert_eq!(r.next(false).unwrap().text(), want);
    assert_eq!(r.next(false).unwrap().text(), want);
    // Another connection is another peer.
    let mut other = Reader::new(connect(addr));
    other.send(b"GET /conn HTTP/1.0\r\n\r\n");
    let theirs = other.s.local_addr().unwrap();
    assert_ne!(theirs, me);
    assert_eq!(
        other.next(false).unwrap().text(),
        format!("{theirs} {addr} false")
    );
}

#[test]
fn a_handler_that_says_connection_close_has_the_connection_closed() {
    let addr = start();
    // Pipelined: the request after the one answered with `close` is never answered.
    let all = exchange(
        addr,
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /close HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /b HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let texts: Vec<String> = all.iter().map(Resp::text).collect();
    assert_eq!(texts, ["GET /a", "closing"]);
    assert_eq!(all[0].header("connection"), None);
    assert_eq!(all[1].header("connection"), Some("close"));
    // An HTTP/1.0 client that asked for keep-alive is told close instead.
    let all = exchange(
        addr,
        b"GET /close HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n",
    );
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].header("connection"), Some("close"));
}

#[test]
fn a_reader_of_known_length_goes_out_with_content_length() {
    let addr = start();
    let want: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /sized HTTP/1.1\r\nHost: a\r\n\r\nHEAD /sized HTTP/1.1\r\nHost: a\r\n\r\n");
    let get = r.next(false).unwrap();
    assert_eq!(get.header("content-length"), Some("100000"));
    assert_eq!(get.header("transfer-encoding"), None);
    assert!(get.body == want);
    let head = r.next(true).unwrap();
    assert_eq!(head.header("content-length"), Some("100000"));
    // What the reader has past its length is not sent; the connection goes on.
    r.send(b"GET /sized-long HTTP/1.1\r\nHost: a\r\n\r\nGET /file HTTP/1.1\r\nHost: a\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "twenty");
    let file = r.next(false).unwrap();
    assert_eq!(file.header("content-length"), Some("14"));
    assert_eq!(file.text(), "a file's bytes");
    // An HTTP/1.0 client gets it framed too, so keep-alive holds.
    r.send(
        b"GET /sized HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let old = r.next(false).unwrap();
    assert_eq!(old.header("connection"), Some("keep-alive"));
    assert!(old.body == want);
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    // A reader that ends early: a 500 while nothing of the response has left, and the
    // connection closed (the answer after it is never sent) ...
    let all = exchange(
        addr,
        b"GET /a HTTP/1.1\r\nHost: a\r\n\r\nGET /sized-short HTTP/1.1\r\nHost: a\r\n\r\n\
          GET /a HTTP/1.1\r\nHost: a\r\n\r\n",
    );
    let statuses: Vec<u16> = all.iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 500]);
    assert_eq!(all[1].header("connection"), Some("close"));
    // ... or, once some of it has, the connection ends with the body cut short, never padded
    // or followed by another response.
    let mut s = connect(addr);
    s.write_all(b"GET /sized-cut HTTP/1.1\r\nHost: a\r\n\r\nGET /a HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    s.read_to_end(&mut got).unwrap();
    let end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let head = String::from_utf8_lossy(&got[..end]);
    assert!(head.contains("content-length: 1000000"), "{head}");
    let body = &got[end + 4..];
    assert!(
        body.len() < 1_000_000 && body.iter().all(|&b| b == b'x'),
        "{}",
        body.len()
    );
}

#[test]
fn a_client_that_stops_reading_is_let_go_after_the_write_timeout() {
    // The response never ends; the client never reads it. The server's write fails once the
    // socket buffers are full and the write timeout has passed: the writer reports how.
    let (tx, rx) = mpsc::channel();
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .write_timeout(Duration::from_millis(200))
            .serve(move |_req| {
                let tx = tx.clone();
                Response::new(ResponseBody::writer(move |w| {
                    let chunk = vec![b'z'; 64 * 1024];
                    let e = loop {
                        if let Err(e) = w.write_all(&chunk) {
                            break e;
                        }
                    };
                    tx.send(e.kind()).unwrap();
                    Err(e)
                }))
            })
            .unwrap();
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let mut s = connect(addr_rx.recv().unwrap());
    s.write_all(b"GET /forever HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let kind = rx.recv_timeout(generous(Duration::from_secs(30))).unwrap();
    assert_eq!(kind, std::io::ErrorKind::TimedOut);
    // And the connection is closed: what was sent can be read, then it ends.
    s.set_read_timeout(Some(generous(Duration::from_secs(30))))
        .unwrap();
    let mut sink = vec![0u8; 1 << 20];
    loop {
        match s.read(&mut sink) {
            Ok(0) => break,
            Ok(_) => {}
            Err(e) => {
                assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
                break;
            }
        }
    }
    // A zero write timeout is refused up front.
    let e = Server::builder()
        .addr("127.0.0.1:0")
        .write_timeout(Duration::ZERO)
        .serve(|_req| Response::new("x"))
        .unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn pipelined_answers_are_not_hoarded_for_a_client_that_reads_none() {
    // 200 pipelined requests for 1 MiB each, none of it read: the server writes as it
    // answers, so it stops answering once the socket buffers are full (and lets the client
    // go after its write timeout) instead of building 200 MiB of answers first.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let answered = Arc::new(AtomicUsize::new(0));
    let a = answered.clone();
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .write_timeout(Duration::from_millis(200))
        .access_log(false)
        .serve(move |_req| {
            a.fetch_add(1, Ordering::Relaxed);
            Response::new(vec![b'b'; 1 << 20])
        })
        .unwrap();
    let client = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    let requests = b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n".repeat(200);
    (&client).write_all(&requests).unwrap();
    let start = Instant::now();
    while (server.connections() > 0 || answered.load(Ordering::Relaxed) == 0)
        && start.elapsed() < generous(Duration::from_secs(30))
    {
        greenlet::sleep(Duration::from_millis(10)).unwrap();
    }
    assert_eq!(
        server.connections(),
        0,
        "the connection outlived its write timeout"
    );
    let n = answered.load(Ordering::Relaxed);
    assert!(
        (1..100).contains(&n),
        "{n} of 200 answered before the first write"
    );
    server.stop(None);
}

#[test]
fn http10_closes_unless_keep_alive_asked() {
    let addr = start();
    // One response, which says it closes, then the close itself (`exchange` reads to it).
    let all = exchange(addr, b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].header("connection"), Some("close"));
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let a = r.next(false).unwrap();
    assert_eq!(
        (a.text().as_str(), a.header("connection")),
        ("GET /a", Some("keep-alive"))
    );
    r.send(b"GET /b HTTP/1.0\r\n\r\n");
    let b = r.next(false).unwrap();
    assert_eq!(
        (b.text().as_str(), b.header("connection")),
        ("GET /b", Some("close"))
    );
    assert!(r.next(false).is_none());
}

#[test]
fn cl_and_te_uses_chunked_and_closes() {
    let addr = start();
    let all = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].text(), "abc");
    assert_eq!(all[0].header("connection"), Some("close"));
}

#[test]
fn bad_chunk_sizes_are_400() {
    let addr = start();
    for size in ["0x3", "+3", "-3", " 3", "3 ", "00000000000000003", ""] {
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{size}\r\nabc\r\n0\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let all = exchange(addr, raw.as_bytes());
        assert_eq!(all.len(), 1, "{size:?}: {all:?}");
        assert_eq!(all[0].status, 400, "{size:?}");
    }
}

#[test]
fn malformed_chunked_framing_is_400_and_closes() {
    // Beyond the size: the CRLF after the data, bare LF or CR in a size line, extensions and
    // trailers (malformed, or over their limits). The request after it is never served.
    let long_ext = format!("3;{}", "a".repeat(4097));
    let long_trailer = format!("0\r\nX-T: {}", "a".repeat(8192));
    let addr = start();
    for framing in [
        "3\r\nabcX\r\n0\r\n\r\n",
        "3\r\nabc\n0\r\n\r\n",
        "3\nabc\r\n0\r\n\r\n",
        "3\rabc\r\n0\r\n\r\n",
        "3;a\0b\r\nabc\r\n0\r\n\r\n",
        "3;a\nb\r\nabc\r\n0\r\n\r\n",
        &long_ext,
        "3\r\nabc\r\n0\r\nBad Trailer\r\n\r\n",
        "3\r\nabc\r\n0\r\nX-T : 1\r\n\r\n",
        "3\r\nabc\r\n0\r\nX-T: 1\x01\r\n\r\n",
        &long_trailer,
    ] {
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{framing}\r\n\r\nGET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let all = exchange(addr, raw.as_bytes());
        let shown = &framing[..framing.len().min(40)];
        assert_eq!(all.len(), 1, "{shown:?}: {all:?}");
        assert_eq!(all[0].status, 400, "{shown:?}");
        assert_eq!(all[0].header("connection"), Some("close"), "{shown:?}");
    }
}

#[test]
fn a_truncated_body_fails_the_handlers_read() {
    // Fewer bytes than the Content-Length says, or a chunked body without its last chunk,
    // then the client's half-close: the read fails (the handler would answer 499), the
    // answer is a 400 and the connection closes; nothing waits for bytes that cannot come.
    let addr = start();
    for head in [
        &b"Content-Length: 10\r\n\r\nabc"[..],
        b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
    ] {
        let mut r = Reader::new(connect(addr));
        r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\n");
        r.send(head);
        r.s.shutdown(std::net::Shutdown::Write).unwrap();
        let resp = r.next(false).unwrap();
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(head));
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(r.next(false).is_none());
    }
}

#[test]
fn a_body_given_with_204_or_304_is_not_sent() {
    // Each answer is only its head (a 304 tells the length the body would have, as for HEAD,
    // when it is known); the next response on the connection parses where it should.
    let mut r = Reader::new(connect(start()));
    for path in ["/204-with-body", "/304-with-body", "/304-streamed"] {
        r.send(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        );
        let resp = r.next(true).unwrap();
        assert!(resp.body.is_empty(), "{path}: {resp:?}");
        assert_eq!(resp.header("transfer-encoding"), None, "{path}");
        let next = r.next(false).unwrap();
        assert_eq!(next.text(), "GET /next", "{path}");
    }
}

#[test]
fn head_of_a_streamed_or_written_body_sends_no_body() {
    // Neither the chunks the body would be sent in nor its last chunk: the next response on
    // the connection parses where it should. A body of known length tells it.
    let mut r = Reader::new(connect(start()));
    for (path, length) in [
        ("/stream", None),
        ("/write", None),
        ("/sized", Some("100000")),
    ] {
        r.send(
            format!("HEAD {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n")
                .as_bytes(),
        );
        let resp = r.next(true).unwrap();
        assert_eq!(resp.status, 200, "{path}: {resp:?}");
        assert_eq!(resp.header("content-length"), length, "{path}: {resp:?}");
        let next = r.next(false).unwrap();
        assert_eq!(next.text(), "GET /next", "{path}: {next:?}");
    }
}

#[test]
fn smuggling_heads_are_refused() {
    let addr = start();
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"[..],
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 3\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, identity\r\n\r\n",
        b"GET / HTTP/1.1\nHost: x\n\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n",
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let all = exchange(addr, raw);
        assert_eq!(all.len(), 1, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(all[0].status, 400, "{:?}", String::from_utf8_lossy(raw));
        assert_eq!(all[0].header("connection"), Some("close"));
    }
    let all = exchange(addr, b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n");
    assert_eq!(all[0].status, 505);
}

#[test]
fn unread_body_is_never_the_next_request() {
    let addr = start();
    let smuggled = b"GET /smuggled HTTP/1.1\r\nHost: x\r\n\r\n";
    let mut raw = format!(
        "POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        smuggled.len()
    )
    .into_bytes();
    raw.extend_from_slice(smuggled);
    raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    let all = exchange(addr, &raw);
    let texts: Vec<String> = all.iter().map(Resp::text).collect();
    assert_eq!(texts, ["POST /ignore", "GET /next"]);
    // chunked too
    let mut raw = format!(
        "POST /ignore HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        smuggled.len()
    )
    .into_bytes();
    raw.extend_from_slice(smuggled);
    raw.extend_from_slice(
        b"\r\n0\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    let texts: Vec<String> = exchange(addr, &raw).iter().map(Resp::text).collect();
    assert_eq!(texts, ["POST /ignore", "GET /next"]);
}

#[test]
fn unread_body_over_the_drain_limit_closes() {
    let addr = start_with(|b| b.max_drain(10));
    let mut raw = b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'G', 100));
    raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let all = exchange(addr, &raw);
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].header("connection"), Some("close"));
}

#[test]
fn an_unread_body_trickled_in_is_not_waited_for_past_the_header_timeout() {
    // Each byte comes well within the per-read timeout; all of them would take 10 s. The drain
    // gives up after the header-read timeout: the answer goes out, the connection closes.
    // Body bytes, and chunk framing alone (an extension that grows a byte at a time).
    let addr = start_with(|b| b.header_read_timeout(Duration::from_millis(300)));
    for (head, trickle) in [
        (&b"Content-Length: 1000\r\n\r\n0123456789"[..], b"x"),
        (&b"Transfer-Encoding: chunked\r\n\r\n1;"[..], b"e"),
    ] {
        let s = connect(addr);
        (&s).write_all(b"POST /ignore HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        (&s).write_all(head).unwrap();
        let writer = Trickle::start(&s, trickle, Duration::from_millis(100));
        let mut r = Reader::new(s);
        let resp = r.next(false).unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(r.next(false).is_none());
        assert!(writer.stop() < 100, "the whole body was waited for");
    }
}

#[test]
fn a_body_trickled_in_gets_no_more_than_the_body_read_timeout() {
    // Each byte comes well within the per-read timeout (the keep-alive timeout, 75 s); all of
    // them would take 5 s. The handler's read fails once the whole body's 300 ms are up, and
    // the answer is a 408 that closes the connection; a body the handler did not read is
    // drained within them too (the header-read timeout, which limits a drain, is 30 s here).
    let addr = start_with(|b| b.body_read_timeout(Duration::from_millis(300)));
    for (path, head, trickle, status) in [
        (
            "/echo",
            &b"Content-Length: 1000\r\n\r\n0123456789"[..],
            b"x",
            408,
        ),
        (
            "/echo",
            &b"Transfer-Encoding: chunked\r\n\r\n1;"[..],
            b"e",
            408,
        ),
        (
            "/echo",
            &b"Expect: 100-continue\r\nContent-Length: 1000\r\n\r\n"[..],
            b"x",
            408,
        ),
        (
            "/ignore",
            &b"Content-Length: 1000\r\n\r\n0123456789"[..],
            b"x",
            200,
        ),
    ] {
        let s = connect(addr);
        (&s).write_all(format!("POST {path} HTTP/1.1\r\nHost: x\r\n").as_bytes())
            .unwrap();
        (&s).write_all(head).unwrap();
        let writer = Trickle::start(&s, trickle, Duration::from_millis(50));
        let mut r = Reader::new(s);
        let mut resp = r.next(false).unwrap();
        if resp.status == 100 {
            resp = r.next(false).unwrap();
        }
        assert_eq!(
            resp.status,
            status,
            "{path} {:?}",
            String::from_utf8_lossy(head)
        );
        assert_eq!(resp.header("connection"), Some("close"));
        assert!(r.next(false).is_none());
        assert!(writer.stop() < 100, "the whole body was waited for");
    }
}

#[test]
fn a_body_that_comes_in_time_is_read_whole_with_a_body_read_timeout() {
    // The limit is each request's own: after a first body, more time than the limit passes
    // before the next request, whose body of two pieces (the server waits for the second)
    // still has all of its time. Bodies that come at once pass too.
    let limit = generous(Duration::from_secs(1));
    let addr = start_with(|b| b.body_read_timeout(generous(Duration::from_secs(1))));
    let mut r = Reader::new(connect(addr));
    for _ in 0..2 {
        r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
        let resp = r.next(false).unwrap();
        assert_eq!((resp.status, &resp.body[..]), (200, &b"hello"[..]));
    }
    std::thread::sleep(limit + Duration::from_millis(200));
    r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
    std::thread::sleep(Duration::from_millis(50));
    r.send(b"2\r\nde\r\n0\r\n\r\n");
    let resp = r.next(false).unwrap();
    assert_eq!((resp.status, &resp.body[..]), (200, &b"abcde"[..]));
    assert_eq!(resp.header("connection"), None);
}

#[test]
fn a_body_read_that_waits_past_the_keep_alive_timeout_is_answered_408() {
    let addr = start_with(|b| b.keep_alive_timeout(Duration::from_millis(300)));
    let mut r = Reader::new(connect(addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
    let resp = r.next(false).unwrap();
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.next(false).is_none());
}

#[test]
fn time_limits_as_long_as_duration_max_mean_none_in_effect() {
    let addr = start_with(|b| {
        b.header_read_timeout(Duration::MAX)
            .keep_alive_timeout(Duration::MAX)
            .body_read_timeout(Duration::MAX)
            .write_timeout(Duration::MAX)
    });
    let mut r = Reader::new(connect(addr));
    r.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhel");
    r.send(b"lo");
    assert_eq!(r.next(false).unwrap().text(), "hello");
    r.send(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(r.next(false).unwrap().status, 200);
    r.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
}

#[test]
fn a_zero_time_limit_is_refused() {
    for configure in [
        (|b: Builder| b.body_read_timeout(Duration::ZERO)) as fn(Builder) -> Builder,
        |b| b.header_read_timeout(Duration::ZERO),
        |b| b.keep_alive_timeout(Duration::ZERO),
        |b| b.write_timeout(Duration::ZERO),
    ] {
        let e = configure(Server::builder().addr("127.0.0.1:0"))
            .serve(app)
            .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    }
}

#[test]
fn a_connection_whose_body_drain_timed_out_lingers_for_the_rest_of_it() {
    // The drain of a body the handler did not read gives up at the header timeout and the
    // answer goes out with `Connection: close`. The client may still be sending (it reads the
    // answer only later): what it sends then is read and dropped for a while, not met with a
    // reset that could destroy the answer before the client reads it.
    let (addr_tx, addr_rx) = mpsc::channel();
    let (ended_tx, ended) = mpsc::channel();
    std::thread::spawn(move || {
        let server = std::rc::Rc::new(
            Server::builder()
                .addr("127.0.0.1:0")
                .header_read_timeout(Duration::from_millis(300))
                .serve(app)
                .unwrap(),
        );
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        // Tells when the server is done with a connection.
        let watched = server.clone();
        greenlet::spawn(move || {
            let mut open = 0;
            loop {
                let now = watched.connections();
                if open > 0 && now == 0 {
                    ended_tx.send(()).unwrap();
                }
                open = now;
                greenlet::sleep(Duration::from_millis(5)).unwrap();
            }
        });
        server.serve_forever().unwrap();
    });
    let mut r = Reader::new(connect(addr_rx.recv().unwrap()));
    r.send(b"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nthe start");
    let resp = r.next(false).unwrap();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.next(false).is_none(), "the server's side is closed");
    // The rest of the body, after the server closed its side, then the end of it.
    r.send(&[b'b'; 990]);
    r.s.shutdown(std::net::Shutdown::Write).unwrap();
    ended.recv().unwrap();
    assert!(r.s.take_error().unwrap().is_none(), "reset");
    let mut rest = Vec::new();
    r.s.read_to_end(&mut rest).unwrap();
}

#[test]
fn a_body_over_the_size_limit_is_413() {
    let addr = start_with(|b| b.max_body_size(10));
    // At the limit: read as usual.
    let all = exchange(addr, b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\nConnection: close\r\n\r\n0123456789");
    assert_eq!((all[0].status, all[0].text().as_str()), (200, "0123456789"));
    // A length over it is refused before the handler runs (which would echo it), with the
    // connection closed; so is one that asks for 100 Continue, which is not sent.
    for expect in ["", "Expect: 100-continue\r\n"] {
        let raw = format!(
            "POST /echo HTTP/1.1\r\nHost: x\r\n{expect}Content-Length: 11\r\n\r\n01234567890GET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        );
        let all = exchange(addr, raw.as_bytes());
        assert_eq!(all.len(), 1);
        assert_eq!(
            (all[0].status, all[0].header("connection")),
            (413, Some("close"))
        );
    }
    // A chunked body that grows past it: the handler's read fails, the answer is a 413.
    let all = exchange(
        addr,
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n6\r\nabcdef\r\n6\r\nghijkl\r\n0\r\n\r\n",
    );
    assert_eq!(all.len(), 1);
    assert_eq!(
        (all[0].status, all[0].header("connection")),
        (413, Some("close"))
    );
}

#[test]
fn expect_100_continue_answered_on_first_read() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send_after_continue(b"PUT /echo", b"hello");
    assert_eq!(r.next(false).unwrap().text(), "hello");
    // not read by the handler: no 100, and the connection closes
    r.send(b"PUT /ignore HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let resp = r.next(false).unwrap();
    assert_eq!(
        (resp.status, resp.header("connection")),
        (200, Some("close"))
    );
    assert!(r.next(false).is_none());
}

#[test]
fn answers_pipelined_ahead_of_a_refused_head_go_out_first_in_order() {
    // Two good requests, then a bad head, then one more: the two answers, the 400 that
    // closes the connection, nothing for the last one.
    for bad in [
        &b"GET /x HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n"[..],
        b"GET /x HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\n\r\n",
        b"POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut raw = b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo HTTP/1.1\r\nHost: x\r\n\
                        Content-Length: 3\r\n\r\nabc"
            .to_vec();
        raw.extend_from_slice(bad);
        raw.extend_from_slice(b"GET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        let all = exchange(start(), &raw);
        let shown = String::from_utf8_lossy(bad);
        assert_eq!(all.len(), 3, "{shown}: {all:?}");
        assert_eq!(all[0].text(), "GET /1", "{shown}");
        assert_eq!(all[1].text(), "abc", "{shown}");
        assert!(matches!(all[2].status, 400 | 417), "{shown}: {all:?}");
        assert_eq!(all[2].header("connection"), Some("close"), "{shown}");
    }
}

#[test]
fn a_100_continue_behind_pipelined_requests_follows_their_answers() {
    let mut r = Reader::new(connect(start()));
    r.send(
        b"GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n\
          PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n",
    );
    assert_eq!(r.next(false).unwrap().text(), "GET /1");
    assert_eq!(r.next(false).unwrap().text(), "GET /2");
    assert_eq!(r.next(false).unwrap().status, 100);
    r.send(b"body");
    assert_eq!(r.next(false).unwrap().text(), "body");
}

#[test]
fn a_stray_crlf_after_a_body_is_skipped_before_the_next_request() {
    // RFC 9112 §2.2: a client may end a body with an extra CRLF; the next request is read.
    let all = exchange(
        start(),
        b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\n\
          GET /next HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all.len(), 2, "{all:?}");
    assert_eq!(all[0].text(), "abc");
    assert_eq!(all[1].text(), "GET /next");
}

#[test]
fn other_expectations_are_417_before_the_handler_runs() {
    // The handler would echo the body: it is not run, nothing is read of the body, and the
    // connection closes (what follows the head is not taken for a request).
    let all = exchange(
        start(),
        b"PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: fancy\r\nContent-Length: 5\r\n\r\n\
          GET /next HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(all.len(), 1, "{all:?}");
    assert_eq!(all[0].status, 417);
    assert_eq!(all[0].header("connection"), Some("close"));
    assert!(all[0].body.is_empty());
}

#[test]
fn a_handlers_header_value_with_cr_lf_or_nul_is_never_sent() {
    collect_logs();
    let addr = start();
    for kind in ["crlf", "lf", "cr", "nul"] {
        // A pipelined request after it is not answered: the connection closes after the 500.
        let mut s = connect(addr);
        write!(
            s,
            "GET /bad-value?{kind} HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        .unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).unwrap();
        let text = String::from_utf8_lossy(&raw);
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{kind}: {text}"
        );
        assert!(text.contains("\r\nconnection: close\r\n"), "{kind}: {text}");
        assert_eq!(text.matches("HTTP/1.1 ").count(), 1, "{kind}: {text}");
        assert!(
            !text.contains("injected") && !text.contains("not sent"),
            "{kind}: {text}"
        );
        let errors = LOG.errors.lock().unwrap().clone();
        let line = format!(
            "handler's response to \"GET /bad-value?{kind} HTTP/1.1\" has CR, LF or NUL in a \
             header; answering 500"
        );
        assert!(errors.contains(&line), "{errors:?}");
    }
}

#[test]
fn handler_panic_is_500_and_the_server_keeps_serving() {
    collect_logs();
    let addr = start();
    let c = connect(addr);
    let port = c.local_addr().unwrap().port();
    let mut r = Reader::new(c);
    r.send(b"GET /panic?logged HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().status, 500);
    assert!(r.next(false).is_none());
    // Logged (before the answer leaves) with the request line and the client.
    let errors = LOG.errors.lock().unwrap().clone();
    let line = format!(
        "handler panicked on \"GET /panic?logged HTTP/1.1\" from 127.0.0.1:{port}; answering 500"
    );
    assert!(errors.contains(&line), "{errors:?}");
    let all = exchange(
        addr,
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all[0].text(), "GET /ok");
}

#[test]
fn a_head_trickled_in_is_closed_after_the_header_timeout() {
    // A byte of a field every 50 ms, each well within the timeout: the limit is the whole
    // head's, not each read's.
    let addr = start_with(|b| b.header_read_timeout(Duration::from_millis(300)));
    let s = connect(addr);
    (&s).write_all(b"GET / HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        .unwrap();
    let writer = Trickle::start(&s, b"a", Duration::from_millis(50));
    let mut r = Reader::new(s);
    assert!(r.next(false).is_none(), "closed without a response");
    assert!(
        writer.stop() < 100,
        "the head was waited for as long as it kept coming"
    );
}

#[test]
fn slowloris_is_closed_after_the_header_timeout() {
    let addr = start_with(|b| b.header_read_timeout(Duration::from_millis(300)));
    // Before the connection exists: the server's time limit starts after this.
    let t = Instant::now();
    let mut r = Reader::new(connect(addr));
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\n");
    assert!(r.next(false).is_none(), "closed without a response");
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < generous(Duration::from_secs(10)), "{took:?}");
}

#[test]
fn head_limits_answer_414_and_431() {
    let addr = start();
    let mut raw = b"GET /".to_vec();
    raw.extend(std::iter::repeat_n(b'a', 10_000));
    raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(exchange(addr, &raw)[0].status, 414);
    let mut raw = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        raw.extend(format!("X-{i}: v\r\n").bytes());
    }
    raw.extend_from_slice(b"\r\n");
    assert_eq!(exchange(addr, &raw)[0].status, 431);
}

#[test]
fn curl_keep_alive_upload_chunked_and_http10() {
    if !have("curl", "--version") {
        return;
    }
    let addr = start();
    let base = format!("http://{addr}");
    // two URLs on one connection
    let out = Command::new("curl")
        .args(["-sS", "-v", &format!("{base}/a"), &format!("{base}/b")])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "GET /aGET /b");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("Re-using existing") || err.contains("existing connection"),
        "{err}"
    );
    // A -T upload with Expect: 100-continue (set: curl asks for it itself only above 1 MiB):
    // the 100 comes, then the body goes and comes back whole.
    curl_upload_after_continue(&[], &format!("{base}/echo"), 200_000);
    // chunked upload from stdin
    let mut child = Command::new("curl")
        .args([
            "-sS",
            "-H",
            "Transfer-Encoding: chunked",
            "--data-binary",
            "@-",
        ])
        .arg(format!("{base}/echo"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"chunked body")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "chunked body");
    assert_eq!(curl(&["--http1.0", &format!("{base}/old")]), "GET /old");
}

#[test]
fn python_http_client() {
    if !have("python3", "--version") {
        return;
    }
    let addr = start();
    let script = format!(
        r#"
import http.client
c = http.client.HTTPConnection("{ip}", {port}, timeout=30)
c.request("GET", "/a")
r = c.getresponse(); assert r.status == 200, r.status; assert r.read() == b"GET /a"
c.request("POST", "/echo", body=b"x" * 100000)
r = c.getresponse(); assert r.read() == b"x" * 100000
c.request("POST", "/echo", body=iter([b"ab", b"cd"]), encode_chunked=True)
r = c.getresponse(); assert r.read() == b"abcd"
c.request("GET", "/stream")
r = c.getresponse(); assert r.getheader("transfer-encoding") == "chunked"; assert len(r.read()) == 100000
c.request("HEAD", "/h")
r = c.getresponse(); assert r.getheader("content-length") == "7"; r.read()
c.request("GET", "/z", headers={{"Connection": "close"}})
r = c.getresponse(); assert r.read() == b"GET /z"; assert r.getheader("connection") == "close"
print("ok")
"#,
        ip = addr.ip(),
        port = addr.port()
    );
    let out = Command::new("python3")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn idle_keep_alive_connection_is_closed_after_the_timeout() {
    let addr = start_with(|b| b.keep_alive_timeout(Duration::from_millis(300)));
    let mut r = Reader::new(connect(addr));
    // Before the request: the server's idle time starts after its answer, so after this.
    let t = Instant::now();
    r.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    assert!(r.next(false).is_none());
    let took = t.elapsed();
    assert!(took >= Duration::from_millis(250), "{took:?}");
    assert!(took < generous(Duration::from_secs(10)), "{took:?}");
}

#[test]
fn server_header_is_sent_and_checked() {
    let addr = start_with(|b| b.server_header(Some("gevent-http".into())));
    let all = exchange(
        addr,
        b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all[0].header("server"), Some("gevent-http"));
    let bad = Server::builder()
        .addr("127.0.0.1:0")
        .server_header(Some("a\r\nb".into()))
        .serve(app);
    assert_eq!(bad.unwrap_err().kind(), std::io::ErrorKind::InvalidInput);
}

#[test]
fn streamed_body_is_chunked_or_until_close_for_http10() {
    let addr = start();
    let want: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    let mut s = connect(addr);
    s.write_all(b"GET /stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(dechunk(rest), want);
    let mut s = connect(addr);
    s.write_all(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        .unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8(raw).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        !head.contains("transfer-encoding") && head.contains("connection: close"),
        "{head}"
    );
    assert_eq!(rest.as_bytes(), &want[..]);
}

/// The data of a whole chunked body (no trailers), checking its framing.
fn dechunk(mut rest: &str) -> Vec<u8> {
    let mut body = Vec::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            assert_eq!(after, "\r\n");
            return body;
        }
        body.extend_from_slice(&after.as_bytes()[..n]);
        assert_eq!(&after[n..n + 2], "\r\n");
        rest = &after[n + 2..];
    }
}

#[test]
fn written_body_is_chunked_and_empty_writes_send_no_chunk() {
    let addr = start();
    let mut s = connect(addr);
    s.write_all(b"GET /write HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    let (head, rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    assert_eq!(rest, "4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n");
    assert_eq!(dechunk(rest), b"one,two");
}

#[test]
fn upgrade_body_and_status_101_go_together_or_500() {
    let addr = start();
    for path in ["/bad-upgrade", "/bad-101"] {
        let raw =
            format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\nGET /after HTTP/1.1\r\nHost: x\r\n\r\n");
        let all = exchange(addr, raw.as_bytes());
        assert_eq!(all.len(), 1, "{path}: the connection closes after the 500");
        assert_eq!(all[0].status, 500, "{path}");
    }
}

#[test]
fn a_response_streamed_from_the_request_body_gets_all_of_it() {
    let addr = start();
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    // Content-Length and chunked request bodies, each followed by another request: the echo
    // is the whole body, and the connection goes on.
    let mut r = Reader::new(connect(addr));
    let mut raw = format!(
        "POST /stream-echo HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    raw.extend_from_slice(
        b"POST /stream-echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
    );
    raw.extend_from_slice(b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    r.send(&raw);
    for want in [&body[..], b"abcde"] {
        let mut s = Vec::new();
        while !s.ends_with(b"\r\n\r\n") {
            s.push(r.next_byte());
        }
        let head = String::from_utf8_lossy(&s).to_string();
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        assert_eq!(r.chunked_body(), want);
    }
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    // With `Expect: 100-continue` the client gets its 100 before the final head, and only then
    // sends the body.
    let mut r = Reader::new(connect(addr));
    r.send(b"PUT /stream-echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let cont = r.next(false).unwrap();
    assert_eq!(cont.status, 100);
    r.send(b"hello");
    let mut s = Vec::new();
    while !s.ends_with(b"\r\n\r\n") {
        s.push(r.next_byte());
    }
    assert!(s.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(r.chunked_body(), b"hello");
    // A streamed refusal does not invite the body: no 100, and the connection closes after it.
    let mut r = Reader::new(connect(addr));
    r.send(b"PUT /stream-refusal HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let mut s = Vec::new();
    while !s.ends_with(b"\r\n\r\n") {
        s.push(r.next_byte());
    }
    let head = String::from_utf8_lossy(&s).to_string();
    assert!(
        head.starts_with("HTTP/1.1 413 ") && head.contains("connection: close"),
        "{head}"
    );
    assert_eq!(r.chunked_body(), b"too large");
    // A streamed response that does not read the body: what it left is drained after it.
    let mut raw = b"POST /write HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'G', 1000));
    raw.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut r = Reader::new(connect(addr));
    r.send(&raw);
    let mut s = Vec::new();
    while !s.ends_with(b"\r\n\r\n") {
        s.push(r.next_byte());
    }
    assert_eq!(r.chunked_body(), b"one,two");
    assert_eq!(r.next(false).unwrap().text(), "GET /next");
}

#[test]
fn a_body_kept_past_its_request_reads_nothing_of_the_next_one() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    let me = r.s.local_addr().unwrap();
    r.send(
        b"POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          POST /read-kept HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld",
    );
    assert_eq!(r.next(false).unwrap().text(), "kept");
    assert_eq!(
        r.next(false).unwrap().text(),
        format!("the request of this body is over; from {me}; own world")
    );
}

#[test]
fn a_body_its_handler_read_whole_still_reads_its_end_requests_later() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send(
        b"POST /keep-read HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello\
          GET /spawned-result HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /read-kept HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nworld",
    );
    assert_eq!(r.next(false).unwrap().text(), "kept hello");
    assert_eq!(r.next(false).unwrap().status, 200);
    assert_eq!(r.next(false).unwrap().text(), "read \"\"; own world");
}

#[test]
fn a_body_kept_past_its_request_does_not_wait_for_its_idle_connection() {
    // Connection A's request keeps its body (unread: drained) and A waits, idle, for its next
    // request (75 s by default). Read from connection B meanwhile, the kept body fails at
    // once instead of waiting behind A.
    let addr = start();
    let mut a = Reader::new(connect(addr));
    let me = a.s.local_addr().unwrap();
    a.send(b"POST /keep HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello");
    assert_eq!(a.next(false).unwrap().text(), "kept");
    let all = exchange(
        addr,
        b"GET /read-kept HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(
        all[0].text(),
        format!("the request of this body is over; from {me}; own ")
    );
}

#[test]
fn a_body_read_by_a_greenlet_of_the_handler_while_the_answer_goes_out() {
    // The handler's greenlet waits in its read for the body (the client sends it only after
    // its 100 Continue) while the connection answers: the connection waits for the read,
    // neither finds the other in the way.
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send_after_continue(b"POST /spawn-reader", b"hello");
    assert_eq!(r.next(false).unwrap().text(), "spawned");
    r.send(b"GET /spawned-result HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "hello");
    // Chunked: the greenlet has the data, the connection reads the last chunk (framing only,
    // nothing of the body lost): the greenlet's next read is the body's end.
    r.send(
        b"POST /spawn-reader HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
          Transfer-Encoding: chunked\r\n\r\n",
    );
    assert_eq!(r.next(false).unwrap().status, 100);
    r.send(b"5\r\nhello\r\n0\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "spawned");
    r.send(b"GET /spawned-result HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "hello");
}

#[test]
fn a_body_read_after_it_was_drained_fails_instead_of_ending_early() {
    // The handler gives the body to a greenlet and answers; the server drains the body to go
    // on, before that greenlet runs. Its read then fails: it does not take what is left (here
    // all of it) for a shorter body.
    let mut r = Reader::new(connect(start()));
    r.send(b"POST /spawn-late-reader HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n0123456789");
    assert_eq!(r.next(false).unwrap().text(), "spawned");
    r.send(b"GET /spawned-result HTTP/1.1\r\nHost: x\r\n\r\n");
    let text = r.next(false).unwrap().text();
    assert!(text.starts_with("error: "), "{text:?}");
}

#[test]
fn a_refused_answer_whose_body_reads_the_request_when_dropped_reads_it() {
    // The refusal lets the connection's lock go before the handler's response is dropped: the
    // drop's read of the request body gets it (it found the lock taken by its own greenlet).
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send(b"POST /drop-reads HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    let resp = r.next(false).unwrap();
    assert_eq!(resp.status, 500);
    assert!(r.next(false).is_none());
    let all = exchange(
        addr,
        b"GET /spawned-result HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all[0].text(), "abc");
}

#[test]
fn a_switch_of_protocols_starts_after_the_whole_request() {
    let addr = start();
    // The body is read before the switch: the new protocol's first bytes are what follows it.
    let mut s = connect(addr);
    s.write_all(
        b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\
          Content-Length: 5\r\n\r\nBODY!line\n",
    )
    .unwrap();
    let mut got = String::new();
    s.read_to_string(&mut got).unwrap();
    let (head, rest) = got.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert_eq!(rest, "line\n");
    // With `Expect: 100-continue`: the 100 first, then the body, then the 101.
    let mut r = Reader::new(connect(addr));
    r.send(
        b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\
          Expect: 100-continue\r\nContent-Length: 5\r\n\r\n",
    );
    assert_eq!(r.next(false).unwrap().status, 100);
    r.send(b"BODY!again\n");
    assert_eq!(r.next(false).unwrap().status, 101);
    let mut rest = String::new();
    r.s.read_to_string(&mut rest).unwrap();
    assert_eq!(String::from_utf8_lossy(&r.buf) + rest.as_str(), "again\n");
    // A body over the drain limit (413), a malformed one (400), a request that asked for no
    // upgrade, HTTP/1.0 (where Upgrade is ignored; both 500): no switch.
    let mut big = b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\
                    Content-Length: 100000\r\n\r\n"
        .to_vec();
    big.extend(std::iter::repeat_n(b'B', 100_000));
    for (raw, status) in [
        (&big[..], 413),
        (
            b"GET /up HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: echo\r\n\
              Transfer-Encoding: chunked\r\n\r\nzz\r\n",
            400,
        ),
        (b"GET /up HTTP/1.1\r\nHost: x\r\n\r\nline\n", 500),
        // A bare Upgrade, without the `upgrade` option of Connection, asks for nothing.
        (
            b"GET /up HTTP/1.1\r\nHost: x\r\nUpgrade: echo\r\n\r\nline\n",
            500,
        ),
        (
            b"GET /up HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nline\n",
            500,
        ),
    ] {
        let all = exchange(addr, raw);
        assert_eq!(all.len(), 1);
        assert_eq!(
            all[0].status,
            status,
            "{}",
            String::from_utf8_lossy(&raw[..40])
        );
    }
}

#[test]
fn a_handler_answers_final_statuses_and_no_tunnel() {
    let addr = start();
    // An informational status (other than 101) is not an answer: 500, and the connection ends.
    let all = exchange(
        addr,
        b"GET /early-hints HTTP/1.1\r\nHost: x\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, 500);
    // A 2xx to CONNECT would make the connection a tunnel: what follows is never read as
    // requests, the connection closes after the answer, which has neither framing fields nor
    // a body (RFC 9110 §9.3.6: its client would take them for the tunnel's bytes).
    let all = exchange(
        addr,
        b"CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(
        all.len(),
        1,
        "{:?}",
        all.iter().map(Resp::text).collect::<Vec<_>>()
    );
    assert_eq!((all[0].status, all[0].text().as_str()), (200, ""));
    assert_eq!(all[0].header("content-length"), None);
    assert_eq!(all[0].header("transfer-encoding"), None);
    assert_eq!(all[0].header("connection"), Some("close"));
}

#[test]
fn stop_closes_idle_connections_at_once_and_lets_requests_in_flight_finish() {
    let (tx, rx) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (killed_tx, killed) = mpsc::channel();
    std::thread::spawn(move || {
        let release = greenlet::AsyncResult::<()>::new();
        let stop_now = greenlet::AsyncResult::<()>::new();
        let setters = (release.setter(), stop_now.setter());
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(move |req| {
                if req.uri().path() == "/slow" {
                    entered_tx.send(()).unwrap();
                    release.get().unwrap();
                }
                Response::new("done")
            })
            .unwrap();
        tx.send((server.local_addr().unwrap(), setters)).unwrap();
        stop_now.get().unwrap();
        killed_tx
            .send(server.stop(Some(generous(Duration::from_secs(10)))))
            .unwrap();
    });
    let (addr, (release, stop_now)) = rx.recv().unwrap();
    // A connection that has sent nothing yet (accepted before the next, whose answer comes
    // after that), an idle keep-alive connection, and one whose request is in the handler.
    let mut fresh = connect(addr);
    let mut idle = Reader::new(connect(addr));
    idle.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(idle.next(false).unwrap().text(), "done");
    let mut busy = Reader::new(connect(addr));
    // Its body is not read by the handler and never comes in full: a server that stops does
    // not wait for it.
    busy.send(b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\nabc");
    entered.recv().unwrap();
    stop_now.set(());
    // The idle one is closed now, not after the 75 s keep-alive timeout (a timeout here
    // would be an error, not 0).
    assert_eq!(idle.s.read(&mut [0u8; 1]).unwrap(), 0);
    // So is the one that never sent a request, not after the header-read timeout.
    assert_eq!(fresh.read(&mut [0u8; 1]).unwrap(), 0);
    // The listener is closed by then.
    assert!(TcpStream::connect(addr).is_err());
    // The request in flight gets its answer, with the connection closed after it.
    release.set(());
    let r = busy.next(false).unwrap();
    assert_eq!((r.status, r.text().as_str()), (200, "done"));
    assert_eq!(r.header("connection"), Some("close"));
    assert!(busy.next(false).is_none());
    assert_eq!(killed.recv().unwrap(), 0);
}

#[test]
fn a_request_that_came_as_the_stop_ended_the_wait_for_it_is_answered() {
    // A keep-alive connection promised to read its next request; that request is in the
    // kernel when a stop ends the connection's wait for it. It is answered (and the connection
    // closed after it), not thrown away. A handler of another connection holds the server's
    // thread while the request comes, then stops the server.
    thread_local! {
        static SERVER: std::cell::RefCell<Option<std::rc::Rc<Server>>> =
            const { std::cell::RefCell::new(None) };
    }
    let (addr_tx, addr_rx) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let go_rx = std::sync::Mutex::new(go_rx);
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(move |req: Request<Body>| {
                if req.uri().path() == "/stop" {
                    entered_tx.send(()).unwrap();
                    // Blocks the server's thread: nothing else runs meanwhile.
                    go_rx.lock().unwrap().recv().unwrap();
                    let server = SERVER.with(|s| s.borrow().clone()).unwrap();
                    let killed = server.stop(Some(generous(Duration::from_secs(5))));
                    return Response::new(format!("killed {killed}"));
                }
                Response::new(format!("{} {}", req.method(), req.uri()))
            })
            .unwrap();
        let server = std::rc::Rc::new(server);
        SERVER.with(|s| *s.borrow_mut() = Some(server.clone()));
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
        // The stopping handler's own connection still answers it.
        while server.connections() > 0 {
            greenlet::sleep(Duration::from_millis(5)).unwrap();
        }
    });
    let addr = addr_rx.recv().unwrap();
    let mut kept = Reader::new(connect(addr));
    kept.send(b"GET /first HTTP/1.1\r\nHost: x\r\n\r\n");
    let first = kept.next(false).unwrap();
    assert_eq!(
        (first.text().as_str(), first.header("connection")),
        ("GET /first", None)
    );
    let mut stopper = Reader::new(connect(addr));
    stopper.send(b"GET /stop HTTP/1.1\r\nHost: x\r\n\r\n");
    entered.recv().unwrap();
    kept.send(b"GET /second HTTP/1.1\r\nHost: x\r\n\r\n");
    go.send(()).unwrap();
    let second = kept.next(false).expect("the request that came was dropped");
    assert_eq!(second.text(), "GET /second");
    assert_eq!(second.header("connection"), Some("close"));
    assert!(kept.next(false).is_none());
    assert_eq!(stopper.next(false).unwrap().text(), "killed 0");
}

#[test]
fn a_request_pipelined_after_a_closing_answer_does_not_reset_that_answer() {
    // The first request asks for the close and a large answer; the second comes after the
    // server has read the first, while its handler runs, so it is unread in the kernel when
    // the server closes. Closing then would draw a reset that throws away what of the answer
    // the client has not taken yet: the server reads (and drops) what comes, until the client
    // is done.
    const LEN: usize = 4 << 20;
    let (tx, rx) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (go_tx, go) = mpsc::channel::<()>();
    let go = std::sync::Mutex::new(go);
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(move |_req| {
                entered_tx.send(()).unwrap();
                // Not a wait the hub sees: nothing else runs on this server meanwhile.
                go.lock().unwrap().recv().unwrap();
                Response::new(vec![b'x'; LEN])
            })
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let addr = rx.recv().unwrap();
    let mut c = connect(addr);
    c.write_all(b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    entered.recv().unwrap();
    c.write_all(b"GET /b HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    go_tx.send(()).unwrap();
    // Give the server the time to write what fits and close before this reads (were it to
    // read sooner, the check would only be easier to pass).
    std::thread::sleep(Duration::from_millis(200));
    let mut all = Vec::new();
    c.read_to_end(&mut all).unwrap();
    assert!(all.starts_with(b"HTTP/1.1 200 OK\r\n"));
    let body = all.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    assert_eq!(all.len() - body, LEN);
}

#[test]
fn max_connections_gives_an_idle_connections_slot_to_a_waiting_client() {
    let addr = start_with(|b| b.max_connections(1));
    // An idle keep-alive connection holds the only slot: a client that comes for it gets it,
    // the idle one is closed.
    let mut first = Reader::new(connect(addr));
    first.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(first.next(false).unwrap().text(), "GET /a");
    let mut second = connect(addr);
    second
        .write_all(b"GET /b HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    second.read_to_string(&mut text).unwrap();
    assert!(text.ends_with("\r\n\r\nGET /b"), "{text}");
    assert!(first.next(false).is_none());
    // A connection in the middle of a request keeps it: the next client waits in the backlog
    // (nothing comes: a read timeout, not data) until that request is answered, with the
    // connection closed after it.
    let mut third = Reader::new(connect(addr));
    third.send(b"GET /c HTTP/1.1\r\nHost: x\r\n");
    let mut fourth = connect(addr);
    fourth
        .write_all(b"GET /d HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    fourth
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let e = fourth.read(&mut [0u8; 1]).unwrap_err();
    assert!(
        matches!(
            e.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{e}"
    );
    third.send(b"\r\n");
    let r = third.next(false).unwrap();
    assert_eq!(
        (r.text().as_str(), r.header("connection")),
        ("GET /c", Some("close"))
    );
    assert!(third.next(false).is_none());
    fourth
        .set_read_timeout(Some(generous(Duration::from_secs(10))))
        .unwrap();
    let mut text = String::new();
    fourth.read_to_string(&mut text).unwrap();
    assert!(text.ends_with("\r\n\r\nGET /d"), "{text}");
}

/// Collects the access log lines and the errors the servers of this test binary log.
struct TestLog {
    access: std::sync::Mutex<Vec<String>>,
    errors: std::sync::Mutex<Vec<String>>,
}

impl log::Log for TestLog {
    fn enabled(&self, m: &log::Metadata<'_>) -> bool {
        m.target() == "gevent_http::access"
            || (m.target().starts_with("gevent_http") && m.level() == log::Level::Error)
    }
    fn log(&self, r: &log::Record<'_>) {
        if r.target() == "gevent_http::access" {
            self.access.lock().unwrap().push(r.args().to_string());
        } else if self.enabled(r.metadata()) {
            self.errors.lock().unwrap().push(r.args().to_string());
        }
    }
    fn flush(&self) {}
}

static LOG: TestLog = TestLog {
    access: std::sync::Mutex::new(Vec::new()),
    errors: std::sync::Mutex::new(Vec::new()),
};

/// Make [`LOG`] the logger (once for the binary).
fn collect_logs() {
    if log::set_logger(&LOG).is_ok() {
        log::set_max_level(log::LevelFilter::Info);
    }
}

#[test]
fn a_request_that_came_as_its_connection_gave_up_its_slot_is_answered() {
    // The only slot's holder answers with a streamed body (which keeps the connection open)
    // while a client waits in the backlog and the holder's next request is in the kernel.
    // Going idle, the holder gives up its slot: that request is answered first (the
    // connection closed after it), not thrown away. The body's writer holds the server's
    // thread while the client sends and the newcomer connects.
    let (addr_tx, addr_rx) = mpsc::channel();
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (go, go_rx) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        let go_rx = std::rc::Rc::new(go_rx);
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .max_connections(1)
            .serve(move |req: Request<Body>| {
                if req.uri().path() != "/held" {
                    return Response::new(req.uri().to_string().into_body());
                }
                let (entered_tx, go_rx) = (entered_tx.clone(), go_rx.clone());
                Response::new(ResponseBody::writer(move |w| {
                    entered_tx.send(()).unwrap();
                    go_rx.recv().unwrap();
                    // Everything that is ready runs first: the server sees the newcomer wait.
                    greenlet::idle()?;
                    w.write_all(b"held")
                }))
            })
            .unwrap();
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let addr = addr_rx.recv().unwrap();
    let mut holder = Reader::new(connect(addr));
    holder.send(b"GET /held HTTP/1.1\r\nHost: x\r\n\r\n");
    entered.recv().unwrap();
    holder.send(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
    let mut newcomer = Reader::new(connect(addr));
    newcomer.send(b"GET /new HTTP/1.1\r\nHost: x\r\n\r\n");
    go.send(()).unwrap();
    let head = head_of(&mut holder);
    assert!(!head.contains("connection: close"), "{head}");
    assert_eq!(holder.chunked_body(), b"held");
    let next = holder
        .next(false)
        .expect("the request that came was dropped");
    assert_eq!(next.text(), "/next");
    assert_eq!(next.header("connection"), Some("close"));
    assert!(holder.next(false).is_none());
    assert_eq!(newcomer.next(false).unwrap().text(), "/new");
}

#[test]
fn access_log_has_a_line_per_request_unless_turned_off() {
    collect_logs();
    let addr = start();
    let c = connect(addr);
    let port = c.local_addr().unwrap().port();
    let mut r = Reader::new(c);
    // The second head repeats the first byte for byte (built from what was kept of it, its
    // line too).
    r.send(b"GET /logged-1 HTTP/1.1\r\nHost: x\r\n\r\nGET /logged-1 HTTP/1.1\r\nHost: x\r\n\r\nPOST /echo?logged-2 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert_eq!(r.next(false).unwrap().text(), "GET /logged-1");
    assert_eq!(r.next(false).unwrap().text(), "GET /logged-1");
    assert_eq!(r.next(false).unwrap().text(), "abc");
    // The lines are written before the responses leave.
    let lines = LOG.access.lock().unwrap().clone();
    let mine: Vec<&String> = lines
        .iter()
        .filter(|l| l.starts_with(&format!("127.0.0.1:{port} ")))
        .collect();
    assert_eq!(mine.len(), 3, "{lines:?}");
    let fields: Vec<&str> = mine[0].split(' ').collect();
    assert_eq!(
        fields[1..5],
        ["\"GET", "/logged-1", "HTTP/1.1\"", "200"],
        "{mine:?}"
    );
    assert_eq!(fields[5], "13");
    assert!(fields[6].parse::<f64>().unwrap() >= 0.0);
    assert!(
        mine[1].contains("\"GET /logged-1 HTTP/1.1\" 200 13 "),
        "{mine:?}"
    );
    assert!(
        mine[2].contains("\"POST /echo?logged-2 HTTP/1.1\" 200 3 "),
        "{mine:?}"
    );

    let quiet = start_with(|b| b.access_log(false));
    let c = connect(quiet);
    let port = c.local_addr().unwrap().port();
    let mut r = Reader::new(c);
    r.send(b"GET /quiet HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /quiet");
    let lines = LOG.access.lock().unwrap().clone();
    assert!(
        !lines
            .iter()
            .any(|l| l.starts_with(&format!("127.0.0.1:{port} "))),
        "{lines:?}"
    );
}

#[test]
fn serve_on_threads_spreads_connections_over_every_thread() {
    let server = Server::builder()
        .addr("127.0.0.1:0")
        .serve_on_threads(2, routes)
        .unwrap();
    let addr = server.local_addr();
    let conns: Vec<Reader> = (0..64)
        .map(|_| {
            let mut r = Reader::new(connect(addr));
            r.send(b"GET /thread HTTP/1.1\r\nHost: x\r\n\r\n");
            r
        })
        .collect();
    let mut names = std::collections::BTreeSet::new();
    for mut r in conns {
        names.insert(r.next(false).unwrap().text());
    }
    // The kernel hashes connections over the two listeners: 64 all on one has odds 2^-63.
    assert_eq!(
        names.into_iter().collect::<Vec<_>>(),
        ["http-server-0", "http-server-1"]
    );
    assert_eq!(server.stop(None).unwrap(), 0);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn apache_bench_keep_alive_http10() {
    if !have("ab", "-V") {
        return;
    }
    let addr = start_with(|b| b.access_log(false));
    let out = Command::new("ab")
        .args(["-k", "-q", "-n", "2000", "-c", "20", "-s", "30"])
        .arg(format!("http://{addr}/ab"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("no {name:?} in {text}"))
    };
    assert_eq!(field("Complete requests:"), "2000", "{text}");
    assert_eq!(field("Failed requests:"), "0", "{text}");
    assert_eq!(field("Keep-Alive requests:"), "2000", "{text}");
    assert!(!text.contains("Non-2xx"), "{text}");
}

#[test]
fn wrk_keep_alive_and_pipelined_gets_every_answer_right() {
    if !have("wrk", "-v") {
        return;
    }
    let addr = start_with(|b| b.access_log(false));
    // Every response is checked (status and body); the one-thread summary is printed last.
    let script = |depth: usize| {
        format!(
            r#"
local threads = {{}}
function setup(thread) table.insert(threads, thread) end
function init(args)
  bad = 0
  local r = {{}}
  for i = 1, {depth} do r[i] = wrk.format(nil, "/wrk") end
  req = table.concat(r)
end
function request() return req end
function response(status, headers, body)
  if status ~= 200 or body ~= "GET /wrk" then bad = bad + 1 end
end
function done(summary, latency, requests)
  local b = 0
  for _, t in ipairs(threads) do b = b + t:get("bad") end
  io.write(string.format("answers %d bad %d errors %d %d %d %d %d\n", summary.requests, b,
    summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status,
    summary.errors.timeout))
end
"#
        )
    };
    for depth in [1, 16] {
        let path = std::env::temp_dir().join(format!(
            "gevent-http-wrk-{}-{depth}.lua",
            std::process::id()
        ));
        std::fs::write(&path, script(depth)).unwrap();
        let out = Command::new("wrk")
            .args(["-t1", "-c20", "-d1s", "--timeout", "10s", "-s"])
            .arg(&path)
            .arg(format!("http://{addr}/wrk"))
            .output()
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = text
            .lines()
            .find_map(|l| l.strip_prefix("answers "))
            .unwrap_or_else(|| panic!("no summary in {text}"));
        let numbers: Vec<u64> = summary.split(' ').filter_map(|w| w.parse().ok()).collect();
        assert!(numbers[0] >= 100, "depth {depth}: {text}");
        assert_eq!(
            numbers[1..],
            [0; 6],
            "depth {depth}: bad, then errors: {text}"
        );
    }
}

#[test]
fn a_panic_after_the_head_went_out_closes_the_connection() {
    collect_logs();
    let addr = start();
    let mut s = connect(addr);
    s.write_all(
        b"GET /panic-midway HTTP/1.1\r\nHost: x\r\n\r\nGET /next HTTP/1.1\r\nHost: x\r\n\r\n",
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    // The 200 head and the first chunk, then the end: no terminating chunk, no second answer.
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.ends_with("\r\n\r\n5\r\nbegun\r\n"), "{text}");
    // Logged with the request line.
    let errors = LOG.errors.lock().unwrap().clone();
    let line = "sending the response body to \"GET /panic-midway HTTP/1.1\" failed: \
                the body's reader or writer panicked";
    assert!(errors.iter().any(|e| e == line), "{errors:?}");
    // The server goes on serving.
    let all = exchange(
        addr,
        b"GET /again HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all[0].text(), "GET /again");
}

/// A server for `handler` on a thread of its own, stopped with a grace period of 100 ms once
/// the setter is set; the thread returns how many connections the stop had to kill.
fn stopped_when_told<B: IntoBody>(
    handler: impl Fn(Request<Body>) -> Response<B> + Send + 'static,
) -> (
    SocketAddr,
    greenlet::AsyncSetter<()>,
    std::thread::JoinHandle<usize>,
) {
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::spawn(move || {
        let stop_now = greenlet::AsyncResult::<()>::new();
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(handler)
            .unwrap();
        tx.send((server.local_addr().unwrap(), stop_now.setter()))
            .unwrap();
        stop_now.get().unwrap();
        server.stop(Some(Duration::from_millis(100)))
    });
    let (addr, stop_now) = rx.recv().unwrap();
    (addr, stop_now, thread)
}

#[test]
fn stop_kills_a_handler_that_outlives_the_grace_period_without_a_500() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (addr, stop_now, server_thread) = stopped_when_told(move |_req| {
        entered_tx.send(()).unwrap();
        let _ = greenlet::sleep(Duration::from_secs(3600));
        Response::new("never")
    });
    let mut c = connect(addr);
    c.write_all(b"GET /hang HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    entered.recv().unwrap();
    stop_now.set(());
    assert_eq!(server_thread.join().unwrap(), 1);
    let mut text = String::new();
    c.read_to_string(&mut text).unwrap();
    assert_eq!(text, "", "a killed handler's connection just closes");
}

/// A response body whose first part is sent (more than the server buffers), then the rest
/// never comes.
struct Endless(usize);

impl Read for Endless {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.0 > 256 * 1024 {
            greenlet::sleep(Duration::from_secs(3600))?;
        }
        buf.fill(b'x');
        self.0 += buf.len();
        Ok(buf.len())
    }
}

/// Read `c` up to the first of an [`Endless`] body: the head and some of the body.
fn read_into_endless(c: &mut TcpStream) {
    let mut got = Vec::new();
    while !got.ends_with(b"xxxx") {
        let mut b = [0u8; 4096];
        let n = c.read(&mut b).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

#[test]
fn a_reset_closes_the_socket_at_once_while_a_greenlet_keeps_the_requests_body() {
    // The connection a kill resets is shared with a greenlet of the handler's that keeps the
    // request's body: the socket closes at the reset all the same, not when that greenlet ends.
    let (tx, rx) = mpsc::channel();
    let server_thread = std::thread::spawn(move || {
        let stop_now = greenlet::AsyncResult::<()>::new();
        let client_done = greenlet::AsyncResult::<()>::new();
        let keepers = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let kept = keepers.clone();
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(move |req: Request<Body>| {
                let body = req.into_body();
                kept.borrow_mut().push(greenlet::spawn(move || {
                    let _body = body;
                    let _ = greenlet::sleep(Duration::from_secs(3600));
                }));
                Response::new(StreamBody(Endless(0)).into_body())
            })
            .unwrap();
        tx.send((
            server.local_addr().unwrap(),
            stop_now.setter(),
            client_done.setter(),
        ))
        .unwrap();
        stop_now.get().unwrap();
        let killed = server.stop(Some(Duration::from_millis(100)));
        // The keeper still holds the body (and the connection) while the client reads.
        client_done.get().unwrap();
        let keepers = keepers.borrow();
        assert!(keepers.iter().all(|g| !g.is_ready()));
        greenlet::killall(&keepers, None);
        killed
    });
    let (addr, stop_now, client_done) = rx.recv().unwrap();
    let mut c = connect(addr);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    read_into_endless(&mut c);
    stop_now.set(());
    let e = c.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
    client_done.set(());
    assert_eq!(server_thread.join().unwrap(), 1);
}

#[test]
fn a_response_cut_short_by_a_kill_ends_with_a_reset_not_a_clean_close() {
    // An HTTP/1.0 body of unknown length ends with the connection: were a kill to close it
    // cleanly, the client would take the part it got for the whole body.
    let (addr, stop_now, server_thread) =
        stopped_when_told(|_req| Response::new(StreamBody(Endless(0)).into_body()));
    let mut c = connect(addr);
    c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    read_into_endless(&mut c);
    stop_now.set(());
    assert_eq!(server_thread.join().unwrap(), 1);
    let e = c.read_to_end(&mut Vec::new()).unwrap_err();
    assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}");
}

/// The rest of a response's head (up to its empty line) from `r`.
fn head_of(r: &mut Reader) -> String {
    let mut s = Vec::new();
    while !s.ends_with(b"\r\n\r\n") {
        s.push(r.next_byte());
    }
    String::from_utf8_lossy(&s).into_owned()
}

/// Stop the server of `stopped_when_told`: the one connection, `r`'s, is killed when the grace
/// runs out, and its client reads a clean end of the stream after what it read already.
fn killed_by_the_stop_and_closed_cleanly(
    mut r: Reader,
    stop_now: &greenlet::AsyncSetter<()>,
    server_thread: std::thread::JoinHandle<usize>,
) {
    stop_now.set(());
    assert_eq!(server_thread.join().unwrap(), 1, "not killed");
    let mut rest = Vec::new();
    r.s.read_to_end(&mut rest).unwrap();
    assert_eq!(rest, b"");
}

#[test]
fn a_stop_while_the_unread_rest_of_a_body_is_drained_closes_cleanly() {
    // After a streamed answer the server waits for the rest of a body the handler did not
    // read. The answer is whole on the wire by then: a stop whose grace runs out during the
    // wait cuts nothing short, so the connection closes rather than resets.
    let (addr, stop_now, server_thread) =
        stopped_when_told(|_req| Response::new(ResponseBody::writer(|w| w.write_all(b"done"))));
    let mut r = Reader::new(connect(addr));
    r.send(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1000000\r\n\r\nthe start");
    assert!(head_of(&mut r).starts_with("HTTP/1.1 200 OK\r\n"));
    assert_eq!(r.chunked_body(), b"done");
    killed_by_the_stop_and_closed_cleanly(r, &stop_now, server_thread);
}

#[test]
fn a_stop_that_kills_an_upgraded_stream_closes_it_cleanly() {
    // The 101 is the last of this server's answers on the connection; a kill of the protocol
    // it switched to cuts none of them short.
    let (addr, stop_now, server_thread) = stopped_when_told(|_req| {
        Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "quiet")
            .body(ResponseBody::upgrade(|mut io| {
                let _ = io.read(&mut [0u8; 1]);
            }))
            .unwrap()
    });
    let mut r = Reader::new(connect(addr));
    r.send(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: upgrade\r\nUpgrade: quiet\r\n\r\n");
    assert!(head_of(&mut r).starts_with("HTTP/1.1 101 "));
    killed_by_the_stop_and_closed_cleanly(r, &stop_now, server_thread);
}

#[test]
fn a_refusal_streamed_from_an_uninvited_body_never_sends_100_after_its_head() {
    // The answer is not a success, so its head goes out without inviting the body; its
    // reader then reads the body. A 100 Continue after the head would be read as the
    // response's body: the read fails instead, and the answer becomes a 500 (its head had not
    // left yet), with the connection closed.
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(|req: Request<Body>| {
                Response::builder()
                    .status(StatusCode::UNPROCESSABLE_ENTITY)
                    .body(StreamBody(req.into_body()).into_body())
                    .unwrap()
            })
            .unwrap();
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let mut r = Reader::new(connect(addr_rx.recv().unwrap()));
    r.send(b"PUT /x HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    let mut all = Vec::new();
    r.s.read_to_end(&mut all).unwrap();
    let text = String::from_utf8_lossy(&all);
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    assert!(!text.contains("100 Continue"), "{text}");
}

#[test]
fn a_malformed_body_streamed_back_is_answered_400_not_500() {
    // The echo's first read of the request's body meets a bad chunk size: the client's fault.
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send(b"POST /stream-echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    let resp = r.next(false).unwrap();
    assert_eq!(resp.status, 400);
    assert_eq!(resp.header("connection"), Some("close"));
    assert!(r.next(false).is_none(), "the connection closes after it");
}

/// A client socket to `addr` that takes little at a time: small segments and a small receive
/// buffer, so that a few tens of kilobytes it does not read fill what the kernels hold for it.
fn connect_narrow(addr: SocketAddr) -> socket2::Socket {
    let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    s.set_tcp_mss(88).unwrap();
    s.set_recv_buffer_size(1024).unwrap();
    s.connect(&addr.into()).unwrap();
    s
}

#[test]
fn a_body_framed_by_the_close_whose_last_write_fails_ends_with_a_reset() {
    // Less than the server gathers before it writes (64 KiB), so all of it goes out in the
    // answer's last write; more than the narrow client's kernels take while it does not read
    // (about 42 KB here).
    let (addr_tx, addr_rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .write_timeout(Duration::from_millis(200))
            .serve(|_req| Response::new(ResponseBody::writer(|w| w.write_all(&[b'y'; 65_000]))))
            .unwrap();
        addr_tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let s = connect_narrow(addr_rx.recv().unwrap());
    (&s).write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    // Read nothing: the write times out. A clean close would queue its FIN behind what the
    // client has not taken, which then reads as a whole body; a reset arrives at once.
    let start = Instant::now();
    let error = loop {
        if let Some(e) = s.take_error().unwrap() {
            break e;
        }
        assert!(
            start.elapsed() < generous(Duration::from_secs(10)),
            "no reset after the write timed out"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(error.kind(), std::io::ErrorKind::ConnectionReset, "{error}");
}

/// Every request as the handler reads it: `METHOD TARGET HEX(BODY)`, or 499 if the body
/// cannot be read in full.
fn reading(req: Request<Body>) -> Response<Vec<u8>> {
    let line = format!("{} {}", req.method(), req.uri());
    let mut body = Vec::new();
    if req.into_body().read_to_end(&mut body).is_err() {
        return Response::builder().status(499).body(Vec::new()).unwrap();
    }
    let hex: String = body.iter().map(|b| format!("{b:02x}")).collect();
    Response::new(format!("{line} {hex}").into_bytes())
}

#[test]
fn h11_and_the_server_never_read_one_stream_two_ways() {
    if !have_h11() {
        return;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .serve(reading)
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let out = run_h11_script("h11_differential.py", rx.recv().unwrap(), &["3000", "1"]);
    eprintln!("{out}");
}

/// Whether python3 can import h11 (skip without it; fail when `CI` is set: CI installs it).
fn have_h11() -> bool {
    if !have("python3", "--version") {
        return false;
    }
    let ok = Command::new("python3")
        .args(["-c", "import h11"])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "python3's h11 is missing and CI is set"
        );
        eprintln!("skipping: python3's h11 is missing");
    }
    ok
}

/// Run one of the h11 scripts in `tests/clients` against `addr` with `args`; its output.
fn run_h11_script(name: &str, addr: SocketAddr, args: &[&str]) -> String {
    let script = format!("{}/tests/clients/{name}", env!("CARGO_MANIFEST_DIR"));
    let out = Command::new("python3")
        .arg(script)
        .args([addr.ip().to_string(), addr.port().to_string()])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

#[test]
fn h11_reads_every_pipelined_response_as_the_route_sent_it() {
    if !have_h11() {
        return;
    }
    let out = run_h11_script("h11_client.py", start(), &["300", "1"]);
    eprintln!("{out}");
}
