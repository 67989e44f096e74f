//! Cooperative TCP sockets shaped like `std::net`: every wait switches to the hub instead of
//! blocking the thread.
//!
//! A socket keeps one read and one write io watcher for its whole life and re-arms them around
//! each wait; the per-read path allocates nothing. A read tries the system call first and waits
//! for readiness only on `EAGAIN`, except right after a stream read that returned less than
//! asked: that read emptied the socket's buffer, so the next one waits for readiness first
//! instead of making a system call that would almost always fail (tokio does the same). Data
//! that arrived in between is read after one pass of the hub. Only one greenlet may wait on a socket in each
//! direction at a time: a second concurrent reader (or writer) gets an error of kind
//! `ResourceBusy` (gevent's `ConcurrentObjectUseError`) instead of silently stealing the wake-up.
//! [`TcpStream::close`] wakes greenlets blocked on the socket with an error.
//!
//! ```
//! use gevent_io::net::{TcpListener, TcpStream};
//! use std::io::{Read, Write};
//!
//! let listener = TcpListener::bind("127.0.0.1:0").unwrap();
//! let addr = listener.local_addr().unwrap();
//! let server = greenlet::spawn(move || {
//!     let (mut conn, _) = listener.accept().unwrap();
//!     let mut buf = [0u8; 5];
//!     conn.read_exact(&mut buf).unwrap();
//!     conn.write_all(&buf).unwrap();
//! });
//! let mut client = TcpStream::connect(addr).unwrap();
//! client.write_all(b"hello").unwrap();
//! let mut echo = [0u8; 5];
//! client.read_exact(&mut echo).unwrap();
//! assert_eq!(&echo, b"hello");
//! server.join().unwrap();
//! ```

use socket2::SockAddr;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

macro_rules! stream_io {
    ($t:ty) => {
        impl Read for $t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read(buf)
            }
        }
        impl Read for &$t {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                self.sock.read(buf)
            }
        }
        impl Write for $t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.sock.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        impl Write for &$t {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.sock.write(buf)
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
    };
}

/// `Debug`, `AsRawFd`, `IntoRawFd` (fails to give up the fd while clones exist: it panics, as the trait
/// cannot return an error — use `into_std` to handle that) and `FromRawFd` for a socket type.
macro_rules! raw_fd {
    ($t:ty) => {
        impl AsRawFd for $t {
            fn as_raw_fd(&self) -> RawFd {
                self.sock.raw_fd()
            }
        }
        impl FromRawFd for $t {
            /// Take ownership of an open socket descriptor (made non-blocking).
            ///
            /// # Panics
            /// If the descriptor cannot be made non-blocking.
            unsafe fn from_raw_fd(fd: RawFd) -> Self {
                // SAFETY: the caller hands us ownership of an open descriptor.
                let owned = unsafe { OwnedFd::from_raw_fd(fd) };
                Self {
                    sock: Sock::new(owned).expect("make the descriptor non-blocking"),
                    _not_send: PhantomData,
                }
            }
        }
        impl IntoRawFd for $t {
            fn into_raw_fd(self) -> RawFd {
                self.sock
                    .into_raw()
                    .expect("no other clones of this socket")
            }
        }
        impl fmt::Debug for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($t))
                    .field("fd", &self.sock.raw_fd())
                    .finish()
            }
        }
    };
}

mod addr;
mod tcp;
mod udp;
mod unix;

pub use addr::ToSocketAddrs;
pub(crate) use addr::resolve;
pub use greenlet::fd::{Interest, Readiness, wait_fd, wait_readable, wait_writable};
pub use tcp::{TcpListener, TcpStream};
pub use udp::UdpSocket;
pub use unix::{UnixListener, UnixStream};

/// std's rule for socket timeouts: `Some(Duration::ZERO)` is refused.
pub(crate) fn check_timeout(timeout: Option<Duration>) -> io::Result<Option<Duration>> {
    if timeout == Some(Duration::ZERO) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "cannot set a 0 duration timeout",
        ));
    }
    Ok(timeout)
}

pub(crate) fn sockaddr(a: SockAddr) -> io::Result<SocketAddr> {
    a.as_socket()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "not an IP socket address"))
}
