//! One connection: read heads with [`crate::parse`], bodies with [`crate::decode`], call the
//! handler, write with [`crate::encode`] (hyper's `proto/h1/{io,conn}.rs`). Responses to
//! pipelined requests that are already buffered go out together in one write.

use crate::body::{Body, ResponseBody, WriteFn};
use crate::decode::Decoder;
use crate::encode::{self, BodyFraming, Persist};
use crate::parse::{self, Framing, HeadLimits};
use crate::transport::{SharedTcp, Transport};
use crate::upgrade::Upgraded;
use gevent_io::net::TcpStream;
use http::{HeaderMap, Method, Request, StatusCode, Version};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The read buffer's first size (Go's `net/http` reads through 4 KiB too). Every page of it
/// is resident (it is zeroed), as large as the stack's one page: a plain connection waiting
/// for its client gives it back (see [`Spare`]).
const INITIAL_BUF: usize = 4 * 1024;
/// The largest read or response buffer kept for reuse: by a TLS connection while it idles,
/// or among the thread's [`Spare`] ones. A read that fills the read buffer doubles it up to
/// this size (a client whose pipelined batches are larger is read in one call per batch, as
/// with a buffer this size from the start); a head over it grows the buffer further (to the
/// head limit), and that is let go while idle.
const IDLE_BUF: usize = 8 * 1024;
/// The request line kept for the logs: a longer one's buffer is let go while idle.
const INITIAL_LINE: usize = 256;
/// Responses are written out once this much is buffered, even mid-batch.
const FLUSH_AT: usize = 64 * 1024;

/// How many buffers of each kind a thread keeps for its connections to take turns with.
const SPARE_BUFS: usize = 64;

/// The read and response buffers that connections waiting for their client gave back, for
/// the next connection that reads: one set per thread, shared by its servers. A connection
/// holds its buffers only while it has something in them, so that ten thousand idle
/// keep-alive connections hold none, and the few that are busy at a time take turns with the
/// same few buffers, which then stay in the cache. Last in, first out: the warmest first.
///
/// The same goes for the header map an answered response leaves, which holds the next
/// request's fields (see [`parse::Reuse::recycle`]).
struct Spare {
    read: Vec<Vec<u8>>,
    out: Vec<Vec<u8>>,
    #[expect(
        clippy::vec_box,
        reason = "a map goes between a connection and the set as a pointer, not 96 bytes"
    )]
    maps: Vec<Box<HeaderMap>>,
}

impl Spare {
    const fn new() -> Spare {
        Spare {
            read: Vec::new(),
            out: Vec::new(),
            maps: Vec::new(),
        }
    }
}

thread_local! {
    static SPARE: RefCell<Spare> = const { RefCell::new(Spare::new()) };
}

/// `f` on the thread's spare set; `None` if it is gone (the thread is exiting) or in use.
fn with_spare<R>(f: impl FnOnce(&mut Spare) -> R) -> Option<R> {
    SPARE
        .try_with(|s| s.try_borrow_mut().ok().map(|mut s| f(&mut s)))
        .ok()
        .flatten()
}

/// How long a closing connection reads (and discards) what the client still sends.
const LINGER: Duration = Duration::from_secs(2);

/// How soon a time limit that found nobody waiting to cancel tries again.
const CANCEL_RETRY: Duration = Duration::from_millis(10);

/// Why a body read failed when the body did not come in time (answered 408).
const BODY_TIMED_OUT: &str = "the body did not arrive in time";
/// Why a body read failed when the client closed its side in the body.
const BODY_CUT_SHORT: &str = "connection closed in the body";
/// Why a body read failed when the connection failed otherwise.
const BODY_CONNECTION_FAILED: &str = "the connection failed in the body";

/// The `log` target of the access log.
const ACCESS_LOG: &str = "gevent_http::access";

/// Settings shared by a server's connections.
#[derive(Debug)]
pub(crate) struct Config {
    pub(crate) limits: HeadLimits,
    pub(crate) header_read_timeout: Duration,
    pub(crate) keep_alive_timeout: Duration,
    pub(crate) body_read_timeout: Option<Duration>,
    pub(crate) write_timeout: Duration,
    pub(crate) max_drain: u64,
    /// Shared by the connections' caches of their last response head, which know it by its
    /// allocation.
    pub(crate) server_header: Option<Rc<str>>,
    pub(crate) access_log: bool,
    #[cfg(feature = "tls")]
    pub(crate) tls: Option<std::sync::Arc<rustls::ServerConfig>>,
}

/// The time limit of whatever a connection waits for (the next request, the rest of a head, a
/// body read), kept by one timer per connection instead of a timer started and stopped for
/// every read: the limit moves with every request, the timer only when it fires (and then
/// either ends the wait or sleeps again until the current limit), libev's recipe for timeouts
/// that move on every request. A wait that runs out is cancelled (the read fails with
/// `TimedOut`); the socket is left as it was, so that a close after it can still linger.
struct Deadline {
    timer: ev_loop::Timer,
    state: Rc<DeadlineState>,
}

struct DeadlineState {
    lp: ev_loop::Loop,
    /// When the current wait must end (loop time); infinite while nothing waits.
    at: Cell<f64>,
    /// When the timer fires; infinite while it is stopped.
    due: Cell<f64>,
    expired: Cell<bool>,
    tcp: Rc<TcpStream>,
}

impl Deadline {
    fn new(tcp: Rc<TcpStream>) -> Deadline {
        let lp = greenlet::hub_loop();
        let state = Rc::new(DeadlineState {
            lp: lp.clone(),
            at: Cell::new(f64::INFINITY),
            due: Cell::new(f64::INFINITY),
            expired: Cell::new(false),
            tcp,
        });
        let s = state.clone();
        let timer = ev_loop::Timer::new(&lp, Duration::ZERO, Duration::ZERO, move |t, _| {
            s.fired(t);
        });
        // A time limit alone does not keep the hub running.
        timer.set_keep_alive(false);
        Deadline { timer, state }
    }

    /// The wait that begins now must end within `d`; it is over when the guard goes (also
    /// when a kill unwinds the wait).
    fn arm(&self, d: Duration) -> Armed {
        let s = &self.state;
        s.lp.update_now();
        let at = s.lp.now() + d.as_secs_f64();
        s.at.set(at);
        if at < s.due.get() {
            self.timer.stop();
            self.timer.set(d, Duration::ZERO);
            self.timer.start();
            s.due.set(at);
        }
        Armed(self.state.clone())
    }

    /// No more time limits: the connection is upgraded.
    fn stop(&self) {
        self.state.disarm();
        self.timer.stop();
        self.state.due.set(f64::INFINITY);
    }

    fn expired(&self) -> bool {
        self.state.expired.get()
    }
}

/// A wait under a [`Deadline`]: disarms it when it goes. It shares the deadline's state, so
/// that the connection's state is free for the wait meanwhile.
struct Armed(Rc<DeadlineState>);

impl Drop for Armed {
    fn drop(&mut self) {
        self.0.disarm();
    }
}

impl DeadlineState {
    /// The wait is over (the timer, if running, finds nothing to do when it fires).
    fn disarm(&self) {
        self.at.set(f64::INFINITY);
    }

    fn fired(&self, t: &ev_loop::Timer) {
        self.due.set(f64::INFINITY);
        let at = self.at.get();
        if at.is_infinite() {
            return;
        }
        let now = self.lp.now();
        // Half a millisecond of slack for the float arithmetic of loop times.
        if now + 0.0005 >= at {
            self.expired.set(true);
            if !self.tcp.cancel_read() {
                // Nobody waits this instant (woken by data and not run yet, or between two
                // reads of one TLS record): tried again shortly, until the read ends.
                t.set(CANCEL_RETRY, Duration::ZERO);
                t.start();
                self.due.set(now + CANCEL_RETRY.as_secs_f64());
            }
        } else {
            t.set(Duration::from_secs_f64(at - now), Duration::ZERO);
            t.start();
            self.due.set(at);
        }
    }
}

/// A live connection as the server sees it when it stops or runs out of connections.
struct Entry {
    tcp: Rc<TcpStream>,
    /// Waiting for the first byte of its next request (nothing buffered, nothing in flight).
    idle: Cell<bool>,
    /// It has been answered at least once (idle now, it is a keep-alive connection).
    kept: Cell<bool>,
    /// Its wait was ended by the server (a stop, or a client that needed its slot).
    closing: Cell<bool>,
}

impl Entry {
    /// End its wait for the next request (a request that comes anyway is answered with
    /// `Connection: close`).
    fn close_idle(self: &Rc<Entry>) {
        self.closing.set(true);
        if self.tcp.cancel_read() {
            return;
        }
        // Nobody waits this instant (woken by data not read yet, which then answers a request
        // and closes; or between two reads of one TLS record, after which it waits again):
        // tried again shortly, for as long as the connection is idle.
        let entry = Rc::downgrade(self);
        // Without a stack for it (memory exhausted), the connection's own time limit ends the
        // wait later: a stop is not failed for it.
        let _ = greenlet::Builder::new().spawn(move || {
            loop {
                if greenlet::sleep(CANCEL_RETRY).is_err() {
                    return;
                }
                match entry.upgrade() {
                    Some(e) if e.idle.get() && !e.tcp.cancel_read() => {}
                    _ => return,
                }
            }
        });
    }
}

/// One server's state, shared by its connections: the settings and the live connections.
pub(crate) struct Shared {
    pub(crate) config: Config,
    stopping: Cell<bool>,
    /// Every connection slot is taken, a client waits for one and no keep-alive connection
    /// was idle to make room: the next to finish a response closes instead of waiting.
    pressure: Cell<bool>,
    conns: RefCell<HashMap<u64, Rc<Entry>>>,
    next_id: Cell<u64>,
    /// The last response head the connections wrote, to copy for a response that repeats
    /// it: what a head is made of is the handler's and the server's, not the client's, so
    /// the connections repeat each other's heads, and one kept head is warm in the cache
    /// where one per connection would not be.
    last_response: RefCell<encode::LastResponse>,
}

impl fmt::Debug for Shared {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Shared")
            .field("stopping", &self.stopping.get())
            .field("connections", &self.conns.borrow().len())
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub(crate) fn new(config: Config) -> Shared {
        Shared {
            last_response: RefCell::new(encode::LastResponse::new(config.server_header.clone())),
            config,
            stopping: Cell::new(false),
            pressure: Cell::new(false),
            conns: RefCell::new(HashMap::new()),
            next_id: Cell::new(0),
        }
    }

    /// Begin a graceful stop: every connection closes after the response it is working on,
    /// and the idle ones now (their wait is cancelled, so it ends at once).
    pub(crate) fn begin_stop(&self) {
        self.stopping.set(true);
        for e in self.conns.borrow().values() {
            if e.idle.get() {
                e.close_idle();
            }
        }
    }

    /// Every connection slot is taken and a client waits for one: close an idle keep-alive
    /// connection for it, or, if none is idle, the next one to finish a response.
    pub(crate) fn relieve(&self) {
        let conns = self.conns.borrow();
        match conns
            .values()
            .find(|e| e.idle.get() && e.kept.get() && !e.closing.get())
        {
            Some(e) => e.close_idle(),
            None => self.pressure.set(true),
        }
    }

    /// Whether the connection that just finished a response is the one to make room for a
    /// client waiting for a slot (then it is not waited for again).
    fn make_room(&self) -> bool {
        self.pressure.replace(false)
    }

    fn register(&self, tcp: Rc<TcpStream>) -> Registration<'_> {
        let id = self.next_id.get();
        self.next_id.set(id + 1);
        let entry = Rc::new(Entry {
            tcp,
            idle: Cell::new(false),
            kept: Cell::new(false),
            closing: Cell::new(false),
        });
        self.conns.borrow_mut().insert(id, entry.clone());
        Registration {
            shared: self,
            id,
            entry,
        }
    }
}

/// A connection's place in [`Shared`], removed when the connection ends.
struct Registration<'a> {
    shared: &'a Shared,
    id: u64,
    entry: Rc<Entry>,
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        self.shared.conns.borrow_mut().remove(&self.id);
        // The slot this frees is the waiting client's: no other connection need make room.
        self.shared.pressure.set(false);
    }
}

/// A connection as its requests' [`Body`]s and an [`Upgraded`] stream share it: what it is,
/// fixed when it is accepted and read without waiting for anything, beside its state.
pub(crate) struct Connection {
    /// The client's address, as accepted.
    pub(crate) peer: SocketAddr,
    pub(crate) tls: bool,
    pub(crate) tcp: Rc<TcpStream>,
    /// Which request the connection is on, counted from 1: a body kept from an earlier one
    /// reads nothing of a later one's.
    pub(crate) request: Cell<u64>,
    /// The last request that is over (its response out, or the connection ended): a `Body` of
    /// it, or of an earlier one, reads nothing more.
    pub(crate) over: Cell<u64>,
    /// Whether the body of request `over` was read to its end: a `Body` of it still reads
    /// its end (`Ok(0)`) rather than failing.
    pub(crate) over_whole: Cell<bool>,
    /// Between the handler's return and the end of its response's writing: what a kill or
    /// an error interrupts then may be a response cut short.
    responding: Cell<bool>,
    /// Set once an [`Upgraded`] stream was shut down for writing: its writes fail from then
    /// on (over TLS they would be taken and lost), and its end sends no second `close_notify`.
    pub(crate) write_shut: Cell<bool>,
    /// Held by whichever greenlet uses the state: the connection's own, or one the handler
    /// made that reads the body. Reading may wait for the client, so a second user waits for
    /// the first (cooperatively) rather than finding the state borrowed.
    lock: greenlet::Lock,
    state: RefCell<Conn>,
}

/// The state of a [`Connection`], for as long as this greenlet holds its lock.
pub(crate) struct StateGuard<'a> {
    // Declared first: dropped before the lock is released.
    state: std::cell::RefMut<'a, Conn>,
    _lock: greenlet::LockGuard<'a>,
}

impl std::ops::Deref for StateGuard<'_> {
    type Target = Conn;
    fn deref(&self) -> &Conn {
        &self.state
    }
}

impl std::ops::DerefMut for StateGuard<'_> {
    fn deref_mut(&mut self) -> &mut Conn {
        &mut self.state
    }
}

impl Connection {
    /// End the current request for its `Body`, if it is not over yet: later reads of it
    /// return at once (its end if it was read whole). Nobody may hold the state's borrow (the
    /// caller just let it go).
    fn end_request(&self) {
        let id = self.request.get();
        if self.over.get() == id {
            return;
        }
        let whole = self
            .state
            .try_borrow()
            .is_ok_and(|c| c.body_done() && !c.drained && c.body_error.is_none());
        self.over_whole.set(whole);
        self.over.set(id);
    }

    /// The state if no other greenlet uses it now.
    pub(crate) fn try_state(&self) -> Option<StateGuard<'_>> {
        let lock = self.lock.try_lock()?;
        Some(StateGuard {
            state: self.state.try_borrow_mut().ok()?,
            _lock: lock,
        })
    }

    /// The state, once no other greenlet uses it (at once when none does).
    ///
    /// # Errors
    /// What waiting for it may end in: a `Timeout` scope around the caller (`TimedOut`), a
    /// wait nothing could end.
    #[inline]
    pub(crate) fn state(&self) -> io::Result<StateGuard<'_>> {
        let lock = match self.lock.try_lock() {
            Some(g) => g,
            None => self.lock.lock()?,
        };
        Ok(StateGuard {
            state: self.state.borrow_mut(),
            _lock: lock,
        })
    }
}

/// The connection's state.
pub(crate) struct Conn {
    pub(crate) transport: Transport,
    deadline: Deadline,
    /// Read buffer: bytes `pos..end` are received and not consumed yet.
    pub(crate) buf: Vec<u8>,
    pub(crate) pos: usize,
    pub(crate) end: usize,
    /// The last read filled all the room `buf` had: more may have been waiting.
    filled: bool,
    /// Responses not written yet (pipelined responses go out in one write).
    out: Vec<u8>,
    /// How many times `out` was written out: whether any of a response left.
    flushes: u64,
    /// What the last request head leaves for the next one's parsing.
    reuse: parse::Reuse,
    decoder: Decoder,
    /// Body data decoded but not handed out yet (a range of `buf`).
    pending: Range<usize>,
    /// Bytes of the connection the body decoder has taken so far (data and framing: what a
    /// drain of an unread body is limited by).
    body_taken: u64,
    expect_pending: bool,
    /// The final response's head is queued: a body still awaiting its 100 Continue is not
    /// invited any more (a 100 after it would break the response).
    continue_refused: bool,
    body_error: Option<&'static str>,
    /// Data bytes of the request's body decoded so far, and how many it may have.
    body_len: u64,
    max_body: Option<u64>,
    eof: bool,
    /// The second (of the loop's clock) in which the connection last gave back the pages of
    /// its stack; 0 before it first did (see [`Conn::wait_for_data`]).
    trimmed_at: u64,
    /// A write failed: the connection can only be reset.
    pub(crate) write_failed: bool,
    /// The rest of this request's body was read and thrown away (the response went out
    /// without it): a later read of it fails rather than ending early.
    drained: bool,
    body_timeout: Duration,
    /// When a drain of an unread body gives up, all its reads told.
    body_deadline: Option<Instant>,
    /// The time a whole body has ([`Builder::body_read_timeout`](crate::Builder::body_read_timeout)).
    body_limit: Option<Duration>,
    /// When this request's body must have come, set at its first read (with `body_limit`).
    body_limit_deadline: Option<Instant>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        // For the next connection the thread serves (what the buffers hold is not looked at:
        // a buffer is read only as far as its new owner filled it).
        self.out.clear();
        let map = self.reuse.lend_map();
        with_spare(|s| self.keep_in(s, true, true, map));
    }
}

impl Conn {
    fn new(transport: Transport, deadline: Deadline, config: &Config) -> Conn {
        Conn {
            transport,
            deadline,
            buf: Vec::new(),
            pos: 0,
            end: 0,
            filled: false,
            out: Vec::new(),
            flushes: 0,
            reuse: parse::Reuse::default(),
            decoder: Decoder::length(0),
            pending: 0..0,
            body_taken: 0,
            expect_pending: false,
            continue_refused: false,
            body_error: None,
            eof: false,
            trimmed_at: 0,
            write_failed: false,
            drained: false,
            body_len: 0,
            max_body: config.limits.max_body,
            body_timeout: config.keep_alive_timeout,
            body_deadline: None,
            body_limit: config.body_read_timeout,
            body_limit_deadline: None,
        }
    }

    /// Seconds since the epoch for the `Date` header: the hub loop's cached time (refreshed at
    /// every poll, so at most one batch old), not a clock read per response.
    fn now_secs(&self) -> u64 {
        self.deadline.state.lp.now() as u64
    }

    /// Write out what is queued. Once a write failed, how much of it left is unknown: nothing
    /// more is written (a retry would send again what went out), every later flush fails.
    fn flush(&mut self) -> io::Result<()> {
        if let Err(e) = self.check_writable() {
            self.out.clear();
            return Err(e);
        }
        if !self.out.is_empty() {
            #[cfg(test)]
            tests::WRITES.with(|n| n.set(n.get() + 1));
            self.flushes += 1;
            let written = self.transport.write_all(&self.out);
            self.out.clear();
            if written.is_err() {
                self.write_failed = true;
            }
            written?;
        }
        Ok(())
    }

    /// Send what the transport holds (TLS records), unless a write failed already; a failure
    /// here is one too.
    pub(crate) fn flush_transport(&mut self) -> io::Result<()> {
        self.check_writable()?;
        let flushed = self.transport.flush();
        if flushed.is_err() {
            self.write_failed = true;
        }
        flushed
    }

    /// `BrokenPipe` once a write failed.
    pub(crate) fn check_writable(&self) -> io::Result<()> {
        if self.write_failed {
            return Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "an earlier write to the connection failed",
            ));
        }
        Ok(())
    }

    /// Send TLS `close_notify` and end our direction, waiting at most the linger (or the write
    /// timeout if shorter) for room to send it.
    pub(crate) fn close_write_soon(&mut self) {
        let tcp = self.transport.tcp();
        let limit = tcp
            .write_timeout()
            .ok()
            .flatten()
            .map_or(LINGER, |t| t.min(LINGER));
        let _ = tcp.set_write_timeout(Some(limit));
        self.transport.close_write();
    }

    /// End a connection whose next request did not come in time: a TLS client is told
    /// (close_notify), so that it does not take the end for a truncation. One cut in a head
    /// gets no lingering for more of a head that is too slow.
    fn head_timed_out(&mut self) {
        if self.pos == self.end {
            self.linger_close();
        } else if self.transport.is_tls() {
            self.close_write_soon();
        }
    }

    /// Whether the request's body has been read to its end.
    pub(crate) fn body_done(&self) -> bool {
        self.decoder.is_done() && self.pending.is_empty()
    }

    /// Read and discard the rest of the request's body, taking at most `limit` bytes of the
    /// connection for it (its framing counts: chunk extensions and trailers are not free), in
    /// at most `within` all told (a client that trickles what it does not need to send is not
    /// waited for); whether it was read to its end.
    fn drain(&mut self, limit: u64, within: Duration) -> bool {
        let start = self.body_taken;
        let data_before = self.body_len;
        let pending_before = !self.pending.is_empty();
        self.body_deadline = Some(Instant::now() + within);
        let mut sink = [0u8; 4096];
        let mut done = true;
        while !self.body_done() {
            if self.body_taken - start > limit {
                done = false;
                break;
            }
            if let Err(e) = self.read_body(&mut sink) {
                if e.kind() == io::ErrorKind::TimedOut && !self.write_failed {
                    // Slow, not malformed: the answer stands, the connection closes.
                    self.body_error = None;
                }
                done = false;
                break;
            }
        }
        self.body_deadline = None;
        // Reads of the body from now on (a greenlet the handler made) fail: what they would
        // have read is gone (chunk framing alone is no loss).
        self.drained |= pending_before || self.body_len > data_before;
        done && self.body_taken - start <= limit
    }

    /// The status a request whose body failed is answered with: 413 for one over the size
    /// limit, 408 for one that did not come in time, 400 for one malformed or cut short.
    fn body_error_status(&self) -> StatusCode {
        match self.body_error {
            Some(parse::BODY_TOO_LARGE) => StatusCode::PAYLOAD_TOO_LARGE,
            Some(BODY_TIMED_OUT) => StatusCode::REQUEST_TIMEOUT,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// Queue `100 Continue` if the client waits for it before sending the body.
    fn send_continue(&mut self) {
        if self.expect_pending {
            self.expect_pending = false;
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
    }

    /// Let go of buffers that a large head or response grew, before waiting for the next
    /// request with nothing buffered: an idle connection holds at most [`IDLE_BUF`] of each
    /// (none while it waits with nothing buffered, see [`Conn::give_back`]), so that many
    /// clients idling after large requests do not pin large buffers.
    fn shed(&mut self) {
        if self.buf.len() > IDLE_BUF && self.pos == self.end {
            self.buf = Vec::new();
            self.pos = 0;
            self.end = 0;
        }
        if self.out.is_empty() && self.out.capacity() > IDLE_BUF {
            self.out = Vec::new();
        }
    }

    /// Give the buffers back to the thread's [`Spare`] ones, as far as they hold nothing: the
    /// read buffer if all of it was consumed, the response buffer if it was written out; and
    /// the header map kept for the next request (taken again when a head is parsed).
    fn give_back(&mut self) {
        let read = self.pos == self.end && self.pending.is_empty() && self.buf.len() <= IDLE_BUF;
        let out = self.out.is_empty();
        // The thread's set is looked at once, and only when there is something to give (a
        // connection whose buffers went back at its last wait, and that read nothing since,
        // has none).
        let map = self.reuse.lend_map();
        if !((read && self.buf.capacity() > 0) || (out && self.out.capacity() > 0) || map.is_some())
        {
            return;
        }
        if with_spare(|s| self.keep_in(s, read, out, map)).is_none() {
            // The set is gone (the thread is exiting): what would have been kept is let go.
            if read {
                (self.buf, self.pos, self.end) = (Vec::new(), 0, 0);
            }
            if out {
                self.out = Vec::new();
            }
        }
    }

    /// Into the thread's spare set `s`: the read buffer (if `read`) and the response buffer
    /// (if `out`), each if it holds an allocation of at most [`IDLE_BUF`] and there is room,
    /// else freed; and `map` (the one kept for the next request, lent), if there is room.
    #[inline(always)]
    fn keep_in(&mut self, s: &mut Spare, read: bool, out: bool, map: Option<Box<HeaderMap>>) {
        let worth = |b: &Vec<u8>| b.capacity() != 0 && b.capacity() <= IDLE_BUF;
        if read {
            (self.pos, self.end) = (0, 0);
            let b = std::mem::take(&mut self.buf);
            if worth(&b) && s.read.len() < SPARE_BUFS {
                s.read.push(b);
            }
        }
        if out {
            let b = std::mem::take(&mut self.out);
            if worth(&b) && s.out.len() < SPARE_BUFS {
                s.out.push(b);
            }
        }
        // An idle connection holds no map: one the set has no room for is freed.
        if let Some(map) = map
            && s.maps.len() < SPARE_BUFS
        {
            s.maps.push(map);
        }
    }

    /// Before a head is parsed: a spare header map from the thread's set, if the connection
    /// lent its own while it waited (and the set has one), to build the request in.
    #[inline(always)]
    fn take_map(&mut self) {
        if self.reuse.lacks_map()
            && let Some(map) = with_spare(|s| s.maps.pop()).flatten()
        {
            self.reuse.put_map(map);
        }
    }

    /// Before a read that would wait for the client (nothing unread, and the last read took
    /// all that had come), wait for its data first, holding no buffer: they go back to the
    /// thread's spare ones for the wait (see [`Spare`]). Not while the transport holds data
    /// the socket no longer does (a TLS session's decrypted bytes; see
    /// [`Transport::holds_data`]): then the read goes ahead.
    fn wait_for_data(&mut self) -> io::Result<()> {
        if self.filled
            || self.eof
            || self.pos != self.end
            || !self.pending.is_empty()
            || self.transport.holds_data()
        {
            return Ok(());
        }
        self.give_back();
        // The stack too: what a handler or a TLS handshake (the key exchange, the signature:
        // 16 KiB against a request's 4 to 8) took it down to stays resident while the
        // connection idles, unless it is given back. That is a system call: done when a wait
        // starts after a response, at most once a second (a busy connection rarely; one that
        // idles between requests each time, which its client's pace makes rare), and not in
        // a handshake, which goes on deeper. A connection that went deep within the second of
        // its last trim keeps those pages until it waits again in a later second.
        let now = self.now_secs();
        if self.flushes > 0 && now != self.trimmed_at && !self.transport.handshaking() {
            self.trimmed_at = now;
            greenlet::trim_stack();
            #[cfg(test)]
            tests::TRIMS.with(|n| n.set(n.get() + 1));
        }
        self.transport.tcp().wait_readable()
    }

    /// Room after what `buf` holds: its unconsumed bytes moved to its start, and it grown if
    /// it is full, or if the last read filled it and it is under [`IDLE_BUF`]. Buffers given
    /// back while waiting are taken again (spare ones, if the thread has any).
    fn make_room(&mut self) {
        let (read, out) = (self.buf.capacity() == 0, self.out.capacity() == 0);
        if read || out {
            with_spare(|s| {
                if read && let Some(b) = s.read.pop() {
                    self.buf = b;
                }
                if out && let Some(b) = s.out.pop() {
                    self.out = b;
                }
            });
        }
        if self.pos > 0 && self.pending.is_empty() {
            // Most often all of it was consumed: nothing to move.
            if self.pos < self.end {
                self.buf.copy_within(self.pos..self.end, 0);
            }
            self.end -= self.pos;
            self.pos = 0;
        }
        if self.end == self.buf.len() || (self.filled && self.buf.len() < IDLE_BUF) {
            let len = (self.buf.len() * 2).max(INITIAL_BUF);
            self.buf.resize(len, 0);
        }
    }

    /// `n` bytes were read into the room after `end`.
    #[inline(always)]
    fn took(&mut self, n: usize) {
        #[cfg(test)]
        tests::READS.with(|r| r.set(r.get() + 1));
        self.filled = self.end + n == self.buf.len();
        self.end += n;
    }

    /// Read more bytes into `buf`, waiting at most `timeout` (and none once a wait ran out).
    /// `Ok(0)` at EOF.
    fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        if self.deadline.expired() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        let r = {
            let _armed = self.deadline.arm(timeout);
            self.wait_for_data().and_then(|()| {
                self.make_room();
                self.transport.read(&mut self.buf[self.end..])
            })
        };
        if self.deadline.expired() {
            // What came is kept even so: nothing of the stream is skipped, whatever reads it
            // next.
            if let Ok(n) = r {
                self.took(n);
            }
            return Err(io::ErrorKind::TimedOut.into());
        }
        let n = r?;
        self.took(n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Read into `buf` what has arrived, without waiting: `WouldBlock` if nothing has.
    fn try_fill(&mut self) -> io::Result<usize> {
        self.make_room();
        let n = self.transport.try_read(&mut self.buf[self.end..])?;
        self.took(n);
        if n == 0 {
            self.eof = true;
        }
        Ok(n)
    }

    /// Next body bytes into `out` (0 at the end of the body).
    pub(crate) fn read_body(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(e) = self.body_error {
            // The kind its reason stands for, every time.
            let kind = match e {
                BODY_TIMED_OUT => io::ErrorKind::TimedOut,
                BODY_CUT_SHORT => io::ErrorKind::UnexpectedEof,
                BODY_CONNECTION_FAILED => io::ErrorKind::Other,
                _ => io::ErrorKind::InvalidData,
            };
            return Err(io::Error::new(kind, e));
        }
        if self.drained {
            return Err(io::Error::other(
                "part of the request body was discarded: the response went out before it was \
                 read",
            ));
        }
        if self.expect_pending && self.continue_refused {
            return Err(io::Error::other(
                "the request body was not invited: the response went out without \
                 100 Continue (a streamed answer invites it only with a success status)",
            ));
        }
        self.send_continue();
        if let (None, Some(limit)) = (self.body_limit_deadline, self.body_limit)
            && !self.body_done()
        {
            self.body_limit_deadline = Some(Instant::now() + limit);
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
            match self.decoder.decode(&self.buf[self.pos..self.end]) {
                Err(e) => {
                    self.body_error = Some(e.0);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e.0));
                }
                Ok((n, data)) => {
                    self.body_len += data.len() as u64;
                    if self.max_body.is_some_and(|max| self.body_len > max) {
                        self.body_error = Some(parse::BODY_TOO_LARGE);
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            parse::BODY_TOO_LARGE,
                        ));
                    }
                    self.pending = self.pos + data.start..self.pos + data.end;
                    self.pos += n;
                    self.body_taken += n as u64;
                    if n > 0 {
                        continue;
                    }
                }
            }
            self.flush()?;
            // Each read waits at most the body timeout, and none past the deadline of a drain
            // (whose reads may be framing only, chunk after chunk) or the whole body's.
            let mut timeout = self.body_timeout;
            if self.body_deadline.is_some() || self.body_limit_deadline.is_some() {
                let now = Instant::now();
                for d in [self.body_deadline, self.body_limit_deadline]
                    .into_iter()
                    .flatten()
                {
                    timeout = timeout.min(d.saturating_duration_since(now));
                }
            }
            let filled = if self.eof {
                Ok(0)
            } else if timeout.is_zero() {
                Err(io::ErrorKind::TimedOut.into())
            } else {
                self.fill(timeout)
            };
            match filled {
                Ok(0) => {
                    self.body_error = Some(BODY_CUT_SHORT);
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                Ok(_) => {}
                Err(e) => {
                    self.body_error = Some(if e.kind() == io::ErrorKind::TimedOut {
                        BODY_TIMED_OUT
                    } else {
                        BODY_CONNECTION_FAILED
                    });
                    return Err(e);
                }
            }
        }
    }

    /// Close gracefully: stop writing, then, if the client may still be sending (it pipelined
    /// more, or a body was not read to its end), read and discard what it sends for a moment,
    /// so that our last response is not lost to the reset that data would draw after a close
    /// (nginx's `lingering_close on`). A client that sent nothing more is not waited for: a
    /// connection slot is not held for it.
    fn linger_close(&mut self) {
        if self.flush().is_err() {
            // The client does not take what is sent (it waited out the write timeout once
            // already): no close_notify behind it, no lingering, and a reset, not a clean
            // close it could take for the end of what it got.
            let tcp = self.transport.tcp();
            let _ = tcp.set_linger(Some(Duration::ZERO));
            tcp.close();
            return;
        }
        // The close_notify is small, but a full send buffer does not get more than the linger
        // (nor a read TLS may want on the way: no time limit of the connection's is armed).
        let _ = self.transport.tcp().set_read_timeout(Some(LINGER));
        self.close_write_soon();
        if self.eof {
            return;
        }
        // Nothing unread in our buffer: whether the kernel holds something (a request
        // pipelined after the last read) decides.
        let check_first = self.pos == self.end && self.body_done();
        // What comes is read into the read buffer and thrown away (a spare one if the
        // connection gave its own back): a buffer on the stack would be zeroed (4 KiB) for
        // every connection that closes, when most reads find nothing.
        if self.buf.is_empty() {
            self.make_room();
        }
        let tcp = self.transport.tcp();
        let sink = &mut self.buf[..];
        let mut total = 0;
        if check_first {
            match tcp.try_read(sink) {
                Ok(n) if n > 0 => total = n,
                _ => return,
            }
        }
        let deadline = Instant::now() + LINGER;
        while total < 256 * 1024 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() || tcp.set_read_timeout(Some(left)).is_err() {
                break;
            }
            match (&*tcp).read(sink) {
                Ok(0) | Err(_) => break,
                Ok(n) => total += n,
            }
        }
    }
}

/// A writer of body bytes into the connection's output, chunked or raw, flushed in large
/// writes.
struct BodyWriter<'a> {
    conn: &'a Connection,
    chunked: bool,
}

impl Write for BodyWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let mut c = self.conn.state()?;
        if self.chunked {
            encode::push_hex(&mut c.out, buf.len() as u64);
            c.out.extend_from_slice(b"\r\n");
        }
        c.out.extend_from_slice(buf);
        if self.chunked {
            c.out.extend_from_slice(b"\r\n");
        }
        if c.out.len() >= FLUSH_AT {
            c.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        self.conn.state()?.flush()
    }
}

impl BodyWriter<'_> {
    fn finish(self) -> io::Result<()> {
        if self.chunked {
            self.conn.state()?.out.extend_from_slice(b"0\r\n\r\n");
        }
        Ok(())
    }
}

/// What identifies a request in the logs: its request line as received (a copy into a
/// buffer the connection reuses, shown as UTF-8 only when logged), and what the response
/// depends on.
struct RequestLine<'a> {
    method: Method,
    version: Version,
    text: &'a [u8],
}

/// The request line as logged, escaped as nginx escapes it: `"` and `\` with a backslash,
/// control bytes and bytes past ASCII as `\xHH`, so that what a client sends can neither end
/// the quoted field early, nor start a line, nor move the terminal's cursor.
impl fmt::Display for RequestLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plain = |b: u8| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\';
        let mut rest = self.text;
        while !rest.is_empty() {
            let run = rest.iter().position(|&b| !plain(b)).unwrap_or(rest.len());
            // Printable ASCII only: always UTF-8.
            f.write_str(std::str::from_utf8(&rest[..run]).map_err(|_| fmt::Error)?)?;
            let Some(&b) = rest.get(run) else { break };
            match b {
                b'"' | b'\\' => write!(f, "\\{}", char::from(b))?,
                _ => write!(f, "\\x{b:02X}")?,
            }
            rest = &rest[run + 1..];
        }
        Ok(())
    }
}

/// How one request ended for the connection.
enum Next {
    KeepAlive,
    Close,
    /// The connection was handed to an upgrade closure or closed already.
    Done,
}

/// The handler as a connection calls it: the response already split into its head and body.
pub(crate) type Handler = dyn Fn(Request<Body>) -> (http::response::Parts, ResponseBody);

/// What a connection's loop keeps from one request to the next.
struct Kept {
    /// Where each request is built, and taken from by the handler's call (a request is a few
    /// hundred bytes, each move of it a copy).
    request: Option<Request<Body>>,
    /// The request line, copied for the logs (into a buffer the connection reuses).
    line: Vec<u8>,
}

/// Serve requests on `stream` until the client or an error ends the connection.
pub(crate) fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    shared: &Shared,
    handler: &Handler,
) -> io::Result<()> {
    let config = &shared.config;
    let _ = stream.set_nodelay(true);
    // Each wait for room to write is limited, so a client that stopped reading is let go.
    stream.set_write_timeout(Some(config.write_timeout))?;
    let tcp = Rc::new(stream);
    let fixed_tcp = tcp.clone();
    let registration = shared.register(tcp.clone());
    let deadline = Deadline::new(tcp.clone());
    let transport = match make_transport(config, tcp)? {
        Some(t) => t,
        None => return Ok(()),
    };
    let conn = Rc::new(Connection {
        peer,
        tls: transport.is_tls(),
        tcp: fixed_tcp,
        request: Cell::new(0),
        over: Cell::new(0),
        over_whole: Cell::new(false),
        responding: Cell::new(false),
        write_shut: Cell::new(false),
        lock: greenlet::Lock::new(),
        state: RefCell::new(Conn::new(transport, deadline, config)),
    });
    let _reset = ResetIfCutShort(&conn);
    let server = config.server_header.as_deref();
    let mut first = true;
    let mut kept = Kept {
        request: None,
        line: Vec::new(),
    };
    loop {
        // Read a head: the idle timeout until its first byte (the header timeout for the first
        // request), then the header timeout for the whole head.
        let mut head_deadline = None;
        // A head that comes in many small reads is not parsed again from its start after each
        // of them (which costs the square of its length): after a first try, only once a line
        // of it has ended (a CR or LF among the new bytes, looked for in those only: a head
        // has at most as many lines as fields allowed, and a bad line is refused when it
        // ends) or what is buffered has doubled (a line that does not end is still refused
        // for its length).
        let (mut tried, mut scanned) = (0usize, 0usize);
        let (parsed, guard) = loop {
            let mut guard = conn.state()?;
            let c = &mut *guard;
            let buffered = c.pos < c.end;
            let len = c.end - c.pos;
            let worth = tried == 0 || len >= 2 * tried || {
                let from = c.pos + scanned;
                scanned = len;
                c.buf[from..c.end].iter().any(|&b| b == b'\n' || b == b'\r')
            };
            if buffered && worth {
                #[cfg(test)]
                tests::PARSES.with(|n| n.set(n.get() + 1));
                let id = conn.request.get() + 1;
                let body = || Body {
                    conn: conn.clone(),
                    request: id,
                    whole: false,
                };
                c.take_map();
                let buf = &c.buf[c.pos..c.end];
                match parse::parse_head_into(
                    buf,
                    &config.limits,
                    &mut c.reuse,
                    &mut kept.request,
                    body,
                ) {
                    Ok(Some(p)) => {
                        conn.request.set(id);
                        break (p, guard);
                    }
                    Ok(None) => (tried, scanned) = (len, len),
                    Err(e) => {
                        log::debug!("refused a request from {peer}: {}", e.reason);
                        let now = c.now_secs();
                        encode::error_response(&mut c.out, e.status, server, now);
                        c.linger_close();
                        return Ok(());
                    }
                }
            }
            c.flush()?;
            if c.eof {
                return Ok(());
            }
            // The clock is read only when a read has to wait, not per pipelined request.
            if buffered || first {
                head_deadline.get_or_insert_with(|| Instant::now() + config.header_read_timeout);
            }
            let timeout = match head_deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => config.keep_alive_timeout,
            };
            if timeout.is_zero() {
                c.head_timed_out();
                return Ok(());
            }
            // Nothing of a request has come (the first one's included): what a stop closes
            // at once.
            let idle = !buffered;
            if idle && (shared.stopping.get() || (!first && shared.make_room())) {
                // A request that came since the last read is answered (and the connection
                // closed after it), not thrown away.
                if matches!(c.try_fill(), Ok(n) if n > 0) {
                    registration.entry.closing.set(true);
                    continue;
                }
                c.linger_close();
                return Ok(());
            }
            if idle && !first {
                c.shed();
                if kept.line.capacity() > INITIAL_LINE {
                    kept.line = Vec::new();
                }
            }
            registration.entry.idle.set(idle);
            let filled = c.fill(timeout);
            registration.entry.idle.set(false);
            if idle && registration.entry.closing.get() && !matches!(filled, Ok(n) if n > 0) {
                // The server ended the wait (a stop, or a client that needed the slot). A
                // request that came meanwhile is answered (and the connection closed after
                // it); else a quiet close, with a TLS client told (close_notify), and no error
                // logged for the cancelled read.
                if filled.is_err()
                    && !c.deadline.expired()
                    && matches!(c.try_fill(), Ok(n) if n > 0)
                {
                    continue;
                }
                c.linger_close();
                return Ok(());
            }
            match filled {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                    ) =>
                {
                    log::debug!("closing a connection from {peer}: no complete request in time");
                    c.head_timed_out();
                    return Ok(());
                }
                Err(e) => return Err(e),
            }
        };
        first = false;
        registration.entry.kept.set(true);
        // An error leaves `responding` set: the connection ends with a reset.
        let closing = registration.entry.closing.get();
        let next = answer(&conn, &mut kept, parsed, guard, shared, closing, handler)?;
        conn.responding.set(false);
        // The request is over (if an upgrade did not end it already): a `Body` kept from it
        // reads nothing more, at once (the connection waits for the next request holding its
        // state).
        conn.end_request();
        match next {
            Next::KeepAlive if !shared.stopping.get() => {}
            Next::KeepAlive | Next::Close => {
                if let Ok(mut c) = conn.state() {
                    c.linger_close();
                }
                return Ok(());
            }
            Next::Done => return Ok(()),
        }
    }
}

/// A connection whose greenlet is killed (a stop's grace ran out) or fails (a write timed out)
/// while it writes a response, or that ends with responses still queued or a write that
/// failed, ends with a reset at once, not a clean close: a client reading a body that ends
/// with the connection (HTTP/1.0, length unknown) would take a truncated one for the whole.
/// Either way the request in progress is over for a [`Body`] kept past it (its reads fail at
/// once instead of waiting for a connection that is gone).
struct ResetIfCutShort<'a>(&'a Connection);

impl Drop for ResetIfCutShort<'_> {
    fn drop(&mut self) {
        let conn = self.0;
        conn.end_request();
        // `responding` is still set only when a kill unwound out of `answer` or it returned an
        // error (every other return clears it; a handler's own panic is caught before this).
        // The state is free here unless a greenlet the handler made holds it (then it is not
        // looked at).
        let unsent = conn
            .state
            .try_borrow()
            .is_ok_and(|c| !c.out.is_empty() || c.write_failed);
        if conn.responding.get() || unsent {
            let _ = conn.tcp.set_linger(Some(Duration::ZERO));
            conn.tcp.close();
        }
    }
}

/// The transport for a new connection: TLS if configured. `None` if the connection is to be
/// dropped.
///
/// Not inlined into the connection's loop: a TLS session is built on the stack before it is
/// boxed (some KiB), and in the loop's frame that room would stay under every wait, so that
/// the wait's own frames reach the stack's second page, which then stays resident while the
/// connection idles (plain ones too, whenever the `tls` feature is on).
#[inline(never)]
fn make_transport(config: &Config, tcp: Rc<TcpStream>) -> io::Result<Option<Transport>> {
    #[cfg(feature = "tls")]
    if let Some(tls) = &config.tls {
        let session = match rustls::ServerConnection::new(tls.clone()) {
            Ok(s) => s,
            Err(e) => {
                log::error!("cannot start a TLS session: {e}");
                return Ok(None);
            }
        };
        return Ok(Some(Transport::Tls(Box::new(rustls::StreamOwned::new(
            session,
            SharedTcp(tcp),
        )))));
    }
    let _ = config;
    Ok(Some(Transport::Plain(SharedTcp(tcp))))
}

/// Run the handler for one parsed request and queue (or stream) its response.
///
/// Not inlined into the connection's loop: its locals (the request and response parts) then
/// take stack only while a request is answered, not under every parse and read too. Stacked
/// on the parse's, they reached the second page of the connection's stack, which then stays
/// resident while the connection idles (4 KiB more per idle connection, for about 30
/// instructions a request).
#[inline(never)]
fn answer(
    conn: &Rc<Connection>,
    kept: &mut Kept,
    parsed: parse::Head,
    mut c: StateGuard<'_>,
    shared: &Shared,
    closing: bool,
    handler: &Handler,
) -> io::Result<Next> {
    let (request, line_text) = (&mut kept.request, &mut kept.line);
    let config = &shared.config;
    let peer = conn.peer;
    let server = config.server_header.as_deref();
    let started = (config.access_log && log::log_enabled!(target: ACCESS_LOG, log::Level::Info))
        .then(Instant::now);
    let mut keep_alive = parsed.keep_alive;
    {
        // The request line, kept for the logs (a copy into a buffer the connection reuses).
        let head = &c.buf[c.pos..c.pos + parsed.consumed];
        // A repeated head's line is the last one's, which is there already (every head parsed
        // is answered, its line copied here), unless an idle connection let the copy go.
        if !parsed.repeated || line_text.is_empty() {
            line_text.clear();
            line_text.extend_from_slice(&head[parsed.line.clone()]);
        }
        c.pos += parsed.consumed;
        c.decoder = match parsed.body_framing {
            Framing::None => Decoder::length(0),
            Framing::Length(n) => Decoder::length(n),
            Framing::Chunked => Decoder::chunked(),
        };
        c.pending = c.pos..c.pos;
        c.expect_pending = parsed.expect_continue && !c.decoder.is_done();
        c.continue_refused = false;
        c.body_error = None;
        c.body_len = 0;
        c.body_limit_deadline = None;
        c.drained = false;
    }
    // Let go before the handler runs: a greenlet of its own may read the body.
    drop(c);
    let asked_upgrade = parsed.upgrade;
    let Some(req) = request.as_ref() else {
        unreachable!("a complete head's request is built");
    };
    let line = RequestLine {
        method: req.method().clone(),
        version: req.version(),
        text: line_text,
    };
    // Taken from where it was built, straight into the call.
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        handler(request.take().expect("a complete head's request is built"))
    }));
    let mut c = conn.state()?;
    let outcome = match outcome {
        Err(p) if greenlet::is_kill(&*p) => resume_unwind(p),
        o => o,
    };
    if outcome.is_err() {
        log::error!("handler panicked on \"{line}\" from {peer}; answering 500");
    }
    // Cleared by the caller when this returns `Ok`, and only then (a kill unwinds past it).
    conn.responding.set(true);
    // Takes the state's guard and lets it go: what the caller drops on its way out (the
    // handler's response body, which may hold the request's `Body`) runs without the lock.
    let refuse = |mut c: StateGuard<'_>, status: StatusCode| {
        let now = c.now_secs();
        encode::error_response(&mut c.out, status, server, now);
        c.continue_refused = true;
        drop(c);
        log_access(started, peer, &line, status, Some(0));
        Next::Close
    };
    if c.body_error.is_some() {
        let status = c.body_error_status();
        return Ok(refuse(c, status));
    }
    let Ok((parts, body)) = outcome else {
        return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
    };
    let upgrade = parts.status == StatusCode::SWITCHING_PROTOCOLS;
    if upgrade != matches!(body, ResponseBody::Upgrade(_)) {
        log::error!(
            "handler's response to \"{line}\" pairs status {} with a {body:?} body \
             (101 goes with ResponseBody::upgrade and only with it); answering 500",
            parts.status
        );
        return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
    }
    if upgrade && !asked_upgrade {
        log::error!(
            "handler answered 101 to \"{line}\", which asks for no upgrade (no Upgrade field, \
             or HTTP/1.0, where it is ignored); answering 500"
        );
        return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
    }
    if parts.status.is_informational() && !upgrade {
        log::error!(
            "handler answered \"{line}\" with {}, which is not a final status; answering 500",
            parts.status
        );
        return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
    }
    // A 2xx to CONNECT makes the connection a tunnel (RFC 9112 §6.3): what follows is not
    // requests. There is no tunnel here: the connection closes after the response.
    if line.method == Method::CONNECT && parts.status.is_success() {
        keep_alive = false;
    }
    // A body sent as it is produced may read the request's body (an echo, a proxy): that is
    // left for it, and what it leaves is drained after it.
    let streamed = matches!(
        body,
        ResponseBody::Stream(_) | ResponseBody::Sized(..) | ResponseBody::Write(_)
    );
    // A server that is stopping closes each connection after its response, without waiting
    // for the rest of a body nobody reads; so does a connection whose wait for this request
    // the server had ended (a request came anyway), and the one to make room for a waiting
    // client (one whose response ends soon: not a body that may stream for long, nor an
    // upgrade).
    if shared.stopping.get()
        || closing
        || (keep_alive && !streamed && !upgrade && shared.make_room())
    {
        keep_alive = false;
    }
    if streamed {
        // Left for later: its 100 Continue, if any, and the drain.
    } else if upgrade {
        // The new protocol starts after the whole request (RFC 9110 §7.8): its body is read
        // first (after the 100 Continue its client waits for), or the switch is refused.
        c.send_continue();
        let start = c.body_taken;
        if !c.drain(config.max_drain, config.header_read_timeout) {
            // The client's doing: a body malformed, over the drain limit, or too slow.
            let status = if c.body_error.is_some() {
                c.body_error_status()
            } else if c.body_taken - start > config.max_drain {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::REQUEST_TIMEOUT
            };
            log::debug!(
                "the body of \"{line}\" from {peer} could not be read to its end before \
                 switching protocols; answering {status}"
            );
            return Ok(refuse(c, status));
        }
    } else if keep_alive && !c.expect_pending && !c.body_done() {
        // The body the handler did not read: drained up to the limit, else close (one still
        // awaiting its 100 Continue is not sent by a well-behaved client: below).
        keep_alive = c.drain(config.max_drain, config.header_read_timeout);
        if c.body_error.is_some() {
            let status = c.body_error_status();
            return Ok(refuse(c, status));
        }
    }
    let len = body.len();
    let mut framing = encode::framing(&line.method, parts.status, len);
    if framing == BodyFraming::Chunked && line.version == Version::HTTP_10 {
        framing = BodyFraming::UntilClose;
    }
    if framing == BodyFraming::UntilClose || shared.stopping.get() {
        keep_alive = false;
    }
    // A successful body that is sent as it is produced may be the request's (an echo, a
    // proxy): its client waiting for a 100 Continue gets it now, before the final head. Not
    // for an error, nor for a body not sent at all (HEAD, 204, 304).
    if streamed && parts.status.is_success() && !matches!(framing, BodyFraming::Empty(_)) {
        c.send_continue();
    }
    if c.expect_pending {
        // A body still awaiting its 100 Continue is never sent by a well-behaved client.
        keep_alive = false;
    }
    let start = c.out.len();
    let now = c.now_secs();
    // From here on the final head is queued (this one, or the 500 that replaces it).
    c.continue_refused = true;
    let written = shared.last_response.borrow_mut().write(
        &mut c.out,
        &encode::ResponseHead {
            status: parts.status,
            headers: &parts.headers,
            framing,
            persist: match (keep_alive, line.version) {
                (false, _) => Persist::Close,
                (true, Version::HTTP_10) => Persist::KeepAlive10,
                (true, _) => Persist::KeepAlive,
            },
            server,
            now,
        },
    );
    match written {
        // The handler said `Connection: close`.
        Ok(Persist::Close) => keep_alive = false,
        Ok(_) => {}
        Err(_) => {
            log::error!(
                "handler's response to \"{line}\" has CR, LF or NUL in a header; answering 500"
            );
            c.out.truncate(start);
            return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
        }
    }
    let status = parts.status;
    // The map goes on to hold the next request's fields.
    c.reuse.recycle(parts.headers);
    let written: WriteFn = match body {
        ResponseBody::Full(_) | ResponseBody::Static(_) => {
            if let (Some(b), BodyFraming::Length(_)) = (body.bytes(), framing) {
                c.out.extend_from_slice(b);
            }
            // Pipelined answers are sent together, but not hoarded: a client that pipelines
            // many requests for large bodies and reads none holds at most about this much.
            if c.out.len() >= FLUSH_AT {
                c.flush()?;
            }
            log_access(started, peer, &line, status, len);
            return Ok(if keep_alive {
                Next::KeepAlive
            } else {
                Next::Close
            });
        }
        ResponseBody::Stream(mut r) => Box::new(move |w| io::copy(&mut *r, w).map(drop)),
        ResponseBody::Sized(r, n) => Box::new(move |w| {
            let sent = io::copy(&mut r.take(n), w)?;
            if sent < n {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("the body's reader ended after {sent} of its {n} bytes"),
                ));
            }
            Ok(())
        }),
        ResponseBody::Write(f) => f,
        ResponseBody::Upgrade(f) => {
            c.flush()?;
            c.deadline.stop();
            drop(c);
            log_access(started, peer, &line, status, None);
            // The 101 is out: what the stream does from here (a kill at a stop included) ends
            // no response of this server's.
            conn.responding.set(false);
            // Nor does the request: a `Body` kept from it reads nothing more.
            conn.end_request();
            let token = Rc::new(());
            let upgraded = Upgraded {
                conn: conn.clone(),
                _token: token.clone(),
            };
            match catch_unwind(AssertUnwindSafe(|| f(upgraded))) {
                Ok(()) => {
                    // The stream ends with its closure unless it was handed on (a greenlet
                    // of the closure's holds it): a TLS client is told (close_notify).
                    if Rc::strong_count(&token) == 1
                        && !conn.write_shut.get()
                        && let Ok(mut c) = conn.state()
                        && !c.write_failed
                    {
                        c.close_write_soon();
                    }
                }
                Err(p) if greenlet::is_kill(&*p) => resume_unwind(p),
                Err(_) => log::error!("the upgrade after \"{line}\" from {peer} panicked"),
            }
            return Ok(Next::Done);
        }
    };
    if !matches!(framing, BodyFraming::Empty(_)) {
        let flushes = c.flushes;
        drop(c);
        let mut w = BodyWriter {
            conn,
            chunked: framing == BodyFraming::Chunked,
        };
        let r = match catch_unwind(AssertUnwindSafe(|| written(&mut w))) {
            Ok(r) => r,
            Err(p) if greenlet::is_kill(&*p) => resume_unwind(p),
            Err(_) => Err(io::Error::other("the body's reader or writer panicked")),
        };
        if let Err(e) = r {
            let mut c = conn.state()?;
            // A body streamed from the request's fails when the request's is malformed or cut
            // short: the client's doing, answered 400 if still possible and not logged as an
            // error of the server's.
            let client_fault = c.body_error.is_some();
            if c.flushes == flushes {
                // Nothing of this response has left: it becomes a 400 or a 500.
                c.out.truncate(start);
                if client_fault {
                    let status = c.body_error_status();
                    log::debug!(
                        "the request body of \"{line}\" from {peer}: {e}; answering {status}"
                    );
                    return Ok(refuse(c, status));
                }
                log::error!("the response body to \"{line}\" failed: {e}; answering 500");
                return Ok(refuse(c, StatusCode::INTERNAL_SERVER_ERROR));
            }
            if client_fault {
                log::debug!("the request body of \"{line}\" from {peer} failed mid-answer: {e}");
            } else {
                log::error!("sending the response body to \"{line}\" failed: {e}");
            }
            // Part of it has left. Framed by its length or its chunks, it is seen to be cut
            // short: what is queued of it goes too, then a clean close. Framed by the close,
            // a clean close would end it as if it were whole: a reset tells the client.
            if framing == BodyFraming::UntilClose {
                let _ = conn.tcp.set_linger(Some(Duration::ZERO));
                conn.tcp.close();
            } else {
                let _ = c.flush();
            }
            return Ok(Next::Done);
        }
        w.finish()?;
        if framing == BodyFraming::UntilClose {
            // Its end is the close: all of it leaves while a kill would still reset it.
            conn.state()?.flush()?;
        }
    } else {
        drop(c);
    }
    // What the body left of the request's body: drained, or the connection closes (a
    // malformed one cannot be answered 400 any more: the response is out).
    let mut c = conn.state()?;
    if c.expect_pending {
        // Never invited: a well-behaved client does not send it.
        keep_alive = false;
    } else if keep_alive && !c.body_done() {
        if shared.stopping.get() {
            // A stopping server waits for no body nobody reads.
            keep_alive = false;
        } else {
            // The response goes out whole first: a wait for the client after it (and a kill
            // at a stop that ends the wait) cuts nothing of it short.
            c.flush()?;
            conn.responding.set(false);
            keep_alive = c.drain(config.max_drain, config.header_read_timeout);
        }
    }
    if c.body_error.is_some() {
        keep_alive = false;
    }
    drop(c);
    log_access(started, peer, &line, status, len);
    Ok(if keep_alive {
        Next::KeepAlive
    } else {
        Next::Close
    })
}

/// One line per answered request, at `info` level on the `gevent_http::access` target:
/// peer, request line, status, body bytes (`-` when streamed of unknown length), time taken.
#[inline]
fn log_access(
    started: Option<Instant>,
    peer: SocketAddr,
    line: &RequestLine,
    status: StatusCode,
    len: Option<u64>,
) {
    if let Some(started) = started {
        write_access_log(started, peer, line, status, len);
    }
}

/// The access log's line for a request (what [`log_access`] does when the log is on).
#[inline(never)]
fn write_access_log(
    started: Instant,
    peer: SocketAddr,
    line: &RequestLine,
    status: StatusCode,
    len: Option<u64>,
) {
    let len = len.map_or_else(|| "-".to_owned(), |n| n.to_string());
    log::info!(
        target: ACCESS_LOG,
        "{peer} \"{line}\" {} {len} {:.6}",
        status.as_u16(),
        started.elapsed().as_secs_f64()
    );
}

#[cfg(test)]
pub(crate) mod tests {
    use std::cell::Cell;
    use std::io::{Read, Write};

    thread_local! {
        /// How many times this thread's connections parsed a head (whole or not).
        pub(crate) static PARSES: Cell<usize> = const { Cell::new(0) };
        /// How many times this thread's connections gave back the pages of their stacks.
        pub(crate) static TRIMS: Cell<usize> = const { Cell::new(0) };
        /// How many times this thread's connections wrote out what they had queued.
        pub(crate) static WRITES: Cell<usize> = const { Cell::new(0) };
        /// How many reads of this thread's connections returned bytes (or the end).
        pub(crate) static READS: Cell<usize> = const { Cell::new(0) };
    }

    /// What `c` gets until it closes is an answer with `status`.
    fn refused_with(mut c: gevent_io::net::TcpStream, status: &str) {
        let mut answer = Vec::new();
        let _ = c.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(
            answer.starts_with(&format!("HTTP/1.1 {status} ")),
            "{answer}"
        );
    }

    #[test]
    fn the_logged_request_line_escapes_what_could_forge_or_break_a_log_line() {
        let shown = |text: &[u8]| {
            super::RequestLine {
                method: http::Method::GET,
                version: http::Version::HTTP_11,
                text,
            }
            .to_string()
        };
        assert_eq!(shown(b"GET /a?b=c HTTP/1.1"), "GET /a?b=c HTTP/1.1");
        // A quote would end the quoted field, a backslash would make the escapes ambiguous.
        assert_eq!(shown(b"GET /\"x\\ HTTP/1.1"), "GET /\\\"x\\\\ HTTP/1.1");
        // Control bytes and everything past ASCII (as UTF-8: U+0085 NEL, U+009B CSI, U+202E
        // right-to-left override) by their bytes.
        assert_eq!(
            shown(b"GET /\x1b[2J\x7f HTTP/1.1"),
            "GET /\\x1B[2J\\x7F HTTP/1.1"
        );
        assert_eq!(
            shown("GET /\u{85}\u{9b}\u{202e} HTTP/1.1".as_bytes()),
            "GET /\\xC2\\x85\\xC2\\x9B\\xE2\\x80\\xAE HTTP/1.1"
        );
        assert_eq!(shown(b"\xff"), "\\xFF");
        assert_eq!(shown(b""), "");
    }

    #[test]
    fn after_a_write_fails_nothing_more_is_written() {
        // A peer that reads nothing, with small buffers: a flush of 16 MiB (more than any send
        // buffer takes) times out partway.
        let l = gevent_io::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let peer =
            socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
        peer.set_recv_buffer_size(4096).unwrap();
        peer.connect(&l.local_addr().unwrap().into()).unwrap();
        let (ours, _) = l.accept().unwrap();
        ours.set_write_timeout(Some(std::time::Duration::from_millis(100)))
            .unwrap();
        let tcp = std::rc::Rc::new(ours);
        let config = super::Config {
            limits: crate::parse::HeadLimits::default(),
            header_read_timeout: std::time::Duration::from_secs(1),
            keep_alive_timeout: std::time::Duration::from_secs(1),
            body_read_timeout: None,
            write_timeout: std::time::Duration::from_millis(100),
            max_drain: 0,
            server_header: None,
            access_log: false,
            #[cfg(feature = "tls")]
            tls: None,
        };
        let transport = super::Transport::Plain(super::SharedTcp(tcp.clone()));
        let mut c = super::Conn::new(transport, super::Deadline::new(tcp.clone()), &config);
        // Numbered words, so that a repeat shows.
        let all: Vec<u8> = (0..1u32 << 22).flat_map(u32::to_be_bytes).collect();
        c.out = all.clone();
        assert_eq!(c.flush().unwrap_err().kind(), std::io::ErrorKind::TimedOut);
        // The peer takes what came, making room: a flush that wrote the queue again from its
        // start would now put its first bytes after these.
        let mut peer = std::net::TcpStream::from(peer);
        peer.set_read_timeout(Some(std::time::Duration::from_millis(200)))
            .unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 65536];
        while let Ok(n @ 1..) = peer.read(&mut buf) {
            got.extend_from_slice(&buf[..n]);
        }
        assert!(
            !got.is_empty() && got.len() < all.len(),
            "{} bytes",
            got.len()
        );
        c.out.extend_from_slice(b"more");
        assert_eq!(
            c.flush().unwrap_err().kind(),
            std::io::ErrorKind::BrokenPipe
        );
        assert!(c.out.is_empty());
        tcp.close();
        let _ = peer.read_to_end(&mut got);
        assert_eq!(
            &got[..],
            &all[..got.len()],
            "the stream is the queue's start, once"
        );
    }

    #[test]
    fn pipelined_requests_read_together_are_answered_in_one_write_in_order() {
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|req| http::Response::new(req.uri().path().to_owned()))
            .unwrap();
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut requests = String::new();
        for i in 0..16 {
            requests.push_str(&format!("GET /{i:02} HTTP/1.1\r\nHost: a\r\n"));
            requests.push_str(if i == 15 {
                "Connection: close\r\n\r\n"
            } else {
                "\r\n"
            });
        }
        let before = WRITES.with(Cell::get);
        // One write of 16 requests: one segment, which the server reads whole.
        c.write_all(requests.as_bytes()).unwrap();
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert_eq!(WRITES.with(Cell::get) - before, 1, "{answer}");
        let bodies: Vec<&str> = answer
            .split("HTTP/1.1 200 OK\r\n")
            .skip(1)
            .map(|r| r.rsplit("\r\n\r\n").next().unwrap())
            .collect();
        let expected: Vec<String> = (0..16).map(|i| format!("/{i:02}")).collect();
        assert_eq!(bodies, expected);
        server.stop(None);
    }

    #[test]
    fn batches_larger_than_the_first_buffer_are_read_in_one_call_after_the_first() {
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|_req| http::Response::new("ok"))
            .unwrap();
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        // 16 heads of about 380 bytes, as a browser sends them: over 4 KiB, under 8.
        let head = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nUser-Agent: {}\r\n\r\n",
            "u".repeat(340)
        );
        let batch = head.repeat(16);
        assert!(batch.len() > super::INITIAL_BUF && batch.len() < super::IDLE_BUF);
        let answer = "HTTP/1.1 200 OK\r\n";
        let mut per_batch = Vec::new();
        for _ in 0..4 {
            let (reads, writes) = (READS.with(Cell::get), WRITES.with(Cell::get));
            // One write: one segment on loopback, there whole when the server reads.
            c.write_all(batch.as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got
                .windows(answer.len())
                .filter(|w| *w == answer.as_bytes())
                .count()
                < 16
            {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "closed after {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
            per_batch.push((
                READS.with(Cell::get) - reads,
                WRITES.with(Cell::get) - writes,
            ));
        }
        // The first batch fills the first buffer (two reads, two writes); it grows, and every
        // later batch is one read and one write.
        assert_eq!(per_batch[1..], [(1, 1); 3], "{per_batch:?}");
        server.stop(None);
    }

    /// `ok`, with a field: the response's map holds an allocation, which goes on to hold the
    /// next request's fields.
    fn ok_with_a_field() -> http::Response<&'static str> {
        http::Response::builder()
            .header("x-answer", "ok")
            .body("ok")
            .unwrap()
    }

    /// The thread's spare read buffers, response buffers and header maps.
    fn spares() -> (usize, usize, usize) {
        super::SPARE.with(|s| {
            let s = s.borrow();
            (s.read.len(), s.out.len(), s.maps.len())
        })
    }

    /// Send `GET /` on each of `clients` (all at once), then read each one's answer, `ok`.
    fn ask(clients: &mut [gevent_io::net::TcpStream]) {
        for c in clients.iter_mut() {
            c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").unwrap();
        }
        for c in clients.iter_mut() {
            let mut got = Vec::new();
            let mut buf = [0u8; 512];
            while !got.ends_with(b"\r\n\r\nok") {
                let n = c.read(&mut buf).unwrap();
                assert!(n > 0, "closed after {got:?}");
                got.extend_from_slice(&buf[..n]);
            }
        }
    }

    #[test]
    fn idle_connections_hold_no_buffers_and_busy_ones_take_turns_with_the_same() {
        // What earlier tests on this thread left spare is not this test's.
        super::SPARE.with(|s| *s.borrow_mut() = super::Spare::new());
        let busy = std::rc::Rc::new(Cell::new(false));
        let b = busy.clone();
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(move |_req| {
                if b.get() {
                    greenlet::sleep(std::time::Duration::from_millis(20)).unwrap();
                }
                ok_with_a_field()
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let connect = || gevent_io::net::TcpStream::connect(addr).unwrap();
        let mut clients: Vec<_> = (0..10).map(|_| connect()).collect();
        // One at a time: each takes the buffers and the map the last one gave back when it
        // went idle.
        for c in clients.chunks_mut(1) {
            ask(c);
            assert_eq!(spares(), (1, 1, 1));
        }
        // Ten requests at once, answered in one turn of the hub: one connection after the
        // other reads, answers and waits again, all with the same two buffers and map.
        ask(&mut clients);
        assert_eq!(spares(), (1, 1, 1));
        // Handlers that wait keep their connections' buffers while they do: seventy of them
        // at once take seventy, of which the thread keeps no more than its limit (the maps
        // the same: each answer leaves one).
        clients.extend((0..60).map(|_| connect()));
        busy.set(true);
        ask(&mut clients);
        let most = super::SPARE_BUFS;
        assert_eq!(spares(), (most, most, most));
        server.stop(None);
    }

    /// Send `head` on `c` and read the response, whose body ends with `;`: the body without it.
    fn body_until_semicolon(c: &mut gevent_io::net::TcpStream, head: &str) -> String {
        c.write_all(head.as_bytes()).unwrap();
        let mut got = Vec::new();
        let mut buf = [0u8; 512];
        while !got.ends_with(b";") {
            let n = c.read(&mut buf).unwrap();
            assert!(n > 0, "closed after {got:?}");
            got.extend_from_slice(&buf[..n]);
        }
        let text = String::from_utf8(got).unwrap();
        text[text.find("\r\n\r\n").unwrap() + 4..text.len() - 1].to_owned()
    }

    /// The map one connection's request was built in goes on to another connection's next
    /// request: that request has its own fields and no others.
    #[test]
    fn a_lent_map_holds_only_the_fields_of_the_request_built_in_it() {
        super::SPARE.with(|s| *s.borrow_mut() = super::Spare::new());
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|mut req| {
                let mut seen: Vec<String> = req
                    .headers()
                    .iter()
                    .map(|(n, v)| format!("{n}={}", v.to_str().unwrap()))
                    .collect();
                seen.sort();
                // The response is answered with the request's own map, which then holds the
                // next request's fields, here or on the other connection.
                let mut resp = http::Response::new(format!("{};", seen.join(",")));
                *resp.headers_mut() = std::mem::take(req.headers_mut());
                resp
            })
            .unwrap();
        let addr = server.local_addr().unwrap();
        let mut a = gevent_io::net::TcpStream::connect(addr).unwrap();
        let mut b = gevent_io::net::TcpStream::connect(addr).unwrap();
        let ask = |c: &mut gevent_io::net::TcpStream, fields: &str| {
            body_until_semicolon(c, &format!("GET / HTTP/1.1\r\nHost: h\r\n{fields}\r\n"))
        };
        for round in 0..4 {
            assert_eq!(
                ask(&mut a, "X-A: 1\r\nX-Both: a\r\n"),
                "host=h,x-a=1,x-both=a"
            );
            assert_eq!(spares().2, 1, "round {round}");
            assert_eq!(ask(&mut b, "X-Both: b\r\n"), "host=h,x-both=b");
            assert_eq!(spares().2, 1, "round {round}");
        }
        server.stop(None);
    }

    #[test]
    fn a_connection_that_closes_leaves_its_map_to_the_others() {
        super::SPARE.with(|s| *s.borrow_mut() = super::Spare::new());
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|_req| ok_with_a_field())
            .unwrap();
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        // Closed after its response, without a wait for a next request (where an idle
        // connection lends its map).
        c.write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut got = Vec::new();
        c.read_to_end(&mut got).unwrap();
        assert!(got.ends_with(b"\r\n\r\nok"), "{got:?}");
        drop(c);
        server.stop(None);
        assert_eq!(spares(), (1, 1, 1));
    }

    /// Over TLS too a connection waiting for its client holds no buffer, as long as its
    /// session holds nothing to read either; a batch larger than the read buffer, which the
    /// session decrypts whole, is answered whole. Its stack is trimmed when it first waits
    /// after its handshake.
    #[cfg(feature = "tls")]
    #[test]
    fn idle_tls_connections_hold_no_buffers() {
        super::SPARE.with(|s| *s.borrow_mut() = super::Spare::new());
        let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let config = crate::tls::server_config_from_pem(
            cert.cert.pem().as_bytes(),
            cert.key_pair.serialize_pem().as_bytes(),
        )
        .unwrap();
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .tls(config)
            .serve(|_req| ok_with_a_field())
            .unwrap();
        let addr = server.local_addr().unwrap();
        let client = crate::tls::client_config_from_pem(cert.cert.pem().as_bytes()).unwrap();
        let connect = || {
            let session =
                rustls::ClientConnection::new(client.clone(), "localhost".try_into().unwrap())
                    .unwrap();
            rustls::StreamOwned::new(session, gevent_io::net::TcpStream::connect(addr).unwrap())
        };
        // `n` requests in one write, then their `n` answers.
        let ask = |c: &mut rustls::StreamOwned<_, _>, n: usize| {
            let head = format!(
                "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\n\r\n",
                "p".repeat(200)
            );
            c.write_all(head.repeat(n).as_bytes()).unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while got.windows(6).filter(|w| w == b"\r\n\r\nok").count() < n {
                let k = c.read(&mut buf).unwrap();
                assert!(k > 0, "closed after {got:?}");
                got.extend_from_slice(&buf[..k]);
            }
        };
        let trims = TRIMS.with(Cell::get);
        let mut clients: Vec<_> = (0..10).map(|_| connect()).collect();
        // One at a time, each after its handshake: each takes the buffers the last one gave
        // back when it went idle.
        for c in &mut clients {
            ask(c, 1);
            assert_eq!(spares(), (1, 1, 1));
        }
        // Forty heads of about 250 bytes: more than the read buffer takes at once.
        for c in &mut clients[..3] {
            ask(c, 40);
            assert_eq!(spares(), (1, 1, 1));
        }
        // Each gave back its stack's pages when it first waited after its handshake.
        assert!(TRIMS.with(Cell::get) - trims >= 10);
        server.stop(None);
    }

    /// The resident bytes of the memory mapping that holds `addr` (`/proc/self/smaps`): of a
    /// greenlet's stack, for an address in it (a guard-paged stack is a mapping of its own).
    fn resident_in_mapping(addr: usize) -> usize {
        let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap();
        let mut inside = false;
        for line in smaps.lines() {
            let range = line
                .split_whitespace()
                .next()
                .and_then(|r| r.split_once('-'));
            if let Some((lo, hi)) = range
                && let (Ok(lo), Ok(hi)) =
                    (usize::from_str_radix(lo, 16), usize::from_str_radix(hi, 16))
            {
                inside = (lo..hi).contains(&addr);
            } else if inside && let Some(kb) = line.strip_prefix("Rss:") {
                return kb.trim().trim_end_matches(" kB").parse::<usize>().unwrap() * 1024;
            }
        }
        panic!("no mapping holds {addr:#x}");
    }

    /// 96 KiB of frame below the caller's, each page written (a frame of its own: a large
    /// frame's pages are all touched when it is entered, by the stack probes).
    #[inline(never)]
    fn deep() {
        let mut buf = [0u8; 96 * 1024];
        for i in (0..buf.len()).step_by(1024) {
            buf[i] = 1;
        }
        std::hint::black_box(&mut buf);
    }

    #[test]
    fn a_connection_that_waits_gives_back_the_stack_its_handler_took() {
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|req| {
                if req.uri().path() == "/deep" {
                    deep();
                }
                let probe = 0u8;
                let here = std::hint::black_box(&probe) as *const u8 as usize;
                http::Response::new(format!("{};", resident_in_mapping(here)))
            })
            .unwrap();
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        let mut ask = |path: &str| {
            body_until_semicolon(&mut c, &format!("GET {path} HTTP/1.1\r\nHost: a\r\n\r\n"))
                .parse::<usize>()
                .unwrap()
        };
        let (trims, started) = (TRIMS.with(Cell::get), std::time::Instant::now());
        let deep = ask("/deep");
        assert!(deep > 96 * 1024, "{deep} B resident in the deep call");
        // The connection waited for this request after the deep one: it gave the pages back.
        let after = ask("/");
        assert!(
            after < 48 * 1024,
            "{after} B resident after the wait ({deep} in the call)"
        );
        for _ in 0..5 {
            ask("/");
        }
        // At most once a second: the first wait, and one for each second that began since.
        let trims = TRIMS.with(Cell::get) - trims;
        let bound = 2 + started.elapsed().as_secs() as usize;
        assert!((1..=bound).contains(&trims), "{trims} trims");
        server.stop(None);
    }

    /// (What `StreamServer::start` does, tested with it in gevent-io; here for the HTTP
    /// server on top of it.)
    #[test]
    fn serving_has_the_hub_trim_idle_stacks_unless_told_otherwise() {
        use greenlet::hub::{set_stack_trim_interval, stack_trim_interval};
        let serve = || {
            crate::Server::builder()
                .addr("127.0.0.1:0")
                .serve(|_req| http::Response::new("ok"))
                .unwrap()
        };
        set_stack_trim_interval(None);
        let server = serve();
        assert_eq!(stack_trim_interval(), Some(crate::STACK_TRIM_INTERVAL));
        server.stop(None);
        // An interval set already is kept.
        set_stack_trim_interval(Some(std::time::Duration::from_secs(60)));
        let server = serve();
        assert_eq!(
            stack_trim_interval(),
            Some(std::time::Duration::from_secs(60))
        );
        server.stop(None);
        set_stack_trim_interval(None);
    }

    #[test]
    fn a_head_in_many_small_reads_is_not_parsed_again_after_each() {
        let server = crate::Server::builder()
            .addr("127.0.0.1:0")
            .access_log(false)
            .serve(|_req| http::Response::new("done"))
            .unwrap();
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        c.set_nodelay(true).unwrap();
        let head = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX-Pad: {}\r\nConnection: close\r\n\r\n",
            "p".repeat(4000)
        );
        let before = PARSES.with(Cell::get);
        // One byte at a time, each read by the server before the next is sent.
        for b in head.as_bytes() {
            c.write_all(std::slice::from_ref(b)).unwrap();
            greenlet::sleep(std::time::Duration::from_micros(1)).unwrap();
        }
        let mut answer = String::new();
        c.read_to_string(&mut answer).unwrap();
        assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
        let parses = PARSES.with(Cell::get) - before;
        // About one per doubling (a dozen) and one at the end; once per read would be 4,000.
        assert!(parses < 40, "{parses} parses of one head");
        // The limits still hold for a head that comes in pieces: a request line over 8 KiB,
        // sent 1 KiB at a time, is refused with 414.
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        c.write_all(b"GET /").unwrap();
        let mut sent = 0;
        while sent < 40 * 1024 && c.write_all(&[b'a'; 1024]).is_ok() {
            sent += 1024;
            greenlet::sleep(std::time::Duration::from_micros(1)).unwrap();
        }
        refused_with(c, "414");
        // A bad line is refused when it ends, not when the head would have.
        let mut c = gevent_io::net::TcpStream::connect(server.local_addr().unwrap()).unwrap();
        c.set_nodelay(true).unwrap();
        c.write_all(b"GET / HTTP/1.1\r\n").unwrap();
        greenlet::sleep(std::time::Duration::from_millis(1)).unwrap();
        c.write_all(b"Bad Name: x\r\n").unwrap();
        refused_with(c, "400");
        server.stop(None);
    }
}
