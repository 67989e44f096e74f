#![cfg(feature = "tls")]
//! HTTPS: the server with a rustls configuration for a certificate made by rcgen, driven by
//! curl (which checks the certificate against `--cacert`) and by raw plaintext.

mod clients;
#[path = "../../greenlet/tests/support/mod.rs"]
mod support;

use clients::{curl, curl_upload_after_continue, have};
use gevent_http::{Body, RequestExt, Server};
use http::{Request, Response};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::Duration;
use support::generous;

fn app(req: Request<Body>) -> Response<Vec<u8>> {
    if req.uri().path() == "/conn" {
        let scheme = if req.is_tls() { "https" } else { "http" };
        return Response::new(format!("{scheme} {}", req.peer_addr().ip()).into_bytes());
    }
    if req.uri().path() == "/echo" {
        let mut body = Vec::new();
        req.into_body().read_to_end(&mut body).unwrap();
        return Response::new(body);
    }
    Response::new(format!("{} {}", req.method(), req.uri()).into_bytes())
}

/// An HTTPS server for "localhost" on its own thread; its address and the CA file (the
/// self-signed certificate) for curl.
fn start() -> (SocketAddr, std::path::PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let pem = cert.cert.pem();
    let config = gevent_http::tls::server_config_from_pem(
        pem.as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let server = Server::builder()
            .addr("127.0.0.1:0")
            .header_read_timeout(generous(Duration::from_secs(10)))
            .tls(config)
            .serve(app)
            .unwrap();
        tx.send(server.local_addr().unwrap()).unwrap();
        server.serve_forever().unwrap();
    });
    let addr = rx.recv().unwrap();
    let ca = std::env::temp_dir().join(format!(
        "gevent-http-ca-{}-{}.pem",
        std::process::id(),
        addr.port()
    ));
    std::fs::write(&ca, pem).unwrap();
    (addr, ca)
}

#[test]
fn curl_over_tls_with_the_ca_certificate_keep_alive_and_upload() {
    if !have("curl", "--version") {
        return;
    }
    let (addr, ca) = start();
    let port = addr.port();
    let resolve = format!("localhost:{port}:127.0.0.1");
    let base = format!("https://localhost:{port}");
    let ca_arg = ca.to_str().unwrap();
    // Two requests on one TLS connection.
    let out = Command::new("curl")
        .args([
            "-sS",
            "-v",
            "--max-time",
            "30",
            "--cacert",
            ca_arg,
            "--resolve",
            &resolve,
        ])
        .args([format!("{base}/a"), format!("{base}/b")])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "GET /aGET /b");
    // The handler knows the request came over TLS, and from whom.
    let conn = curl(&[
        "--cacert",
        ca_arg,
        "--resolve",
        &resolve,
        &format!("{base}/conn"),
    ]);
    assert_eq!(conn, "https 127.0.0.1");
    assert!(err.contains("SSL connection using TLS"), "{err}");
    assert!(
        err.contains("Re-using existing") || err.contains("existing connection"),
        "{err}"
    );
    // An upload with Expect: 100-continue gets its 100 and comes back whole.
    curl_upload_after_continue(
        &["--cacert", ca_arg, "--resolve", &resolve],
        &format!("{base}/echo"),
        200_000,
    );
    // Without the CA the certificate is refused (curl's exit code 60).
    let out = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "30",
            "--resolve",
            &resolve,
            &format!("{base}/a"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(60),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::remove_file(ca).unwrap();
}

#[test]
fn plaintext_to_the_tls_port_is_closed_not_served() {
    let (addr, ca) = start();
    std::fs::remove_file(ca).unwrap();
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(generous(Duration::from_secs(10))))
        .unwrap();
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut got = Vec::new();
    // Closed (maybe after a TLS alert), never answered in HTTP and never left hanging.
    match c.read_to_end(&mut got) {
        Ok(_) => {}
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::ConnectionReset, "{e}"),
    }
    assert!(!got.starts_with(b"HTTP/"), "{got:?}");
}

/// A TLS client of `addr` that trusts `cert`, over the cooperative stream.
fn tls_client(
    addr: SocketAddr,
    cert: &rcgen::CertifiedKey,
) -> rustls::StreamOwned<rustls::ClientConnection, gevent_io::net::TcpStream> {
    let config = gevent_http::tls::client_config_from_pem(cert.cert.pem().as_bytes()).unwrap();
    let session = rustls::ClientConnection::new(config, "localhost".try_into().unwrap()).unwrap();
    let tcp = gevent_io::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(generous(Duration::from_secs(10))))
        .unwrap();
    rustls::StreamOwned::new(session, tcp)
}

/// An HTTPS server for "localhost" on this thread's hub, and the certificate it presents.
fn tls_server<B: gevent_http::IntoBody>(
    handler: impl Fn(Request<Body>) -> Response<B> + 'static,
) -> (Server, rcgen::CertifiedKey) {
    tls_server_with(|b| b, handler)
}

/// [`tls_server`] with more options.
fn tls_server_with<B: gevent_http::IntoBody>(
    configure: fn(gevent_http::Builder) -> gevent_http::Builder,
    handler: impl Fn(Request<Body>) -> Response<B> + 'static,
) -> (Server, rcgen::CertifiedKey) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let config = gevent_http::tls::server_config_from_pem(
        cert.cert.pem().as_bytes(),
        cert.key_pair.serialize_pem().as_bytes(),
    )
    .unwrap();
    let server = configure(Server::builder().addr("127.0.0.1:0").tls(config))
        .serve(handler)
        .unwrap();
    (server, cert)
}

#[test]
fn an_idle_tls_connection_closed_at_its_timeout_ends_with_close_notify() {
    let (server, cert) = tls_server_with(
        |b| b.keep_alive_timeout(Duration::from_millis(200)),
        |_req| Response::new(gevent_http::ResponseBody::Static(b"plain")),
    );
    let mut c = tls_client(server.local_addr().unwrap(), &cert);
    c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"plain") {
        let mut b = [0u8; 256];
        let n = c.read(&mut b).unwrap();
        assert!(n > 0);
        got.extend_from_slice(&b[..n]);
    }
    // Idle past the timeout: a clean end of the stream, not a truncation.
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    server.stop(None);
}

#[test]
fn an_upgraded_tls_stream_and_a_stop_that_closes_idle_tls_connections() {
    let (server, cert) = tls_server(|req| {
        if req.uri().path() == "/up" {
            let mut r = Response::new(gevent_http::ResponseBody::upgrade(|mut up| {
                // Writing nothing is no wait for the client (which sends nothing more).
                assert_eq!(up.write(&[]).unwrap(), 0);
                up.write_all(b"upgraded").unwrap();
            }));
            *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
            r.headers_mut()
                .insert(http::header::UPGRADE, "x-raw".parse().unwrap());
            return r;
        }
        Response::new(gevent_http::ResponseBody::Static(b"plain"))
    });
    let addr = server.local_addr().unwrap();
    let mut up = tls_client(addr, &cert);
    up.write_all(
        b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: x-raw\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    while !answer.ends_with(b"upgraded") {
        let mut b = [0u8; 256];
        let n = up.read(&mut b).unwrap();
        assert!(n > 0, "{}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&b[..n]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 101 "));
    // The closure returned: the stream ends cleanly, with a close_notify (a client's TLS takes
    // an end without one for a truncation).
    let mut rest = Vec::new();
    up.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    // An idle keep-alive TLS connection, closed by the stop with a close_notify (a clean end
    // of the stream for its client, not a truncation).
    let mut idle = tls_client(addr, &cert);
    idle.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"plain") {
        let mut b = [0u8; 256];
        let n = idle.read(&mut b).unwrap();
        assert!(n > 0);
        head.extend_from_slice(&b[..n]);
    }
    assert_eq!(server.stop(Some(generous(Duration::from_secs(10)))), 0);
    let mut rest = Vec::new();
    idle.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
}

#[test]
fn a_stop_closes_a_connection_whose_handshake_has_not_come_at_once() {
    // Connections that sent nothing, or the start of a ClientHello only: no request is in
    // flight on them, so the stop closes them at once (no close_notify in the middle of a
    // handshake, no wait for the rest of it) instead of waiting out its grace.
    let (server, _cert) =
        tls_server(|_req| Response::new(gevent_http::ResponseBody::Static(b"never")));
    let addr = server.local_addr().unwrap();
    let silent = gevent_io::net::TcpStream::connect(addr).unwrap();
    let mut started = gevent_io::net::TcpStream::connect(addr).unwrap();
    // A handshake record's header and the first bytes of a ClientHello.
    started
        .write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xfc])
        .unwrap();
    // Both are accepted and waiting for the rest.
    greenlet::idle().unwrap();
    assert_eq!(server.connections(), 2);
    assert_eq!(server.stop(Some(generous(Duration::from_secs(10)))), 0);
    for mut c in [silent, started] {
        c.set_read_timeout(Some(generous(Duration::from_secs(10))))
            .unwrap();
        let mut rest = Vec::new();
        c.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{rest:?}");
    }
}

#[test]
fn an_upgraded_tls_stream_shut_for_writing_ends_with_close_notify_and_still_reads() {
    // The closure sends a line, shuts its writing and reads what the client still has to say;
    // the client sees a clean end (a close_notify) while the connection is still open.
    let heard = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
    let kept = heard.clone();
    let (server, cert) = tls_server(move |_req| {
        let heard = kept.clone();
        let mut r = Response::new(gevent_http::ResponseBody::upgrade(move |mut up| {
            up.write_all(b"half").unwrap();
            up.shutdown(std::net::Shutdown::Write).unwrap();
            // Writing is over for good: a write now fails, it does not reach the client.
            assert!(up.write_all(b"more").is_err());
            up.read_to_end(&mut heard.borrow_mut()).unwrap();
        }));
        *r.status_mut() = http::StatusCode::SWITCHING_PROTOCOLS;
        r.headers_mut()
            .insert(http::header::UPGRADE, "x-raw".parse().unwrap());
        r
    });
    let mut up = tls_client(server.local_addr().unwrap(), &cert);
    up.write_all(
        b"GET /up HTTP/1.1\r\nHost: localhost\r\nConnection: upgrade\r\nUpgrade: x-raw\r\n\r\n",
    )
    .unwrap();
    let mut answer = Vec::new();
    // To the end of the server's writing: a clean end of the stream, not a truncation.
    up.read_to_end(&mut answer).unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 101 "));
    assert!(answer.ends_with(b"\r\n\r\nhalf"), "{answer:?}");
    // The server still reads: what the client sends now, to its own close_notify.
    up.write_all(b"bye").unwrap();
    up.conn.send_close_notify();
    up.flush().unwrap();
    assert_eq!(server.stop(Some(generous(Duration::from_secs(10)))), 0);
    assert_eq!(&*heard.borrow(), b"bye");
}

#[test]
fn a_tls_head_cut_short_by_the_header_timeout_ends_with_close_notify() {
    let (server, cert) = tls_server_with(
        // Long enough for the handshake (which the first head's time includes) under load.
        |b| b.header_read_timeout(Duration::from_secs(1)),
        |_req| Response::new(gevent_http::ResponseBody::Static(b"never")),
    );
    let mut c = tls_client(server.local_addr().unwrap(), &cert);
    c.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    // Never completed: closed at the timeout, unanswered, with a clean end of the stream (a
    // close_notify), not a truncation.
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "{rest:?}");
    server.stop(None);
}
