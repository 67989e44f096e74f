//! Servers: accept loops that run one greenlet per connection ([`StreamServer`]) or per
//! datagram ([`DatagramServer`]), gevent's `server` module.
//!
//! ```
//! use gevent_io::server::StreamServer;
//! use std::io::{Read, Write};
//!
//! let server = StreamServer::new("127.0.0.1:0", |mut conn, _peer| {
//!     let mut buf = [0u8; 64];
//!     while let Ok(n @ 1..) = conn.read(&mut buf) {
//!         conn.write_all(&buf[..n]).unwrap();
//!     }
//! });
//! server.start().unwrap();
//! let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
//! c.write_all(b"hi").unwrap();
//! let mut back = [0u8; 2];
//! c.read_exact(&mut back).unwrap();
//! assert_eq!(&back, b"hi");
//! server.stop(None);
//! ```

#![forbid(unsafe_code)]

use crate::net::{TcpListener, TcpStream, UdpSocket};
use crate::net::{ToSocketAddrs, resolve};
use greenlet::{Builder, Event, Greenlet};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// First back-off after an accept error; it doubles up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(10);
const MAX_BACKOFF: Duration = Duration::from_secs(1);
/// How long [`StreamServer::stop`] waits for handlers by default (gevent's `stop_timeout`).
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(1);
/// How often a thread that runs a [`StreamServer`] gives back what its idle greenlets'
/// stacks hold below their frames, unless an interval was set already (see
/// [`StreamServer::start`]): 10 s.
pub const STACK_TRIM_INTERVAL: Duration = Duration::from_secs(10);
/// Connections accepted in a row before the accept loop lets other greenlets run.
const ACCEPTS_PER_WAKEUP: u32 = 100;

type Handler = Rc<dyn Fn(TcpStream, SocketAddr)>;
type DatagramHandler = Rc<dyn Fn(Vec<u8>, SocketAddr, &UdpSocket)>;

struct State {
    addr: Vec<SocketAddr>,
    reuse_port: bool,
    handler: Handler,
    max_connections: Option<usize>,
    /// Told when every slot is taken and a client waits in the backlog.
    on_backlog: Option<Rc<dyn Fn()>>,
    /// Watches the listener for a waiting client while every slot is taken.
    backlog_watch: RefCell<Option<ev_loop::Io>>,
    /// Set by that watch when it saw a client waiting.
    backlog_seen: Cell<bool>,
    stop_timeout: Duration,
    listener: RefCell<Option<Rc<TcpListener>>>,
    acceptor: RefCell<Option<Greenlet<()>>>,
    handlers: RefCell<HashMap<u64, Greenlet<()>>>,
    /// Set whenever a handler finishes (wakes an accept loop waiting for a free slot, and
    /// `stop`).
    changed: Event,
    stopped: Cell<bool>,
    accept_errors: Cell<u64>,
}

/// A TCP server: accepts connections and runs `handler(stream, peer)` in a new greenlet for
/// each; the stream is closed when the handler returns (unless it kept a clone). `!Send`.
///
/// Connections are refused before [`start`](StreamServer::start) (the socket is bound and
/// listening only from then on), served while it runs, refused after
/// [`stop`](StreamServer::stop). A handler that panics is reported and the server keeps
/// serving. Accept errors such as `EMFILE`, `ENFILE` or `ECONNABORTED` are logged and retried
/// with a back-off of 10 ms doubling up to 1 s. A flood of connections does not starve the
/// other greenlets: the accept loop lets them run after every 100 connections in a row.
///
/// ```
/// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
/// assert!(s.local_addr().is_err()); // not started yet
/// s.start().unwrap();
/// assert!(s.local_addr().is_ok());
/// s.stop(None);
/// ```
pub struct StreamServer {
    state: Rc<State>,
}

impl StreamServer {
    /// A server for `addr` (port 0 picks a free port at `start`). Nothing is bound yet.
    ///
    /// # Panics
    /// If `addr` cannot be resolved; use [`StreamServer::try_new`] to handle that.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// # drop(s);
    /// ```
    pub fn new(
        addr: impl ToSocketAddrs,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> StreamServer {
        StreamServer::try_new(addr, handler).expect("StreamServer address")
    }

    /// Like [`new`](StreamServer::new), failing if `addr` does not resolve.
    ///
    /// ```
    /// assert!(gevent_io::server::StreamServer::try_new("no-such-host.invalid:80", |_, _| {}).is_err());
    /// ```
    pub fn try_new(
        addr: impl ToSocketAddrs,
        handler: impl Fn(TcpStream, SocketAddr) + 'static,
    ) -> io::Result<StreamServer> {
        let addr = resolve(addr)?;
        Ok(StreamServer {
            state: Rc::new(State {
                addr,
                reuse_port: false,
                handler: Rc::new(handler),
                max_connections: None,
                on_backlog: None,
                backlog_watch: RefCell::new(None),
                backlog_seen: Cell::new(false),
                stop_timeout: DEFAULT_STOP_TIMEOUT,
                listener: RefCell::new(None),
                acceptor: RefCell::new(None),
                handlers: RefCell::new(HashMap::new()),
                changed: Event::new(),
                stopped: Cell::new(false),
                accept_errors: Cell::new(0),
            }),
        })
    }

    fn state_mut(&mut self) -> &mut State {
        Rc::get_mut(&mut self.state).expect("configure the server before starting it")
    }

    /// Serve at most `n` connections at once (gevent's pool): while `n` handlers run, further
    /// connections wait in the listen backlog.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {}).max_connections(2);
    /// # drop(s);
    /// ```
    pub fn max_connections(mut self, n: usize) -> StreamServer {
        self.state_mut().max_connections = Some(n.max(1));
        self
    }

    /// With [`max_connections`](StreamServer::max_connections): call `f` (in the accept
    /// loop's greenlet) when every slot is taken and a client waits in the listen backlog —
    /// once for each such wait: again only after a handler has finished and the slots have
    /// filled up again. A server whose connections may sit idle (HTTP keep-alive) frees a slot
    /// for the waiting client there, by ending an idle connection, as nginx does when it runs
    /// out of connections. `f` must not wait for long (the server accepts nothing meanwhile)
    /// nor call [`stop`](StreamServer::stop) (which ends the accept loop it runs in); a panic
    /// in it is logged.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {})
    ///     .max_connections(100)
    ///     .on_backlog(|| log::info!("full, and a client waits"));
    /// # drop(s);
    /// ```
    pub fn on_backlog(mut self, f: impl Fn() + 'static) -> StreamServer {
        self.state_mut().on_backlog = Some(Rc::new(f));
        self
    }

    /// How long [`stop`](StreamServer::stop) waits for running handlers when called with
    /// `None` (default [`DEFAULT_STOP_TIMEOUT`], 1 s).
    ///
    /// ```
    /// use std::time::Duration;
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {})
    ///     .stop_timeout(Duration::from_secs(5));
    /// # drop(s);
    /// ```
    pub fn stop_timeout(mut self, timeout: Duration) -> StreamServer {
        self.state_mut().stop_timeout = timeout;
        self
    }

    /// Set `SO_REUSEPORT`, so servers on several threads can share the port (see
    /// [`serve_on_threads`]).
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {}).reuse_port(true);
    /// # drop(s);
    /// ```
    pub fn reuse_port(mut self, yes: bool) -> StreamServer {
        self.state_mut().reuse_port = yes;
        self
    }

    /// Bind, listen and start accepting in a background greenlet.
    ///
    /// A connection's greenlet keeps every stack page its handler once touched, for as long
    /// as it lives: idle keep-alive connections would hold the depth of their busiest
    /// request. Starting a server therefore has the thread's hub give back, every
    /// [`STACK_TRIM_INTERVAL`], the pages its greenlets that ran since hold below their
    /// frames ([`greenlet::hub::set_stack_trim_interval`]), unless an interval was set
    /// already.
    ///
    /// # Errors
    /// Binding errors (`AddrInUse`, …), or `AlreadyExists` if it was started already.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// s.start().unwrap();
    /// assert_eq!(s.start().unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// s.stop(None);
    /// ```
    pub fn start(&self) -> io::Result<()> {
        let st = &self.state;
        if st.listener.borrow().is_some() || st.stopped.get() {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the server was already started",
            ));
        }
        let listener = Rc::new(if st.reuse_port {
            TcpListener::bind_reuse_port(&st.addr[..])?
        } else {
            TcpListener::bind(&st.addr[..])?
        });
        *st.listener.borrow_mut() = Some(listener.clone());
        if greenlet::hub::stack_trim_interval().is_none() {
            greenlet::hub::set_stack_trim_interval(Some(STACK_TRIM_INTERVAL));
        }
        let state = self.state.clone();
        let acceptor = Builder::new()
            .name("StreamServer accept loop")
            .spawn(move || accept_loop(&state, &listener))
            .map_err(io::Error::other)?;
        *st.acceptor.borrow_mut() = Some(acceptor);
        Ok(())
    }

    /// Start (if needed) and serve until [`stop`](StreamServer::stop) is called from another
    /// greenlet.
    ///
    /// # Errors
    /// As for [`start`](StreamServer::start).
    ///
    /// ```
    /// use std::rc::Rc;
    /// let s = Rc::new(gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {}));
    /// let s2 = s.clone();
    /// greenlet::spawn_later(std::time::Duration::from_millis(10), move || s2.stop(None));
    /// s.serve_forever().unwrap();
    /// ```
    pub fn serve_forever(&self) -> io::Result<()> {
        if self.state.listener.borrow().is_none() {
            self.start()?;
        }
        let acceptor = self.state.acceptor.borrow().clone();
        if let Some(a) = acceptor {
            a.wait(None).map_err(io::Error::from)?;
        }
        Ok(())
    }

    /// Stop accepting (the listener is closed, new connections are refused), wait for running
    /// handlers for at most `timeout` (`None`: the server's
    /// [`stop_timeout`](StreamServer::stop_timeout), 1 s by default), then kill the rest.
    /// Returns how many handlers had to be killed.
    ///
    /// Called from one of the server's own handlers, it neither waits for nor kills that one
    /// (the caller): its connection ends when it returns, as usual.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// s.start().unwrap();
    /// assert_eq!(s.stop(Some(std::time::Duration::from_secs(1))), 0);
    /// ```
    pub fn stop(&self, timeout: Option<Duration>) -> usize {
        let st = &self.state;
        let me = greenlet::park::current().id();
        let others = || {
            let handlers = st.handlers.borrow();
            handlers.len() - usize::from(handlers.contains_key(&me))
        };
        st.stopped.set(true);
        // Not watching the listener's fd past its close.
        st.backlog_watch.borrow_mut().take();
        if let Some(l) = st.listener.borrow_mut().take() {
            l.close();
        }
        if let Some(a) = st.acceptor.borrow_mut().take() {
            a.kill();
        }
        let deadline = crate::deadline_after(timeout.unwrap_or(st.stop_timeout));
        while others() > 0 {
            let left = match deadline.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left,
                _ => break,
            };
            st.changed.clear();
            if !matches!(st.changed.wait_timeout(left), Ok(true)) {
                break;
            }
        }
        let rest: Vec<Greenlet<()>> = st
            .handlers
            .borrow()
            .values()
            .filter(|g| g.id() != me)
            .cloned()
            .collect();
        for g in &rest {
            g.kill();
        }
        rest.len()
    }

    /// The bound address (an error before `start`).
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// s.start().unwrap();
    /// assert!(s.local_addr().unwrap().port() > 0);
    /// # s.stop(None);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        match self.state.listener.borrow().as_ref() {
            Some(l) => l.local_addr(),
            None => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "the server is not started",
            )),
        }
    }

    /// How many handlers are running.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// assert_eq!(s.connections(), 0);
    /// ```
    pub fn connections(&self) -> usize {
        self.state.handlers.borrow().len()
    }

    /// How many accept errors were survived so far.
    ///
    /// ```
    /// let s = gevent_io::server::StreamServer::new("127.0.0.1:0", |_, _| {});
    /// assert_eq!(s.accept_errors(), 0);
    /// ```
    pub fn accept_errors(&self) -> u64 {
        self.state.accept_errors.get()
    }
}

impl fmt::Debug for StreamServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamServer")
            .field("addr", &self.state.addr)
            .field("connections", &self.connections())
            .field("stopped", &self.state.stopped.get())
            .finish()
    }
}

fn accept_loop(st: &Rc<State>, listener: &TcpListener) {
    let mut backoff = MIN_BACKOFF;
    let mut in_a_row = 0u32;
    loop {
        if let Some(max) = st.max_connections {
            let mut told = false;
            while st.handlers.borrow().len() >= max {
                st.changed.clear();
                let watch =
                    (!told && st.on_backlog.is_some()).then(|| BacklogWatch::start(st, listener));
                let woken = st.changed.wait();
                drop(watch);
                if woken.is_err() {
                    return;
                }
                if !st.backlog_seen.take() {
                    // A handler finished: a later wait may be told again.
                    told = false;
                } else if st.handlers.borrow().len() >= max {
                    told = true;
                    if let Some(f) = st.on_backlog.clone() {
                        match panic::catch_unwind(AssertUnwindSafe(|| f())) {
                            Ok(()) => {}
                            Err(p) if greenlet::is_kill(&*p) => panic::resume_unwind(p),
                            Err(_) => log::error!("StreamServer: the on_backlog callback panicked"),
                        }
                    }
                }
            }
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff = MIN_BACKOFF;
                spawn_handler(st, stream, peer);
                in_a_row += 1;
                if in_a_row >= ACCEPTS_PER_WAKEUP {
                    in_a_row = 0;
                    if greenlet::yield_now().is_err() {
                        return;
                    }
                }
            }
            Err(e) if st.stopped.get() || e.raw_os_error() == Some(libc::EBADF) => return,
            Err(e) => {
                in_a_row = 0;
                st.accept_errors.set(st.accept_errors.get() + 1);
                log::warn!("StreamServer: accept failed: {e}; retrying in {backoff:?}");
                if greenlet::sleep(backoff).is_err() {
                    return;
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// A watch of the listener for a client waiting in its backlog (it wakes the accept loop,
/// once), kept in the server's state (so that a stop ends it before the listener closes) and
/// ended when this is dropped, a kill's unwinding included.
struct BacklogWatch<'a>(&'a State);

impl Drop for BacklogWatch<'_> {
    fn drop(&mut self) {
        self.0.backlog_watch.borrow_mut().take();
    }
}

impl<'a> BacklogWatch<'a> {
    fn start(st: &'a Rc<State>, listener: &TcpListener) -> BacklogWatch<'a> {
        let weak = Rc::downgrade(st);
        let watch = ev_loop::Io::new(
            &greenlet::hub_loop(),
            listener.as_raw_fd(),
            ev_loop::Events::READ,
            move |io, _| {
                io.stop();
                if let Some(st) = weak.upgrade() {
                    st.backlog_seen.set(true);
                    st.changed.set();
                }
            },
        );
        match watch {
            Ok(io) => {
                io.start();
                *st.backlog_watch.borrow_mut() = Some(io);
            }
            Err(e) => log::warn!("StreamServer: cannot watch the listen backlog: {e}"),
        }
        BacklogWatch(st)
    }
}

fn spawn_handler(st: &Rc<State>, stream: TcpStream, peer: SocketAddr) {
    let handler = st.handler.clone();
    let spawned = Builder::new()
        .name(format!("connection from {peer}"))
        .spawn(move || handler(stream, peer));
    match spawned {
        Ok(g) => {
            let id = g.id();
            st.handlers.borrow_mut().insert(id, g.clone());
            let weak = Rc::downgrade(st);
            g.rawlink(move || {
                if let Some(st) = weak.upgrade() {
                    st.handlers.borrow_mut().remove(&id);
                    st.changed.set();
                }
            });
        }
        Err(e) => log::error!("StreamServer: cannot spawn a handler for {peer}: {e}"),
    }
}

/// Run a [`StreamServer`] for `addr` on each of `threads` OS threads, each with its own hub and
/// its own `SO_REUSEPORT` listener, so a service uses every core without shared state. The
/// handler is called on whichever thread accepted the connection. Returns the threads' join
/// handles and the bound address (found by the first thread when the port is 0). The threads
/// serve until the process ends: [`start_on_threads`] returns a handle that can stop them.
///
/// # Errors
/// The error of the first thread that could not start serving (binding, mostly); the threads
/// started before it go on serving, detached (use [`start_on_threads`] to have them stopped).
///
/// ```
/// use std::io::{Read, Write};
/// let (threads, addr) = gevent_io::server::serve_on_threads("127.0.0.1:0", 2, |mut c, _| {
///     let mut b = [0u8; 1];
///     if c.read_exact(&mut b).is_ok() {
///         c.write_all(&b).unwrap();
///     }
/// })
/// .unwrap();
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// c.write_all(b"!").unwrap();
/// let mut b = [0u8; 1];
/// c.read_exact(&mut b).unwrap();
/// assert_eq!(&b, b"!");
/// assert_eq!(threads.len(), 2);
/// ```
pub fn serve_on_threads(
    addr: impl ToSocketAddrs,
    threads: usize,
    handler: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
) -> io::Result<(Vec<std::thread::JoinHandle<io::Result<()>>>, SocketAddr)> {
    let handler = std::sync::Arc::new(handler);
    let mut addr = resolve(addr)?[0];
    let mut handles = Vec::new();
    for i in 0..threads.max(1) {
        let h = handler.clone();
        let started = start_thread(addr, &format!("server-{i}"), move |addr, ready| {
            let server = StreamServer::new(addr, move |c, p| h(c, p)).reuse_port(true);
            server.start()?;
            ready.send(server.local_addr()?, ());
            server.serve_forever()
        })?;
        addr = started.bound;
        handles.push(started.handle);
    }
    Ok((handles, addr))
}

/// Where a server thread started by [`start_thread`] reports that it serves: the address it
/// bound and what the starting thread keeps of it.
struct Ready<T>(std::sync::mpsc::Sender<(SocketAddr, T)>);

impl<T> Ready<T> {
    fn send(self, bound: SocketAddr, keep: T) {
        // The starting thread waits for this message, so it is only ever lost if that thread
        // is gone.
        let _ = self.0.send((bound, keep));
    }
}

/// A server thread that serves, from [`start_thread`].
struct Started<T, R> {
    handle: std::thread::JoinHandle<io::Result<R>>,
    bound: SocketAddr,
    keep: T,
}

/// Start an OS thread named `name` that runs `run(addr, ready)`: it binds `addr`, starts
/// serving on its own hub and says so through `ready` before it goes on; what it returns is
/// the thread's result. Returns once the thread is serving; the thread's error (joined) if it
/// returned before that.
fn start_thread<T, R>(
    addr: SocketAddr,
    name: &str,
    run: impl FnOnce(SocketAddr, Ready<T>) -> io::Result<R> + Send + 'static,
) -> io::Result<Started<T, R>>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let (tx, rx) = std::sync::mpsc::channel();
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || run(addr, Ready(tx)))?;
    match rx.recv() {
        Ok((bound, keep)) => Ok(Started {
            handle,
            bound,
            keep,
        }),
        // `ready` was dropped unused: the thread ended (or is ending) without serving.
        Err(_) => Err(match handle.join() {
            Ok(Err(e)) => e,
            Ok(Ok(_)) => io::Error::other("a server thread ended before it served"),
            Err(_) => io::Error::other("a server thread panicked before it served"),
        }),
    }
}

/// What tells one server thread of a [`ThreadedServer`] to stop: the handlers' grace period.
type StopSetter = greenlet::AsyncSetter<Option<Duration>>;

/// A server running on several OS threads, one hub each, from [`start_on_threads`] (a
/// [`StreamServer`] per thread) or [`spawn_on_threads`] (any server): the bound address, and
/// [`stop`](ThreadedServer::stop), which stops every thread's server gracefully (as
/// [`StreamServer::stop`]) and joins the threads. Dropping it stops it too (with the default
/// grace period).
///
/// ```
/// use std::io::{Read, Write};
/// let server = gevent_io::server::start_on_threads("127.0.0.1:0", 2, |mut c, _| {
///     let mut b = [0u8; 1];
///     if c.read_exact(&mut b).is_ok() {
///         c.write_all(&b).unwrap();
///     }
/// })
/// .unwrap();
/// let addr = server.local_addr();
/// let mut c = std::net::TcpStream::connect(addr).unwrap();
/// c.write_all(b"!").unwrap();
/// let mut b = [0u8; 1];
/// c.read_exact(&mut b).unwrap();
/// assert_eq!(&b, b"!");
/// drop(c);
/// assert_eq!(server.stop(None).unwrap(), 0); // no handler had to be killed
/// assert!(std::net::TcpStream::connect(addr).is_err());
/// ```
pub struct ThreadedServer {
    addr: SocketAddr,
    threads: Vec<(std::thread::JoinHandle<io::Result<usize>>, StopSetter)>,
}

impl ThreadedServer {
    /// The bound address (shared by every thread's listener).
    ///
    /// ```
    /// let s = gevent_io::server::start_on_threads("127.0.0.1:0", 1, |_, _| {}).unwrap();
    /// assert!(s.local_addr().port() > 0);
    /// ```
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// How many threads serve.
    ///
    /// ```
    /// let s = gevent_io::server::start_on_threads("127.0.0.1:0", 3, |_, _| {}).unwrap();
    /// assert_eq!(s.threads(), 3);
    /// ```
    pub fn threads(&self) -> usize {
        self.threads.len()
    }

    /// Stop every thread's server as [`StreamServer::stop`] does (listeners closed at once,
    /// running handlers given at most `timeout` to finish, `None`: the server's default, then
    /// killed), and join the threads; the caller waits cooperatively (the join runs on the
    /// thread pool). Returns how many handlers had to be killed, over all threads.
    ///
    /// # Errors
    /// A thread's error (an `io::ErrorKind::Other` for one that panicked), after every thread
    /// has been joined; or the wait's.
    ///
    /// ```
    /// let s = gevent_io::server::start_on_threads("127.0.0.1:0", 2, |_, _| {}).unwrap();
    /// let addr = s.local_addr();
    /// assert_eq!(s.stop(Some(std::time::Duration::from_secs(1))).unwrap(), 0);
    /// assert!(std::net::TcpStream::connect(addr).is_err());
    /// ```
    pub fn stop(mut self, timeout: Option<Duration>) -> io::Result<usize> {
        self.stop_all(timeout)
    }

    fn stop_all(&mut self, timeout: Option<Duration>) -> io::Result<usize> {
        let threads = std::mem::take(&mut self.threads);
        let mut handles = Vec::with_capacity(threads.len());
        for (handle, stop) in threads {
            stop.set(timeout);
            handles.push(handle);
        }
        let joined = greenlet::threadpool::spawn_blocking(move || {
            handles
                .into_iter()
                .map(|h| match h.join() {
                    Ok(r) => r,
                    Err(_) => Err(io::Error::other("a server thread panicked")),
                })
                .collect::<Vec<io::Result<usize>>>()
        })
        .join();
        let results = match joined {
            Ok(r) => r,
            Err(greenlet::JoinError::Wait(e)) => return Err(e.into()),
            Err(e) => return Err(io::Error::other(e.to_string())),
        };
        let mut killed = 0;
        for r in results {
            killed += r?;
        }
        Ok(killed)
    }
}

impl Drop for ThreadedServer {
    fn drop(&mut self) {
        if !self.threads.is_empty()
            && let Err(e) = self.stop_all(None)
        {
            log::error!("ThreadedServer: stopping on drop: {e}");
        }
    }
}

impl fmt::Debug for ThreadedServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadedServer")
            .field("addr", &self.addr)
            .field("threads", &self.threads.len())
            .finish()
    }
}

/// Run a [`StreamServer`] for `addr` on each of `threads` OS threads (at least 1), as
/// [`serve_on_threads`] does (a hub and a `SO_REUSEPORT` listener per thread), and return a
/// [`ThreadedServer`] that stops them all gracefully and joins them.
///
/// # Errors
/// The first bind error (the threads started before it are stopped and joined).
///
/// ```
/// let s = gevent_io::server::start_on_threads("127.0.0.1:0", 2, |_, _| {}).unwrap();
/// assert_eq!(s.threads(), 2);
/// s.stop(None).unwrap();
/// ```
pub fn start_on_threads(
    addr: impl ToSocketAddrs,
    threads: usize,
    handler: impl Fn(TcpStream, SocketAddr) + Send + Sync + 'static,
) -> io::Result<ThreadedServer> {
    let handler = std::sync::Arc::new(handler);
    spawn_on_threads(resolve(addr)?[0], threads, "server", move |addr| {
        let h = handler.clone();
        let s = StreamServer::new(addr, move |c, p| h(c, p)).reuse_port(true);
        s.start()?;
        let bound = s.local_addr()?;
        Ok((bound, move |grace| s.stop(grace)))
    })
}

/// Run a server of any kind on each of `threads` OS threads (at least 1), one hub each, and
/// return a [`ThreadedServer`] that stops them all and joins them — what
/// [`start_on_threads`] does for a [`StreamServer`], for servers built on it (an HTTP server,
/// say).
///
/// `start(addr)` runs on each new thread (named `NAME-0`, `NAME-1`, …): it binds (with
/// `SO_REUSEPORT`, so that the threads share the port) and starts serving on that thread's hub,
/// and returns the address it bound and what stops it gracefully within a grace period
/// (returning how many handlers had to be killed). The first thread binds `addr`, the others
/// the address the first one got (so port 0 picks one free port for all). Each thread then
/// serves until [`ThreadedServer::stop`].
///
/// # Errors
/// The first thread's error that `start` returned (the threads started before it are stopped
/// and joined).
///
/// ```
/// use std::net::SocketAddr;
/// let addr: SocketAddr = "127.0.0.1:0".parse().unwrap();
/// let s = gevent_io::server::spawn_on_threads(addr, 2, "echo", |addr| {
///     let server = gevent_io::server::StreamServer::new(addr, |_, _| {}).reuse_port(true);
///     server.start()?;
///     let bound = server.local_addr()?;
///     Ok((bound, move |grace| server.stop(grace)))
/// })
/// .unwrap();
/// assert_eq!(s.threads(), 2);
/// assert_eq!(s.stop(None).unwrap(), 0);
/// ```
pub fn spawn_on_threads<S>(
    addr: SocketAddr,
    threads: usize,
    name: &str,
    start: impl Fn(SocketAddr) -> io::Result<(SocketAddr, S)> + Send + Sync + 'static,
) -> io::Result<ThreadedServer>
where
    S: FnOnce(Option<Duration>) -> usize + 'static,
{
    let start = std::sync::Arc::new(start);
    let mut server = ThreadedServer {
        addr,
        threads: Vec::new(),
    };
    for i in 0..threads.max(1) {
        let start = start.clone();
        // On an error, `server` drops: the threads started before are stopped and joined.
        let started = start_thread(server.addr, &format!("{name}-{i}"), move |addr, ready| {
            let stop_signal: greenlet::AsyncResult<Option<Duration>> = greenlet::AsyncResult::new();
            let (bound, stop) = start(addr)?;
            ready.send(bound, stop_signal.setter());
            // Serves (the server's greenlets run on this hub) until told to stop.
            let grace = stop_signal
                .get()
                .map_err(|e| io::Error::other(format!("waiting for stop: {e:?}")))?;
            Ok(stop(grace))
        })?;
        server.addr = started.bound;
        server.threads.push((started.handle, started.keep));
    }
    Ok(server)
}

/// A UDP server: runs `handler(data, peer, socket)` in a new greenlet for each datagram
/// (gevent's `DatagramServer`). `!Send`.
///
/// ```
/// use gevent_io::server::DatagramServer;
/// let s = DatagramServer::bind("127.0.0.1:0", |data, peer, sock| {
///     sock.send_to(&data, peer).unwrap();
/// })
/// .unwrap();
/// s.start().unwrap();
/// let c = gevent_io::net::UdpSocket::bind("127.0.0.1:0").unwrap();
/// c.send_to(b"echo?", s.local_addr().unwrap()).unwrap();
/// let mut buf = [0u8; 16];
/// let (n, _) = c.recv_from(&mut buf).unwrap();
/// assert_eq!(&buf[..n], b"echo?");
/// s.stop();
/// ```
pub struct DatagramServer {
    socket: UdpSocket,
    handler: DatagramHandler,
    receiver: RefCell<Option<Greenlet<()>>>,
}

impl DatagramServer {
    /// Bind a UDP socket to `addr`.
    ///
    /// # Errors
    /// Binding errors.
    ///
    /// ```
    /// let s = gevent_io::server::DatagramServer::bind("127.0.0.1:0", |_, _, _| {}).unwrap();
    /// # drop(s);
    /// ```
    pub fn bind(
        addr: impl ToSocketAddrs,
        handler: impl Fn(Vec<u8>, SocketAddr, &UdpSocket) + 'static,
    ) -> io::Result<DatagramServer> {
        Ok(DatagramServer {
            socket: UdpSocket::bind(addr)?,
            handler: Rc::new(handler),
            receiver: RefCell::new(None),
        })
    }

    /// Start receiving in a background greenlet.
    ///
    /// # Errors
    /// If no greenlet can be spawned.
    ///
    /// ```
    /// let s = gevent_io::server::DatagramServer::bind("127.0.0.1:0", |_, _, _| {}).unwrap();
    /// s.start().unwrap();
    /// s.stop();
    /// ```
    pub fn start(&self) -> io::Result<()> {
        let (sock, handler) = (self.socket.clone(), self.handler.clone());
        let g = Builder::new()
            .name("DatagramServer")
            .spawn(move || {
                let mut buf = vec![0u8; 65536];
                while let Ok((n, peer)) = sock.recv_from(&mut buf) {
                    let (data, h, s) = (buf[..n].to_vec(), handler.clone(), sock.clone());
                    let spawned = Builder::new()
                        .name(format!("datagram from {peer}"))
                        .spawn(move || h(data, peer, &s));
                    if let Err(e) = spawned {
                        log::error!("DatagramServer: cannot spawn a handler: {e}");
                    }
                }
            })
            .map_err(io::Error::other)?;
        *self.receiver.borrow_mut() = Some(g);
        Ok(())
    }

    /// The bound address.
    ///
    /// ```
    /// let s = gevent_io::server::DatagramServer::bind("127.0.0.1:0", |_, _, _| {}).unwrap();
    /// assert!(s.local_addr().unwrap().port() > 0);
    /// ```
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Stop receiving and close the socket.
    ///
    /// ```
    /// let s = gevent_io::server::DatagramServer::bind("127.0.0.1:0", |_, _, _| {}).unwrap();
    /// s.stop();
    /// ```
    pub fn stop(&self) {
        if let Some(g) = self.receiver.borrow_mut().take() {
            g.kill();
        }
        self.socket.close();
    }
}

impl fmt::Debug for DatagramServer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatagramServer")
            .field("socket", &self.socket)
            .finish()
    }
}
