//! Each watcher type against the real libev, and the bad input each one refuses.

use ev_loop::{
    Async, Backend, Break, Check, Error, Events, Idle, Io, Loop, Periodic, Prepare, Signal, Timer,
};
use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::{generous, ms};

#[test]
fn loop_introspection() {
    let lp = Loop::new().unwrap();
    assert_eq!(lp.backend(), Backend::EPOLL);
    assert!(!lp.is_default());
    assert_eq!((lp.iteration(), lp.depth(), lp.pending_count()), (0, 0, 0));
    let seen = Rc::new(Cell::new((0, 0)));
    let s = seen.clone();
    let t = Timer::new(&lp, ms(1), Duration::ZERO, move |w, _| {
        let l = w.event_loop();
        s.set((l.depth(), l.iteration()));
    });
    t.start();
    lp.run();
    let (depth, iteration) = seen.get();
    assert_eq!(depth, 1);
    assert!(iteration >= 1);
    let t0 = lp.now();
    std::thread::sleep(ms(20));
    assert_eq!(lp.now(), t0, "now() is cached between iterations");
    lp.update_now();
    assert!(lp.now() - t0 >= 0.015);
    for b in [Backend::POLL, Backend::SELECT] {
        assert_eq!(Loop::builder().backends(b).build().unwrap().backend(), b);
    }
}

#[test]
fn run_once_and_run_nowait() {
    let lp = Loop::new().unwrap();
    let hits = Rc::new(Cell::new(0));
    let h = hits.clone();
    // Far off: had run_nowait waited for it, it would have fired.
    let far = generous(Duration::from_secs(20));
    let t = Timer::new(&lp, far, far, move |_, _| h.set(h.get() + 1));
    t.start();
    let start = Instant::now();
    assert!(lp.run_nowait());
    assert!(start.elapsed() < far, "run_nowait blocked");
    assert_eq!(hits.get(), 0, "run_nowait waited for the timer");
    // Now 30 ms off, counted from a loop time taken after `start`.
    t.stop();
    t.set(ms(30), ms(30));
    let start = Instant::now();
    lp.update_now();
    t.start();
    assert!(lp.run_once());
    assert!(start.elapsed() >= ms(29), "run_once did not wait");
    assert_eq!(hits.get(), 1);
}

#[test]
fn break_one_leaves_only_the_inner_run() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    // Keeps both runs alive; should Break::One not end the inner run, it ends both (and the
    // log says so) instead of hanging the test.
    let l = log.clone();
    let failsafe = Timer::new(
        &lp,
        generous(Duration::from_secs(10)),
        Duration::ZERO,
        move |w, _| {
            let lp = w.event_loop();
            l.borrow_mut()
                .push(format!("failsafe depth {}", lp.depth()));
            lp.break_loop(Break::All)
        },
    );
    failsafe.start();
    let l = log.clone();
    let outer_slot: Rc<RefCell<Option<Timer>>> = Rc::new(RefCell::new(None));
    let slot = outer_slot.clone();
    let nested = Idle::new(&lp, move |w, _| {
        w.stop();
        let lp = w.event_loop().clone();
        let breaker = Timer::new(&lp, ms(5), Duration::ZERO, |w, _| {
            w.event_loop().break_loop(Break::One)
        });
        breaker.start();
        l.borrow_mut()
            .push(format!("inner start depth {}", lp.depth()));
        lp.run();
        l.borrow_mut()
            .push(format!("inner end depth {}", lp.depth()));
        // Armed only now: it can fire only if the outer run goes on after the inner one.
        let l = l.clone();
        let outer_done = Timer::new(&lp, ms(1), Duration::ZERO, move |w, _| {
            let lp = w.event_loop();
            l.borrow_mut()
                .push(format!("outer goes on depth {}", lp.depth()));
            lp.break_loop(Break::All)
        });
        outer_done.start();
        *slot.borrow_mut() = Some(outer_done);
    });
    nested.start();
    lp.run();
    // The inner run ended on Break::One; the outer one went on until its own timer.
    assert_eq!(
        *log.borrow(),
        vec![
            "inner start depth 1",
            "inner end depth 1",
            "outer goes on depth 1"
        ]
    );
    drop(outer_slot.borrow_mut().take());
}

#[test]
fn io_readable_and_writable() {
    let lp = Loop::new().unwrap();
    let (mut a, mut b) = UnixStream::pair().unwrap();
    b.set_nonblocking(true).unwrap();
    let got = Rc::new(RefCell::new(Vec::new()));
    let g = got.clone();
    let reader = b.try_clone().unwrap();
    let io = Io::new(&lp, b.as_raw_fd(), Events::READ, move |w, ev| {
        assert!(ev.is_readable() && !ev.is_writable());
        let mut buf = [0u8; 64];
        let n = (&reader).read(&mut buf).unwrap();
        g.borrow_mut().extend_from_slice(&buf[..n]);
        if g.borrow().len() >= 6 {
            w.stop();
        }
    })
    .unwrap();
    io.start();
    let writer_at = Timer::new(&lp, ms(5), Duration::ZERO, move |_, _| {
        a.write_all(b"abc").unwrap();
        a.write_all(b"def").unwrap();
    });
    writer_at.start();
    lp.run();
    assert_eq!(&*got.borrow(), b"abcdef");

    // A fresh socket is writable at once.
    let writable = Rc::new(Cell::new(false));
    let w2 = writable.clone();
    io.set_callback(move |w, ev| {
        w2.set(ev.is_writable());
        w.stop();
    });
    io.set_events(Events::WRITE).unwrap();
    io.start();
    lp.run();
    assert!(writable.get());
    b.write_all(b"x").unwrap();
}

#[test]
fn io_refuses_bad_fds_and_events() {
    let lp = Loop::new().unwrap();
    // A descriptor that is certainly open (the process may run without stdin).
    let (open_a, _open_b) = UnixStream::pair().unwrap();
    let open = open_a.as_raw_fd();
    let e = Io::new(&lp, -1, Events::READ, |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::BadFd { fd: -1, .. }), "{e}");
    // A descriptor that is not open (far above any descriptor limit: a just-closed number
    // could be reused at once by tests running in parallel).
    let closed = 1 << 30;
    let e = Io::new(&lp, closed, Events::READ, |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::BadFd { .. }), "{e}");
    assert!(e.to_string().contains("bad file descriptor"), "{e}");
    let as_io = std::io::Error::from(e);
    assert!(as_io.to_string().contains("os error 9"), "{as_io}");
    let e = Io::new(&lp, open, Events::TIMER, |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::InvalidEvents(_)), "{e}");
    let e = Io::new(&lp, open, Events::default(), |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::InvalidEvents(0)), "{e}");
    let io = Io::new(&lp, open, Events::READ, |_, _| {}).unwrap();
    assert!(io.set(closed, Events::READ).is_err());
    assert_eq!(io.fd(), open, "a refused set leaves the watcher unchanged");
}

#[test]
fn timer_repeat_again_and_remaining() {
    let lp = Loop::new().unwrap();
    let ticks = Rc::new(RefCell::new(Vec::new()));
    let t0 = Instant::now();
    // The timer counts from the loop's time, which must not be older than `t0`.
    lp.update_now();
    let tk = ticks.clone();
    let t = Timer::new(&lp, ms(10), ms(10), move |w, ev| {
        assert!(ev.contains(Events::TIMER));
        tk.borrow_mut().push(t0.elapsed());
        if tk.borrow().len() == 3 {
            w.stop();
        }
    });
    t.start();
    // (A nanosecond's rounding of loop times in seconds allowed.)
    assert!(t.remaining() > ms(5) && t.remaining() <= ms(10) + Duration::from_micros(1));
    lp.run();
    let ticks = ticks.borrow();
    assert_eq!(ticks.len(), 3);
    assert!(
        ticks[2] >= ms(29),
        "three 10 ms ticks took only {:?}",
        ticks[2]
    );

    // again(): an inactivity timeout that keeps being pushed back.
    let fired_at = Rc::new(Cell::new(None));
    let f = fired_at.clone();
    let idle_timeout = Rc::new(Timer::new(&lp, Duration::ZERO, ms(40), move |w, _| {
        f.set(Some(t0.elapsed()));
        w.stop();
    }));
    let pushes = Rc::new(Cell::new(0));
    let (p, it) = (pushes.clone(), idle_timeout.clone());
    let activity = Timer::new(&lp, ms(10), ms(10), move |w, _| {
        p.set(p.get() + 1);
        it.again();
        if p.get() == 5 {
            w.stop();
        }
    });
    // Both count from a loop time no older than `start`.
    let start = t0.elapsed();
    lp.update_now();
    idle_timeout.again();
    activity.start();
    lp.run();
    let fired = fired_at.get().unwrap() - start;
    // Without the activity it fires at 40 ms; with it, 40 ms after the last push. The fifth
    // push comes no earlier than 50 ms (however late the loop runs, libev hands an overdue
    // push its event before the timeout's, and a push cancels a pending timeout event), so it
    // fires no earlier than 90 ms.
    assert!(
        fired >= ms(89),
        "inactivity timeout fired after {fired:?}, despite activity"
    );
    assert_eq!(pushes.get(), 5);
    assert_eq!(t.repeat(), ms(10));
}

#[test]
fn periodic_fires_on_the_wall_clock_and_refuses_bad_times() {
    let lp = Loop::new().unwrap();
    let count = Rc::new(Cell::new(0));
    let c = count.clone();
    let p = Periodic::new(&lp, 0.0, 0.01, move |w, ev| {
        assert!(ev.contains(Events::PERIODIC));
        c.set(c.get() + 1);
        if c.get() == 3 {
            w.stop();
        }
    })
    .unwrap();
    p.start();
    let at = p.at();
    assert!(at >= lp.now() && at <= lp.now() + 0.011);
    lp.run();
    assert_eq!(count.get(), 3);

    // Once, at an absolute time.
    let start = Instant::now();
    lp.update_now(); // `now()` no older than `start`
    let once = Periodic::new(&lp, lp.now() + 0.02, 0.0, |_, _| {}).unwrap();
    once.start();
    lp.run();
    assert!(start.elapsed() >= ms(15));
    assert!(!once.is_active());

    for (o, i) in [
        (f64::NAN, 1.0),
        (0.0, f64::NAN),
        (-1.0, 1.0),
        (0.0, -5.0),
        (f64::INFINITY, 0.0),
    ] {
        let e = Periodic::new(&lp, o, i, |_, _| {}).unwrap_err();
        assert!(matches!(e, Error::InvalidTime { .. }), "{e}");
    }
}

#[test]
fn prepare_check_idle_order() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(String::new()));
    let (l1, l2, l3) = (log.clone(), log.clone(), log.clone());
    let p = Prepare::new(&lp, move |_, ev| {
        assert!(ev.contains(Events::PREPARE));
        l1.borrow_mut().push('P')
    });
    let c = Check::new(&lp, move |_, ev| {
        assert!(ev.contains(Events::CHECK));
        l2.borrow_mut().push('C')
    });
    let runs = Rc::new(Cell::new(0));
    let r = runs.clone();
    let i = Idle::new(&lp, move |w, ev| {
        assert!(ev.contains(Events::IDLE));
        l3.borrow_mut().push('I');
        r.set(r.get() + 1);
        if r.get() == 3 {
            w.stop();
        }
    });
    p.set_keep_alive(false);
    c.set_keep_alive(false);
    p.start();
    c.start();
    i.start();
    lp.run();
    assert_eq!(*log.borrow(), "PCIPCIPCI");
}

#[test]
fn priorities_order_pending_callbacks() {
    let lp = Loop::new().unwrap();
    let log = Rc::new(RefCell::new(Vec::new()));
    let mut ws = Vec::new();
    for pri in [-2, 0, 2, -1, 1] {
        let l = log.clone();
        let w = Idle::new(&lp, move |w, _| {
            l.borrow_mut().push(pri);
            w.stop();
        });
        w.set_priority(pri).unwrap();
        ws.push(w);
    }
    for w in &ws {
        w.feed(Events::CUSTOM);
    }
    lp.run_nowait();
    assert_eq!(*log.borrow(), vec![2, 1, 0, -1, -2]);
    assert!(matches!(
        ws[0].set_priority(3),
        Err(Error::InvalidPriority(3))
    ));
    assert!(matches!(
        ws[0].set_priority(-3),
        Err(Error::InvalidPriority(-3))
    ));
    ws[0].start();
    assert!(matches!(
        ws[0].set_priority(1),
        Err(Error::WatcherActive(_))
    ));
}

#[test]
fn async_wakes_the_loop_from_other_threads() {
    let lp = Loop::new().unwrap();
    let woken = Rc::new(Cell::new(0));
    let w = woken.clone();
    let a = Async::new(&lp, move |watcher, ev| {
        assert!(ev.contains(Events::ASYNC));
        w.set(w.get() + 1);
        watcher.stop();
    });
    a.start();
    let sender = a.sender();
    let start = Instant::now();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let s = sender.clone();
            std::thread::spawn(move || {
                std::thread::sleep(ms(30));
                assert!(s.send());
            })
        })
        .collect();
    lp.run(); // blocks until a send arrives
    assert!(start.elapsed() >= ms(25));
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(
        woken.get(),
        1,
        "sends are coalesced and the watcher stopped after the first"
    );
    drop(a);
    assert!(!sender.send(), "sending to a dropped watcher reports false");
}

#[test]
fn signals_are_delivered_and_bad_numbers_refused() {
    let lp = Loop::new().unwrap();
    let got = Rc::new(Cell::new(0));
    let g = got.clone();
    let s = Signal::new(&lp, libc::SIGUSR1, move |w, ev| {
        assert!(ev.contains(Events::SIGNAL));
        g.set(w.signum());
        w.stop();
    })
    .unwrap();
    s.start();
    let pid = std::process::id() as i32;
    std::thread::spawn(move || {
        std::thread::sleep(ms(10));
        // SAFETY: sending SIGUSR1 to ourselves; the loop above handles it.
        unsafe { libc::kill(pid, libc::SIGUSR1) };
    });
    lp.run();
    assert_eq!(got.get(), libc::SIGUSR1);

    for bad in [0, -1, 65, 1000, libc::SIGKILL, libc::SIGSTOP] {
        let e = Signal::new(&lp, bad, |_, _| {}).unwrap_err();
        assert!(matches!(e, Error::InvalidSignal(n) if n == bad), "{e}");
    }
    let other = Loop::new().unwrap();
    let e = Signal::new(&other, libc::SIGUSR1, |_, _| {}).unwrap_err();
    assert!(matches!(e, Error::SignalInUse(_)), "{e}");
    // The same loop may have several watchers for one signal.
    let again = Signal::new(&lp, libc::SIGUSR1, |_, _| {}).unwrap();
    drop(s);
    drop(again);
    assert!(Signal::new(&other, libc::SIGUSR1, |_, _| {}).is_ok());
}

#[test]
fn default_loop_belongs_to_one_thread() {
    let here = Loop::builder().default_loop().build().unwrap();
    let again = Loop::builder().default_loop().build().unwrap();
    assert_eq!(here.as_raw(), again.as_raw());
    let err = std::thread::spawn(|| Loop::builder().default_loop().build().map(|_| ()))
        .join()
        .unwrap()
        .unwrap_err();
    assert!(matches!(err, Error::DefaultLoopInUse), "{err}");
    drop((here, again));
    // Released: another thread may have it now.
    std::thread::spawn(|| {
        assert!(Loop::builder().default_loop().build().unwrap().is_default());
    })
    .join()
    .unwrap();
}

#[test]
fn every_compiled_backend_that_the_kernel_allows_works() {
    for backend in [
        Backend::EPOLL,
        Backend::POLL,
        Backend::SELECT,
        Backend::LINUXAIO,
        Backend::IOURING,
    ] {
        assert!(
            Backend::supported().contains(backend),
            "{backend:?} not compiled in"
        );
        let lp = match Loop::builder().backends(backend).build() {
            Ok(lp) => lp,
            Err(e) => {
                // linuxaio and io_uring may be disabled by the kernel or a sandbox.
                assert!(
                    backend == Backend::LINUXAIO || backend == Backend::IOURING,
                    "{backend:?}: {e}"
                );
                eprintln!("backend {backend:?} unavailable here: {e}");
                continue;
            }
        };
        assert_eq!(lp.backend(), backend);
        let (mut a, b) = UnixStream::pair().unwrap();
        let seen = Rc::new(Cell::new(false));
        let s = seen.clone();
        let io = Io::new(&lp, b.as_raw_fd(), Events::READ, move |w, ev| {
            s.set(ev.is_readable());
            w.stop();
        })
        .unwrap();
        io.start();
        let t = Timer::new(&lp, ms(5), Duration::ZERO, move |_, _| {
            a.write_all(b"x").unwrap();
        });
        t.start();
        lp.run();
        assert!(seen.get(), "{backend:?} did not report readability");
    }
}

/// The loop's watcher and active counts (the leak figures of the soak test) follow every way a
/// watcher starts and stops: by hand, by drop, by libev itself (a one-shot timer), from inside its own callback, and with keep-alive off.
#[test]
fn watcher_and_active_counts_follow_every_start_and_stop() {
    let lp = Loop::new().unwrap();
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (0, 0));

    let once = Timer::new(&lp, ms(1), Duration::ZERO, |_, _| {});
    let background = Timer::new(&lp, Duration::from_secs(3600), Duration::ZERO, |_, _| {});
    background.set_keep_alive(false);
    background.start();
    once.start();
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (2, 2));
    lp.run(); // `once` fires and libev stops it; `background` does not keep the loop alive
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (2, 1));
    drop(background);
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (1, 0));
    once.again(); // repeat is zero: stays stopped
    assert_eq!(lp.active_watchers(), 0);

    // An io watcher on a live fd (libev's own stop of an io watcher on a closed fd is checked
    // by tests/closed_fd.rs, in a binary of its own so no other test can reuse the fd number).
    let (a, _b) = UnixStream::pair().unwrap();
    let io = Io::new(&lp, a.as_raw_fd(), Events::READ, |_, _| {}).unwrap();
    io.start();
    assert_eq!(lp.active_watchers(), 1);
    io.stop();
    assert_eq!(lp.active_watchers(), 0);

    // A watcher that drops its own handle inside its callback.
    let slot: Rc<RefCell<Option<Idle>>> = Rc::new(RefCell::new(None));
    let s = slot.clone();
    let idle = Idle::new(&lp, move |_, _| drop(s.borrow_mut().take()));
    idle.start();
    *slot.borrow_mut() = Some(idle);
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (3, 1));
    lp.run();
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (2, 0));
    drop((once, io));
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (0, 0));
}
