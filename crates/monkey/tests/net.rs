//! `net` and `fd` hooks: std sockets in greenlets wait through the hub; the user's
//! non-blocking mode and timeouts keep their meaning; a close wakes a waiter with `EBADF`.

use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn a_std_only_echo_server_serves_many_clients_on_one_thread() {
    gevent_monkey::patch_all();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let n = 200;
    let server = greenlet::spawn(move || {
        for _ in 0..n {
            let (mut conn, _) = listener.accept().unwrap();
            greenlet::spawn(move || {
                let mut buf = [0u8; 1024];
                while let Ok(k @ 1..) = conn.read(&mut buf) {
                    conn.write_all(&buf[..k]).unwrap();
                }
            });
        }
    });
    // The clients are greenlets of the same thread, with std sockets too: every one of them
    // blocks in std calls, so none of this finishes unless the hooks cooperate.
    let clients: Vec<_> = (0..n)
        .map(|i| {
            greenlet::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                let msg = format!("hello from {i}");
                s.write_all(msg.as_bytes()).unwrap();
                let mut back = vec![0u8; msg.len()];
                s.read_exact(&mut back).unwrap();
                assert_eq!(back, msg.as_bytes());
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    server.join().unwrap();
}

#[test]
fn a_read_timeout_set_by_the_user_ends_the_wait_with_would_block() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.set_read_timeout(Some(ms(50))).unwrap();
    // Runs at the hub's first turn, which comes once the read waits cooperatively (a
    // greenlet that had to wait for a timer of its own could lose the race to the read's
    // timeout on a loaded machine).
    let ticker = greenlet::spawn(|| ());
    let start = Instant::now();
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert!(
        matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{e:?}"
    );
    assert!(start.elapsed() >= ms(50));
    assert!(ticker.is_dead(), "the hub ran during the wait");
}

#[test]
fn a_socket_the_user_made_non_blocking_fails_at_once() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    s.set_nonblocking(true).unwrap();
    let other = greenlet::spawn(|| ());
    let e = (&s).read(&mut [0u8; 8]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::WouldBlock);
    assert!(!other.is_dead(), "no switch");
    other.join().unwrap();
    // Back to blocking: cooperative again.
    s.set_nonblocking(false).unwrap();
    let mut peer = _peer;
    let w = greenlet::spawn(move || peer.write_all(b"x"));
    let mut b = [0u8; 1];
    (&s).read_exact(&mut b).unwrap();
    w.join().unwrap().unwrap();
}

#[test]
fn closing_a_socket_wakes_the_greenlet_waiting_on_it_with_ebadf() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    let fd = s.as_raw_fd();
    let reader = greenlet::spawn(move || {
        let mut b = [0u8; 1];
        // SAFETY: a valid buffer; the fd is closed under us by another greenlet, on purpose.
        let r = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 1, 0) };
        (r, std::io::Error::last_os_error().raw_os_error())
    });
    greenlet::yield_now().unwrap(); // the reader waits now
    assert!(!reader.is_dead());
    drop(s); // close(2) through the hook
    let (r, errno) = reader.join().unwrap();
    assert_eq!((r, errno), (-1, Some(libc::EBADF)));
}

#[test]
fn a_killed_reader_gets_an_error_not_an_abort_and_dies_at_its_next_wait() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let mut s = TcpStream::connect(l.local_addr().unwrap()).unwrap();
    let (_peer, _) = l.accept().unwrap();
    let g = greenlet::spawn(move || {
        let e = s.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ECANCELED));
        greenlet::sleep(Duration::ZERO).unwrap(); // the kill unwinds here
        unreachable!()
    });
    greenlet::yield_now().unwrap();
    g.kill();
    assert!(g.join().is_err());
}

#[test]
fn connect_timeout_and_poll_cooperate() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let s = TcpStream::connect_timeout(&addr, Duration::from_secs(10)).unwrap();
    let (mut peer, _) = l.accept().unwrap();
    // poll(2) on the socket: the greenlet waits while another writes.
    let w = greenlet::spawn(move || {
        greenlet::sleep(ms(20)).unwrap();
        peer.write_all(b"!").unwrap();
        peer
    });
    let mut p = libc::pollfd {
        fd: s.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one valid pollfd.
    let n = unsafe { libc::poll(&mut p, 1, 10_000) };
    assert_eq!(n, 1);
    assert!(p.revents & libc::POLLIN != 0);
    drop(w.join().unwrap());
}

#[test]
fn plain_threads_are_untouched() {
    gevent_monkey::patch_all();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        let (mut c, _) = l.accept().unwrap();
        let mut b = [0u8; 5];
        c.read_exact(&mut b).unwrap();
        b
    });
    std::thread::spawn(move || {
        TcpStream::connect(addr)
            .unwrap()
            .write_all(b"plain")
            .unwrap()
    })
    .join()
    .unwrap();
    assert_eq!(&t.join().unwrap(), b"plain");
}
