//! The error type of the safe loop.

#![forbid(unsafe_code)]

use std::fmt;
use std::io;

/// Why a loop or watcher operation was refused.
///
/// Every bad input the safe API can receive ends here instead of in a libev `assert` or
/// `abort`.
///
/// ```
/// use ev_loop::{Error, Loop, Signal};
/// let lp = Loop::new().unwrap();
/// let err = Signal::new(&lp, 0, |_, _| {}).unwrap_err();
/// assert!(matches!(err, Error::InvalidSignal(0)));
/// assert!(err.to_string().contains("signal number 0"));
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// libev could not create the loop (for example, no requested backend is available).
    LoopCreation {
        /// The backend bits that were asked for (0 means "automatic").
        backends: u32,
    },
    /// The default loop already belongs to another thread.
    DefaultLoopInUse,
    /// The file descriptor is negative or not open.
    BadFd {
        /// The descriptor that was passed.
        fd: i32,
        /// What the OS said about it.
        source: io::Error,
    },
    /// An io watcher needs `READ`, `WRITE` or both, and nothing else.
    InvalidEvents(i32),
    /// The signal number is outside `1..=64`, or is SIGKILL/SIGSTOP, which cannot be caught.
    InvalidSignal(i32),
    /// Another loop already has watchers for this signal; libev allows one loop per signal.
    SignalInUse(i32),
    /// A time value was NaN, infinite or negative where that makes no sense.
    InvalidTime {
        /// Which argument.
        what: &'static str,
        /// The value that was passed.
        value: f64,
    },
    /// A priority outside libev's range `-2..=2`.
    InvalidPriority(i32),
    /// The operation is not allowed while the watcher is active or pending (libev forbids it).
    WatcherActive(&'static str),
    /// A child watcher's pid must be a process id, or 0 for "any child".
    InvalidPid(i32),
    /// The operation is only possible on the default loop (child watchers).
    NotDefaultLoop(&'static str),
    /// The watcher belongs to another loop (an [`RcIo`](crate::RcIo) is bound to the loop of
    /// its first start).
    OtherLoop,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::LoopCreation { backends } => {
                write!(
                    f,
                    "libev could not create a loop with backends {backends:#x}"
                )
            }
            Error::DefaultLoopInUse => {
                write!(
                    f,
                    "the default libev loop is already owned by another thread"
                )
            }
            Error::BadFd { fd, source } => write!(f, "bad file descriptor {fd}: {source}"),
            Error::InvalidEvents(e) => write!(
                f,
                "invalid io events {e:#x}: expected READ, WRITE or READ | WRITE"
            ),
            Error::InvalidSignal(s) => write!(
                f,
                "invalid signal number {s}: expected 1..=64 and not SIGKILL or SIGSTOP"
            ),
            Error::SignalInUse(s) => write!(
                f,
                "signal {s} is already watched by another loop (libev allows one loop per signal)"
            ),
            Error::InvalidTime { what, value } => write!(f, "invalid {what}: {value}"),
            Error::InvalidPriority(p) => {
                write!(f, "invalid priority {p}: expected -2..=2")
            }
            Error::WatcherActive(op) => {
                write!(f, "cannot {op} while the watcher is active or pending")
            }
            Error::InvalidPid(p) => write!(f, "invalid pid {p}: expected a pid or 0 for any child"),
            Error::NotDefaultLoop(what) => write!(f, "{what} only work on the default loop"),
            Error::OtherLoop => write!(f, "the watcher belongs to another loop"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::BadFd { source, .. } => Some(source),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        let kind = match &e {
            Error::BadFd { source, .. } => source.kind(),
            Error::LoopCreation { .. } => io::ErrorKind::Other,
            _ => io::ErrorKind::InvalidInput,
        };
        io::Error::new(kind, e)
    }
}

/// `Result` with this crate's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
