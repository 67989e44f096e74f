//! The server: one greenlet per connection, reading heads with [`crate::parse`], bodies with
//! [`crate::decode`], writing with [`crate::encode`] (hyper's `proto/h1/{io,conn}.rs`).

use crate::decode::Decoder;
use crate::encode::{self, BodyFraming};
use crate::parse::{self, Framing, HeadLimits};
use gevent_io::net::TcpStream;
use gevent_io::server::StreamServer;
use http::{Request, Response, StatusCode};
use std::cell::RefCell;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// Default [`Builder::header_read_timeout`]: 30 s (hyper's).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Builder::keep_alive_timeout`]: 75 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default [`Builder::max_drain`]: 64 KiB.
pub const DEFAULT_MAX_DRAIN: u64 = 64 * 1024;

/// Configures a [`Server`]; made by [`Server::builder`].
///
/// Defaults: address `127.0.0.1:8000`; request line at most 8 KiB (longer: 414); at most 100
/// header fields (hyper's default) and a head of at most 64 KiB (more: 431); header read
/// timeout [`DEFAULT_HEADER_READ_TIMEOUT`]; idle keep-alive timeout
/// [`DEFAULT_KEEP_ALIVE_TIMEOUT`]; an unread request body drained up to [`DEFAULT_MAX_DRAIN`]
/// (beyond that the connection is closed); no `Server` header.
///
/// ```
/// let b = gevent_http::Server::builder().addr("127.0.0.1:0").max_headers(50);
/// # drop(b);
/// ```
#[derive(Debug, Clone)]
pub struct Builder {
    addr: Vec<SocketAddr>,
    limits: HeadLimits,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    max_drain: u64,
    server_header: Option<String>,
}

/// Settings shared by a server's connections.
#[derive(Debug)]
struct Config {
    limits: HeadLimits,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    max_drain: u64,
    server_header: Option<String>,
}

impl Builder {
    /// The address to listen on (port 0 picks a free port).
    ///
    /// # Panics
    /// If `addr` does not resolve to at least one address.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().addr("127.0.0.1:0");
    /// # drop(b);
    /// ```
    pub fn addr(mut self, addr: impl ToSocketAddrs) -> Builder {
        self.addr = addr.to_socket_addrs().expect("server address").collect();
        assert!(
            !self.addr.is_empty(),
            "the server address resolved to nothing"
        );
        self
    }

    /// Longest request line in bytes (default 8 KiB); longer requests get 414.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_request_line(1024);
    /// # drop(b);
    /// ```
    pub fn max_request_line(mut self, n: usize) -> Builder {
        self.limits.max_request_line = n;
        self
    }

    /// Most header fields (default 100); more get 431.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_headers(20);
    /// # drop(b);
    /// ```
    pub fn max_headers(mut self, n: usize) -> Builder {
        self.limits.max_headers = n;
        self
    }

    /// Longest request head in bytes (default 64 KiB); longer get 431.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_head_bytes(16 * 1024);
    /// # drop(b);
    /// ```
    pub fn max_head_bytes(mut self, n: usize) -> Builder {
        self.limits.max_head_bytes = n;
        self
    }

    /// How many bytes of a body the handler did not read are read and discarded to keep the
    /// connection (default [`DEFAULT_MAX_DRAIN`]); past that it is closed.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_drain(0); // always close instead
    /// # drop(b);
    /// ```
    pub fn max_drain(mut self, n: u64) -> Builder {
        self.max_drain = n;
        self
    }

    /// How long a request head may take to arrive once it started (default
    /// [`DEFAULT_HEADER_READ_TIMEOUT`]); then the connection is closed (slowloris).
    ///
    /// ```
    /// let b = gevent_http::Server::builder()
    ///     .header_read_timeout(std::time::Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn header_read_timeout(mut self, d: Duration) -> Builder {
        self.header_read_timeout = d;
        self
    }

    /// How long an idle keep-alive connection waits for its next request, and a body read for
    /// its next bytes (default [`DEFAULT_KEEP_ALIVE_TIMEOUT`]).
    ///
    /// ```
    /// let b = gevent_http::Server::builder()
    ///     .keep_alive_timeout(std::time::Duration::from_secs(10));
    /// # drop(b);
    /// ```
    pub fn keep_alive_timeout(mut self, d: Duration) -> Builder {
        self.keep_alive_timeout = d;
        self
    }

    /// The `Server` header sent with every response (default: none).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().server_header(Some("gevent".into()));
    /// # drop(b);
    /// ```
    pub fn server_header(mut self, value: Option<String>) -> Builder {
        self.server_header = value;
        self
    }

    /// Bind, listen and serve with `handler` in the background (one greenlet per connection);
    /// returns the running server.
    ///
    /// # Errors
    /// Binding errors; `InvalidInput` if the [`server_header`](Builder::server_header) holds
    /// CR, LF or NUL.
    ///
    /// ```
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve(|_req| http::Response::new("hi"))
    ///     .unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// server.stop();
    /// ```
    pub fn serve<B: IntoBody>(
        self,
        handler: impl Fn(Request<Body>) -> Response<B> + 'static,
    ) -> io::Result<Server> {
        if self
            .server_header
            .as_deref()
            .is_some_and(|s| s.bytes().any(|b| b"\r\n\0".contains(&b)))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "CR, LF or NUL in the Server header",
            ));
        }
        let config = Rc::new(Config {
            limits: self.limits,
            header_read_timeout: self.header_read_timeout,
            keep_alive_timeout: self.keep_alive_timeout,
            max_drain: self.max_drain,
            server_header: self.server_header,
        });
        let handler = Rc::new(handler);
        let inner = StreamServer::try_new(&self.addr[..], move |stream, peer| {
            if let Err(e) = serve_connection(stream, &config, &*handler) {
                log::debug!("connection from {peer}: {e}");
            }
        })?;
        inner.start()?;
        Ok(Server { inner })
    }
}

/// A running HTTP/1.1 server; `!Send` (it lives on its thread's hub).
///
/// ```
/// use std::io::{Read, Write};
///
/// let server = gevent_http::Server::builder()
///     .addr("127.0.0.1:0")
///     .serve(|req| http::Response::new(format!("you asked for {}", req.uri())))
///     .unwrap();
/// let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
/// c.write_all(b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n").unwrap();
/// let mut answer = String::new();
/// c.read_to_string(&mut answer).unwrap();
/// assert!(answer.starts_with("HTTP/1.1 200 OK\r\n"));
/// assert!(answer.ends_with("\r\n\r\nyou asked for /x"));
/// server.stop();
/// ```
pub struct Server {
    inner: StreamServer,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr().ok())
            .finish()
    }
}

impl Server {
    /// A [`Builder`] with the defaults it documents.
    ///
    /// ```
    /// let b = gevent_http::Server::builder();
    /// # drop(b);
    /// ```
    pub fn builder() -> Builder {
        Builder {
            addr: vec![SocketAddr::from(([127, 0, 0, 1], 8000))],
            limits: HeadLimits::default(),
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            keep_alive_timeout: DEFAULT_KEEP_ALIVE_TIMEOUT,
            max_drain: DEFAULT_MAX_DRAIN,
            server_header: None,
        }
    }

    /// The address the server listens on.
    ///
    /// # Errors
    /// If it was stopped.
    ///
    /// ```
    /// let s = gevent_http::Server::builder().addr("127.0.0.1:0").serve(|_| http::Response::new("")).unwrap();
    /// assert!(s.local_addr().unwrap().ip().is_loopback());
    /// # s.stop();
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// Serve until [`stop`](Server::stop) is called from another greenlet.
    ///
    /// # Errors
    /// If the accept loop failed.
    ///
    /// ```
    /// use std::rc::Rc;
    /// let s = Rc::new(gevent_http::Server::builder().addr("127.0.0.1:0").serve(|_| http::Response::new("")).unwrap());
    /// let s2 = s.clone();
    /// greenlet::spawn_later(std::time::Duration::from_millis(10), move || s2.stop());
    /// s.serve_forever().unwrap();
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.inner.serve_forever()
    }

    /// Stop accepting, wait up to a second for running connections, then kill the rest.
    ///
    /// ```
    /// let s = gevent_http::Server::builder().addr("127.0.0.1:0").serve(|_| http::Response::new("")).unwrap();
    /// s.stop();
    /// ```
    pub fn stop(&self) {
        self.inner.stop(None);
    }
}

/// A response body as the server sends it: bytes of a known length, or a reader streamed
/// with `Transfer-Encoding: chunked` (to HTTP/1.0 clients: until the connection closes).
///
/// ```
/// use gevent_http::{IntoBody, ResponseBody};
/// assert!(matches!("ab".into_body(), ResponseBody::Full(b) if b == b"ab"));
/// ```
pub enum ResponseBody {
    /// All the bytes, sent with `Content-Length`.
    Full(Vec<u8>),
    /// Read until it returns 0, sent chunked. A read error ends the connection.
    Stream(Box<dyn Read>),
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseBody::Full(b) => f.debug_tuple("Full").field(&b.len()).finish(),
            ResponseBody::Stream(_) => f.write_str("Stream(..)"),
        }
    }
}

/// What a handler's response body can be: `Vec<u8>`, `String`, `&'static str`,
/// `&'static [u8]`, `()`, or a [`StreamBody`] around a [`Read`].
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
        ResponseBody::Full(self.as_bytes().to_vec())
    }
}
impl IntoBody for &'static [u8] {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Full(self.to_vec())
    }
}
impl IntoBody for () {
    fn into_body(self) -> ResponseBody {
        ResponseBody::Full(Vec::new())
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

/// The connection's state, shared with the request's [`Body`].
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    /// Start of the unconsumed bytes of `buf`.
    pos: usize,
    /// Responses not written yet (pipelined responses go out in one write).
    out: Vec<u8>,
    decoder: Decoder,
    /// Body data decoded but not handed out yet (a range of `buf`).
    pending: Range<usize>,
    expect_pending: bool,
    body_error: Option<&'static str>,
    eof: bool,
    body_timeout: Duration,
}

impl Conn {
    fn flush(&mut self) -> io::Result<()> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Read more bytes into `buf`, waiting at most `timeout`. `Ok(0)` at EOF.
    fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        if self.pos > 0 && self.pending.is_empty() {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let len = self.buf.len();
        self.buf.resize(len + 16 * 1024, 0);
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let r = self.stream.read(&mut self.buf[len..]);
        let n = *r.as_ref().unwrap_or(&0);
        self.buf.truncate(len + n);
        if n == 0 {
            self.eof = true;
        }
        r
    }

    /// Next body bytes into `out` (0 at the end of the body).
    fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.body_error {
            return Err(io::Error::new(io::ErrorKind::InvalidData, e));
        }
        if self.expect_pending {
            self.expect_pending = false;
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        loop {
            if !self.pending.is_empty() {
                let n = out.len().min(self.pending.len());
                let start = self.pending.start;
                out[..n].copy_from_slice(&self.buf[start..start + n]);
                self.pending.start += n;
                return Ok(n);
            }
            if self.decoder.is_done() {
                return Ok(0);
            }
            match self.decoder.decode(&self.buf[self.pos..]) {
                Err(e) => {
                    self.body_error = Some(e.0);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.0));
                }
                Ok((n, data)) => {
                    self.pending = self.pos + data.start..self.pos + data.end;
                    self.pos += n;
                    if n > 0 {
                        continue;
                    }
                }
            }
            self.flush()?;
            if self.eof || self.fill(self.body_timeout)? == 0 {
                self.body_error = Some("connection closed in the body");
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }
}

/// A request body, decoded and read lazily from the connection; `Expect: 100-continue` is
/// answered on the first read.
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
/// # server.stop();
/// ```
pub struct Body {
    conn: Rc<RefCell<Conn>>,
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Body").finish_non_exhaustive()
    }
}

impl Read for Body {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.conn.borrow_mut().read_body(buf)
    }
}

/// Close gracefully: stop writing, then read (and discard) what the client still sends for a
/// moment, so that our last response is not lost to a reset.
fn linger_close(conn: &mut Conn) {
    let _ = conn.flush();
    let _ = conn.stream.shutdown(std::net::Shutdown::Write);
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 4096];
    let mut total = 0;
    while total < 256 * 1024 {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || conn.stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        match conn.stream.read(&mut sink) {
            Ok(0) | Err(_) => break,
            Ok(n) => total += n,
        }
    }
}

/// Write a streamed body (chunked or raw), flushing every 64 KiB.
fn stream_body(conn: &RefCell<Conn>, mut r: Box<dyn Read>, chunked: bool) -> io::Result<()> {
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = r.read(&mut buf)?;
        let mut c = conn.borrow_mut();
        if n == 0 {
            if chunked {
                c.out.extend_from_slice(b"0\r\n\r\n");
            }
            return Ok(());
        }
        if chunked {
            c.out.extend_from_slice(format!("{n:x}\r\n").as_bytes());
        }
        c.out.extend_from_slice(&buf[..n]);
        if chunked {
            c.out.extend_from_slice(b"\r\n");
        }
        if c.out.len() >= 64 * 1024 {
            c.flush()?;
        }
    }
}

fn serve_connection<B: IntoBody>(
    stream: TcpStream,
    config: &Config,
    handler: &dyn Fn(Request<Body>) -> Response<B>,
) -> io::Result<()> {
    let _ = stream.set_nodelay(true);
    let conn = Rc::new(RefCell::new(Conn {
        stream,
        buf: Vec::new(),
        pos: 0,
        out: Vec::new(),
        decoder: Decoder::length(0),
        pending: 0..0,
        expect_pending: false,
        body_error: None,
        eof: false,
        body_timeout: config.keep_alive_timeout,
    }));
    let server = config.server_header.as_deref();
    let mut first = true;
    loop {
        // Read a head: idle timeout until its first byte (header timeout for the first
        // request), then the header timeout for the whole head.
        let mut head_deadline = None;
        let parsed = loop {
            let mut c = conn.borrow_mut();
            let c = &mut *c;
            if c.pos < c.buf.len() || first {
                head_deadline.get_or_insert_with(|| Instant::now() + config.header_read_timeout);
            }
            if c.pos < c.buf.len() {
                match parse::parse_head(&c.buf[c.pos..], &config.limits) {
                    Ok(parse::Status::Complete(p)) => break *p,
                    Ok(parse::Status::Incomplete) => {}
                    Err(e) => {
                        log::debug!("refused a request: {}", e.reason);
                        encode::error_response(&mut c.out, e.status, server);
                        linger_close(c);
                        return Ok(());
                    }
                }
            }
            c.flush()?;
            if c.eof {
                return Ok(());
            }
            let timeout = match head_deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => config.keep_alive_timeout,
            };
            if timeout.is_zero() {
                return Ok(());
            }
            match c.fill(timeout) {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    log::debug!("closing a connection: no complete request head in time");
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        };
        first = false;
        let mut keep_alive = parsed.keep_alive;
        {
            let mut c = conn.borrow_mut();
            c.pos += parsed.consumed;
            c.decoder = match parsed.body_framing {
                Framing::None => Decoder::length(0),
                Framing::Length(n) => Decoder::length(n),
                Framing::Chunked => Decoder::chunked(),
            };
            c.pending = c.pos..c.pos;
            c.expect_pending = parsed.expect_continue && !c.decoder.is_done();
            c.body_error = None;
        }
        let method = parsed.head.method.clone();
        let version = parsed.head.version;
        let line = format!(
            "{} {} {:?}",
            parsed.head.method, parsed.head.uri, parsed.head.version
        );
        let request = Request::from_parts(parsed.head, Body { conn: conn.clone() });
        let outcome = catch_unwind(AssertUnwindSafe(|| handler(request)));
        let mut guard = conn.borrow_mut();
        let mut c = &mut *guard;
        let response = match outcome {
            Ok(r) => Some(r),
            Err(_) => {
                log::error!("handler panicked on {line:?}; answering 500");
                None
            }
        };
        if c.body_error.is_some() {
            encode::error_response(&mut c.out, StatusCode::BAD_REQUEST, server);
            linger_close(c);
            return Ok(());
        }
        // The body the handler did not read: drained up to the limit, else close. A body
        // still awaiting its 100 Continue is never sent by a well-behaved client: close.
        if c.expect_pending {
            keep_alive = false;
        } else if keep_alive {
            let mut drained = 0u64;
            let mut sink = [0u8; 8192];
            loop {
                if drained > config.max_drain {
                    keep_alive = false;
                    break;
                }
                match c.read_body(&mut sink) {
                    Ok(0) => break,
                    Ok(n) => drained += n as u64,
                    Err(_) => {
                        keep_alive = false;
                        break;
                    }
                }
            }
            if c.body_error.is_some() {
                encode::error_response(&mut c.out, StatusCode::BAD_REQUEST, server);
                linger_close(c);
                return Ok(());
            }
        }
        let Some(response) = response else {
            encode::error_response(&mut c.out, StatusCode::INTERNAL_SERVER_ERROR, server);
            linger_close(c);
            return Ok(());
        };
        let (parts, body) = response.into_parts();
        let body = body.into_body();
        let len = match &body {
            ResponseBody::Full(b) => Some(b.len() as u64),
            ResponseBody::Stream(_) => None,
        };
        let mut framing = encode::framing(&method, parts.status, len);
        if framing == BodyFraming::Chunked && version == http::Version::HTTP_10 {
            framing = BodyFraming::UntilClose;
        }
        if framing == BodyFraming::UntilClose {
            keep_alive = false;
        }
        let start = c.out.len();
        if encode::write_head(
            &mut c.out,
            parts.status,
            &parts.headers,
            framing,
            keep_alive,
            server,
        )
        .is_err()
        {
            log::error!("handler's response to {line:?} has CR or LF in a header; answering 500");
            c.out.truncate(start);
            encode::error_response(&mut c.out, StatusCode::INTERNAL_SERVER_ERROR, server);
            linger_close(c);
            return Ok(());
        }
        match (body, framing) {
            (ResponseBody::Full(b), BodyFraming::Length(_)) => c.out.extend_from_slice(&b),
            (ResponseBody::Stream(r), BodyFraming::Chunked | BodyFraming::UntilClose) => {
                drop(guard);
                if let Err(e) = stream_body(&conn, r, framing == BodyFraming::Chunked) {
                    log::error!("streaming the response to {line:?} failed: {e}");
                    return Ok(());
                }
                guard = conn.borrow_mut();
                c = &mut *guard;
            }
            _ => {}
        }
        if !keep_alive {
            linger_close(c);
            return Ok(());
        }
    }
}
