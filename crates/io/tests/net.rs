//! Cooperative sockets against real loopback connections.

use gevent_io::net::{TcpListener, TcpStream, wait_readable};
use greenlet::{joinall, sleep, spawn};
use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{generous, ms};

fn echo_server() -> (std::net::SocketAddr, greenlet::Greenlet<()>) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let g = spawn(move || {
        while let Ok((mut c, _)) = l.accept() {
            spawn(move || {
                let mut buf = [0u8; 16 * 1024];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
        }
    });
    (addr, g)
}

#[test]
fn a_thousand_concurrent_clients_are_echoed_byte_exact() {
    let (addr, server) = echo_server();
    let clients: Vec<_> = (0..1000u32)
        .map(|i| {
            spawn(move || -> std::io::Result<()> {
                let mut s = TcpStream::connect(addr)?;
                let msg: Vec<u8> = (0..(100 + i % 900)).map(|j| (i + j) as u8).collect();
                for _ in 0..3 {
                    s.write_all(&msg)?;
                    let mut back = vec![0u8; msg.len()];
                    s.read_exact(&mut back)?;
                    assert_eq!(back, msg);
                }
                Ok(())
            })
        })
        .collect();
    let done = joinall(&clients, Some(generous(Duration::from_secs(60)))).unwrap();
    assert_eq!(done.len(), 1000);
    for c in clients {
        c.join().unwrap().unwrap();
    }
    server.kill();
}

#[test]
fn large_transfers_in_both_directions_at_once() {
    let (addr, server) = echo_server();
    let s = TcpStream::connect(addr).unwrap();
    let payload: Vec<u8> = (0..4_000_000u32).map(|i| (i % 253) as u8).collect();
    let p = payload.clone();
    let w = s.clone();
    // One greenlet writes while this one reads the echo: neither blocks the other.
    let writer = spawn(move || (&w).write_all(&p));
    let mut got = vec![0u8; payload.len()];
    (&s).read_exact(&mut got).unwrap();
    writer.join().unwrap().unwrap();
    assert!(got == payload);
    server.kill();
}

/// A connected socket and its accepted peer.
fn connected() -> (TcpStream, TcpStream) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (peer, _) = l.accept().unwrap();
    (s, peer)
}

/// `f` fails with `TimedOut`: never before its 200 ms, promptly after them (generously: the
/// machine may be loaded).
fn times_out_after_200ms(f: impl FnOnce() -> std::io::Error) {
    let start = Instant::now();
    let e = f();
    let took = start.elapsed();
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
}

#[test]
fn read_timeout_and_wait_readable_timeout() {
    let (s, _peer) = connected();
    s.set_read_timeout(Some(ms(200))).unwrap();
    times_out_after_200ms(|| (&s).read(&mut [0u8; 8]).unwrap_err());
    times_out_after_200ms(|| wait_readable(s.as_raw_fd(), Some(ms(200))).unwrap_err());
}

#[test]
fn a_streams_wait_readable_waits_for_data_or_the_end_and_reads_nothing() {
    let (s, mut peer) = connected();
    let s = Rc::new(s);
    let w = s.clone();
    let waiter = spawn(move || w.wait_readable());
    greenlet::yield_now().unwrap();
    assert!(!waiter.is_dead(), "it returned with nothing to read");
    peer.write_all(b"ab").unwrap();
    waiter.join().unwrap().unwrap();
    // Nothing was taken; after a read, the next wait is for what comes next.
    let mut b = [0u8; 8];
    assert_eq!(s.try_read(&mut b).unwrap(), 2);
    let w = s.clone();
    let waiter = spawn(move || w.wait_readable());
    greenlet::yield_now().unwrap();
    assert!(!waiter.is_dead(), "it returned for what was read already");
    peer.write_all(b"c").unwrap();
    waiter.join().unwrap().unwrap();
    assert_eq!((&*s).read(&mut b).unwrap(), 1);
    // The end of the stream is something to read too.
    drop(peer);
    s.wait_readable().unwrap();
    assert_eq!(s.try_read(&mut b).unwrap(), 0);
}

#[test]
fn a_streams_wait_readable_keeps_the_read_timeout_and_is_cancelled_as_a_read_is() {
    let (s, _peer) = connected();
    s.set_read_timeout(Some(ms(200))).unwrap();
    times_out_after_200ms(|| s.wait_readable().unwrap_err());
    s.set_read_timeout(None).unwrap();
    let s = Rc::new(s);
    let w = s.clone();
    let waiter = spawn(move || w.wait_readable().map_err(|e| e.kind()));
    greenlet::yield_now().unwrap();
    assert!(s.cancel_read(), "nobody was waiting");
    assert_eq!(waiter.join().unwrap(), Err(ErrorKind::TimedOut));
    s.close();
    assert_eq!(
        s.wait_readable().unwrap_err().raw_os_error(),
        Some(libc::EBADF)
    );
}

#[test]
fn closing_a_socket_wakes_its_blocked_reader() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    let r = s.clone();
    let ran = Rc::new(std::cell::Cell::new(false));
    let ran2 = ran.clone();
    let reader = spawn(move || {
        ran2.set(true);
        (&r).read(&mut [0u8; 8])
    });
    // One pass of the hub runs the reader into its wait (nothing to read: it blocks).
    greenlet::yield_now().unwrap();
    assert!(ran.get() && !reader.is_dead(), "the reader is not blocked");
    s.close();
    // The close wakes it: without that, this join would wait for ever.
    let res = reader
        .join_timeout(generous(Duration::from_secs(10)))
        .expect("the reader was not woken by the close");
    assert_eq!(res.unwrap_err().raw_os_error(), Some(libc::EBADF));
}

#[test]
fn a_cancelled_read_times_out_and_leaves_the_stream_as_it_was() {
    let (s, mut peer) = connected();
    // Nobody waits: nothing to cancel, and nothing is left behind for the next read.
    assert!(!s.cancel_read());
    let r = s.clone();
    let reader = spawn(move || {
        let first = (&r).read(&mut [0u8; 8]).unwrap_err();
        let mut b = [0u8; 2];
        (&r).read_exact(&mut b).map(|()| (first, b))
    });
    greenlet::yield_now().unwrap();
    assert!(!reader.is_dead(), "the reader is not blocked");
    assert!(s.cancel_read());
    // Its next read waits as usual and gets what comes.
    greenlet::yield_now().unwrap();
    assert!(!reader.is_dead(), "the second read did not wait");
    peer.write_all(b"ok").unwrap();
    let (first, got) = reader.join().unwrap().unwrap();
    assert_eq!(first.kind(), ErrorKind::TimedOut, "{first}");
    assert_eq!(&got, b"ok");
}

#[test]
fn a_cancel_is_for_the_wait_it_ended_not_one_that_starts_before_it_is_seen() {
    let (s, mut peer) = connected();
    let r = s.clone();
    let cancelled = spawn(move || (&r).read(&mut [0u8; 8]).map_err(|e| e.kind()));
    greenlet::yield_now().unwrap();
    assert!(s.cancel_read());
    // Before the cancelled reader runs, another read starts and waits; the writer runs after
    // the cancelled reader has seen its cancel.
    let writer = spawn(move || peer.write_all(b"x"));
    let mut b = [0u8; 8];
    assert_eq!((&s).read(&mut b).unwrap(), 1);
    assert_eq!(cancelled.join().unwrap(), Err(ErrorKind::TimedOut));
    writer.join().unwrap().unwrap();
}

#[test]
fn a_second_concurrent_reader_gets_a_clear_error() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    let r1 = s.clone();
    let first = spawn(move || {
        let mut b = [0u8; 1];
        (&r1).read_exact(&mut b).map(|_| b[0])
    });
    greenlet::yield_now().unwrap();
    let e = (&s).read(&mut [0u8; 1]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ResourceBusy);
    assert!(e.to_string().contains("already waiting"), "{e}");
    peer.write_all(b"z").unwrap();
    assert_eq!(first.join().unwrap().unwrap(), b'z');
}

#[test]
fn half_close_and_peer_reset() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    // Half-close: the peer sees EOF but can still send back.
    s.write_all(b"last words").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut got = Vec::new();
    peer.read_to_end(&mut got).unwrap();
    assert_eq!(got, b"last words");
    peer.write_all(b"reply").unwrap();
    let mut reply = [0u8; 5];
    s.read_exact(&mut reply).unwrap();
    assert_eq!(&reply, b"reply");

    // Reset: SO_LINGER 0 then close sends RST.
    let mut c = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (p2, _) = l.accept().unwrap();
    let std_p2 = p2.into_std().unwrap();
    socket2::SockRef::from(&std_p2)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(std_p2);
    // No wait for the reset to arrive: the read blocks (cooperatively) until it does.
    let r = c.read(&mut [0u8; 4]);
    let w = c.write_all(&[0u8; 1 << 20]);
    assert!(
        matches!(&r, Err(e) if e.kind() == ErrorKind::ConnectionReset) || w.is_err(),
        "read {r:?}, write {w:?}"
    );
}

#[test]
fn connect_refused_and_port_in_use() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    assert_eq!(
        TcpListener::bind(addr).unwrap_err().kind(),
        ErrorKind::AddrInUse
    );
    drop(l);
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}

#[test]
fn accept_keeps_serving_other_greenlets() {
    let l = Rc::new(TcpListener::bind("127.0.0.1:0").unwrap());
    let addr = l.local_addr().unwrap();
    let acceptor = {
        let l = l.clone();
        spawn(move || l.accept().map(|(_, peer)| peer))
    };
    // While the acceptor waits, other greenlets run.
    let ticks = spawn(|| {
        for _ in 0..5 {
            sleep(ms(2)).unwrap();
        }
        5
    });
    assert_eq!(ticks.join().unwrap(), 5);
    let c = TcpStream::connect(addr).unwrap();
    assert_eq!(acceptor.join().unwrap().unwrap(), c.local_addr().unwrap());
}

#[test]
fn unix_sockets_echo_and_convert() {
    use gevent_io::net::{UnixListener, UnixStream};
    let path = std::env::temp_dir().join(format!("greenlet-test-{}.sock", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let l = UnixListener::bind(&path).unwrap();
    let server = spawn(move || {
        let mut c = l.accept().unwrap();
        let mut buf = [0u8; 5];
        c.read_exact(&mut buf).unwrap();
        c.write_all(&buf).unwrap();
    });
    let mut c = UnixStream::connect(&path).unwrap();
    c.write_all(b"unix!").unwrap();
    let mut back = [0u8; 5];
    c.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"unix!");
    server.join().unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(
        UnixStream::connect(&path).unwrap_err().kind(),
        ErrorKind::NotFound
    );
}

#[test]
fn raw_fd_and_std_conversions() {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let raw = l.into_raw_fd();
    // SAFETY: `raw` is the listener's descriptor, handed over by into_raw_fd.
    let l = unsafe { TcpListener::from_raw_fd(raw) };
    let std_client = std::net::TcpStream::connect(addr).unwrap();
    let mut client = TcpStream::from_std(std_client).unwrap();
    let (server_side, _) = l.accept().unwrap();
    let mut std_server = server_side.into_std().unwrap();
    client.write_all(b"x").unwrap();
    let mut b = [0u8; 1];
    std_server.read_exact(&mut b).unwrap(); // blocking std read works after into_std
    assert_eq!(&b, b"x");
    // A clone blocks giving the descriptor away.
    let c2 = client.clone();
    assert_eq!(
        client.into_std().unwrap_err().kind(),
        ErrorKind::ResourceBusy
    );
    drop(c2);
}

/// Occupy every thread of this thread's default pool until the returned sender is dropped.
fn fill_default_pool() -> std::sync::mpsc::Sender<()> {
    let (tx, rx) = std::sync::mpsc::channel::<()>();
    let rx = std::sync::Arc::new(std::sync::Mutex::new(rx));
    let (started_tx, started_rx) = std::sync::mpsc::channel();
    for _ in 0..greenlet::threadpool::DEFAULT_POOL_SIZE {
        let (rx, started) = (rx.clone(), started_tx.clone());
        // Detached: each returns once the sender is dropped.
        drop(greenlet::threadpool::spawn_blocking(move || {
            started.send(()).unwrap();
            let _ = rx.lock().unwrap().recv();
        }));
    }
    for _ in 0..greenlet::threadpool::DEFAULT_POOL_SIZE {
        started_rx.recv().unwrap();
    }
    tx
}

#[test]
fn host_names_are_resolved_on_the_thread_pool_while_the_hub_runs() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    // With every pool thread busy, a connect by name has to wait for one; the hub keeps
    // running other greenlets meanwhile.
    let release = fill_default_pool();
    let connecting = spawn(move || TcpStream::connect(format!("localhost:{port}")));
    let literal = spawn(move || TcpStream::connect(format!("127.0.0.1:{port}")));
    // An address literal needs no resolver: it connects while the pool is full.
    literal
        .wait(Some(generous(Duration::from_secs(10))))
        .unwrap();
    assert!(literal.is_dead(), "an address literal needs no resolver");
    // A while for a (wrong) resolution without the pool to finish; a slow machine only makes
    // the check easier to pass, never fail.
    sleep(ms(30)).unwrap();
    assert!(!connecting.is_dead(), "the name waits for a pool thread");
    drop(release);
    let s = connecting.join().unwrap().unwrap();
    assert_eq!(s.peer_addr().unwrap().port(), port);
    assert!(s.peer_addr().unwrap().ip().is_loopback());
    literal.join().unwrap().unwrap();
}

#[test]
fn a_timeout_ends_a_resolution_that_waits_for_the_pool() {
    let release = fill_default_pool();
    let start = Instant::now();
    let t = greenlet::Timeout::start(ms(30));
    let e = TcpStream::connect("localhost:80").unwrap_err();
    drop(t);
    assert_eq!(e.kind(), ErrorKind::TimedOut, "{e}");
    let took = start.elapsed();
    assert!(
        took >= ms(30) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    drop(release);
}

#[test]
fn addresses_are_accepted_in_the_forms_std_accepts() {
    let l = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let a = l.local_addr().unwrap();
    let ip: std::net::IpAddr = a.ip();
    TcpStream::connect(a).unwrap();
    let by_ref: &std::net::SocketAddr = &a;
    TcpStream::connect(by_ref).unwrap();
    TcpStream::connect((ip, a.port())).unwrap();
    TcpStream::connect(([127, 0, 0, 1], a.port())).unwrap();
    TcpStream::connect(a.to_string()).unwrap();
    TcpStream::connect(("localhost".to_string(), a.port())).unwrap();
    TcpStream::connect(&[a][..]).unwrap();
    let v6 = TcpListener::bind("[::1]:0");
    if let Ok(v6) = v6 {
        TcpStream::connect(v6.local_addr().unwrap()).unwrap();
    }
    // What std refuses, refused the same way.
    for bad in ["127.0.0.1", "localhost:notaport", "localhost:99999"] {
        let e = TcpStream::connect(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{bad}: {e}");
    }
    let e = TcpStream::connect(&[][..]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::InvalidInput);
    assert!(TcpStream::connect("no-such-host.invalid:80").is_err());
}

#[test]
fn a_read_after_a_short_read_still_gets_data_and_eof() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut a = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (mut b, _) = l.accept().unwrap();
    // Far longer than the bound on the read below, which must not wait for it.
    b.set_read_timeout(Some(generous(Duration::from_secs(30))))
        .unwrap();
    let mut buf = [0u8; 1024];
    a.write_all(b"ab").unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 2); // short: the buffer was emptied
    // More data is already there when the next read starts: it is read at once (after a
    // pass of the hub), not after the read timeout.
    a.write_all(b"cd").unwrap();
    let start = Instant::now();
    assert_eq!(b.read(&mut buf).unwrap(), 2);
    assert_eq!(&buf[..2], b"cd");
    assert!(
        start.elapsed() < generous(Duration::from_secs(5)),
        "{:?}",
        start.elapsed()
    );
    // A read that fills the buffer leaves the next one to try the system call first.
    a.write_all(&[7u8; 3000]).unwrap();
    let mut got = 0;
    while got < 3000 {
        got += b.read(&mut buf).unwrap();
    }
    assert_eq!(got, 3000);
    // End of stream after a short read.
    a.write_all(b"z").unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 1);
    a.shutdown(Shutdown::Write).unwrap();
    assert_eq!(b.read(&mut buf).unwrap(), 0);
    assert_eq!(b.read(&mut buf).unwrap(), 0);
}

/// A write to a peer that reads nothing ends with `TimedOut` once the send buffers are full
/// and the write timeout has passed, and so does `wait_writable` on the full socket.
#[test]
fn write_timeout_and_wait_writable_timeout() {
    let (s, _peer) = connected();
    s.set_write_timeout(Some(ms(200))).unwrap();
    // Writes fill this side's send buffer and the peer's receive buffer (quickly), until one
    // has to wait.
    let chunk = vec![0u8; 64 * 1024];
    times_out_after_200ms(|| {
        loop {
            if let Err(e) = (&s).write(&chunk) {
                return e;
            }
        }
    });
    times_out_after_200ms(|| {
        gevent_io::net::wait_writable(s.as_raw_fd(), Some(ms(200))).unwrap_err()
    });
}
