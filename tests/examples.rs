//! The server examples and the C reference servers, run as real processes the way the
//! README runs them: each takes its listen address as the first argument, prints one line when
//! it listens, and serves until killed. (`cargo test` builds the examples next to this test
//! binary; `build.rs` builds the C servers.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap().join("examples");
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} not built (run `cargo test`)",
        path.display()
    );
    path
}

struct Server(Child, String);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start(name: &str) -> Server {
    start_program(example(name))
}

/// Start a server program with a `127.0.0.1:0` argument and read its `listening on` line.
fn start_program(path: impl AsRef<std::ffi::OsStr>) -> Server {
    let mut child = Command::new(path)
        .arg("127.0.0.1:0")
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on ")
        .expect(&line)
        .to_string();
    Server(child, addr)
}

#[test]
fn echo_server_example_echoes() {
    let server = start("echo_server");
    let mut c = TcpStream::connect(&server.1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let msg: Vec<u8> = (0..100_000u32).map(|i| i as u8).collect();
    let mut w = c.try_clone().unwrap();
    let m = msg.clone();
    let t = std::thread::spawn(move || w.write_all(&m).unwrap());
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back).unwrap();
    t.join().unwrap();
    assert!(back == msg);
}

#[test]
fn http_hello_answers_curl_and_a_keep_alive_client() {
    let server = start("http_hello");
    let url = format!("http://{}/plaintext", server.1);
    // curl, twice on one connection.
    if let Ok(out) = Command::new("curl").args(["-s", "-v", &url, &url]).output() {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "curl failed: {stderr}");
        assert_eq!(stdout, "Hello, World!Hello, World!");
        assert!(stderr.contains("Re-using existing connection"), "{stderr}");
    } else if std::env::var_os("CI").is_some() {
        panic!("curl is not installed (.ci/run installs it)");
    } else {
        eprintln!("SKIPPED the curl part: curl is not installed (apt-get install curl)");
    }
    // A keep-alive client sending four requests (three pipelined) on one connection.
    let mut c = TcpStream::connect(&server.1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let one = read_response(&mut c);
    assert!(one.starts_with("HTTP/1.1 200 OK\r\n"), "{one}");
    assert!(one.contains("\r\nserver: gevent\r\n"), "{one}");
    assert!(one.contains("\r\ncontent-type: text/plain\r\n"), "{one}");
    assert!(one.ends_with("\r\n\r\nHello, World!"), "{one}");
    c.write_all(
        b"GET /json HTTP/1.1\r\nHost: x\r\n\r\nGET /nothing HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /plaintext HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let json = read_response(&mut c);
    let missing = read_response(&mut c);
    let last = read_response(&mut c);
    assert!(
        json.contains("\r\ncontent-type: application/json\r\n")
            && json.ends_with("\r\n\r\n{\"message\":\"Hello, World!\"}"),
        "{json}"
    );
    assert!(
        missing.starts_with("HTTP/1.1 404 Not Found\r\n"),
        "{missing}"
    );
    assert!(
        last.ends_with("Hello, World!") && last.contains("connection: close"),
        "{last}"
    );
    assert_eq!(
        c.read(&mut [0u8; 1]).unwrap(),
        0,
        "server closes after Connection: close"
    );
}

#[test]
fn c_http_server_answers_pipelined_requests_in_order() {
    let server = start_program(gevent::c_reference::HTTP_SERVER);
    let mut c = TcpStream::connect(&server.1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    // One head in two writes (split inside its terminator), then 16 at once.
    c.write_all(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r")
        .unwrap();
    std::thread::sleep(Duration::from_millis(20));
    c.write_all(b"\n").unwrap();
    let one = read_response(&mut c);
    assert!(one.starts_with("HTTP/1.1 200 OK\r\n"), "{one}");
    assert!(
        one.contains("\r\ndate: ") || one.contains("\r\nDate: "),
        "{one}"
    );
    assert!(one.ends_with("\r\n\r\nHello, World!"), "{one}");
    c.write_all(&b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n".repeat(16))
        .unwrap();
    for _ in 0..16 {
        assert!(read_response(&mut c).ends_with("Hello, World!"));
    }
}

/// Read one response with a content-length body.
fn read_response(c: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut byte = [0u8; 1];
    while !data.ends_with(b"\r\n\r\n") {
        c.read_exact(&mut byte).unwrap();
        data.push(byte[0]);
    }
    let head = String::from_utf8(data.clone()).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(": ")?;
            name.eq_ignore_ascii_case("content-length").then_some(value)
        })
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; len];
    c.read_exact(&mut body).unwrap();
    head + &String::from_utf8(body).unwrap()
}

#[test]
fn c_echo_server_echoes() {
    let server = start_program(gevent::c_reference::ECHO_SERVER);
    let payload: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let mut conns: Vec<TcpStream> = (0..10)
        .map(|_| TcpStream::connect(&server.1).unwrap())
        .collect();
    for c in &mut conns {
        let mut writer = c.try_clone().unwrap();
        let p = payload.clone();
        let t = std::thread::spawn(move || writer.write_all(&p).unwrap());
        let mut got = vec![0u8; payload.len()];
        c.read_exact(&mut got).unwrap();
        t.join().unwrap();
        assert!(got == payload, "echo differs");
    }
}

/// The std-only echo server (`examples/monkey_echo.rs`, after `gevent::monkey::patch_all()`)
/// holding 1,000 connections at once, each echoing a message of its own byte for byte: plain
/// blocking std code serving them all on one thread.
#[cfg(feature = "monkey")]
#[test]
fn monkey_echo_example_echoes_a_thousand_concurrent_connections() {
    use std::sync::{Arc, Barrier};

    const CONNS: usize = 1_000;
    const THREADS: usize = 4;
    // Each side holds 1,000 sockets: raise this process's limit (the server inherits it).
    raise_fd_limit(2 * CONNS as u64 + 200);
    let server = start("monkey_echo");
    let message = |id: usize| -> Vec<u8> {
        let mut m = format!("connection {id}: ").into_bytes();
        m.extend((0..200 + id % 300).map(|j| (id * 31 + j * 7) as u8));
        m
    };
    // The connections are all open (and each echoed) before any is closed.
    let connected = Arc::new(Barrier::new(THREADS));
    let echoed = Arc::new(Barrier::new(THREADS));
    let clients: Vec<_> = (0..THREADS)
        .map(|t| {
            let addr = server.1.clone();
            let (connected, echoed) = (connected.clone(), echoed.clone());
            std::thread::spawn(move || {
                let ids: Vec<usize> = (t..CONNS).step_by(THREADS).collect();
                let mut conns: Vec<TcpStream> = ids
                    .iter()
                    .map(|id| {
                        let c = TcpStream::connect(&addr)
                            .unwrap_or_else(|e| panic!("connection {id}: {e}"));
                        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
                        c
                    })
                    .collect();
                connected.wait();
                for (c, &id) in conns.iter_mut().zip(&ids) {
                    c.write_all(&message(id)).unwrap();
                }
                for (c, &id) in conns.iter_mut().zip(&ids) {
                    let want = message(id);
                    let mut got = vec![0u8; want.len()];
                    c.read_exact(&mut got)
                        .unwrap_or_else(|e| panic!("connection {id}: {e}"));
                    assert!(got == want, "connection {id}: the echo differs");
                }
                echoed.wait();
                conns.len()
            })
        })
        .collect();
    let served: usize = clients.into_iter().map(|c| c.join().unwrap()).sum();
    assert_eq!(served, CONNS);
    // The server is still up and serves a new connection.
    let mut c = TcpStream::connect(&server.1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"still there").unwrap();
    let mut back = [0u8; 11];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"still there");
}

/// Raise this process's soft descriptor limit to at least `want` (up to the hard limit; the
/// children started afterwards inherit it).
#[cfg(feature = "monkey")]
fn raise_fd_limit(want: u64) {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: valid pointers to an rlimit, for getrlimit to fill and setrlimit to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) == 0 && rl.rlim_cur < want {
            rl.rlim_cur = rl.rlim_max.min(want.max(rl.rlim_cur));
            libc::setrlimit(libc::RLIMIT_NOFILE, &rl);
        }
    }
}

#[test]
fn websocket_echo_example_echoes_for_a_tungstenite_client() {
    use tungstenite::Message;
    let server = start("websocket_echo");
    let stream = TcpStream::connect(&server.1).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let url = format!("ws://{}/chat", server.1);
    let (mut ws, response) = tungstenite::client(url.as_str(), stream).unwrap();
    assert_eq!(response.status(), 101);
    ws.send(Message::text("hello")).unwrap();
    assert_eq!(ws.read().unwrap(), Message::text("hello"));
    let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    ws.send(Message::binary(big.clone())).unwrap();
    assert_eq!(ws.read().unwrap(), Message::binary(big));
    ws.close(None).unwrap();
    // The server answers the close; then the connection ends.
    loop {
        match ws.read() {
            Ok(Message::Close(_)) => {}
            Ok(m) => panic!("unexpected {m:?}"),
            Err(tungstenite::Error::ConnectionClosed) => break,
            Err(e) => panic!("{e}"),
        }
    }
    // A plain GET is refused with a clear status.
    let mut c = TcpStream::connect(&server.1).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 400 Bad Request"), "{answer}");
}
