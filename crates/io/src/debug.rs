//! An opt-in debug endpoint (the stand-in for gevent's `gevent.backdoor`): a plain thread
//! listening on a loopback TCP port or a Unix socket that answers every connection with the
//! run info of every hub thread of the process
//! ([`all_hubs_run_info`](greenlet::monitor::all_hubs_run_info): each thread's greenlets, their
//! state and where they were spawned), then closes it. Where gevent's backdoor opens a Python
//! console inside the process, this one only reports: read it with `nc 127.0.0.1 PORT` or
//! `nc -U PATH`.
//!
//! The endpoint runs on its own OS thread, not in a greenlet, so it answers even while every
//! hub is busy: a hub that does not get to run its loop within the answer timeout (a greenlet
//! computing without yielding, a blocking call outside the hub) is listed as not answering.
//!
//! ```
//! use std::io::Read;
//! let server = gevent_io::debug::serve("127.0.0.1:0").unwrap();
//! let addr = server.local_addr().unwrap();
//! let mut text = String::new();
//! std::net::TcpStream::connect(addr).unwrap().read_to_string(&mut text).unwrap();
//! assert!(text.starts_with("run info of "), "{text}");
//! server.stop();
//! ```

use std::fmt::Write as _;
use std::io::{self, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How long the endpoint waits for the hubs to answer, unless changed with
/// [`DebugServer::set_answer_timeout`]: one second.
///
/// ```
/// assert_eq!(gevent_io::debug::DEFAULT_ANSWER_TIMEOUT, std::time::Duration::from_secs(1));
/// ```
pub const DEFAULT_ANSWER_TIMEOUT: Duration = Duration::from_secs(1);

/// How long writing an answer may take before the connection is given up.
const WRITE_TIMEOUT: Duration = Duration::from_secs(5);

/// The text the endpoint answers with: a header line (`run info of N hub threads, process
/// PID`), then every hub thread's [`HubRunInfo`](greenlet::monitor::HubRunInfo) (its thread,
/// then its greenlets indented, or a line saying that it did not answer within `timeout`).
/// Callable from any thread.
///
/// ```
/// greenlet::yield_now().unwrap(); // this thread has a hub
/// let text = gevent_io::debug::report(std::time::Duration::ZERO);
/// assert!(text.contains("(thread root)"), "{text}");
/// ```
pub fn report(timeout: Duration) -> String {
    let hubs = greenlet::monitor::all_hubs_run_info(timeout);
    let mut out = format!(
        "run info of {} hub threads, process {}\n",
        hubs.len(),
        std::process::id()
    );
    for h in &hubs {
        let _ = write!(out, "{h}");
    }
    out
}

enum Listener {
    Tcp(TcpListener),
    Unix(UnixListener, PathBuf),
}

/// A running debug endpoint (see [`serve`], [`serve_unix`]). [`stop`](Self::stop) it, or drop
/// it, to close the listener and join its thread; a Unix socket's file is removed then.
///
/// ```
/// let server = gevent_io::debug::serve("127.0.0.1:0").unwrap();
/// assert!(server.local_addr().unwrap().ip().is_loopback());
/// assert_eq!(server.path(), None);
/// drop(server); // stops it
/// ```
pub struct DebugServer {
    local_addr: Option<SocketAddr>,
    path: Option<PathBuf>,
    stop: Arc<AtomicBool>,
    timeout_ns: Arc<AtomicU64>,
    thread: Option<JoinHandle<()>>,
}

/// Listen on `addr`, which must be a loopback address (`127.0.0.1:PORT`, `[::1]:PORT`, port 0
/// for a free one), and answer every connection with [`report`] on a thread of its own.
///
/// # Errors
/// `InvalidInput` if `addr` resolves to an address that is not loopback (the endpoint tells
/// anyone who connects about the process's insides); otherwise binding's or spawning the
/// thread's error.
///
/// ```
/// let err = gevent_io::debug::serve("0.0.0.0:0").unwrap_err();
/// assert_eq!(err.kind(), std::io::ErrorKind::InvalidInput);
/// ```
pub fn serve(addr: impl ToSocketAddrs) -> io::Result<DebugServer> {
    let addrs: Vec<SocketAddr> = addr.to_socket_addrs()?.collect();
    if addrs.is_empty() || addrs.iter().any(|a| !a.ip().is_loopback()) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the debug endpoint listens on loopback addresses only",
        ));
    }
    let listener = TcpListener::bind(&addrs[..])?;
    let local = listener.local_addr()?;
    start(Listener::Tcp(listener), Some(local), None)
}

/// Listen on a Unix socket at `path` (which must not exist yet) and answer every connection
/// with [`report`] on a thread of its own. The socket file is removed when the server stops.
///
/// # Errors
/// Binding's error (`AddrInUse` if `path` exists), or spawning the thread's.
///
/// ```
/// use std::io::Read;
/// let path = std::env::temp_dir().join(format!("gevent-debug-doc-{}", std::process::id()));
/// let server = gevent_io::debug::serve_unix(&path).unwrap();
/// let mut text = String::new();
/// std::os::unix::net::UnixStream::connect(&path)
///     .unwrap()
///     .read_to_string(&mut text)
///     .unwrap();
/// assert!(text.starts_with("run info of "));
/// server.stop();
/// assert!(!path.exists());
/// ```
pub fn serve_unix(path: impl AsRef<Path>) -> io::Result<DebugServer> {
    let path = path.as_ref().to_path_buf();
    let listener = UnixListener::bind(&path)?;
    start(Listener::Unix(listener, path.clone()), None, Some(path))
}

fn start(
    listener: Listener,
    local_addr: Option<SocketAddr>,
    path: Option<PathBuf>,
) -> io::Result<DebugServer> {
    let stop = Arc::new(AtomicBool::new(false));
    let timeout_ns = Arc::new(AtomicU64::new(nanos(DEFAULT_ANSWER_TIMEOUT)));
    let (s, t) = (stop.clone(), timeout_ns.clone());
    let spawned = std::thread::Builder::new()
        .name("gevent-debug".into())
        .spawn(move || serve_loop(listener, &s, &t));
    let thread = match spawned {
        Ok(thread) => thread,
        Err(e) => {
            if let Some(p) = &path {
                let _ = std::fs::remove_file(p);
            }
            return Err(e);
        }
    };
    Ok(DebugServer {
        local_addr,
        path,
        stop,
        timeout_ns,
        thread: Some(thread),
    })
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

fn serve_loop(listener: Listener, stop: &AtomicBool, timeout_ns: &AtomicU64) {
    loop {
        let conn: io::Result<Box<dyn Write>> = match &listener {
            Listener::Tcp(l) => l.accept().and_then(|(s, _)| {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Ok(Box::new(s) as Box<dyn Write>)
            }),
            Listener::Unix(l, _) => l.accept().and_then(|(s, _)| {
                s.set_write_timeout(Some(WRITE_TIMEOUT))?;
                Ok(Box::new(s) as Box<dyn Write>)
            }),
        };
        if stop.load(Ordering::Acquire) {
            break;
        }
        match conn {
            Ok(mut c) => {
                let text = report(Duration::from_nanos(timeout_ns.load(Ordering::Relaxed)));
                if let Err(e) = c.write_all(text.as_bytes()) {
                    log::debug!("debug endpoint: writing the answer failed: {e}");
                }
            }
            Err(e) => {
                log::warn!("debug endpoint: accept failed: {e}");
                // Do not spin on a persistent error (EMFILE): give the process a moment.
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
    if let Listener::Unix(_, path) = &listener {
        let _ = std::fs::remove_file(path);
    }
}

impl DebugServer {
    /// The TCP address it listens on (`None` for a Unix socket).
    ///
    /// ```
    /// let server = gevent_io::debug::serve("127.0.0.1:0").unwrap();
    /// assert_ne!(server.local_addr().unwrap().port(), 0);
    /// ```
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The Unix socket's path (`None` for TCP).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-debug-path-{}", std::process::id()));
    /// let server = gevent_io::debug::serve_unix(&path).unwrap();
    /// assert_eq!(server.path(), Some(path.as_path()));
    /// ```
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// How long each answer waits for the hubs (default [`DEFAULT_ANSWER_TIMEOUT`]), from the
    /// next connection on.
    ///
    /// ```
    /// let server = gevent_io::debug::serve("127.0.0.1:0").unwrap();
    /// server.set_answer_timeout(std::time::Duration::from_millis(100));
    /// ```
    pub fn set_answer_timeout(&self, timeout: Duration) {
        self.timeout_ns.store(nanos(timeout), Ordering::Relaxed);
    }

    /// Stop listening and join the endpoint's thread (same as dropping the server). A
    /// connection being answered is finished first.
    ///
    /// ```
    /// gevent_io::debug::serve("127.0.0.1:0").unwrap().stop();
    /// ```
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let Some(thread) = self.thread.take() else {
            return;
        };
        self.stop.store(true, Ordering::Release);
        // Wake the blocked accept with a connection of our own.
        let woke = match (&self.local_addr, &self.path) {
            (Some(a), _) => TcpStream::connect(a).map(drop),
            (None, Some(p)) => UnixStream::connect(p).map(drop),
            (None, None) => Ok(()),
        };
        if let Err(e) = woke {
            // Cannot happen while the thread holds the listener; do not hang on the join.
            log::error!("debug endpoint: cannot wake its thread to stop it: {e}");
            return;
        }
        if thread.join().is_err() {
            log::error!("debug endpoint: its thread panicked");
        }
    }
}

impl Drop for DebugServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

impl std::fmt::Debug for DebugServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DebugServer")
            .field("local_addr", &self.local_addr)
            .field("path", &self.path)
            .field("running", &self.thread.is_some())
            .finish()
    }
}
