//! A socket that gets the number of one just closed under a waiting greenlet is not woken by
//! that old wait. Alone in its test binary: the test needs the kernel to hand the closed
//! number to the next socket (the lowest free one), which tests on other threads of the same
//! binary would take at random.

use std::io::{Read, Write};
use std::os::fd::AsRawFd;

#[test]
fn a_socket_that_reuses_a_closed_number_is_not_woken_by_the_old_wait() {
    gevent_monkey::patch_all();
    let (a, _a_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let fd = a.as_raw_fd();
    let old = greenlet::spawn(move || {
        let mut b = [0u8; 1];
        // SAFETY: a valid buffer.
        let r = unsafe { libc::recv(fd, b.as_mut_ptr().cast(), 1, 0) };
        (r, std::io::Error::last_os_error().raw_os_error())
    });
    greenlet::yield_now().unwrap();
    drop(a);
    assert_eq!(old.join().unwrap(), (-1, Some(libc::EBADF)));
    // The lowest free number is `fd` again: the new socket gets it.
    let (b, b_peer) = std::os::unix::net::UnixStream::pair().unwrap();
    let reused = b.as_raw_fd() == fd || b_peer.as_raw_fd() == fd;
    let (mine, theirs) = if b.as_raw_fd() == fd {
        (b, b_peer)
    } else {
        (b_peer, b)
    };
    let reader = greenlet::spawn(move || {
        let mut buf = [0u8; 3];
        (&mine).read_exact(&mut buf).unwrap();
        buf
    });
    greenlet::yield_now().unwrap();
    assert!(
        !reader.is_dead(),
        "waits for its own data, not woken by the old wait"
    );
    (&theirs).write_all(b"new").unwrap();
    assert_eq!(&reader.join().unwrap(), b"new");
    assert!(
        reused,
        "the number was reused (otherwise this test shows less)"
    );
}
