//! A StreamServer survives running out of file descriptors (EMFILE): it logs, backs off (no
//! busy retrying) and serves the waiting connection once descriptors are free again. In a binary of its own,
//! because it exhausts the process's descriptors.

use gevent_io::server::StreamServer;
use std::io::{Read, Write};
use std::time::Duration;

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{eventually, generous};

#[test]
fn accept_under_emfile_keeps_the_server_up() {
    let server = StreamServer::new("127.0.0.1:0", |mut c, _| {
        let _ = c.write_all(b"served");
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    // Connect first (the kernel completes the handshake into the backlog), then use up every
    // free descriptor so that the server's accept fails with EMFILE.
    let mut client = std::net::TcpStream::connect(addr).unwrap();
    client
        .set_read_timeout(Some(generous(Duration::from_secs(30))))
        .unwrap();
    let mut hogs = Vec::new();
    let devnull = std::fs::File::open("/dev/null").unwrap();
    loop {
        // SAFETY: dup of our open /dev/null descriptor; each result is closed below.
        let fd = unsafe { libc::dup(std::os::fd::AsRawFd::as_raw_fd(&devnull)) };
        if fd < 0 {
            assert_eq!(
                std::io::Error::last_os_error().raw_os_error(),
                Some(libc::EMFILE)
            );
            break;
        }
        hogs.push(fd);
    }
    assert!(
        eventually(Duration::from_secs(20), || server.accept_errors() >= 1),
        "accept did not hit EMFILE"
    );
    // It retries, backing off (10 ms, doubling up to 1 s): a few failed accepts in 200 ms of
    // the hub running, where retrying at every loop iteration would fail thousands of times.
    assert!(
        eventually(Duration::from_secs(20), || server.accept_errors() >= 2),
        "accept was not retried"
    );
    let (before, start) = (server.accept_errors(), std::time::Instant::now());
    greenlet::sleep(Duration::from_millis(200)).unwrap();
    let (failed, took) = (server.accept_errors() - before, start.elapsed());
    // (One more per second the sleep overran by on a loaded machine: the back-off's cap.)
    assert!(
        failed <= 10 + took.as_secs(),
        "{failed} failed accepts in {took:?}: no back-off"
    );
    for fd in hogs {
        // SAFETY: closing descriptors we dup'ed above.
        unsafe { libc::close(fd) };
    }
    // The server is still up and now serves the waiting client (after its back-off).
    let mut got = Vec::new();
    std::thread::scope(|s| {
        let reader = s.spawn(|| client.read_to_end(&mut got).unwrap());
        // Keep the hub running until the client thread has read to the end of the stream.
        assert!(
            eventually(Duration::from_secs(20), || reader.is_finished()),
            "the waiting client was not served"
        );
    });
    assert_eq!(got, b"served");
    server.stop(None);
}
