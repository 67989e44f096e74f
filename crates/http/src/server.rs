//! The server: a [`Builder`] for the options, a [`Server`] on one hub, a [`ThreadedServer`]
//! with one hub per thread; each connection is one greenlet running [`crate::conn`].

use crate::body::{Body, IntoBody};
use crate::conn::{Config, Handler, Shared, serve_connection};
use crate::parse::HeadLimits;
use gevent_io::server::StreamServer;
use http::{Request, Response};
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// An HTTP server on several OS threads, one hub each, from [`Builder::serve_on_threads`]:
/// its address, and `stop(timeout)`, which stops every thread's server gracefully (as
/// [`Server::stop`]) and joins the threads. Dropping it stops it too.
///
/// ```
/// let server = gevent_http::Server::builder()
///     .addr("127.0.0.1:0")
///     .serve_on_threads(2, |_req| http::Response::new("hi"))
///     .unwrap();
/// assert_eq!(server.threads(), 2);
/// assert_eq!(server.stop(None).unwrap(), 0);
/// ```
pub type ThreadedServer = gevent_io::server::ThreadedServer;

/// Default [`Builder::header_read_timeout`]: 30 s (hyper's).
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Default [`Builder::keep_alive_timeout`]: 75 s.
pub const DEFAULT_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(75);
/// Default [`Builder::write_timeout`]: 60 s (nginx's `send_timeout`; hyper has none).
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// Default [`Builder::max_drain`]: 64 KiB.
pub const DEFAULT_MAX_DRAIN: u64 = 64 * 1024;
/// Default grace period of [`Server::stop`] and [`ThreadedServer::stop`]: 1 s.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);

/// How often a thread that serves HTTP gives back what its idle greenlets' stacks hold below
/// their frames (see [`Builder::serve`]): 10 s, as for any
/// [`StreamServer`](gevent_io::server::StreamServer).
pub const STACK_TRIM_INTERVAL: Duration = gevent_io::server::STACK_TRIM_INTERVAL;

/// The longest time limit: a longer one (up to `Duration::MAX`, for none in effect) counts as
/// this, a hundred years.
const MAX_TIMEOUT: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// Configures a [`Server`]; made by [`Server::builder`].
///
/// Defaults: address `127.0.0.1:8000`; request line at most 8 KiB (longer: 414); at most 100
/// header fields (hyper's default) and a head of at most 64 KiB (more: 431); header read
/// timeout [`DEFAULT_HEADER_READ_TIMEOUT`]; idle keep-alive timeout
/// [`DEFAULT_KEEP_ALIVE_TIMEOUT`], also the longest wait for each read of a request body (and
/// no limit on a whole body's time); write timeout [`DEFAULT_WRITE_TIMEOUT`]; an unread
/// request body drained up to [`DEFAULT_MAX_DRAIN`] (beyond that the connection is closed); no
/// connection limit; no `Server` header; an access log line per request (at `info` on the
/// `gevent_http::access` target); plain TCP. A time limit may be as long as `Duration::MAX`
/// (longer than a hundred years counts as a hundred years).
///
/// ```
/// let b = gevent_http::Server::builder().addr("127.0.0.1:0").max_headers(50);
/// # drop(b);
/// ```
#[derive(Clone)]
pub struct Builder {
    addr: Vec<SocketAddr>,
    limits: HeadLimits,
    header_read_timeout: Duration,
    keep_alive_timeout: Duration,
    body_read_timeout: Option<Duration>,
    write_timeout: Duration,
    max_drain: u64,
    server_header: Option<String>,
    max_connections: Option<usize>,
    access_log: bool,
    reuse_port: bool,
    addr_error: Option<(io::ErrorKind, String)>,
    #[cfg(feature = "tls")]
    tls: Option<Arc<rustls::ServerConfig>>,
}

impl fmt::Debug for Builder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("Builder");
        d.field("addr", &self.addr)
            .field("limits", &self.limits)
            .field("header_read_timeout", &self.header_read_timeout)
            .field("keep_alive_timeout", &self.keep_alive_timeout)
            .field("body_read_timeout", &self.body_read_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("max_drain", &self.max_drain)
            .field("server_header", &self.server_header)
            .field("max_connections", &self.max_connections)
            .field("access_log", &self.access_log);
        #[cfg(feature = "tls")]
        d.field("tls", &self.tls.is_some());
        d.finish()
    }
}

impl Builder {
    /// The address to listen on (port 0 picks a free port). An address that does not
    /// resolve makes [`serve`](Builder::serve) fail.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().addr("127.0.0.1:0");
    /// # drop(b);
    /// ```
    pub fn addr(mut self, addr: impl ToSocketAddrs) -> Builder {
        match addr.to_socket_addrs() {
            Ok(a) => {
                self.addr = a.collect();
                self.addr_error = None;
            }
            Err(e) => self.addr_error = Some((e.kind(), e.to_string())),
        }
        self
    }

    /// Longest request line accepted (longer: 414 URI Too Long).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_request_line(1024);
    /// # drop(b);
    /// ```
    pub fn max_request_line(mut self, n: usize) -> Builder {
        self.limits.max_request_line = n;
        self
    }

    /// Most header fields accepted (more: 431).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_headers(32);
    /// # drop(b);
    /// ```
    pub fn max_headers(mut self, n: usize) -> Builder {
        self.limits.max_headers = n;
        self
    }

    /// Largest request head accepted, request line and fields together (more: 431).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_head_bytes(16 * 1024);
    /// # drop(b);
    /// ```
    pub fn max_head_bytes(mut self, n: usize) -> Builder {
        self.limits.max_head_bytes = n;
        self
    }

    /// The largest request body accepted, in bytes (by default there is no limit, as in hyper
    /// and Go's `net/http`: the server never holds a body itself, and a handler knows best what
    /// it expects). A `Content-Length` over it is answered `413 Payload Too Large` before the
    /// handler runs, and the connection closed; a chunked body that grows past it makes the
    /// handler's read fail (`InvalidData`), and the answer is a 413 if none went out yet.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_body_size(1 << 20);
    /// # drop(b);
    /// ```
    pub fn max_body_size(mut self, n: u64) -> Builder {
        self.limits.max_body = Some(n);
        self
    }

    /// How much of a request body the handler did not read is read and discarded to keep the
    /// connection alive (counted in bytes of the connection, the chunked framing included); a
    /// longer rest closes the connection instead, and so does one that takes longer than the
    /// [`header_read_timeout`](Builder::header_read_timeout) to come.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_drain(0);
    /// # drop(b);
    /// ```
    pub fn max_drain(mut self, n: u64) -> Builder {
        self.max_drain = n;
        self
    }

    /// Time a client has to send a whole request head (from its first byte; for a new
    /// connection, from the accept, TLS handshake included). Slower clients are disconnected.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().header_read_timeout(std::time::Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn header_read_timeout(mut self, d: Duration) -> Builder {
        self.header_read_timeout = d;
        self
    }

    /// How long an idle keep-alive connection is kept open waiting for its next request, and
    /// the longest wait for each read of a request body (a read that waits longer fails with
    /// `TimedOut`, and the request is answered `408 Request Timeout` if no answer went out
    /// yet).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().keep_alive_timeout(std::time::Duration::from_secs(5));
    /// # drop(b);
    /// ```
    pub fn keep_alive_timeout(mut self, d: Duration) -> Builder {
        self.keep_alive_timeout = d;
        self
    }

    /// Time a request body has to arrive whole, counted from the handler's first read of it
    /// (when its client, if it asked, is sent `100 Continue`): the slow-body attack, a body
    /// trickled in a byte at a time just within the per-read timeout, gets no more. By default
    /// there is none, as in hyper and Go's `net/http` (each read of a body still waits at most
    /// the [`keep_alive_timeout`](Builder::keep_alive_timeout)). Once it has passed, the
    /// handler's read fails with `TimedOut`; the answer is `408 Request Timeout` if none went
    /// out yet, and the connection is closed. The time the handler spends between its reads
    /// counts too. A body the handler did not read is drained within it as well (counted from
    /// the drain's start; a drain that runs out keeps the handler's answer and closes the
    /// connection). A zero duration makes [`serve`](Builder::serve) fail with `InvalidInput`.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().body_read_timeout(std::time::Duration::from_secs(60));
    /// # drop(b);
    /// ```
    pub fn body_read_timeout(mut self, d: Duration) -> Builder {
        self.body_read_timeout = Some(d);
        self
    }

    /// How long a response may wait for the client to take more of it: each wait for the
    /// socket to be writable is limited to this (a slow client that goes on reading is not cut
    /// off; one that stopped reading is, and its connection closed). A zero duration makes
    /// [`serve`](Builder::serve) fail with `InvalidInput`.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().write_timeout(std::time::Duration::from_secs(10));
    /// # drop(b);
    /// ```
    pub fn write_timeout(mut self, d: Duration) -> Builder {
        self.write_timeout = d;
        self
    }

    /// The `Server` header sent with every response (`None`: none; a handler's own is kept).
    ///
    /// ```
    /// let b = gevent_http::Server::builder().server_header(Some("gevent".into()));
    /// # drop(b);
    /// ```
    pub fn server_header(mut self, value: Option<String>) -> Builder {
        self.server_header = value;
        self
    }

    /// Serve at most `n` connections at once; further clients wait in the listen backlog
    /// until one ends (gevent's server pool). Idle keep-alive connections do not keep a
    /// waiting client out: when every slot is taken and a client waits, an idle one is closed
    /// for it, or, if none is idle, the next to finish a response (one whose response ends
    /// soon: not a body streamed out, nor an upgrade), which says `Connection: close`, as
    /// nginx reuses its idle connections when it runs out. An upgraded stream keeps its slot
    /// while its closure runs, and gives it up when the closure returns, even if it handed the
    /// stream on to a greenlet of its own.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().max_connections(10_000);
    /// # drop(b);
    /// ```
    pub fn max_connections(mut self, n: usize) -> Builder {
        self.max_connections = Some(n.max(1));
        self
    }

    /// Log one line per request at `info` level on the `gevent_http::access` target
    /// (default on; the log facade's filter decides whether it is written):
    /// `127.0.0.1:50000 "GET / HTTP/1.1" 200 13 0.000021` — peer, request line, status, body
    /// bytes (`-` when streamed of unknown length), seconds taken.
    ///
    /// ```
    /// let b = gevent_http::Server::builder().access_log(false);
    /// # drop(b);
    /// ```
    pub fn access_log(mut self, yes: bool) -> Builder {
        self.access_log = yes;
        self
    }

    /// Serve HTTPS: TLS with this `rustls` configuration over each connection (the feature
    /// `tls`). The handshake counts towards the [`header_read_timeout`](Builder::header_read_timeout).
    ///
    /// See the [`tls`](crate::tls) module for an example with a certificate.
    #[cfg(feature = "tls")]
    pub fn tls(mut self, config: Arc<rustls::ServerConfig>) -> Builder {
        self.tls = Some(config);
        self
    }

    fn check(&self) -> io::Result<()> {
        if let Some((kind, msg)) = &self.addr_error {
            return Err(io::Error::new(*kind, msg.clone()));
        }
        for (d, what) in [
            (Some(self.write_timeout), "a zero write timeout"),
            (Some(self.header_read_timeout), "a zero header read timeout"),
            (Some(self.keep_alive_timeout), "a zero keep-alive timeout"),
            (self.body_read_timeout, "a zero body read timeout"),
        ] {
            if d.is_some_and(|d| d.is_zero()) {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, what));
            }
        }
        if self
            .server_header
            .as_deref()
            .is_some_and(|s| crate::encode::breaks_line(s.as_bytes()))
        {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "CR, LF or NUL in the Server header",
            ));
        }
        Ok(())
    }

    /// Bind and start serving on the current thread's hub with `handler`, one greenlet per
    /// connection; returns the running server.
    ///
    /// An idle keep-alive connection holds as little stack as its wait needs, whatever its
    /// handler or a TLS handshake took it down to: a connection gives back what lies below
    /// its frames when it starts waiting for its next request (at most once a second), and
    /// the thread's hub gives back what its greenlets that waited since then hold below
    /// theirs every [`STACK_TRIM_INTERVAL`], unless an interval was set already
    /// ([`greenlet::hub::set_stack_trim_interval`], which the underlying
    /// [`StreamServer::start`](gevent_io::server::StreamServer::start) sets).
    ///
    /// The framing headers of a response are the server's: a handler's `Content-Length`,
    /// `Transfer-Encoding` and `Date` are replaced by what the server sends, and its
    /// `Connection` too, except that `Connection: close` is honoured (the connection closes
    /// after that response) and that a `101` keeps the handler's `Connection: upgrade`. The
    /// status is a final one (a `1xx` other than `101` is answered 500); a `2xx` to `CONNECT`
    /// closes the connection after it (it would make the connection a tunnel, which this
    /// server has not).
    ///
    /// # Errors
    /// Binding errors; an address that did not resolve; `InvalidInput` if the
    /// [`server_header`](Builder::server_header) holds CR, LF or NUL, or a time limit
    /// ([`header_read_timeout`](Builder::header_read_timeout),
    /// [`keep_alive_timeout`](Builder::keep_alive_timeout),
    /// [`body_read_timeout`](Builder::body_read_timeout),
    /// [`write_timeout`](Builder::write_timeout)) is zero.
    ///
    /// ```
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve(|_req| http::Response::new("hi"))
    ///     .unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// server.stop(None);
    /// ```
    pub fn serve<B: IntoBody>(
        self,
        handler: impl Fn(Request<Body>) -> Response<B> + 'static,
    ) -> io::Result<Server> {
        self.check()?;
        let shared = Rc::new(Shared::new(Config {
            limits: self.limits,
            header_read_timeout: self.header_read_timeout.min(MAX_TIMEOUT),
            keep_alive_timeout: self.keep_alive_timeout.min(MAX_TIMEOUT),
            body_read_timeout: self.body_read_timeout.map(|d| d.min(MAX_TIMEOUT)),
            write_timeout: self.write_timeout.min(MAX_TIMEOUT),
            max_drain: self.max_drain,
            server_header: self.server_header.map(Rc::from),
            access_log: self.access_log,
            #[cfg(feature = "tls")]
            tls: self.tls,
        }));
        // The response split once, here, where its body type is known.
        let handler = move |req| {
            let (parts, body) = handler(req).into_parts();
            (parts, body.into_body())
        };
        let state = shared.clone();
        let mut inner = StreamServer::try_new(&self.addr[..], move |stream, peer| {
            let handler: &Handler = &handler;
            if let Err(e) = serve_connection(stream, peer, &state, handler) {
                log::debug!("connection from {peer}: {e}");
            }
        })?
        .reuse_port(self.reuse_port);
        if let Some(n) = self.max_connections {
            // A client waiting for a slot gets one an idle keep-alive connection held.
            let state = shared.clone();
            inner = inner.max_connections(n).on_backlog(move || state.relieve());
        }
        inner.start()?;
        Ok(Server { inner, shared })
    }

    /// Serve on `threads` OS threads, each with its own hub and its own listening socket on
    /// the same port (`SO_REUSEPORT`, the kernel spreads connections over them): one hub per
    /// core. The handler is shared by the threads, so it must be `Send + Sync`.
    ///
    /// # Errors
    /// As [`serve`](Builder::serve), from the first thread that failed.
    ///
    /// ```
    /// use std::io::{Read, Write};
    /// let server = gevent_http::Server::builder()
    ///     .addr("127.0.0.1:0")
    ///     .serve_on_threads(2, |_req| http::Response::new("hi"))
    ///     .unwrap();
    /// let mut c = std::net::TcpStream::connect(server.local_addr()).unwrap();
    /// c.write_all(b"GET / HTTP/1.0\r\n\r\n").unwrap();
    /// let mut answer = String::new();
    /// c.read_to_string(&mut answer).unwrap();
    /// assert!(answer.ends_with("\r\n\r\nhi"));
    /// server.stop(None).unwrap();
    /// ```
    pub fn serve_on_threads<B, F>(self, threads: usize, handler: F) -> io::Result<ThreadedServer>
    where
        B: IntoBody,
        F: Fn(Request<Body>) -> Response<B> + Send + Sync + 'static,
    {
        self.check()?;
        let handler = Arc::new(handler);
        let first = *self
            .addr
            .first()
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no address to bind"))?;
        let builder = self.reuse_port(true);
        gevent_io::server::spawn_on_threads(first, threads, "http-server", move |addr| {
            let h = handler.clone();
            let server = builder.clone().addr(addr).serve(move |req| h(req))?;
            let bound = server.local_addr()?;
            Ok((bound, move |grace| server.stop(grace)))
        })
    }

    fn reuse_port(mut self, yes: bool) -> Builder {
        self.reuse_port = yes;
        self
    }
}

/// A running HTTP/1.1 server on the current thread's hub; `!Send`.
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
/// server.stop(None);
/// ```
pub struct Server {
    inner: StreamServer,
    shared: Rc<Shared>,
}

impl fmt::Debug for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Server")
            .field("local_addr", &self.local_addr().ok())
            .field("connections", &self.connections())
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
            body_read_timeout: None,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_drain: DEFAULT_MAX_DRAIN,
            server_header: None,
            max_connections: None,
            access_log: true,
            reuse_port: false,
            addr_error: None,
            #[cfg(feature = "tls")]
            tls: None,
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
    /// # s.stop(None);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }

    /// How many connections are open.
    ///
    /// ```
    /// let s = gevent_http::Server::builder().addr("127.0.0.1:0").serve(|_| http::Response::new("")).unwrap();
    /// assert_eq!(s.connections(), 0);
    /// # s.stop(None);
    /// ```
    pub fn connections(&self) -> usize {
        self.inner.connections()
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
    /// greenlet::spawn_later(std::time::Duration::from_millis(10), move || { s2.stop(None); });
    /// s.serve_forever().unwrap();
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        self.inner.serve_forever()
    }

    /// Stop gracefully: stop accepting (the listener is closed), close the idle keep-alive
    /// connections at once (one whose next request has already arrived answers it first),
    /// let the requests in flight finish (their responses carry `Connection: close`) for at
    /// most `timeout` (`None`: [`DEFAULT_STOP_TIMEOUT`]), then kill the connections still
    /// running. Returns how many had to be killed. A response cut short by a kill ends with a
    /// reset (not a clean close the client could take for its end); a connection killed while
    /// it only waits, its answer out (for the rest of a body nobody reads, or in an upgraded
    /// stream), closes cleanly.
    ///
    /// What the connections handed on is not the server's any more: an
    /// [`Upgraded`](crate::upgrade::Upgraded) stream (a WebSocket, …) is not told of the stop
    /// — its closure runs until it returns, or is killed with its connection when the grace
    /// period ends — and a greenlet the handler spawned (to read the body, say) is neither
    /// waited for nor killed. Called from a handler, the stop does not wait for that
    /// handler's own connection, which closes after its response.
    ///
    /// ```
    /// let s = gevent_http::Server::builder().addr("127.0.0.1:0").serve(|_| http::Response::new("")).unwrap();
    /// assert_eq!(s.stop(Some(std::time::Duration::from_secs(5))), 0);
    /// ```
    pub fn stop(&self, timeout: Option<Duration>) -> usize {
        self.shared.begin_stop();
        self.inner
            .stop(Some(timeout.unwrap_or(DEFAULT_STOP_TIMEOUT)))
    }
}
