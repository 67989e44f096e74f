//! Bodies: the request's [`Body`] (a [`Read`] over the decoded bytes) and what a handler may
//! answer with ([`ResponseBody`], made from the types that implement [`IntoBody`]).

use crate::conn::Connection;
use crate::upgrade::Upgraded;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::rc::Rc;

/// A request body, decoded (`Content-Length` or chunked) and read lazily from the connection
/// as the handler asks for it; `Expect: 100-continue` is answered on the first read (any
/// other expectation is answered 417 before the handler runs). A body cut short by the client
/// makes the read fail (`UnexpectedEof`), a malformed chunk `InvalidData`.
///
/// Each read waits at most the keep-alive timeout
/// ([`Builder::keep_alive_timeout`](crate::Builder::keep_alive_timeout)) for the client, and
/// fails with `TimedOut` after it. The body as a whole has no time limit unless
/// [`Builder::body_read_timeout`](crate::Builder::body_read_timeout) sets one (past it a read
/// fails with `TimedOut`; otherwise a client that sends a byte a minute holds the connection
/// for as long as it likes), and no size limit unless
/// [`Builder::max_body_size`](crate::Builder::max_body_size) sets one (past it a read fails
/// with `InvalidData`), since only the handler knows what it expects. A handler can bound a
/// body itself too: `Read::take` for its size, a [`greenlet::Timeout`] around the reading for
/// its time.
///
/// ```
/// use std::io::Read;
/// let server = gevent_http::Server::builder()
///     .addr("127.0.0.1:0")
///     .serve(|req: http::Request<gevent_http::Body>| {
///         let mut body = String::new();
///         req.into_body().read_to_string(&mut body).unwrap();
///         http::Response::new(body.to_uppercase())
///     })
///     .unwrap();
/// # use std::io::Write;
/// let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
/// c.write_all(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\nConnection: close\r\n\r\nhi").unwrap();
/// let mut answer = String::new();
/// c.read_to_string(&mut answer).unwrap();
/// assert!(answer.ends_with("\r\n\r\nHI"));
/// # server.stop(None);
/// ```
pub struct Body {
    pub(crate) conn: Rc<Connection>,
    /// Which of the connection's requests this is the body of.
    pub(crate) request: u64,
    /// Whether this body's own reads took it to its end: its reads return the end (`Ok(0)`)
    /// from then on, whatever the connection has gone on to.
    pub(crate) whole: bool,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Body {
    /// The address of the client the request came from (gevent's `REMOTE_ADDR` and
    /// `REMOTE_PORT`): the TCP peer, as accepted. Behind a proxy that is the proxy; what it
    /// says of its own client (`Forwarded`, `X-Forwarded-For`) is in the headers, for an
    /// application that trusts it to read. Also [`RequestExt::peer_addr`].
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// use std::io::{Read, Write};
    ///
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve(|req: http::Request<gevent_http::Body>| {
    ///         http::Response::new(req.peer_addr().to_string())
    ///     })
    ///     .unwrap();
    /// let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    /// c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// let mut answer = String::new();
    /// c.read_to_string(&mut answer).unwrap();
    /// assert!(answer.ends_with(&c.local_addr().unwrap().to_string()));
    /// # server.stop(None);
    /// ```
    pub fn peer_addr(&self) -> SocketAddr {
        self.conn.peer
    }

    /// The server's address the request came to (gevent's `SERVER_NAME` and `SERVER_PORT`
    /// as the socket has them): the local end of the connection, asked of the socket. Also
    /// [`RequestExt::local_addr`].
    ///
    /// # Errors
    /// What `getsockname` reports (hardly ever: the socket is open while the request is).
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// use std::io::{Read, Write};
    ///
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve(|req: http::Request<gevent_http::Body>| {
    ///         http::Response::new(req.local_addr().unwrap().to_string())
    ///     })
    ///     .unwrap();
    /// let addr = server.local_addr().unwrap();
    /// let mut c = gevent_io::net::TcpStream::connect(addr).unwrap();
    /// c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// let mut answer = String::new();
    /// c.read_to_string(&mut answer).unwrap();
    /// assert!(answer.ends_with(&addr.to_string()));
    /// # server.stop(None);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.conn.tcp.local_addr()
    }

    /// Whether the request came over TLS (gevent's `wsgi.url_scheme` being `https`). Also
    /// [`RequestExt::is_tls`].
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// use std::io::{Read, Write};
    ///
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve(|req: http::Request<gevent_http::Body>| {
    ///         http::Response::new(if req.is_tls() { "https" } else { "http" })
    ///     })
    ///     .unwrap();
    /// let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
    /// c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// let mut answer = String::new();
    /// c.read_to_string(&mut answer).unwrap();
    /// assert!(answer.ends_with("\r\n\r\nhttp"));
    /// # server.stop(None);
    /// ```
    pub fn is_tls(&self) -> bool {
        self.conn.tls
    }
}

/// What the server knows of the connection a request came on, asked of the request (a
/// handler's `Request<Body>`): the methods of the same names on its [`Body`], which stay
/// available after [`into_body`](http::Request::into_body).
///
/// ```
/// use gevent_http::{Body, RequestExt};
///
/// fn client(req: &http::Request<Body>) -> String {
///     format!("{} over {}", req.peer_addr(), if req.is_tls() { "TLS" } else { "TCP" })
/// }
/// # let _ = client;
/// ```
pub trait RequestExt {
    /// See [`Body::peer_addr`].
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// let log = |req: &http::Request<gevent_http::Body>| println!("from {}", req.peer_addr());
    /// # let _ = log;
    /// ```
    fn peer_addr(&self) -> SocketAddr;

    /// See [`Body::local_addr`].
    ///
    /// # Errors
    /// What `getsockname` reports.
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// let port = |req: &http::Request<gevent_http::Body>| req.local_addr().map(|a| a.port());
    /// # let _ = port;
    /// ```
    fn local_addr(&self) -> io::Result<SocketAddr>;

    /// See [`Body::is_tls`].
    ///
    /// ```
    /// use gevent_http::RequestExt;
    /// let scheme = |req: &http::Request<gevent_http::Body>| if req.is_tls() { "https" } else { "http" };
    /// # let _ = scheme;
    /// ```
    fn is_tls(&self) -> bool;
}

impl RequestExt for http::Request<Body> {
    fn peer_addr(&self) -> SocketAddr {
        self.body().peer_addr()
    }
    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.body().local_addr()
    }
    fn is_tls(&self) -> bool {
        self.body().is_tls()
    }
}

/// A read from another greenlet than the connection's (one the handler spawned) waits while
/// the connection is in use (reading, or writing the response). Once the body's request is
/// over (its response is out, or the connection ended), a read returns at once: the body's
/// end (0) if it had come whole, else an error (`Other`); so does a read of what the server
/// read and threw away to go on to the next request (a body left unread when the response
/// went out is drained), rather than end early as if the body were shorter.
impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.whole {
            return Ok(0);
        }
        // Once the request is over: its end if it was read whole, else an error.
        let over = || {
            let conn = &self.conn;
            if self.request > conn.over.get() {
                None
            } else if conn.over.get() == self.request && conn.over_whole.get() {
                Some(Ok(0))
            } else {
                Some(Err(io::Error::other("the request of this body is over")))
            }
        };
        if let Some(r) = over() {
            return r;
        }
        let mut c = self.conn.state()?;
        // (The request may have ended while this waited.)
        if let Some(r) = over() {
            return r;
        }
        let n = c.read_body(buf)?;
        self.whole = c.body_done();
        Ok(n)
    }
}

/// A closure that writes a response body into the connection.
pub type WriteFn = Box<dyn FnOnce(&mut dyn Write) -> io::Result<()>>;

/// A closure that takes over the connection after a `101 Switching Protocols` answer.
pub type UpgradeFn = Box<dyn FnOnce(Upgraded)>;

/// A response body as the server sends it.
///
/// Bytes, and a reader of a known length ([`ResponseBody::Sized`], a
/// [`File`](std::fs::File)), go out with `Content-Length`; a reader or a writing closure of
/// unknown length with `Transfer-Encoding: chunked` (to an HTTP/1.0 client: unframed, and the
/// connection closes after it). [`ResponseBody::Upgrade`] answers `101` and hands the raw connection to a
/// closure.
///
/// ```
/// use gevent_http::{IntoBody, ResponseBody};
/// assert!(matches!("ab".into_body(), ResponseBody::Static(b) if b == b"ab"));
/// ```
pub enum ResponseBody {
    /// All the bytes, sent with `Content-Length`.
    Full(Vec<u8>),
    /// Bytes that live forever (a constant), sent with `Content-Length` without a copy.
    Static(&'static [u8]),
    /// Read until it returns 0, sent chunked. The reader may be the request's own [`Body`]
    /// (an echo, a proxy): a body sent as it is produced gets the request body as the client
    /// sends it (its `100 Continue` before the final head), and what it leaves of it is
    /// drained after it, as for any unread body. A read error (or a panic) ends the connection,
    /// after a `500` in place of the response if none of it has been sent yet (the server
    /// sends in large writes: a body that fails early is all still buffered).
    Stream(Box<dyn Read>),
    /// Exactly this many bytes read from the reader, sent with `Content-Length` as they are
    /// read (a file, a body fetched from elsewhere of a known size). What the reader has
    /// after them is not read; a reader that ends early, or fails, ends the connection as a
    /// [`Stream`](ResponseBody::Stream)'s failing reader does (the client gets a `500` or a
    /// body cut short, never a wrong one).
    Sized(Box<dyn Read>, u64),
    /// Called with a writer into the connection, sent chunked (each write one chunk, batched
    /// into large writes). An error it returns ends the connection as a
    /// [`Stream`](ResponseBody::Stream)'s failing reader does.
    Write(WriteFn),
    /// With status `101 Switching Protocols`: after the head is sent, the closure gets the
    /// connection as an [`Upgraded`] stream and the server forgets it.
    Upgrade(UpgradeFn),
}

impl ResponseBody {
    /// A body written by `f` into the connection (see [`ResponseBody::Write`]).
    ///
    /// ```
    /// let body = gevent_http::ResponseBody::writer(|w| w.write_all(b"written"));
    /// # drop(body);
    /// ```
    pub fn writer(f: impl FnOnce(&mut dyn Write) -> io::Result<()> + 'static) -> ResponseBody {
        ResponseBody::Write(Box::new(f))
    }

    /// An upgrade: answer with this body and status `101`, and `f` runs on the raw connection
    /// (see [`ResponseBody::Upgrade`] and the [`upgrade`](crate::upgrade) module).
    ///
    /// ```
    /// use std::io::Write;
    /// let body = gevent_http::ResponseBody::upgrade(|mut io| {
    ///     let _ = io.write_all(b"raw bytes");
    /// });
    /// # drop(body);
    /// ```
    pub fn upgrade(f: impl FnOnce(Upgraded) + 'static) -> ResponseBody {
        ResponseBody::Upgrade(Box::new(f))
    }

    /// `len` bytes read from `reader`, sent with `Content-Length` (see
    /// [`ResponseBody::Sized`]).
    ///
    /// ```
    /// let data = std::io::Cursor::new(vec![7u8; 1000]);
    /// let body = gevent_http::ResponseBody::sized(data, 1000);
    /// assert_eq!(body.len(), Some(1000));
    /// ```
    pub fn sized(reader: impl Read + 'static, len: u64) -> ResponseBody {
        ResponseBody::Sized(Box::new(reader), len)
    }

    /// The body's length when it is known before sending (it then goes out with
    /// `Content-Length`): bytes and [`Sized`](ResponseBody::Sized) readers.
    ///
    /// ```
    /// use gevent_http::{IntoBody, StreamBody};
    /// assert_eq!("four".into_body().len(), Some(4));
    /// assert_eq!(StreamBody(std::io::empty()).into_body().len(), None);
    /// ```
    #[expect(clippy::len_without_is_empty, reason = "a length that may be unknown")]
    pub fn len(&self) -> Option<u64> {
        match self {
            ResponseBody::Full(b) => Some(b.len() as u64),
            ResponseBody::Static(b) => Some(b.len() as u64),
            ResponseBody::Sized(_, n) => Some(*n),
            _ => None,
        }
    }

    /// All the bytes, when they are known before sending (their length goes in the head).
    pub(crate) fn bytes(&self) -> Option<&[u8]> {
        match self {
            ResponseBody::Full(b) => Some(b),
            ResponseBody::Static(b) => Some(b),
            _ => None,
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseBody::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            ResponseBody::Static(b) => f.debug_tuple("Static").field(&b.len()).finish(),
            ResponseBody::Stream(_) => f.write_str("Stream(..)"),
            ResponseBody::Sized(_, n) => f.debug_tuple("Sized").field(n).finish(),
            ResponseBody::Write(_) => f.write_str("Write(..)"),
            ResponseBody::Upgrade(_) => f.write_str("Upgrade(..)"),
        }
    }
}

/// What a handler's response body can be: `Vec<u8>`, `String`, `&'static str`,
/// `&'static [u8]`, `()`, a [`File`](std::fs::File), a [`StreamBody`] around a [`Read`], or a
/// [`ResponseBody`].
///
/// ```
/// use gevent_http::{IntoBody, ResponseBody};
/// assert!(matches!(String::from("ab").into_body(), ResponseBody::Full(b) if b == b"ab"));
/// ```
pub trait IntoBody {
    /// The body as the server sends it.
    ///
    /// ```
    /// use gevent_http::{IntoBody, ResponseBody};
    /// assert!(matches!(vec![1u8].into_body(), ResponseBody::Full(b) if b == [1]));
    /// ```
    fn into_body(self) -> ResponseBody;
}

impl IntoBody for ResponseBody {
    fn into_body(self) -> ResponseBody {
        self
    }
}
impl IntoBody for Vec<u8> {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Full(self)
    }
}
impl IntoBody for String {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Full(self.into_bytes())
    }
}
impl IntoBody for &'static str {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Static(self.as_bytes())
    }
}
impl IntoBody for &'static [u8] {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Static(self)
    }
}
impl IntoBody for () {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Full(Vec::new())
    }
}

/// A file, sent with `Content-Length` from its size when it is opened (a
/// [`Sized`](ResponseBody::Sized) body; chunked if its size cannot be had). A file that shrinks
/// while it is sent ends the connection; what it grows by is not sent.
///
/// ```
/// use gevent_http::IntoBody;
/// let path = std::env::temp_dir().join(format!("gevent-http-doc-{}", std::process::id()));
/// std::fs::write(&path, b"on disk").unwrap();
/// let body = std::fs::File::open(&path).unwrap().into_body();
/// assert_eq!(body.len(), Some(7));
/// # std::fs::remove_file(&path).unwrap();
/// ```
impl IntoBody for std::fs::File {
    fn into_body(self) -> ResponseBody {
        match self.metadata() {
            Ok(m) if m.is_file() => ResponseBody::Sized(Box::new(self), m.len()),
            _ => ResponseBody::Stream(Box::new(self)),
        }
    }
}

/// A response body streamed from a reader, chunked.
///
/// ```
/// use gevent_http::{IntoBody, ResponseBody, StreamBody};
/// let body = StreamBody(std::io::Cursor::new(b"streamed".to_vec()));
/// assert!(matches!(body.into_body(), ResponseBody::Stream(_)));
/// ```
#[derive(Debug)]
pub struct StreamBody<R>(pub R);

impl<R: Read + 'static> IntoBody for StreamBody<R> {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Stream(Box::new(self.0))
    }
}
