//! Protocol upgrades (`Upgrade` / `101 Switching Protocols`): the handler answers `101` with
//! a [`ResponseBody::upgrade`](crate::ResponseBody::upgrade) body, and once the head is sent its
//! closure owns the connection as an [`Upgraded`] stream — WebSocket, for example, with any
//! WebSocket crate that runs over `Read + Write`.
//!
//! The new protocol starts after the whole request (RFC 9110 §7.8): a request body the handler
//! did not read is read first (after a `100 Continue` if the client waits for one), and if it
//! cannot be, the client gets an error instead of the switch: 413 for a body over
//! [`max_drain`](crate::Builder::max_drain), 400 for one malformed or cut short, 408 for one
//! that does not come within the
//! [`header_read_timeout`](crate::Builder::header_read_timeout). A 101 to a request that
//! asked for no upgrade (no `Upgrade` field, or HTTP/1.0, where it is ignored) is a 500.
//!
//! ```
//! use std::io::{Read, Write};
//! use http::{header, Response, StatusCode};
//! use gevent_http::ResponseBody;
//!
//! // A toy protocol: after the upgrade the server echoes one line back.
//! let server = gevent_http::Server::builder()
//!     .addr("127.0.0.1:0")
//!     .serve(|_req| {
//!         Response::builder()
//!             .status(StatusCode::SWITCHING_PROTOCOLS)
//!             .header(header::CONNECTION, "upgrade")
//!             .header(header::UPGRADE, "echo")
//!             .body(ResponseBody::upgrade(|mut io| {
//!                 let mut line = [0u8; 6];
//!                 if io.read_exact(&mut line).is_ok() {
//!                     let _ = io.write_all(&line);
//!                 }
//!             }))
//!             .unwrap()
//!     })
//!     .unwrap();
//! let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
//! // The first bytes of the new protocol may travel with the request itself.
//! c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: echo\r\n\r\nhello\n").unwrap();
//! let mut answer = String::new();
//! c.read_to_string(&mut answer).unwrap();
//! assert!(answer.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
//! assert!(answer.ends_with("\r\n\r\nhello\n"));
//! server.stop(None);
//! ```

use crate::conn::Connection;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::time::Duration;

/// The connection after a `101 Switching Protocols` answer: reads first return the bytes the
/// client sent after its request (already buffered by the server), then the socket's;
/// writes go straight to the client (through TLS if the server uses it). Closed when dropped.
///
/// The server's header and idle timeouts no longer apply: the stream starts without a read
/// timeout, and with the server's [`write_timeout`](crate::Builder::write_timeout) (lift it with
/// [`set_write_timeout(None)`](Upgraded::set_write_timeout)).
pub struct Upgraded {
    pub(crate) conn: Rc<Connection>,
    /// Held by this stream only (the server keeps a clone): whether it is still alive once its
    /// closure returned.
    pub(crate) _token: Rc<()>,
}

impl fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upgraded")
            .field("peer_addr", &self.peer_addr().ok())
            .finish_non_exhaustive()
    }
}

impl Upgraded {
    /// The client's address, as accepted.
    ///
    /// # Errors
    /// Never (a `Result` as [`TcpStream::peer_addr`](gevent_io::net::TcpStream::peer_addr)
    /// has, whose shape it keeps).
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        Ok(self.conn.peer)
    }

    /// Time limit for each wait in `read` (`None`: none).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.conn.tcp.set_read_timeout(timeout)
    }

    /// Time limit for each wait in `write` (`None`: none).
    ///
    /// # Errors
    /// `InvalidInput` for `Some(Duration::ZERO)`.
    pub fn set_write_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        self.conn.tcp.set_write_timeout(timeout)
    }

    /// Shut down one or both directions of the connection (a greenlet waiting to read or
    /// write wakes up). Over TLS, shutting down writing sends `close_notify` first, so that
    /// the client sees a clean end, if no other greenlet is using the stream at that moment,
    /// and waiting at most the server's linger (2 s) for room to send it. Once writing is shut
    /// down, `write` fails with `BrokenPipe` (over TLS the bytes would be taken and lost).
    ///
    /// # Errors
    /// As [`TcpStream::shutdown`](gevent_io::net::TcpStream::shutdown).
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        let writing = how != Shutdown::Read;
        if writing
            && self.conn.tls
            && !self.conn.write_shut.get()
            && let Some(mut c) = self.conn.try_state()
            && !c.write_failed
        {
            c.close_write_soon();
        }
        if writing {
            self.conn.write_shut.set(true);
        }
        self.conn.tcp.shutdown(how)
    }

    /// `BrokenPipe` once writing is shut down.
    fn check_not_shut(&self) -> io::Result<()> {
        if self.conn.write_shut.get() {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "the upgraded stream is shut down for writing",
            ));
        }
        Ok(())
    }
}

impl Read for Upgraded {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut c = self.conn.state()?;
        let c = &mut *c;
        if c.pos < c.end {
            let n = buf.len().min(c.end - c.pos);
            buf[..n].copy_from_slice(&c.buf[c.pos..c.pos + n]);
            c.pos += n;
            return Ok(n);
        }
        c.transport.read(buf)
    }
}

impl Write for Upgraded {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // Nothing to send is not a wait (TLS would wait for the client for it).
        if buf.is_empty() {
            return Ok(0);
        }
        self.check_not_shut()?;
        let mut c = self.conn.state()?;
        c.check_writable()?;
        let n = c.transport.write(buf)?;
        // Taken (by TLS, which sends it with the flush): `n` is what this write did, a failure
        // to send it is the next call's error (a retry would send it twice).
        let _ = c.flush_transport();
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        // Nothing is left to send once writing is shut down (the shutdown sent it).
        if self.conn.write_shut.get() {
            return Ok(());
        }
        self.conn.state()?.flush_transport()
    }
}
