//! Unix domain sockets: [`UnixStream`] and [`UnixListener`].

use super::check_timeout;
use crate::source::Source as Sock;
use socket2::{Domain, SockAddr, Socket, Type};
use std::fmt;
use std::io::{self, Read, Write};
use std::marker::PhantomData;
use std::net::Shutdown;
use std::os::fd::{AsRawFd, FromRawFd, IntoRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// A cooperative Unix stream socket, like `std::os::unix::net::UnixStream`; `!Send`. Clones
/// share the socket.
///
/// ```
/// use gevent_io::net::UnixStream;
/// use std::io::{Read, Write};
/// let (mut a, mut b) = UnixStream::pair().unwrap();
/// a.write_all(b"over a socketpair").unwrap();
/// let mut buf = [0u8; 17];
/// b.read_exact(&mut buf).unwrap();
/// assert_eq!(&buf, b"over a socketpair");
/// ```
#[derive(Clone)]
pub struct UnixStream {
    sock: Sock,
    _not_send: PhantomData<*const ()>,
}

impl UnixStream {
    /// Connect to the socket at `path`.
    ///
    /// # Errors
    /// For example `NotFound` or `ConnectionRefused`.
    ///
    /// ```
    /// let e = gevent_io::net::UnixStream::connect("/nonexistent/socket").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn connect(path: impl AsRef<std::path::Path>) -> io::Result<UnixStream> {
        let socket = Socket::new(Domain::UNIX, Type::STREAM, None)?;
        socket.set_nonblocking(true)?;
        let stream = UnixStream::from_std(OwnedFd::from(socket))?;
        let addr = SockAddr::unix(path)?;
        match stream.sock.socket()?.connect(&addr) {
            Ok(()) => Ok(stream),
            Err(e)
                if e.raw_os_error() == Some(libc::EINPROGRESS)
                    || e.raw_os_error() == Some(libc::EAGAIN) =>
            {
                let fd = stream.sock.fd()?;
                stream.sock.wait(true, fd, "connect")?;
                match stream.sock.socket()?.take_error()? {
                    Some(e) => Err(e),
                    None => Ok(stream),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// A connected pair of sockets.
    ///
    /// ```
    /// let (a, b) = gevent_io::net::UnixStream::pair().unwrap();
    /// # drop((a, b));
    /// ```
    pub fn pair() -> io::Result<(UnixStream, UnixStream)> {
        let (a, b) = std::os::unix::net::UnixStream::pair()?;
        Ok((UnixStream::from_std(a)?, UnixStream::from_std(b)?))
    }

    /// Take over a `std::os::unix::net::UnixStream`.
    ///
    /// ```
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let a = gevent_io::net::UnixStream::from_std(a).unwrap();
    /// # drop(a);
    /// ```
    pub fn from_std(stream: impl Into<OwnedFd>) -> io::Result<UnixStream> {
        Ok(UnixStream {
            sock: Sock::new(stream.into())?,
            _not_send: PhantomData,
        })
    }

    /// Time limit for each wait in `read`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// use std::io::Read;
    /// let (mut a, _b) = gevent_io::net::UnixStream::pair().unwrap();
    /// a.set_read_timeout(Some(std::time::Duration::from_millis(5))).unwrap();
    /// assert_eq!(a.read(&mut [0u8; 1]).unwrap_err().kind(), std::io::ErrorKind::TimedOut);
    /// ```
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_read_timeout(check_timeout(timeout)?);
        Ok(())
    }

    /// Time limit for each wait in `write`.
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`, as std.
    ///
    /// ```
    /// let (a, _b) = gevent_io::net::UnixStream::pair().unwrap();
    /// a.set_write_timeout(None).unwrap();
    /// ```
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.sock.set_write_timeout(check_timeout(timeout)?);
        Ok(())
    }

    /// Shut down one or both directions.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, mut b) = gevent_io::net::UnixStream::pair().unwrap();
    /// a.shutdown(std::net::Shutdown::Write).unwrap();
    /// assert_eq!(b.read(&mut [0u8; 1]).unwrap(), 0);
    /// ```
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.sock.socket()?.shutdown(how)
    }

    /// Close the socket now; blocked greenlets wake up with an error.
    ///
    /// ```
    /// use std::io::Read;
    /// let (a, _b) = gevent_io::net::UnixStream::pair().unwrap();
    /// a.close();
    /// assert!((&a).read(&mut [0u8; 1]).is_err());
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

/// A cooperative Unix socket listener; `!Send`.
///
/// ```
/// use gevent_io::net::{UnixListener, UnixStream};
/// let path = std::env::temp_dir().join(format!("greenlet-doc-{}.sock", std::process::id()));
/// let _ = std::fs::remove_file(&path);
/// let l = UnixListener::bind(&path).unwrap();
/// let p = path.clone();
/// let c = greenlet::spawn(move || UnixStream::connect(&p).unwrap());
/// let s = l.accept().unwrap();
/// # drop((s, c.join()));
/// std::fs::remove_file(&path).unwrap();
/// ```
pub struct UnixListener {
    sock: Sock,
    _not_send: PhantomData<*const ()>,
}

impl UnixListener {
    /// Bind to `path` and listen.
    ///
    /// # Errors
    /// For example `AddrInUse` when the path exists.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-bind-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gevent_io::net::UnixListener::bind(&path).unwrap();
    /// assert!(gevent_io::net::UnixListener::bind(&path).is_err());
    /// # drop(l); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn bind(path: impl AsRef<std::path::Path>) -> io::Result<UnixListener> {
        let l = std::os::unix::net::UnixListener::bind(path)?;
        Ok(UnixListener {
            sock: Sock::new(l.into())?,
            _not_send: PhantomData,
        })
    }

    /// Wait for a connection.
    ///
    /// # Errors
    /// The accept error, or the wait's error.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-acc-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gevent_io::net::UnixListener::bind(&path).unwrap();
    /// let p = path.clone();
    /// greenlet::spawn(move || gevent_io::net::UnixStream::connect(&p).map(|_| ()));
    /// assert!(l.accept().is_ok());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn accept(&self) -> io::Result<UnixStream> {
        UnixStream::from_std(self.sock.accept()?)
    }

    /// Close the listener now; a greenlet blocked in `accept` wakes up with an error.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("greenlet-doc-close-{}.sock", std::process::id()));
    /// let _ = std::fs::remove_file(&path);
    /// let l = gevent_io::net::UnixListener::bind(&path).unwrap();
    /// l.close();
    /// assert!(l.accept().is_err());
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn close(&self) {
        self.sock.close();
    }
}

stream_io!(UnixStream);
raw_fd!(UnixStream);
raw_fd!(UnixListener);
