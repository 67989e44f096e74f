//! StreamServer and DatagramServer against real loopback clients.

use gevent_io::net::{TcpStream, UdpSocket};
use gevent_io::server::{DatagramServer, StreamServer};
use greenlet::{Event, sleep, spawn};
use std::cell::Cell;
use std::io::{ErrorKind, Read, Write};
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::{eventually, generous, ms};

fn echo_handler(mut c: TcpStream, _: std::net::SocketAddr) {
    let mut b = [0u8; 1024];
    while let Ok(n @ 1..) = c.read(&mut b) {
        if c.write_all(&b[..n]).is_err() {
            return;
        }
    }
}

fn roundtrip(addr: std::net::SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut c = TcpStream::connect(addr)?;
    c.write_all(msg)?;
    let mut back = vec![0u8; msg.len()];
    c.read_exact(&mut back)?;
    Ok(back)
}

#[test]
fn refused_before_start_served_while_running_refused_after_stop() {
    // Find a free port, then configure a server on it without starting.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let server = StreamServer::new(addr, echo_handler);
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
    server.start().unwrap();
    assert_eq!(roundtrip(addr, b"hello").unwrap(), b"hello");
    // The handler ends by itself (end of stream) long before the bound: none is killed.
    assert_eq!(server.stop(Some(generous(Duration::from_secs(10)))), 0);
    assert_eq!(
        TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}

#[test]
fn a_pool_of_two_serves_a_third_connection_only_when_one_ends() {
    let release = Event::new();
    let r = release.clone();
    let served = Rc::new(Cell::new(0));
    let s = served.clone();
    let server = StreamServer::new("127.0.0.1:0", move |mut c, _| {
        s.set(s.get() + 1);
        let mut b = [0u8; 1];
        // Long connections: hold the slot until told to finish.
        if c.read_exact(&mut b).is_ok() && b[0] == b'w' {
            let _ = r.wait();
        }
        let _ = c.write_all(b"done");
    })
    .max_connections(2);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut long: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    for c in &mut long {
        c.write_all(b"w").unwrap();
    }
    assert!(
        eventually(Duration::from_secs(20), || served.get() == 2),
        "served {} of the first two",
        served.get()
    );
    // The third connects (kernel backlog) but is not served while both slots are taken. (A
    // while for a wrong accept to happen; a slow machine only makes the check easier to pass.)
    let mut third = TcpStream::connect(addr).unwrap();
    third.write_all(b"q").unwrap();
    sleep(ms(100)).unwrap();
    assert_eq!(
        served.get(),
        2,
        "a third connection was served while the pool was full"
    );
    assert_eq!(server.connections(), 2);
    release.set();
    let mut buf = [0u8; 4];
    third
        .set_read_timeout(Some(generous(Duration::from_secs(20))))
        .unwrap();
    third.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"done");
    assert_eq!(served.get(), 3);
    server.stop(None);
}

#[test]
fn a_full_server_is_told_once_for_each_client_waiting_in_the_backlog() {
    let release = Event::new();
    let r = release.clone();
    let told = Rc::new(Cell::new(0));
    let t = told.clone();
    let server = StreamServer::new("127.0.0.1:0", move |mut c, _| {
        let mut b = [0u8; 1];
        if c.read_exact(&mut b).is_ok() && b[0] == b'w' {
            let _ = r.wait();
        }
        let _ = c.write_all(b"done");
    })
    .max_connections(1)
    .on_backlog(move || t.set(t.get() + 1));
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut long = TcpStream::connect(addr).unwrap();
    long.write_all(b"w").unwrap();
    assert!(eventually(Duration::from_secs(20), || server.connections() == 1));
    // Full, and nobody waits: nothing is told.
    assert_eq!(told.get(), 0);
    let mut waiting = TcpStream::connect(addr).unwrap();
    waiting.write_all(b"q").unwrap();
    assert!(
        eventually(Duration::from_secs(20), || told.get() == 1),
        "told {} times",
        told.get()
    );
    // Told once, not again and again while the client waits.
    sleep(ms(50)).unwrap();
    assert_eq!(told.get(), 1);
    release.set();
    let mut buf = [0u8; 4];
    waiting
        .set_read_timeout(Some(generous(Duration::from_secs(20))))
        .unwrap();
    waiting.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"done");
    // Full again with the waiting client's connection, with nobody behind it.
    assert_eq!(told.get(), 1);
    server.stop(None);
}

#[test]
fn a_panicking_handler_is_reported_and_the_server_keeps_serving() {
    let server = StreamServer::new("127.0.0.1:0", |c, p| {
        let mut b = [0u8; 1];
        (&c).read_exact(&mut b).unwrap();
        if b[0] == b'!' {
            panic!("handler failure for {p}");
        }
        echo_handler(c, p)
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let mut bad = TcpStream::connect(addr).unwrap();
    bad.write_all(b"!").unwrap();
    // The panicking handler's socket is closed: the client sees EOF.
    assert_eq!(bad.read(&mut [0u8; 4]).unwrap(), 0);
    let mut good = TcpStream::connect(addr).unwrap();
    good.write_all(b"xabc").unwrap();
    let mut back = [0u8; 3];
    good.read_exact(&mut back).unwrap();
    assert_eq!(&back, b"abc");
    drop(good);
    assert_eq!(server.stop(Some(generous(Duration::from_secs(10)))), 0);
}

#[test]
fn stop_waits_for_handlers_then_kills_the_rest() {
    let server = StreamServer::new("127.0.0.1:0", |c, _| {
        let mut b = [0u8; 1];
        let _ = (&c).read(&mut b); // blocks until killed
    });
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let _clients: Vec<TcpStream> = (0..3).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(
        eventually(Duration::from_secs(20), || server.connections() == 3),
        "{} connections",
        server.connections()
    );
    let start = Instant::now();
    assert_eq!(server.stop(Some(ms(200))), 3);
    let took = start.elapsed();
    // The full grace period, then the kills at once.
    assert!(
        took >= ms(200) && took < generous(Duration::from_secs(5)),
        "{took:?}"
    );
    assert_eq!(server.connections(), 0);
}

#[test]
fn stop_called_from_a_handler_spares_that_handler() {
    // The handler of a connection that sends "stop" stops the server, then tells its client
    // how many handlers the stop killed: itself it neither waits for nor kills.
    let slot: Rc<std::cell::OnceCell<std::rc::Weak<StreamServer>>> = Rc::default();
    let in_handler = slot.clone();
    let server = Rc::new(StreamServer::new("127.0.0.1:0", move |mut c, _| {
        let mut b = [0u8; 4];
        if c.read_exact(&mut b).is_ok() && &b == b"stop" {
            let server = in_handler.get().and_then(std::rc::Weak::upgrade).unwrap();
            let killed = server.stop(Some(ms(100)));
            let _ = c.write_all(format!("killed {killed}").as_bytes());
        }
    }));
    slot.set(Rc::downgrade(&server)).unwrap();
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    // One connection whose handler waits for bytes that never come: the stop kills it.
    let _idle = TcpStream::connect(addr).unwrap();
    assert!(eventually(Duration::from_secs(20), || server.connections() == 1));
    let mut c = TcpStream::connect(addr).unwrap();
    c.write_all(b"stop").unwrap();
    let mut answer = String::new();
    c.read_to_string(&mut answer).unwrap();
    assert_eq!(answer, "killed 1");
    assert!(eventually(Duration::from_secs(20), || server.connections() == 0));
}

#[test]
fn datagram_server_answers_each_datagram_in_its_own_greenlet() {
    // The slow datagram's handler waits until the fast one has been answered: handlers run one
    // after the other would answer "slow" first (after the bound), and the check would fail.
    let fast_answered = Event::new();
    let bound = generous(Duration::from_secs(10));
    let server = DatagramServer::bind("127.0.0.1:0", move |data, peer, sock| {
        if data == b"slow" {
            let _ = fast_answered.wait_timeout(bound);
        }
        sock.send_to(&data, peer).unwrap();
        if data == b"fast" {
            fast_answered.set();
        }
    })
    .unwrap();
    server.start().unwrap();
    let c = UdpSocket::bind("127.0.0.1:0").unwrap();
    c.set_read_timeout(Some(bound * 3)).unwrap();
    let to = server.local_addr().unwrap();
    c.send_to(b"slow", to).unwrap();
    c.send_to(b"fast", to).unwrap();
    let mut buf = [0u8; 16];
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(
        &buf[..n],
        b"fast",
        "the slow datagram must not hold up the fast one"
    );
    let (n, _) = c.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"slow");
    server.stop();
}

#[test]
fn many_clients_at_once() {
    let server = StreamServer::new("127.0.0.1:0", echo_handler);
    server.start().unwrap();
    let addr = server.local_addr().unwrap();
    let clients: Vec<_> = (0..300u32)
        .map(|i| spawn(move || roundtrip(addr, &i.to_le_bytes()).map(|b| b == i.to_le_bytes())))
        .collect();
    for c in clients {
        assert!(c.join().unwrap().unwrap());
    }
    server.stop(None);
}

#[test]
fn start_on_threads_serves_on_every_thread_and_stops_them_all() {
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};
    let served_by: Arc<Mutex<HashSet<String>>> = Arc::new(Mutex::new(HashSet::new()));
    let s = served_by.clone();
    let server = gevent_io::server::start_on_threads("127.0.0.1:0", 2, move |c, p| {
        let name = std::thread::current().name().unwrap().to_owned();
        s.lock().unwrap().insert(name);
        echo_handler(c, p);
    })
    .unwrap();
    assert_eq!(server.threads(), 2);
    let addr = server.local_addr();
    // SO_REUSEPORT spreads connections by their addresses: connect until both threads served
    // one (the bound only turns a broken spread into a failure).
    let mut n = 0;
    while served_by.lock().unwrap().len() < 2 {
        n += 1;
        assert!(n <= 2000, "one thread served every connection");
        let msg = format!("hello {n}");
        assert_eq!(
            client_roundtrip(addr, msg.as_bytes()).unwrap(),
            msg.as_bytes()
        );
    }
    let names = served_by.lock().unwrap().clone();
    assert_eq!(names, HashSet::from(["server-0".into(), "server-1".into()]));
    // A handler still running when the server stops is let finish: its client sends only
    // once the listeners are closed.
    let (running_tx, running_rx) = std::sync::mpsc::channel::<()>();
    let client = std::thread::spawn(move || {
        let mut c = std::net::TcpStream::connect(addr).unwrap();
        c.write_all(b"a").unwrap();
        let mut b = [0u8; 1];
        c.read_exact(&mut b).unwrap();
        running_tx.send(()).unwrap();
        let deadline = Instant::now() + generous(Duration::from_secs(20));
        while std::net::TcpStream::connect(addr).is_ok() {
            assert!(Instant::now() < deadline, "still accepting after stop");
            std::thread::sleep(ms(1));
        }
        c.write_all(b"z").unwrap();
        c.read_exact(&mut b).unwrap();
        b[0]
    });
    // Wait (cooperatively, on the pool) until that client's handler runs.
    greenlet::threadpool::spawn_blocking(move || running_rx.recv().unwrap())
        .join()
        .unwrap();
    let killed = server
        .stop(Some(generous(Duration::from_secs(20))))
        .unwrap();
    assert_eq!(killed, 0);
    assert_eq!(client.join().unwrap(), b'z');
    // Every thread was joined by stop: the port is refused.
    assert_eq!(
        std::net::TcpStream::connect(addr).unwrap_err().kind(),
        ErrorKind::ConnectionRefused
    );
}

/// One connection from a plain std client (in a pool thread, so that this hub keeps running).
fn client_roundtrip(addr: std::net::SocketAddr, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    let msg = msg.to_vec();
    greenlet::threadpool::spawn_blocking(move || {
        let mut c = std::net::TcpStream::connect(addr)?;
        c.write_all(&msg)?;
        c.shutdown(std::net::Shutdown::Write)?;
        let mut back = Vec::new();
        c.read_to_end(&mut back)?;
        Ok(back)
    })
    .join()
    .unwrap()
}

#[test]
fn threads_that_cannot_bind_report_the_bind_error() {
    // A listener without SO_REUSEPORT holds the port: the threads' listeners cannot share it.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap();
    let err = gevent_io::server::start_on_threads(addr, 2, echo_handler).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    let err = gevent_io::server::serve_on_threads(addr, 2, echo_handler).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrInUse);
    // What a server's own start reports reaches the caller as it was.
    type Start = std::io::Result<(std::net::SocketAddr, fn(Option<Duration>) -> usize)>;
    let err = gevent_io::server::spawn_on_threads(addr, 2, "custom", |_| -> Start {
        Err(std::io::Error::new(
            ErrorKind::PermissionDenied,
            "not today",
        ))
    })
    .unwrap_err();
    assert_eq!(
        (err.kind(), err.to_string()),
        (ErrorKind::PermissionDenied, "not today".into())
    );
    // A start that panics is an error too, not a hang.
    let err = gevent_io::server::spawn_on_threads(addr, 1, "panics", |_| -> Start {
        panic!("a start that panics")
    })
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    drop(taken);
}

#[test]
fn threads_started_before_one_that_fails_are_stopped() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let calls = Arc::new(AtomicUsize::new(0));
    let stopped = Arc::new(AtomicBool::new(false));
    let (c, st) = (calls.clone(), stopped.clone());
    let err = gevent_io::server::spawn_on_threads(
        "127.0.0.1:0".parse().unwrap(),
        3,
        "partial",
        move |addr| {
            if c.fetch_add(1, Ordering::SeqCst) > 0 {
                return Err(std::io::Error::new(ErrorKind::AddrNotAvailable, "second"));
            }
            let server = StreamServer::new(addr, echo_handler).reuse_port(true);
            server.start()?;
            let bound = server.local_addr()?;
            let st = st.clone();
            Ok((bound, move |grace| {
                let killed = server.stop(grace);
                st.store(true, Ordering::SeqCst);
                killed
            }))
        },
    )
    .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::AddrNotAvailable);
    // the third thread was never started; the first one, serving, was stopped and joined
    // before the error came back
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    assert!(stopped.load(Ordering::SeqCst));
}

/// With many connections waiting, the accept loop lets the other greenlets (the handlers it
/// spawned, say) run after every 100 in a row, rather than accepting all of them first.
#[test]
fn the_accept_loop_yields_after_100_connections_in_a_row() {
    let seen_by_first: Rc<Cell<Option<usize>>> = Rc::new(Cell::new(None));
    let server = Rc::new(std::cell::OnceCell::<StreamServer>::new());
    // Weak: the server holds its handler, which must not keep the server.
    let (s, srv) = (seen_by_first.clone(), Rc::downgrade(&server));
    let started = StreamServer::new("127.0.0.1:0", move |_, _| {
        if s.get().is_none() {
            // The first handler to run: how many connections were accepted by then.
            let srv = srv.upgrade().unwrap();
            s.set(Some(srv.get().unwrap().connections()));
        }
    });
    started.start().unwrap();
    let addr = started.local_addr().unwrap();
    let _ = server.set(started);
    // 120 connections into the listen backlog before the accept loop runs (connecting
    // blocks this thread, not the hub, so nothing else runs meanwhile; 120 stays under the
    // smallest `somaxconn` a kernel defaults to, 128).
    let clients: Vec<_> = (0..120)
        .map(|_| std::net::TcpStream::connect(addr).unwrap())
        .collect();
    assert!(eventually(Duration::from_secs(20), || seen_by_first
        .get()
        .is_some()));
    assert_eq!(seen_by_first.get(), Some(100));
    assert!(eventually(Duration::from_secs(20), || server
        .get()
        .unwrap()
        .connections()
        == 0));
    drop(clients);
    server.get().unwrap().stop(None);
}

#[test]
fn starting_a_server_has_the_hub_trim_idle_stacks_unless_told_otherwise() {
    use greenlet::hub::{set_stack_trim_interval, stack_trim_interval};
    set_stack_trim_interval(None);
    let s = StreamServer::new("127.0.0.1:0", |_, _| {});
    s.start().unwrap();
    assert_eq!(
        stack_trim_interval(),
        Some(gevent_io::server::STACK_TRIM_INTERVAL)
    );
    s.stop(None);
    // An interval set already is kept.
    set_stack_trim_interval(Some(Duration::from_secs(60)));
    let s = StreamServer::new("127.0.0.1:0", |_, _| {});
    s.start().unwrap();
    assert_eq!(stack_trim_interval(), Some(Duration::from_secs(60)));
    s.stop(None);
    set_stack_trim_interval(None);
}
