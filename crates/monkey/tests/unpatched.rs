//! A binary that links the monkey crate's users but never calls `patch_all`: nothing changes.
//! (This test file does not refer to `gevent_monkey` at all, so — the linking trap — the
//! hooks are not even in the binary, and std's calls reach libc's own functions.)

use std::time::{Duration, Instant};

#[test]
fn without_patch_all_std_calls_block_the_thread_as_usual() {
    let other = greenlet::spawn(|| ());
    let start = Instant::now();
    std::thread::sleep(Duration::from_millis(30));
    assert!(start.elapsed() >= Duration::from_millis(30));
    assert!(
        !other.is_dead(),
        "the hub did not run: the sleep blocked the thread"
    );
    other.join().unwrap();

    // std sockets work, blocking.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    let t = std::thread::spawn(move || {
        use std::io::{Read, Write};
        let mut s = std::net::TcpStream::connect(addr).unwrap();
        s.write_all(b"ping").unwrap();
        let mut b = [0u8; 4];
        s.read_exact(&mut b).unwrap();
        b
    });
    let (mut c, _) = l.accept().unwrap();
    use std::io::{Read, Write};
    let mut b = [0u8; 4];
    c.read_exact(&mut b).unwrap();
    c.write_all(&b).unwrap();
    assert_eq!(&t.join().unwrap(), b"ping");
}
