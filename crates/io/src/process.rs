//! Cooperative child processes shaped like `std::process` (gevent's `gevent.subprocess`).
//!
//! [`Command`] wraps `std::process::Command` (spawning is the same fork/exec, which does not
//! wait for the child to run). The difference is in the [`Child`] it returns: waiting for the
//! child to exit ([`Child::wait`], [`Child::wait_timeout`], [`Child::wait_with_output`]) and
//! reading or writing its pipes ([`ChildStdin`], [`ChildStdout`], [`ChildStderr`]) block only the
//! calling greenlet; the hub keeps running every other greenlet meanwhile.
//!
//! # How waiting works, and why not libev's child watchers
//!
//! libev has `ev_child` watchers, but they only work on libev's *default* loop (each hub runs
//! its own loop, on its own thread) and they reap **every** child of the process with
//! `waitpid(-1, …)` from a `SIGCHLD` handler, which steals the exit status of children that
//! other code (`std::process::Child::wait`, other threads, other libraries) is waiting for.
//!
//! Instead, each [`Child`] opens a Linux *pidfd* for its process (`pidfd_open(2)`, Linux 5.3+).
//! A pidfd becomes readable when that one process exits, so the hub waits for it like for any
//! other fd, with an io watcher; then the exit status is collected with
//! `std::process::Child::try_wait` (a `waitpid` on that pid only). Nothing else is reaped, no
//! signal handler is installed, and it works on every thread's hub. A pidfd refers to the
//! process itself, not to its pid number, so it cannot be confused by pid reuse.
//!
//! If `pidfd_open` is not available (an older kernel, or a seccomp filter that forbids it), the
//! wait falls back to polling `try_wait` with cooperative sleeps (1 ms, doubling up to 50 ms).
//!
//! As with `std::process`, a child that is never waited for stays a zombie until the process
//! exits, and dropping a [`Child`] neither kills nor waits for it. Do not set `SIGCHLD` to
//! `SIG_IGN` or use libev child watchers in the same process: either reaps children behind
//! this module's back, and waiting then fails with `ECHILD`.
//!
//! # Example
//!
//! ```
//! use gevent_io::process::{Command, Stdio};
//! use std::io::{Read, Write};
//!
//! let mut child = Command::new("cat")
//!     .stdin(Stdio::piped())
//!     .stdout(Stdio::piped())
//!     .spawn()
//!     .unwrap();
//! // One greenlet writes while this one reads.
//! let mut stdin = child.stdin.take().unwrap();
//! let writer = greenlet::spawn(move || stdin.write_all(b"hello from a greenlet"));
//! let mut out = String::new();
//! child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
//! writer.join().unwrap().unwrap();
//! assert_eq!(out, "hello from a greenlet");
//! assert!(child.wait().unwrap().success());
//! ```

use ev_loop::{Events, Io};
use greenlet::hub::Waiter;
use std::ffi::OsStr;
use std::fmt;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::process::{ExitStatus, Output};
use std::time::{Duration, Instant};

pub use std::process::Stdio;

/// Set `O_NONBLOCK` on `fd`.
fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL/F_SETFL only read and change the flags of the open descriptor `fd` (owned
    // by the caller); no memory is passed.
    let ok = unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
    };
    if ok {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Our end of a pipe to the child, in non-blocking mode.
struct Pipe {
    file: File,
}

impl Pipe {
    fn new(fd: OwnedFd) -> io::Result<Pipe> {
        set_nonblocking(fd.as_raw_fd())?;
        Ok(Pipe {
            file: File::from(fd),
        })
    }

    fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match (&self.file).read(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::net::wait_readable(self.file.as_raw_fd(), None)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }

    fn write(&self, buf: &[u8]) -> io::Result<usize> {
        loop {
            match (&self.file).write(buf) {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    crate::net::wait_writable(self.file.as_raw_fd(), None)?;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                r => return r,
            }
        }
    }
}

macro_rules! pipe_common {
    ($name:ident, $std:ident, $field:ident) => {
        impl $name {
            #[doc = concat!(
                        "Take over a `std::process::", stringify!($std), "` (it is switched to \
                 non-blocking mode).\n\n",
                        "```\n",
                        "use std::process::{Command, Stdio};\n",
                        "let mut c = Command::new(\"true\")",
                        ".stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped())",
                        ".spawn().unwrap();\n",
                        "let p = gevent_io::process::", stringify!($name),
                        "::from_std(c.", stringify!($field), ".take().unwrap()).unwrap();\n",
                        "# drop(p);\n",
                        "c.wait().unwrap();\n",
                        "```"
                    )]
            pub fn from_std(pipe: std::process::$std) -> io::Result<$name> {
                Ok($name {
                    pipe: Pipe::new(OwnedFd::from(pipe))?,
                })
            }
        }

        impl AsFd for $name {
            fn as_fd(&self) -> BorrowedFd<'_> {
                self.pipe.file.as_fd()
            }
        }

        impl AsRawFd for $name {
            fn as_raw_fd(&self) -> RawFd {
                self.pipe.file.as_raw_fd()
            }
        }

        impl From<$name> for OwnedFd {
            fn from(p: $name) -> OwnedFd {
                OwnedFd::from(p.pipe.file)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("fd", &self.pipe.file.as_raw_fd())
                    .finish()
            }
        }
    };
}

/// The child's standard input, written cooperatively: a write that would block (the pipe is
/// full) waits in the hub. Dropping it closes the pipe, which the child sees as end of input.
///
/// ```
/// use gevent_io::process::{Command, Stdio};
/// use std::io::Write;
/// let mut child = Command::new("cat").stdin(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
/// let mut stdin = child.stdin.take().unwrap();
/// stdin.write_all(b"data").unwrap();
/// drop(stdin); // end of input: cat exits
/// assert!(child.wait().unwrap().success());
/// ```
pub struct ChildStdin {
    pipe: Pipe,
}

/// The child's standard output, read cooperatively: a read with nothing to read waits in the
/// hub. Reading returns 0 (end of file) once the child (and every process it shared the pipe
/// with) has closed it.
///
/// ```
/// use gevent_io::process::{Command, Stdio};
/// use std::io::Read;
/// let mut child = Command::new("echo").arg("out").stdout(Stdio::piped()).spawn().unwrap();
/// let mut s = String::new();
/// child.stdout.take().unwrap().read_to_string(&mut s).unwrap();
/// assert_eq!(s, "out\n");
/// child.wait().unwrap();
/// ```
pub struct ChildStdout {
    pipe: Pipe,
}

/// The child's standard error, read cooperatively (like [`ChildStdout`]).
///
/// ```
/// use gevent_io::process::{Command, Stdio};
/// use std::io::Read;
/// let mut child = Command::new("sh").args(["-c", "echo err >&2"]).stderr(Stdio::piped()).spawn().unwrap();
/// let mut s = String::new();
/// child.stderr.take().unwrap().read_to_string(&mut s).unwrap();
/// assert_eq!(s, "err\n");
/// child.wait().unwrap();
/// ```
pub struct ChildStderr {
    pipe: Pipe,
}

pipe_common!(ChildStdin, ChildStdin, stdin);
pipe_common!(ChildStdout, ChildStdout, stdout);
pipe_common!(ChildStderr, ChildStderr, stderr);

impl Write for ChildStdin {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pipe.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Read for ChildStdout {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.pipe.read(buf)
    }
}

impl Read for ChildStderr {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.pipe.read(buf)
    }
}

/// A pidfd for `pid`, or `None` when the kernel does not provide one.
fn pidfd_open(pid: u32) -> Option<OwnedFd> {
    let pid = libc::pid_t::try_from(pid).ok()?;
    // SAFETY: pidfd_open(2) takes a pid and a flags word (0) by value and returns a new
    // descriptor (close-on-exec) or -1; no memory is shared with the kernel.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0 as libc::c_uint) };
    if r < 0 {
        log::debug!(
            "pidfd_open({pid}) failed ({}); falling back to polling for the child's exit",
            io::Error::last_os_error()
        );
        return None;
    }
    let fd = RawFd::try_from(r).ok()?;
    // SAFETY: `fd` was just returned by pidfd_open, is open, and nothing else owns it.
    Some(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Wait until `fd` is readable (`Ok(true)`) or `timeout` passes (`Ok(false)`). An enclosing
/// `Timeout` scope's expiry is an error (`TimedOut`), not `Ok(false)`.
fn wait_readable_for(fd: RawFd, timeout: Option<Duration>) -> io::Result<bool> {
    let w = Waiter::new("process exit").map_err(io::Error::from)?;
    let waker = w.waker();
    let io = Io::new(&greenlet::hub_loop(), fd, Events::READ, move |_, _| {
        waker.wake();
    })?;
    io.start();
    let r = w.wait_for(timeout);
    drop(io);
    r.map_err(io::Error::from)
}

/// A running or exited child process, like `std::process::Child`, whose waits are cooperative.
///
/// Dropping it does not kill or wait for the child.
///
/// ```
/// use gevent_io::process::Command;
/// let mut child = Command::new("sh").args(["-c", "exit 3"]).spawn().unwrap();
/// assert_eq!(child.wait().unwrap().code(), Some(3));
/// ```
pub struct Child {
    inner: std::process::Child,
    /// Readable once the child exits; `None` after reaping or without pidfd support.
    pidfd: Option<OwnedFd>,
    status: Option<ExitStatus>,
    /// The child's stdin, if it was created with [`Stdio::piped`].
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let mut c = Command::new("true").stdin(Stdio::piped()).spawn().unwrap();
    /// assert!(c.stdin.is_some());
    /// c.wait().unwrap();
    /// ```
    pub stdin: Option<ChildStdin>,
    /// The child's stdout, if it was created with [`Stdio::piped`].
    ///
    /// ```
    /// use gevent_io::process::Command;
    /// let mut c = Command::new("true").spawn().unwrap();
    /// assert!(c.stdout.is_none()); // inherited, not piped
    /// c.wait().unwrap();
    /// ```
    pub stdout: Option<ChildStdout>,
    /// The child's stderr, if it was created with [`Stdio::piped`].
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let mut c = Command::new("true").stderr(Stdio::piped()).spawn().unwrap();
    /// assert!(c.stderr.is_some());
    /// c.wait().unwrap();
    /// ```
    pub stderr: Option<ChildStderr>,
}

impl Child {
    /// Take over a child spawned with `std::process::Command`: its pipes become cooperative
    /// and its exit can be waited for in the hub.
    ///
    /// # Errors
    /// If a pipe cannot be switched to non-blocking mode, or the child's status cannot be
    /// queried.
    ///
    /// ```
    /// let std_child = std::process::Command::new("true").spawn().unwrap();
    /// let mut child = gevent_io::process::Child::from_std(std_child).unwrap();
    /// assert!(child.wait().unwrap().success());
    /// ```
    pub fn from_std(mut child: std::process::Child) -> io::Result<Child> {
        let stdin = child.stdin.take().map(ChildStdin::from_std).transpose()?;
        let stdout = child.stdout.take().map(ChildStdout::from_std).transpose()?;
        let stderr = child.stderr.take().map(ChildStderr::from_std).transpose()?;
        // Only a child that is not reaped yet still owns its pid; open the pidfd after checking.
        let status = child.try_wait()?;
        let pidfd = if status.is_none() {
            pidfd_open(child.id())
        } else {
            None
        };
        Ok(Child {
            inner: child,
            pidfd,
            status,
            stdin,
            stdout,
            stderr,
        })
    }

    /// The child's process id.
    ///
    /// ```
    /// let mut c = gevent_io::process::Command::new("true").spawn().unwrap();
    /// assert!(c.id() > 0);
    /// c.wait().unwrap();
    /// ```
    pub fn id(&self) -> u32 {
        self.inner.id()
    }

    /// The exit status if the child has exited, without waiting (reaps it then).
    ///
    /// # Errors
    /// If `waitpid` fails (for example `ECHILD` when someone else reaped the child).
    ///
    /// ```
    /// let mut c = gevent_io::process::Command::new("sleep").arg("5").spawn().unwrap();
    /// assert!(c.try_wait().unwrap().is_none());
    /// c.kill().unwrap();
    /// c.wait().unwrap();
    /// ```
    pub fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        if let Some(s) = self.status {
            return Ok(Some(s));
        }
        let s = self.inner.try_wait()?;
        if s.is_some() {
            self.status = s;
            self.pidfd = None;
        }
        Ok(s)
    }

    /// Wait for the exit (`true`) or until `timeout` passed (`false`), without reaping.
    fn wait_exit(&mut self, timeout: Option<Duration>) -> io::Result<bool> {
        if let Some(fd) = &self.pidfd {
            return wait_readable_for(fd.as_raw_fd(), timeout);
        }
        // No pidfd: poll with cooperative sleeps.
        let deadline = timeout.map(crate::deadline_after);
        let mut step = Duration::from_millis(1);
        loop {
            if self.try_wait()?.is_some() {
                return Ok(true);
            }
            let mut nap = step;
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Ok(false);
                }
                nap = nap.min(left);
            }
            greenlet::sleep(nap).map_err(io::Error::from)?;
            step = (step * 2).min(Duration::from_millis(50));
        }
    }

    /// Wait cooperatively for the child to exit and return its status. Like
    /// `std::process::Child::wait`, this closes the child's stdin first (so a child reading it
    /// sees end of input instead of both waiting for each other).
    ///
    /// # Errors
    /// If `waitpid` fails, or the wait fails in the hub (`TimedOut` when an enclosing
    /// [`Timeout`](greenlet::Timeout) expires; an error when called inside the hub).
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let mut c = gevent_io::process::Command::new("sh").args(["-c", "kill -TERM $$"]).spawn().unwrap();
    /// assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
    /// ```
    pub fn wait(&mut self) -> io::Result<ExitStatus> {
        drop(self.stdin.take());
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(s);
            }
            self.wait_exit(None)?;
        }
    }

    /// Wait cooperatively for at most `timeout`: `Ok(Some(status))` if the child exited,
    /// `Ok(None)` if it is still running (it is left running; [`kill`](Child::kill) it or
    /// wait again). Unlike [`wait`](Child::wait), stdin is left open.
    ///
    /// # Errors
    /// As for [`wait`](Child::wait).
    ///
    /// ```
    /// use std::time::Duration;
    /// let mut c = gevent_io::process::Command::new("sleep").arg("600").spawn().unwrap();
    /// assert!(c.wait_timeout(Duration::from_millis(20)).unwrap().is_none());
    /// c.kill().unwrap();
    /// assert!(c.wait_timeout(Duration::from_secs(30)).unwrap().is_some());
    /// ```
    pub fn wait_timeout(&mut self, timeout: Duration) -> io::Result<Option<ExitStatus>> {
        let deadline = crate::deadline_after(timeout);
        loop {
            if let Some(s) = self.try_wait()? {
                return Ok(Some(s));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || !self.wait_exit(Some(left))? {
                // Out of time: one last look, so an exit right at the deadline is not missed.
                return self.try_wait();
            }
        }
    }

    /// Close stdin, read all of stdout and stderr (concurrently, stderr in a helper greenlet)
    /// and wait for the exit, like `std::process::Child::wait_with_output`. Pipes that were
    /// not created give empty output.
    ///
    /// # Errors
    /// If reading a pipe or waiting fails.
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let child = Command::new("sh")
    ///     .args(["-c", "echo out; echo err >&2; exit 2"])
    ///     .stdout(Stdio::piped())
    ///     .stderr(Stdio::piped())
    ///     .spawn()
    ///     .unwrap();
    /// let out = child.wait_with_output().unwrap();
    /// assert_eq!((out.stdout.as_slice(), out.stderr.as_slice()), (&b"out\n"[..], &b"err\n"[..]));
    /// assert_eq!(out.status.code(), Some(2));
    /// ```
    pub fn wait_with_output(mut self) -> io::Result<Output> {
        drop(self.stdin.take());
        let err_reader = match self.stderr.take() {
            Some(mut e) => Some(
                greenlet::Builder::new()
                    .name(format!("stderr of process {}", self.id()))
                    .spawn(move || {
                        let mut v = Vec::new();
                        e.read_to_end(&mut v).map(|_| v)
                    })
                    .map_err(io::Error::from)?,
            ),
            None => None,
        };
        let mut stdout = Vec::new();
        if let Some(mut o) = self.stdout.take()
            && let Err(e) = o.read_to_end(&mut stdout)
        {
            if let Some(g) = err_reader {
                g.kill();
            }
            return Err(e);
        }
        let stderr = match err_reader {
            Some(g) => g.join().map_err(|e| io::Error::other(e.to_string()))??,
            None => Vec::new(),
        };
        let status = self.wait()?;
        Ok(Output {
            status,
            stdout,
            stderr,
        })
    }

    /// Kill the child with `SIGKILL` (like `std::process::Child::kill`); does nothing if it
    /// has already been reaped. It still has to be waited for.
    ///
    /// # Errors
    /// If the signal cannot be sent.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let mut c = gevent_io::process::Command::new("sleep").arg("5").spawn().unwrap();
    /// c.kill().unwrap();
    /// assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGKILL));
    /// ```
    pub fn kill(&mut self) -> io::Result<()> {
        if self.status.is_some() {
            return Ok(());
        }
        self.inner.kill()
    }

    /// Send `signum` to the child (gevent's `Popen.send_signal`); does nothing if it has
    /// already been reaped. With a pidfd the signal goes to exactly this process.
    ///
    /// # Errors
    /// `InvalidInput` (`EINVAL`) for a bad signal number, or another error from the kernel.
    ///
    /// ```
    /// use std::os::unix::process::ExitStatusExt;
    /// let mut c = gevent_io::process::Command::new("sleep").arg("5").spawn().unwrap();
    /// c.send_signal(libc::SIGTERM).unwrap();
    /// assert_eq!(c.wait().unwrap().signal(), Some(libc::SIGTERM));
    /// assert!(gevent_io::process::Command::new("true").spawn().unwrap().send_signal(-1).is_err());
    /// ```
    pub fn send_signal(&self, signum: i32) -> io::Result<()> {
        // Checked first, so that a bad number is an error whether or not the child has been
        // reaped already (`spawn` reaps a child that exited at once).
        if !(0..=libc::SIGRTMAX()).contains(&signum) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        if self.status.is_some() {
            return Ok(());
        }
        let r = match &self.pidfd {
            // SAFETY: pidfd_send_signal(2) with our open pidfd, a signal number, a null siginfo
            // (allowed: the kernel fills in a default) and flags 0; no memory is shared.
            Some(fd) => unsafe {
                libc::syscall(
                    libc::SYS_pidfd_send_signal,
                    fd.as_raw_fd(),
                    signum,
                    std::ptr::null::<libc::siginfo_t>(),
                    0 as libc::c_uint,
                )
            },
            None => {
                let pid = libc::pid_t::try_from(self.id())
                    .map_err(|_| io::Error::from_raw_os_error(libc::ESRCH))?;
                // SAFETY: kill(2) takes two integers; the pid is our unreaped child's (it cannot
                // have been reused while the child is a zombie we have not waited for).
                libc::c_long::from(unsafe { libc::kill(pid, signum) })
            }
        };
        if r < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

impl fmt::Debug for Child {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Child")
            .field("pid", &self.id())
            .field("status", &self.status)
            .field("pidfd", &self.pidfd.as_ref().map(|fd| fd.as_raw_fd()))
            .field("stdin", &self.stdin)
            .field("stdout", &self.stdout)
            .field("stderr", &self.stderr)
            .finish()
    }
}

/// A process builder like `std::process::Command` (it wraps one), whose [`spawn`] returns a
/// cooperative [`Child`].
///
/// [`spawn`]: Command::spawn
///
/// ```
/// use gevent_io::process::Command;
/// let out = Command::new("sh").args(["-c", "printf $GREETING"]).env("GREETING", "hi").output().unwrap();
/// assert_eq!(out.stdout, b"hi");
/// ```
pub struct Command {
    inner: std::process::Command,
    stdin_set: bool,
    stdout_set: bool,
    stderr_set: bool,
}

impl Command {
    /// A command to run `program` (looked up in `PATH` if it has no `/`), with no arguments,
    /// the current environment and working directory, and inherited stdio.
    ///
    /// ```
    /// let status = gevent_io::process::Command::new("true").status().unwrap();
    /// assert!(status.success());
    /// ```
    pub fn new(program: impl AsRef<OsStr>) -> Command {
        Command::from(std::process::Command::new(program))
    }

    /// Add an argument.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("echo").arg("one").output().unwrap();
    /// assert_eq!(out.stdout, b"one\n");
    /// ```
    pub fn arg(&mut self, arg: impl AsRef<OsStr>) -> &mut Command {
        self.inner.arg(arg);
        self
    }

    /// Add several arguments.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("echo").args(["a", "b"]).output().unwrap();
    /// assert_eq!(out.stdout, b"a b\n");
    /// ```
    pub fn args<I, S>(&mut self, args: I) -> &mut Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.inner.args(args);
        self
    }

    /// Set an environment variable for the child.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("sh").args(["-c", "echo $X"]).env("X", "1").output().unwrap();
    /// assert_eq!(out.stdout, b"1\n");
    /// ```
    pub fn env(&mut self, key: impl AsRef<OsStr>, val: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env(key, val);
        self
    }

    /// Set several environment variables for the child.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("sh")
    ///     .args(["-c", "echo $A$B"])
    ///     .envs([("A", "x"), ("B", "y")])
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"xy\n");
    /// ```
    pub fn envs<I, K, V>(&mut self, vars: I) -> &mut Command
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<OsStr>,
        V: AsRef<OsStr>,
    {
        self.inner.envs(vars);
        self
    }

    /// Remove an environment variable from the child's environment.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("sh")
    ///     .args(["-c", "echo ${X-unset}"])
    ///     .env("X", "1")
    ///     .env_remove("X")
    ///     .output()
    ///     .unwrap();
    /// assert_eq!(out.stdout, b"unset\n");
    /// ```
    pub fn env_remove(&mut self, key: impl AsRef<OsStr>) -> &mut Command {
        self.inner.env_remove(key);
        self
    }

    /// Start the child with an empty environment (plus what [`env`](Command::env) adds).
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("/usr/bin/env").env_clear().env("ONLY", "me").output().unwrap();
    /// assert_eq!(out.stdout, b"ONLY=me\n");
    /// ```
    pub fn env_clear(&mut self) -> &mut Command {
        self.inner.env_clear();
        self
    }

    /// The child's working directory.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("pwd").current_dir("/").output().unwrap();
    /// assert_eq!(out.stdout, b"/\n");
    /// ```
    pub fn current_dir(&mut self, dir: impl AsRef<Path>) -> &mut Command {
        self.inner.current_dir(dir);
        self
    }

    /// The child's stdin ([`Stdio::piped`] gives [`Child::stdin`]). Default: inherited
    /// (`null` for [`output`](Command::output)).
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let out = Command::new("cat").stdin(Stdio::null()).output().unwrap();
    /// assert!(out.stdout.is_empty());
    /// ```
    pub fn stdin(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdin(cfg);
        self.stdin_set = true;
        self
    }

    /// The child's stdout ([`Stdio::piped`] gives [`Child::stdout`]). Default: inherited
    /// (piped for [`output`](Command::output)).
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let out = Command::new("echo").stdout(Stdio::null()).output().unwrap();
    /// assert!(out.stdout.is_empty());
    /// ```
    pub fn stdout(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stdout(cfg);
        self.stdout_set = true;
        self
    }

    /// The child's stderr ([`Stdio::piped`] gives [`Child::stderr`]). Default: inherited
    /// (piped for [`output`](Command::output)).
    ///
    /// ```
    /// use gevent_io::process::{Command, Stdio};
    /// let out = Command::new("sh").args(["-c", "echo e >&2"]).stderr(Stdio::null()).output().unwrap();
    /// assert!(out.stderr.is_empty());
    /// ```
    pub fn stderr(&mut self, cfg: impl Into<Stdio>) -> &mut Command {
        self.inner.stderr(cfg);
        self.stderr_set = true;
        self
    }

    /// Start the child. The fork/exec itself is brief and done in place (the thread waits only
    /// until the program is executed, not for it to run).
    ///
    /// # Errors
    /// If the program cannot be started (for example `NotFound`).
    ///
    /// ```
    /// use gevent_io::process::Command;
    /// let mut child = Command::new("true").spawn().unwrap();
    /// assert!(child.wait().unwrap().success());
    /// let e = Command::new("/nonexistent/program").spawn().unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn spawn(&mut self) -> io::Result<Child> {
        Child::from_std(self.inner.spawn()?)
    }

    /// Run the child to completion, collecting its stdout and stderr (piped unless set
    /// otherwise; stdin is `null` unless set), like `std::process::Command::output`. Waits
    /// cooperatively. The defaults it picks are not kept on the command.
    ///
    /// # Errors
    /// If the program cannot be started, or reading its output or waiting fails.
    ///
    /// ```
    /// let out = gevent_io::process::Command::new("sh").args(["-c", "echo hi; exit 4"]).output().unwrap();
    /// assert_eq!(out.stdout, b"hi\n");
    /// assert_eq!(out.status.code(), Some(4));
    /// ```
    pub fn output(&mut self) -> io::Result<Output> {
        let (set_in, set_out, set_err) = (!self.stdin_set, !self.stdout_set, !self.stderr_set);
        if set_in {
            self.inner.stdin(Stdio::null());
        }
        if set_out {
            self.inner.stdout(Stdio::piped());
        }
        if set_err {
            self.inner.stderr(Stdio::piped());
        }
        let spawned = self.inner.spawn();
        // Back to the defaults of `spawn` (inherited) for later use of this command.
        if set_in {
            self.inner.stdin(Stdio::inherit());
        }
        if set_out {
            self.inner.stdout(Stdio::inherit());
        }
        if set_err {
            self.inner.stderr(Stdio::inherit());
        }
        Child::from_std(spawned?)?.wait_with_output()
    }

    /// Run the child to completion with inherited stdio (unless set) and return its exit
    /// status, waiting cooperatively.
    ///
    /// # Errors
    /// If the program cannot be started or waiting fails.
    ///
    /// ```
    /// let s = gevent_io::process::Command::new("sh").args(["-c", "exit 7"]).status().unwrap();
    /// assert_eq!(s.code(), Some(7));
    /// ```
    pub fn status(&mut self) -> io::Result<ExitStatus> {
        self.spawn()?.wait()
    }

    /// The wrapped `std::process::Command`, to read its settings.
    ///
    /// ```
    /// let mut c = gevent_io::process::Command::new("echo");
    /// c.arg("x");
    /// assert_eq!(c.as_std().get_program(), "echo");
    /// assert_eq!(c.as_std().get_args().count(), 1);
    /// ```
    pub fn as_std(&self) -> &std::process::Command {
        &self.inner
    }

    /// The wrapped `std::process::Command`, for settings this wrapper does not forward (for
    /// example `std::os::unix::process::CommandExt`). Stdio set through it is not seen by
    /// [`output`](Command::output)'s defaults.
    ///
    /// ```
    /// use std::os::unix::process::CommandExt;
    /// let mut c = gevent_io::process::Command::new("sh");
    /// c.args(["-c", "echo $0"]);
    /// c.as_std_mut().arg0("renamed");
    /// assert_eq!(c.output().unwrap().stdout, b"renamed\n");
    /// ```
    pub fn as_std_mut(&mut self) -> &mut std::process::Command {
        &mut self.inner
    }
}

impl From<std::process::Command> for Command {
    fn from(inner: std::process::Command) -> Command {
        Command {
            inner,
            stdin_set: false,
            stdout_set: false,
            stderr_set: false,
        }
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}
