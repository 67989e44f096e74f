//! The timed operations shared by the bench program (`src/main.rs`) and the criterion
//! benches (`benches/runtime.rs`). Each runs `iters` round trips and returns the time of the
//! timed loop alone: setting up its greenlets and joining them afterwards are not counted.

#![allow(dead_code)] // the bench program and the criterion benches each use a subset

use context::stack::ProtectedFixedSizeStack;
use context::{Context, Transfer};
use gevent::park::{current, switch_to};
use gevent::{Event, Queue, spawn, yield_now};
use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant};

extern "C" fn bounce(mut t: Transfer) -> ! {
    loop {
        // SAFETY: `t.context` is the suspended caller; resuming it hands control back.
        t = unsafe { t.context.resume(t.data) };
    }
}

/// The floor: the raw `context` resume round trip, main -> coroutine -> main.
pub(crate) fn context_raw(iters: u64) -> Duration {
    let stack = ProtectedFixedSizeStack::new(64 * 1024).unwrap();
    // SAFETY: the stack outlives the context (both live until the end of this function, and
    // the coroutine is never resumed after).
    let mut ctx = Some(unsafe { Context::new(&stack, bounce) });
    let start = Instant::now();
    for i in 0..iters {
        // SAFETY: resuming the coroutine's latest context exactly once.
        let t = unsafe { ctx.take().unwrap().resume(black_box(i as usize)) };
        ctx = Some(t.context);
    }
    start.elapsed()
}

/// Two greenlets handing control to each other with `park::switch_to`: A -> B -> A, direct
/// switches (after 8192 in a row, one goes through the hub).
pub(crate) fn switch_direct(iters: u64) -> Duration {
    let main = current();
    let partner = spawn(move || {
        for _ in 0..iters {
            switch_to(&main).unwrap();
        }
        main.unpark();
    });
    let p = partner.handle();
    // The first switch starts the partner (through the hub); the rest are direct.
    let start = Instant::now();
    for _ in 0..iters {
        switch_to(&p).unwrap();
    }
    let t = start.elapsed();
    switch_to(&p).unwrap();
    partner.join().unwrap();
    t
}

/// Two greenlets alternating with `yield_now`: A -> hub -> B -> hub -> A per round trip.
pub(crate) fn switch_via_hub(iters: u64) -> Duration {
    let stop = Rc::new(Cell::new(false));
    let s = stop.clone();
    let other = spawn(move || {
        while !s.get() {
            yield_now().unwrap();
        }
    });
    yield_now().unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        yield_now().unwrap();
    }
    let t = start.elapsed();
    stop.set(true);
    other.join().unwrap();
    t
}

/// Two greenlets, two `Event`s: one round trip is two sets and two waits.
pub(crate) fn event_pingpong(iters: u64) -> Duration {
    pingpong(iters, None)
}

/// [`event_pingpong`] with a timeout on every wait (`wait_timeout(1 s)`), each woken long
/// before it: what a timed wait costs over an untimed one (its timer armed and disarmed).
pub(crate) fn event_pingpong_timed(iters: u64) -> Duration {
    pingpong(iters, Some(Duration::from_secs(1)))
}

fn pingpong(iters: u64, timeout: Option<Duration>) -> Duration {
    let wait = move |e: &Event| match timeout {
        None => {
            e.wait().unwrap();
        }
        Some(d) => assert!(e.wait_timeout(d).unwrap()),
    };
    let (ping, pong) = (Event::new(), Event::new());
    let (pi, po) = (ping.clone(), pong.clone());
    let responder = spawn(move || {
        for _ in 0..iters {
            wait(&pi);
            pi.clear();
            po.set();
        }
    });
    yield_now().unwrap();
    let start = Instant::now();
    for _ in 0..iters {
        ping.set();
        wait(&pong);
        pong.clear();
    }
    let t = start.elapsed();
    responder.join().unwrap();
    t
}

/// Two greenlets, two `Queue`s: one round trip is two puts and two gets.
pub(crate) fn queue_pingpong(iters: u64) -> Duration {
    let (ping, pong) = (Queue::unbounded(), Queue::unbounded());
    let (pi, po) = (ping.clone(), pong.clone());
    let responder = spawn(move || {
        for _ in 0..iters {
            let v: u64 = pi.get().unwrap();
            po.put(v + 1).unwrap();
        }
    });
    yield_now().unwrap();
    let start = Instant::now();
    for i in 0..iters {
        ping.put(i).unwrap();
        black_box(pong.get().unwrap());
    }
    let t = start.elapsed();
    responder.join().unwrap();
    t
}

/// Greenlets parked on one `Event` until [`Parked::release`]: the load that spawn + join is
/// measured under.
pub(crate) struct Parked {
    park: Event,
    greenlets: Vec<gevent::Greenlet<gevent::Result<()>>>,
}

impl Parked {
    /// Spawn `count` greenlets and let them all park.
    pub(crate) fn new(count: usize) -> Parked {
        let park = Event::new();
        let greenlets = (0..count)
            .map(|_| {
                let p = park.clone();
                spawn(move || p.wait())
            })
            .collect();
        yield_now().unwrap();
        Parked { park, greenlets }
    }

    /// Wake them all and join them.
    pub(crate) fn release(self) {
        self.park.set();
        for g in self.greenlets {
            g.join().unwrap().unwrap();
        }
    }
}

/// Spawn a greenlet that returns at once and join it, `iters` times.
pub(crate) fn spawn_join(iters: u64) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        let g = spawn(move || black_box(i));
        g.join().unwrap();
    }
    start.elapsed()
}

/// `count` greenlets asleep for an hour (each with its timer in the loop), on canary-mode
/// stacks, until [`Sleepers::kill`].
pub(crate) struct Sleepers(Vec<gevent::Greenlet<gevent::Result<()>>>);

impl Sleepers {
    pub(crate) fn new(count: usize) -> Sleepers {
        let gs = (0..count)
            .map(|_| {
                gevent::Builder::new()
                    .stack_mode(gevent::StackMode::Canary)
                    .stack_size(16 * 1024)
                    .spawn(|| gevent::sleep(Duration::from_secs(3600)))
                    .expect("spawn a sleeper")
            })
            .collect();
        yield_now().unwrap();
        Sleepers(gs)
    }

    pub(crate) fn kill(self) {
        for g in &self.0 {
            g.kill();
        }
    }
}

/// `sleep(ZERO)` with nothing else ready: one trip through the hub and back.
pub(crate) fn sleep0(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        gevent::sleep(Duration::ZERO).unwrap();
    }
    start.elapsed()
}

/// Start and cancel a one-hour `Timeout` (a timer into libev's heap and out again).
pub(crate) fn timer_start_stop(iters: u64) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let t = gevent::Timeout::start(Duration::from_secs(3600));
        black_box(&t);
        drop(t);
    }
    start.elapsed()
}

/// Spawn a greenlet that parks on an Event, let it park, kill it and join it.
pub(crate) fn kill_parked(iters: u64) -> Duration {
    let park = Event::new();
    let start = Instant::now();
    for _ in 0..iters {
        let p = park.clone();
        let g = spawn(move || p.wait());
        yield_now().unwrap();
        g.kill();
        let _ = black_box(g.join());
    }
    start.elapsed()
}

/// [`sleep0`] while a blocking monitor watches the hub.
pub(crate) fn monitored_sleep0(iters: u64) -> Duration {
    let m = gevent::monitor::start_monitor(Duration::from_secs(10));
    let t = sleep0(iters);
    drop(m);
    t
}

/// `run_info` over everything alive, per greenlet listed (`iters` calls).
pub(crate) fn run_info_per_greenlet(iters: u64) -> Duration {
    let mut listed = 0;
    let start = Instant::now();
    for _ in 0..iters {
        listed += black_box(gevent::run_info()).len();
    }
    start.elapsed() * iters as u32 / listed.max(1) as u32
}

/// A connected pair of Unix stream sockets with one byte waiting on the first: a `recv` with
/// `MSG_PEEK` on it is ready at every call.
pub(crate) fn ready_socketpair() -> (i32, i32) {
    let mut fds = [0i32; 2];
    // SAFETY: `fds` is a valid out array of two descriptors; the byte written is on the stack.
    unsafe {
        assert_eq!(
            libc::socketpair(libc::AF_UNIX, libc::SOCK_STREAM, 0, fds.as_mut_ptr()),
            0
        );
        assert_eq!(libc::send(fds[1], b"x".as_ptr().cast(), 1, 0), 1);
    }
    (fds[0], fds[1])
}

/// `iters` peeking `recv`s of one byte on the ready socket `a` of [`ready_socketpair`]:
/// through libc's symbol (the hook, once `gevent::monkey::patch_all()` ran) when `hooked`,
/// else the raw system call (`gevent::monkey::original::recv`).
pub(crate) fn recv_ready(a: i32, iters: u64, hooked: bool) -> Duration {
    let mut byte = 0u8;
    let buf: *mut libc::c_void = (&raw mut byte).cast();
    let start = Instant::now();
    if hooked {
        for _ in 0..iters {
            // SAFETY: a valid one-byte buffer; `a` is an open socket of ours.
            let n = unsafe { libc::recv(black_box(a), buf, 1, libc::MSG_PEEK) };
            assert_eq!(n, 1);
        }
    } else {
        for _ in 0..iters {
            // SAFETY: as above.
            let n = unsafe { gevent::monkey::original::recv(black_box(a), buf, 1, libc::MSG_PEEK) };
            assert_eq!(n, 1);
        }
    }
    start.elapsed()
}

/// Close the pair of [`ready_socketpair`].
pub(crate) fn close_pair(a: i32, b: i32) {
    // SAFETY: both descriptors are ours and used no more.
    unsafe {
        libc::close(a);
        libc::close(b);
    }
}
