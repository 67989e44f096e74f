//! The watcher types: what each one watches and its own settings.

use crate::error::{Error, Result};
use crate::event_loop::Loop;
use crate::watcher::{Events, Kind, Watcher, sealed};
use libev_sys::{self as sys, macros};
use std::os::fd::RawFd;
use std::os::raw::c_int;
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Marker types naming each watcher kind (the `K` of [`Watcher<K>`]).
///
/// ```
/// use ev_loop::{kind, Loop, Watcher};
/// let lp = Loop::new().unwrap();
/// let t: Watcher<kind::Timer> = ev_loop::Timer::new(&lp, std::time::Duration::ZERO, std::time::Duration::ZERO, |_, _| {});
/// # drop(t);
/// ```
pub mod kind {
    /// Marker for [`Io`](crate::Io).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Io> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Io {}
    /// Marker for [`Timer`](crate::Timer).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Timer> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Timer {}
    /// Marker for [`Periodic`](crate::Periodic).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Periodic> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Periodic {}
    /// Marker for [`Signal`](crate::Signal).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Signal> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Signal {}
    /// Marker for [`Child`](crate::Child).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Child> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Child {}
    /// Marker for [`Prepare`](crate::Prepare).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Prepare> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Prepare {}
    /// Marker for [`Check`](crate::Check).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Check> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Check {}
    /// Marker for [`Idle`](crate::Idle).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Idle> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Idle {}
    /// Marker for [`Async`](crate::Async).
    ///
    /// ```
    /// let _: Option<ev_loop::kind::Async> = None; // an uninhabited marker type
    /// ```
    #[derive(Debug)]
    pub enum Async {}
}

macro_rules! kinds {
    ($($kind:ident => $ffi:ident, $start:ident, $stop:ident, $extra:ty;)*) => {$(
        impl sealed::Sealed for kind::$kind {}
        impl Kind for kind::$kind {
            type Ffi = sys::$ffi;
            type Extra = $extra;
            const NAME: &'static str = stringify!($kind);
            unsafe fn start(lp: *mut sys::ev_loop, w: *mut sys::$ffi) {
                // SAFETY: forwarded from the caller (`Watcher::start_unchecked`).
                unsafe { sys::$start(lp, w) }
            }
            unsafe fn stop(lp: *mut sys::ev_loop, w: *mut sys::$ffi) {
                // SAFETY: forwarded from the caller (`stop_raw`).
                unsafe { sys::$stop(lp, w) }
            }
        }
    )*};
}

kinds! {
    Io => ev_io, ev_io_start, ev_io_stop, ();
    Timer => ev_timer, ev_timer_start, ev_timer_stop, ();
    Periodic => ev_periodic, ev_periodic_start, ev_periodic_stop, ();
    Signal => ev_signal, ev_signal_start, ev_signal_stop, SignalClaim;
    Child => ev_child, ev_child_start, ev_child_stop, ();
    Prepare => ev_prepare, ev_prepare_start, ev_prepare_stop, ();
    Check => ev_check, ev_check_start, ev_check_stop, ();
    Idle => ev_idle, ev_idle_start, ev_idle_stop, ();
    Async => ev_async, ev_async_start, ev_async_stop, AsyncSlotGuard;
}

/// Watches a file descriptor for readability and/or writability.
///
/// The fd is checked when it is set (negative or closed fds are refused). If it is closed
/// while the watcher is active, libev notices at its next poll, stops the watcher and calls it
/// with [`Events::ERROR`].
///
/// ```
/// use ev_loop::{Events, Io, Loop};
/// use std::io::Write;
/// use std::os::fd::AsRawFd;
/// use std::os::unix::net::UnixStream;
///
/// let lp = Loop::new()?;
/// let (mut a, b) = UnixStream::pair().unwrap();
/// let io = Io::new(&lp, b.as_raw_fd(), Events::READ, |w, ev| {
///     assert!(ev.is_readable());
///     w.stop();
/// })?;
/// io.start();
/// a.write_all(b"ping").unwrap();
/// lp.run();
/// # Ok::<(), ev_loop::Error>(())
/// ```
pub type Io = Watcher<kind::Io>;

/// A relative timer: fires after a delay, then optionally every `repeat`.
///
/// ```
/// use ev_loop::{Loop, Timer};
/// use std::time::Duration;
/// let lp = Loop::new()?;
/// let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
/// t.start();
/// lp.run();
/// assert!(!t.is_active()); // a one-shot timer stops itself
/// # Ok::<(), ev_loop::Error>(())
/// ```
pub type Timer = Watcher<kind::Timer>;

/// A timer on the wall clock: fires at `offset + k * interval` (or once at `offset`).
///
/// ```
/// use ev_loop::{Loop, Periodic};
/// let lp = Loop::new()?;
/// let p = Periodic::new(&lp, 0.0, 0.01, |w, _| w.stop())?; // every 10 ms
/// p.start();
/// lp.run();
/// # Ok::<(), ev_loop::Error>(())
/// ```
pub type Periodic = Watcher<kind::Periodic>;

/// Runs its callback (on the loop's thread, never in a signal handler) when a signal arrives.
///
/// A signal belongs to one loop at a time: creating a watcher claims the signal for its loop
/// until the watcher is dropped, and another loop's claim fails with
/// [`Error::SignalInUse`].
///
/// ```
/// use ev_loop::{Loop, Signal};
/// let lp = Loop::new()?;
/// let s = Signal::new(&lp, libc::SIGUSR2, |w, _| w.stop())?;
/// s.start();
/// // SAFETY: raising a signal that the watcher above handles.
/// unsafe { libc::raise(libc::SIGUSR2) };
/// lp.run();
/// # Ok::<(), ev_loop::Error>(())
/// ```
pub type Signal = Watcher<kind::Signal>;

/// Waits for a child process to change status. Only on the default loop.
///
/// ```
/// use ev_loop::{Child, Loop};
/// let lp = Loop::builder().default_loop().build()?;
/// let child = std::process::Command::new("true").spawn().unwrap();
/// let w = Child::new(&lp, child.id() as i32, false, |w, _| w.stop())?;
/// w.start();
/// lp.run();
/// assert!(w.exit_status().unwrap().success());
/// # Ok::<(), ev_loop::Error>(())
/// ```
pub type Child = Watcher<kind::Child>;

/// Runs before the loop polls for events (every iteration).
///
/// ```
/// use ev_loop::{Loop, Prepare};
/// let lp = Loop::new().unwrap();
/// let p = Prepare::new(&lp, |w, _| w.stop());
/// p.start();
/// lp.run();
/// ```
pub type Prepare = Watcher<kind::Prepare>;

/// Runs after the loop polled for events (every iteration).
///
/// ```
/// use ev_loop::{Check, Loop, Timer};
/// use std::time::Duration;
/// let lp = Loop::new().unwrap();
/// let c = Check::new(&lp, |w, _| w.stop());
/// c.start();
/// // A check watcher alone would let the poll sleep (up to libev's ~60 s cap): give the
/// // loop something to wake for.
/// let t = Timer::new(&lp, Duration::from_millis(1), Duration::ZERO, |_, _| {});
/// t.start();
/// lp.run();
/// ```
pub type Check = Watcher<kind::Check>;

/// Runs when the loop has nothing else to do (and keeps the poll from blocking while active).
///
/// ```
/// use ev_loop::{Idle, Loop};
/// let lp = Loop::new().unwrap();
/// let i = Idle::new(&lp, |w, _| w.stop());
/// i.start();
/// lp.run();
/// ```
pub type Idle = Watcher<kind::Idle>;

/// Wakes the loop from any thread through an [`AsyncSender`].
///
/// ```
/// use ev_loop::{Async, Loop};
/// let lp = Loop::new().unwrap();
/// let a = Async::new(&lp, |w, _| w.stop());
/// a.start();
/// let sender = a.sender();
/// std::thread::spawn(move || sender.send()).join().unwrap();
/// lp.run();
/// ```
pub type Async = Watcher<kind::Async>;

macro_rules! simple_new {
    ($($kind:ident, $what:literal;)*) => {$(
        impl Watcher<kind::$kind> {
            #[doc = concat!("A new, inactive ", $what, " watcher on `lp`.")]
            ///
            /// ```
            #[doc = concat!("let lp = ev_loop::Loop::new().unwrap();")]
            #[doc = concat!("let w = ev_loop::", stringify!($kind), "::new(&lp, |w, _| w.stop());")]
            /// w.start();
            /// lp.run_nowait();
            /// assert!(!w.is_active());
            /// ```
            pub fn new(lp: &Loop, cb: impl FnMut(&Self, Events) + 'static) -> Self {
                Watcher::with_ffi(lp, Default::default(), Default::default(), cb)
            }
        }
    )*};
}

simple_new! {
    Prepare, "prepare";
    Check, "check";
    Idle, "idle";
}

pub(crate) fn check_fd(fd: RawFd) -> Result<()> {
    if fd < 0 {
        return Err(Error::BadFd {
            fd,
            source: std::io::Error::from_raw_os_error(libc::EBADF),
        });
    }
    // SAFETY: F_GETFD only queries the descriptor table.
    if unsafe { libc::fcntl(fd, libc::F_GETFD) } == -1 {
        return Err(Error::BadFd {
            fd,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

pub(crate) fn check_events(events: Events) -> Result<c_int> {
    let bits = events.bits();
    if bits == 0 || bits & !(sys::EV_READ | sys::EV_WRITE) != 0 {
        return Err(Error::InvalidEvents(bits));
    }
    Ok(bits)
}

impl Io {
    /// A new, inactive io watcher for `fd` and `events` (`READ`, `WRITE` or both).
    ///
    /// # Errors
    /// [`Error::BadFd`] for a negative or closed fd, [`Error::InvalidEvents`] for anything but
    /// `READ`/`WRITE`.
    ///
    /// ```
    /// use ev_loop::{Error, Events, Io, Loop};
    /// let lp = Loop::new().unwrap();
    /// assert!(matches!(Io::new(&lp, -1, Events::READ, |_, _| {}), Err(Error::BadFd { .. })));
    /// ```
    pub fn new(
        lp: &Loop,
        fd: RawFd,
        events: Events,
        cb: impl FnMut(&Io, Events) + 'static,
    ) -> Result<Io> {
        check_fd(fd)?;
        let bits = check_events(events)?;
        let w = Watcher::with_ffi(lp, Default::default(), (), cb);
        // SAFETY: a fresh, inactive watcher.
        unsafe { macros::ev_io_set(w.ffi(), fd, bits) };
        Ok(w)
    }

    /// Watch another fd and/or other events. An active watcher is restarted with the new
    /// settings.
    ///
    /// # Errors
    /// As for [`Io::new`]; the watcher is unchanged then.
    ///
    /// ```
    /// use ev_loop::{Events, Io, Loop};
    /// let lp = Loop::new().unwrap();
    /// use std::os::fd::AsRawFd;
    /// let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = Io::new(&lp, a.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
    /// io.set(b.as_raw_fd(), Events::WRITE).unwrap();
    /// assert_eq!((io.fd(), io.events()), (b.as_raw_fd(), Events::WRITE));
    /// ```
    pub fn set(&self, fd: RawFd, events: Events) -> Result<()> {
        check_fd(fd)?;
        let bits = check_events(events)?;
        let active = self.is_active();
        if active {
            self.stop();
        }
        // SAFETY: inactive now (stopped above if it was active).
        unsafe { macros::ev_io_set(self.ffi(), fd, bits) };
        if active {
            self.start();
        }
        Ok(())
    }

    /// Change only the events, keeping the fd (cheap: no fd check). An active watcher is
    /// restarted.
    ///
    /// # Errors
    /// [`Error::InvalidEvents`] for anything but `READ`/`WRITE`.
    ///
    /// ```
    /// use ev_loop::{Events, Io, Loop};
    /// let lp = Loop::new().unwrap();
    /// use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = Io::new(&lp, a.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
    /// io.set_events(Events::READ | Events::WRITE).unwrap();
    /// assert_eq!(io.events(), Events::READ | Events::WRITE);
    /// ```
    pub fn set_events(&self, events: Events) -> Result<()> {
        let bits = check_events(events)?;
        if self.events().bits() == bits {
            return Ok(());
        }
        let active = self.is_active();
        if active {
            self.stop();
        }
        // SAFETY: inactive now.
        unsafe { macros::ev_io_modify(self.ffi(), bits) };
        if active {
            self.start();
        }
        Ok(())
    }

    /// The watched fd.
    ///
    /// ```
    /// # use ev_loop::{Events, Io, Loop};
    /// # let lp = Loop::new().unwrap();
    /// # use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let fd = a.as_raw_fd();
    /// assert_eq!(Io::new(&lp, fd, Events::WRITE, |_, _| {}).unwrap().fd(), fd);
    /// ```
    pub fn fd(&self) -> RawFd {
        // SAFETY: reading our own watcher's field.
        unsafe { (*self.ffi()).fd }
    }

    /// The watched events.
    ///
    /// ```
    /// # use ev_loop::{Events, Io, Loop};
    /// # let lp = Loop::new().unwrap();
    /// # use std::os::fd::AsRawFd;
    /// let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    /// let io = Io::new(&lp, a.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
    /// assert_eq!(io.events(), Events::READ);
    /// ```
    pub fn events(&self) -> Events {
        // SAFETY: reading our own watcher's field.
        let bits = unsafe { (*self.ffi()).events };
        Events::from_bits(bits & (sys::EV_READ | sys::EV_WRITE))
    }
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Seconds back to a `Duration`, saturating: a huge `Duration` went to libev as a float that
/// rounds up past `Duration::MAX`.
fn duration(secs: f64) -> Duration {
    Duration::try_from_secs_f64(secs.max(0.0)).unwrap_or(Duration::MAX)
}

impl Timer {
    /// A new, inactive timer that fires `after` from the loop's current time and then every
    /// `repeat` (`Duration::ZERO`: once).
    ///
    /// ```
    /// use ev_loop::{Loop, Timer};
    /// use std::time::Duration;
    /// let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_secs(1), Duration::from_secs(1), |_, _| {});
    /// assert_eq!(t.repeat(), Duration::from_secs(1));
    /// ```
    pub fn new(
        lp: &Loop,
        after: Duration,
        repeat: Duration,
        cb: impl FnMut(&Timer, Events) + 'static,
    ) -> Timer {
        let w = Watcher::with_ffi(lp, Default::default(), (), cb);
        // SAFETY: a fresh, inactive watcher.
        unsafe { macros::ev_timer_set(w.ffi(), secs(after), secs(repeat)) };
        w
    }

    /// Change the delay and repeat. An active timer is restarted with them.
    ///
    /// ```
    /// use ev_loop::{Loop, Timer};
    /// use std::time::Duration;
    /// let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_secs(1), Duration::ZERO, |_, _| {});
    /// t.set(Duration::from_millis(1), Duration::ZERO);
    /// t.start();
    /// lp.run();
    /// ```
    pub fn set(&self, after: Duration, repeat: Duration) {
        let active = self.is_active();
        if active {
            self.stop();
        }
        // SAFETY: inactive now.
        unsafe { macros::ev_timer_set(self.ffi(), secs(after), secs(repeat)) };
        if active {
            self.start();
        }
    }

    /// The repeat interval (`ZERO` for a one-shot timer).
    ///
    /// ```
    /// # use ev_loop::{Loop, Timer}; use std::time::Duration;
    /// # let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
    /// assert_eq!(t.repeat(), Duration::ZERO);
    /// ```
    pub fn repeat(&self) -> Duration {
        // SAFETY: reading our own watcher's field.
        duration(unsafe { (*self.ffi()).repeat })
    }

    /// Change the repeat interval; allowed at any time and used from the next expiry (or
    /// [`again`](Timer::again)).
    ///
    /// ```
    /// # use ev_loop::{Loop, Timer}; use std::time::Duration;
    /// # let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
    /// t.set_repeat(Duration::from_millis(5));
    /// assert_eq!(t.repeat(), Duration::from_millis(5));
    /// ```
    pub fn set_repeat(&self, repeat: Duration) {
        // SAFETY: libev documents `repeat` as writable at any time.
        unsafe { (*self.ffi()).repeat = secs(repeat) };
    }

    /// libev's `ev_timer_again`: restart a repeating timer to fire `repeat` from now (the
    /// efficient way to implement an inactivity timeout); stops a timer whose repeat is zero.
    ///
    /// ```
    /// # use ev_loop::{Loop, Timer}; use std::time::Duration;
    /// # let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::ZERO, Duration::from_secs(10), |_, _| {});
    /// t.again();
    /// assert!(t.is_active());
    /// assert!(t.remaining() > Duration::from_secs(9));
    /// ```
    pub fn again(&self) {
        let was_active = self.is_active();
        // SAFETY: the watcher is pinned and belongs to its loop; ev_timer_again starts or stops
        // it as needed.
        unsafe { sys::ev_timer_again(self.event_loop().as_raw(), self.ffi()) };
        match (was_active, self.is_active()) {
            // ev_timer_again started it: apply our keep-alive bookkeeping.
            (false, true) => {
                self.stop();
                self.start();
            }
            // ev_timer_again stopped it: settle the keep-alive reference.
            (true, false) => self.stop(),
            _ => {}
        }
    }

    /// Time until the timer fires (zero if it is not active).
    ///
    /// ```
    /// # use ev_loop::{Loop, Timer}; use std::time::Duration;
    /// # let lp = Loop::new().unwrap();
    /// let t = Timer::new(&lp, Duration::from_secs(5), Duration::ZERO, |_, _| {});
    /// assert_eq!(t.remaining(), Duration::ZERO);
    /// t.start();
    /// assert!(t.remaining() > Duration::from_secs(4));
    /// ```
    pub fn remaining(&self) -> Duration {
        if !self.is_active() {
            return Duration::ZERO;
        }
        // SAFETY: an active watcher of this loop.
        let r = unsafe { sys::ev_timer_remaining(self.event_loop().as_raw(), self.ffi()) };
        duration(r)
    }
}

fn check_time(what: &'static str, value: f64) -> Result<f64> {
    if !value.is_finite() || value < 0.0 {
        return Err(Error::InvalidTime { what, value });
    }
    Ok(value)
}

impl Periodic {
    /// A new, inactive periodic timer. With `interval > 0` it fires at every
    /// `offset + k * interval` of wall-clock time (`0 <= offset < interval` picks the phase; a
    /// larger offset is taken modulo `interval`);
    /// with `interval == 0` it fires once at the absolute time `offset` (seconds since the
    /// epoch).
    ///
    /// # Errors
    /// [`Error::InvalidTime`] for a NaN, infinite or negative offset or interval.
    ///
    /// ```
    /// use ev_loop::{Error, Loop, Periodic};
    /// let lp = Loop::new().unwrap();
    /// assert!(matches!(Periodic::new(&lp, f64::NAN, 1.0, |_, _| {}), Err(Error::InvalidTime { .. })));
    /// assert!(Periodic::new(&lp, 0.0, 60.0, |_, _| {}).is_ok());
    /// ```
    pub fn new(
        lp: &Loop,
        offset: f64,
        interval: f64,
        cb: impl FnMut(&Periodic, Events) + 'static,
    ) -> Result<Periodic> {
        let offset = check_time("periodic offset", offset)?;
        let interval = check_time("periodic interval", interval)?;
        // The same phase, numerically stable: libev steps from `offset` towards now in
        // `interval`s, which with an offset far beyond now takes practically forever.
        let offset = if interval > 0.0 {
            offset % interval
        } else {
            offset
        };
        let w = Watcher::with_ffi(lp, Default::default(), (), cb);
        // SAFETY: a fresh, inactive watcher.
        unsafe { macros::ev_periodic_set(w.ffi(), offset, interval) };
        Ok(w)
    }

    /// The absolute time (seconds since the epoch) of the next trigger, valid while active.
    ///
    /// ```
    /// # use ev_loop::{Loop, Periodic};
    /// # let lp = Loop::new().unwrap();
    /// let p = Periodic::new(&lp, 0.0, 60.0, |_, _| {}).unwrap();
    /// p.start();
    /// assert!(p.at() > lp.now() && p.at() <= lp.now() + 60.0);
    /// ```
    pub fn at(&self) -> f64 {
        // SAFETY: reading our own watcher's field.
        unsafe { macros::ev_periodic_at(self.ffi()) }
    }

    /// Recompute the next trigger from the current settings (libev's `ev_periodic_again`),
    /// starting the watcher.
    ///
    /// ```
    /// # use ev_loop::{Loop, Periodic};
    /// # let lp = Loop::new().unwrap();
    /// let p = Periodic::new(&lp, 0.0, 60.0, |_, _| {}).unwrap();
    /// p.again();
    /// assert!(p.is_active());
    /// ```
    pub fn again(&self) {
        self.stop();
        self.start();
    }
}

/// The claim a signal watcher holds on its signal (one loop per signal, libev's rule).
#[doc(hidden)]
#[derive(Debug)]
pub struct SignalClaim {
    signum: c_int,
}

/// For each signal: which loop claims it, and how many watchers of that loop do.
static SIGNAL_OWNERS: Mutex<[(u64, usize); 65]> = Mutex::new([(0, 0); 65]);

impl SignalClaim {
    fn claim(lp: &Loop, signum: c_int) -> Result<SignalClaim> {
        if !(1..=64).contains(&signum) || signum == libc::SIGKILL || signum == libc::SIGSTOP {
            return Err(Error::InvalidSignal(signum));
        }
        let mut owners = SIGNAL_OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        let slot = &mut owners[signum as usize];
        if slot.1 > 0 && slot.0 != lp.id() {
            return Err(Error::SignalInUse(signum));
        }
        *slot = (lp.id(), slot.1 + 1);
        Ok(SignalClaim { signum })
    }
}

impl Drop for SignalClaim {
    fn drop(&mut self) {
        let mut owners = SIGNAL_OWNERS.lock().unwrap_or_else(|e| e.into_inner());
        owners[self.signum as usize].1 -= 1;
    }
}

impl Signal {
    /// A new, inactive watcher for `signum`, claiming the signal for `lp` until dropped.
    ///
    /// # Errors
    /// [`Error::InvalidSignal`] outside `1..=64` or for SIGKILL/SIGSTOP;
    /// [`Error::SignalInUse`] when another loop has a watcher for this signal.
    ///
    /// ```
    /// use ev_loop::{Error, Loop, Signal};
    /// let a = Loop::new().unwrap();
    /// let b = Loop::new().unwrap();
    /// let s = Signal::new(&a, libc::SIGWINCH, |_, _| {}).unwrap();
    /// assert!(matches!(Signal::new(&b, libc::SIGWINCH, |_, _| {}), Err(Error::SignalInUse(_))));
    /// drop(s);
    /// assert!(Signal::new(&b, libc::SIGWINCH, |_, _| {}).is_ok());
    /// ```
    pub fn new(
        lp: &Loop,
        signum: c_int,
        cb: impl FnMut(&Signal, Events) + 'static,
    ) -> Result<Signal> {
        let claim = SignalClaim::claim(lp, signum)?;
        let w = Watcher::with_ffi(lp, Default::default(), claim, cb);
        // SAFETY: a fresh, inactive watcher.
        unsafe { macros::ev_signal_set(w.ffi(), signum) };
        Ok(w)
    }

    /// The watched signal number.
    ///
    /// ```
    /// # let lp = ev_loop::Loop::new().unwrap();
    /// let s = ev_loop::Signal::new(&lp, libc::SIGHUP, |_, _| {}).unwrap();
    /// assert_eq!(s.signum(), libc::SIGHUP);
    /// ```
    pub fn signum(&self) -> c_int {
        self.extra().signum
    }
}

impl Child {
    /// A new, inactive watcher for child `pid` (0: any child). With `trace`, stops and
    /// continues are reported too, not only the exit.
    ///
    /// libev reaps children itself (it calls `waitpid(-1, …)` on SIGCHLD) once the default loop
    /// exists, so do not also wait for them with `std::process::Child::wait`.
    ///
    /// # Errors
    /// [`Error::NotDefaultLoop`] unless `lp` is the default loop; [`Error::InvalidPid`] for a
    /// negative pid.
    ///
    /// ```
    /// use ev_loop::{Child, Error, Loop};
    /// let own = Loop::new().unwrap();
    /// assert!(matches!(Child::new(&own, 0, false, |_, _| {}), Err(Error::NotDefaultLoop(_))));
    /// ```
    pub fn new(
        lp: &Loop,
        pid: i32,
        trace: bool,
        cb: impl FnMut(&Child, Events) + 'static,
    ) -> Result<Child> {
        if !lp.is_default() {
            return Err(Error::NotDefaultLoop("child watchers"));
        }
        if pid < 0 {
            return Err(Error::InvalidPid(pid));
        }
        let w = Watcher::with_ffi(lp, Default::default(), (), cb);
        // SAFETY: a fresh, inactive watcher.
        unsafe { macros::ev_child_set(w.ffi(), pid, trace) };
        Ok(w)
    }

    /// The pid this watcher waits for (0: any).
    ///
    /// ```
    /// # let lp = ev_loop::Loop::builder().default_loop().build().unwrap();
    /// let w = ev_loop::Child::new(&lp, 0, false, |_, _| {}).unwrap();
    /// assert_eq!(w.pid(), 0);
    /// ```
    pub fn pid(&self) -> i32 {
        // SAFETY: reading our own watcher's field.
        unsafe { (*self.ffi()).pid }
    }

    /// The pid whose status changed most recently (0 before any event).
    ///
    /// ```
    /// # let lp = ev_loop::Loop::builder().default_loop().build().unwrap();
    /// let w = ev_loop::Child::new(&lp, 0, false, |_, _| {}).unwrap();
    /// assert_eq!(w.rpid(), 0);
    /// ```
    pub fn rpid(&self) -> i32 {
        // SAFETY: reading our own watcher's field.
        unsafe { (*self.ffi()).rpid }
    }

    /// The raw `waitpid` status of the last event.
    ///
    /// ```
    /// # let lp = ev_loop::Loop::builder().default_loop().build().unwrap();
    /// let w = ev_loop::Child::new(&lp, 0, false, |_, _| {}).unwrap();
    /// assert_eq!(w.rstatus(), 0);
    /// ```
    pub fn rstatus(&self) -> i32 {
        // SAFETY: reading our own watcher's field.
        unsafe { (*self.ffi()).rstatus }
    }

    /// The exit status of the last event, or `None` before any event.
    ///
    /// ```
    /// # let lp = ev_loop::Loop::builder().default_loop().build().unwrap();
    /// let w = ev_loop::Child::new(&lp, 0, false, |_, _| {}).unwrap();
    /// assert!(w.exit_status().is_none());
    /// ```
    pub fn exit_status(&self) -> Option<ExitStatus> {
        use std::os::unix::process::ExitStatusExt;
        (self.rpid() != 0).then(|| ExitStatus::from_raw(self.rstatus()))
    }
}

struct AsyncTarget {
    lp: *mut sys::ev_loop,
    w: *mut sys::ev_async,
}

// SAFETY: the pointers are only used for ev_async_send, which libev documents as safe to call
// from any thread, and only while the slot holds them (see AsyncSlotGuard).
unsafe impl Send for AsyncTarget {}

/// Owned by the watcher: clears the senders' slot (under its lock) before the watcher's memory
/// or its loop can go away.
#[doc(hidden)]
pub struct AsyncSlotGuard(Arc<Mutex<Option<AsyncTarget>>>);

impl std::fmt::Debug for AsyncSlotGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AsyncSlotGuard")
    }
}

impl Drop for AsyncSlotGuard {
    fn drop(&mut self) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
}

/// A thread-safe handle that wakes an [`Async`] watcher's loop; `Send + Sync + Clone`.
///
/// Sends that arrive before the loop handles the first are coalesced into one callback.
///
/// ```
/// use ev_loop::{Async, Loop};
/// let lp = Loop::new().unwrap();
/// let a = Async::new(&lp, |w, _| w.stop());
/// a.start();
/// let s = a.sender();
/// assert!(s.send());
/// lp.run();
/// drop(a);
/// assert!(!s.send()); // the watcher is gone
/// ```
#[derive(Clone)]
pub struct AsyncSender(Arc<Mutex<Option<AsyncTarget>>>);

impl AsyncSender {
    /// Wake the loop and make the watcher's callback run (if the watcher is active). Returns
    /// false if the watcher no longer exists.
    ///
    /// ```
    /// # use ev_loop::{Async, Loop};
    /// # let lp = Loop::new().unwrap();
    /// let a = Async::new(&lp, |_, _| {});
    /// assert!(a.sender().send());
    /// ```
    pub fn send(&self) -> bool {
        let slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        match &*slot {
            Some(t) => {
                // SAFETY: the slot holds the pointers only while the watcher (and so its loop)
                // is alive: the watcher's guard clears it under this lock before either goes.
                unsafe { sys::ev_async_send(t.lp, t.w) };
                true
            }
            None => false,
        }
    }
}

impl std::fmt::Debug for AsyncSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSender").finish_non_exhaustive()
    }
}

impl Async {
    /// A new, inactive async watcher on `lp`.
    ///
    /// ```
    /// let lp = ev_loop::Loop::new().unwrap();
    /// let a = ev_loop::Async::new(&lp, |_, _| {});
    /// assert!(!a.is_active());
    /// ```
    pub fn new(lp: &Loop, cb: impl FnMut(&Async, Events) + 'static) -> Async {
        let slot = Arc::new(Mutex::new(None));
        let w = Watcher::with_ffi(lp, Default::default(), AsyncSlotGuard(slot.clone()), cb);
        *slot.lock().unwrap_or_else(|e| e.into_inner()) = Some(AsyncTarget {
            lp: lp.as_raw(),
            w: w.ffi(),
        });
        w
    }

    /// A handle other threads use to wake this watcher.
    ///
    /// ```
    /// # let lp = ev_loop::Loop::new().unwrap();
    /// let a = ev_loop::Async::new(&lp, |_, _| {});
    /// let s = a.sender();
    /// std::thread::spawn(move || assert!(s.send())).join().unwrap();
    /// ```
    pub fn sender(&self) -> AsyncSender {
        AsyncSender(self.extra().0.clone())
    }

    /// Whether a send happened that the loop has not delivered yet.
    ///
    /// ```
    /// # let lp = ev_loop::Loop::new().unwrap();
    /// let a = ev_loop::Async::new(&lp, |_, _| {});
    /// a.start();
    /// assert!(!a.send_pending());
    /// a.sender().send();
    /// assert!(a.send_pending());
    /// ```
    pub fn send_pending(&self) -> bool {
        // SAFETY: a racy read of a flag, as libev's macro does.
        unsafe { macros::ev_async_pending(self.ffi()) }
    }
}
