//! The byte stream under a connection: plain TCP, or TLS over it (with the `tls` feature).
//!
//! The TCP stream is shared (`Rc`) so that the server can end an idle connection's wait from
//! another greenlet when it stops, and so that timeouts are set on the socket whichever layer
//! reads it.

use gevent_io::net::TcpStream;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::rc::Rc;

/// A shared TCP stream that reads and writes through `&TcpStream`.
#[derive(Debug, Clone)]
pub(crate) struct SharedTcp(pub(crate) Rc<TcpStream>);

impl Read for SharedTcp {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self.0).read(buf)
    }
}

impl Write for SharedTcp {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self.0).write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// What a connection reads requests from and writes responses to.
pub(crate) enum Transport {
    Plain(SharedTcp),
    #[cfg(feature = "tls")]
    Tls(Box<rustls::StreamOwned<rustls::ServerConnection, SharedTcp>>),
}

impl Transport {
    /// The TCP stream underneath.
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            Transport::Plain(s) => &s.0,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => &s.sock.0,
        }
    }

    /// Whether the connection is TLS.
    pub(crate) fn is_tls(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(_) => true,
        }
    }

    /// Whether a TLS handshake is still going on (never over plain TCP).
    pub(crate) fn handshaking(&self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.conn.is_handshaking(),
        }
    }

    /// Whether the transport itself holds something a read would return or a wait would
    /// hold up: never over plain TCP. Over TLS: decrypted bytes not read yet, records queued
    /// to send (a handshake's next flight: the client waits for it), the client's
    /// `close_notify` or an error in what came. When it holds none of these, only more bytes
    /// on the socket can give a read anything, in a handshake as after it.
    pub(crate) fn holds_data(&mut self) -> bool {
        match self {
            Transport::Plain(_) => false,
            #[cfg(feature = "tls")]
            Transport::Tls(s) => {
                // Processing takes what whole records came (decrypted, or carrying the
                // handshake on): it neither reads the socket nor writes to it, and what it
                // queues to send is seen below.
                match s.conn.process_new_packets() {
                    Ok(state) => {
                        s.conn.wants_write()
                            || state.plaintext_bytes_to_read() > 0
                            || state.peer_has_closed()
                    }
                    Err(_) => true,
                }
            }
        }
    }

    /// End our direction: TLS `close_notify` first (not in the middle of a handshake, which
    /// sending would wait to carry on), then the TCP half-close.
    pub(crate) fn close_write(&mut self) {
        #[cfg(feature = "tls")]
        if let Transport::Tls(s) = self
            && !s.conn.is_handshaking()
        {
            s.conn.send_close_notify();
            let _ = s.flush();
        }
        let _ = self.tcp().shutdown(Shutdown::Write);
    }
}

/// The TCP stream read without waiting (`WouldBlock` when nothing has arrived).
#[cfg(feature = "tls")]
struct NoWait<'a>(&'a TcpStream);

#[cfg(feature = "tls")]
impl Read for NoWait<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

impl Transport {
    /// Read what has arrived into `buf` without waiting: `WouldBlock` if nothing has. Over
    /// TLS: what whole records hold (the records that came are decrypted); nothing while the
    /// handshake is still going on, which reading alone cannot carry on.
    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.0.try_read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => {
                let s = &mut **s;
                loop {
                    match s.conn.reader().read(buf) {
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        r => return r,
                    }
                    if s.conn.is_handshaking() {
                        return Err(io::ErrorKind::WouldBlock.into());
                    }
                    if s.conn.read_tls(&mut NoWait(&s.sock.0))? == 0 {
                        return Ok(0);
                    }
                    // What processing queues to send (an alert) goes with the next write.
                    s.conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                }
            }
        }
    }
}

impl Read for Transport {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.read(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Transport {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Transport::Plain(s) => s.write(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.write(buf),
        }
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            Transport::Plain(s) => s.write_all(buf),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => {
                s.write_all(buf)?;
                s.flush()
            }
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Transport::Plain(_) => Ok(()),
            #[cfg(feature = "tls")]
            Transport::Tls(s) => s.flush(),
        }
    }
}
