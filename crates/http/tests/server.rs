//! The server on a free loopback port, driven by raw bytes over std sockets, curl and Python's
//! http.client. The server runs on its own thread's hub; the clients block on this one.

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;

use gevent_http::{Body, Builder, IntoBody, ResponseBody, Server, StreamBody};
use http::{Request, Response, StatusCode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};
use support::generous;

/// The test application: `/echo` answers the body, `/ignore` does not read it, `/panic`
/// panics; anything else answers `METHOD URI`.
fn app(req: Request<Body>) -> Response<ResponseBody> {
    let (parts, body) = routes(req).into_parts();
    Response::from_parts(parts, body.into_body())
}

fn routes(req: Request<Body>) -> Response<ResponseBody> {
    if req.uri().path() == "/stream" {
        let data: Vec<u8> = (0..100_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        return Response::new(StreamBody(std::io::Cursor::new(data)).into_body());
    }
    let (parts, body) = bytes_routes(req).into_parts();
    Response::from_parts(parts, body.into_body())
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
        "/empty" => Response::builder()
            .status(StatusCode::NO_CONTENT)
            .body(Vec::new())
            .unwrap(),
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

    fn more(&mut self) -> usize {
        let mut b = [0u8; 4096];
        let n = self.s.read(&mut b).unwrap_or(0);
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
fn http10_closes_unless_keep_alive_asked() {
    let addr = start();
    let all = exchange(addr, b"GET /a HTTP/1.0\r\n\r\nGET /b HTTP/1.0\r\n\r\n");
    assert_eq!(all.len(), 1);
    let mut r = Reader::new(connect(addr));
    r.send(b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    r.send(b"GET /b HTTP/1.0\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /b");
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
fn expect_100_continue_answered_on_first_read() {
    let addr = start();
    let mut r = Reader::new(connect(addr));
    r.send(b"PUT /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    assert_eq!(r.next(false).unwrap().status, 100);
    r.send(b"hello");
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
fn handler_panic_is_500_and_the_server_keeps_serving() {
    let addr = start();
    let all = exchange(addr, b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].status, 500);
    let all = exchange(
        addr,
        b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(all[0].text(), "GET /ok");
}

#[test]
fn slowloris_is_closed_after_the_header_timeout() {
    let addr = start_with(|b| b.header_read_timeout(Duration::from_millis(300)));
    let mut r = Reader::new(connect(addr));
    let t = Instant::now();
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

/// Whether `program` runs; without it, skip (fail when `CI` is set).
fn have(program: &str) -> bool {
    let ok = Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        assert!(
            std::env::var_os("CI").is_none(),
            "{program} is missing and CI is set"
        );
        eprintln!("skipping: {program} is missing");
    }
    ok
}

fn curl(args: &[&str]) -> String {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "30"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "curl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn curl_keep_alive_upload_chunked_and_http10() {
    if !have("curl") {
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
    // -T upload: curl sends Expect: 100-continue for bigger bodies
    let file = std::env::temp_dir().join(format!("gevent-http-upload-{}", std::process::id()));
    let data: Vec<u8> = (0..200_000u32).map(|i| b'a' + (i % 26) as u8).collect();
    std::fs::write(&file, &data).unwrap();
    let out = curl(&["-T", file.to_str().unwrap(), &format!("{base}/echo")]);
    assert_eq!(out.as_bytes(), &data[..]);
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
    std::fs::remove_file(file).unwrap();
}

#[test]
fn python_http_client() {
    if !have("python3") {
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
    r.send(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
    assert_eq!(r.next(false).unwrap().text(), "GET /a");
    let t = Instant::now();
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
    let (head, mut rest) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.contains("transfer-encoding: chunked"), "{head}");
    let mut body = Vec::new();
    loop {
        let (size, after) = rest.split_once("\r\n").unwrap();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            assert_eq!(after, "\r\n");
            break;
        }
        body.extend_from_slice(&after.as_bytes()[..n]);
        assert_eq!(&after[n..n + 2], "\r\n");
        rest = &after[n + 2..];
    }
    assert_eq!(body, want);
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
