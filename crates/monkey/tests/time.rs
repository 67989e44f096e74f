//! `time` hooks: `std::thread::sleep` (`clock_nanosleep`), `nanosleep`, `usleep`, `sleep` as
//! hub sleeps in greenlets, unchanged elsewhere.

use std::time::{Duration, Instant};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn twenty_greenlets_sleeping_with_std_run_side_by_side() {
    use std::cell::Cell;
    use std::rc::Rc;
    gevent_monkey::patch_all();
    // How many are inside `std::thread::sleep` at once: one at a time without the hooks.
    let (now, most) = (Rc::new(Cell::new(0)), Rc::new(Cell::new(0)));
    let start = Instant::now();
    let gs: Vec<_> = (0..20)
        .map(|_| {
            let (now, most) = (now.clone(), most.clone());
            greenlet::spawn(move || {
                now.set(now.get() + 1);
                most.set(most.get().max(now.get()));
                std::thread::sleep(ms(100));
                now.set(now.get() - 1);
            })
        })
        .collect();
    for g in gs {
        g.join().unwrap();
    }
    assert_eq!(most.get(), 20, "all twenty slept at once");
    assert!(start.elapsed() >= ms(100), "each slept as long as asked");
}

#[test]
fn the_other_greenlets_run_while_one_sleeps_in_std() {
    gevent_monkey::patch_all();
    let ticks = std::rc::Rc::new(std::cell::Cell::new(0));
    let t = ticks.clone();
    let ticker = greenlet::spawn(move || {
        // Yields rather than timers of its own, which a loaded machine could run after the
        // root's: what counts is that it runs at all while the root sleeps.
        for _ in 0..3 {
            greenlet::yield_now().unwrap();
            t.set(t.get() + 1);
        }
    });
    std::thread::sleep(ms(100)); // the root greenlet, cooperatively
    assert_eq!(ticks.get(), 3, "the ticker ran during the sleep");
    ticker.join().unwrap();
}

#[test]
fn libc_sleeps_cooperate_too_and_sleep_at_least_as_asked() {
    gevent_monkey::patch_all();
    let other = greenlet::spawn(|| ());
    let start = Instant::now();
    // SAFETY: plain libc calls with valid arguments.
    unsafe {
        assert_eq!(libc::usleep(20_000), 0);
        let ts = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        assert_eq!(libc::nanosleep(&ts, std::ptr::null_mut()), 0);
        // An absolute deadline on the monotonic clock.
        let mut now = libc::timespec {
            tv_sec: 0,
            tv_nsec: 0,
        };
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now);
        now.tv_nsec += 20_000_000;
        if now.tv_nsec >= 1_000_000_000 {
            now.tv_nsec -= 1_000_000_000;
            now.tv_sec += 1;
        }
        let r = libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &now,
            std::ptr::null_mut(),
        );
        assert_eq!(r, 0);
        // Relative, on the realtime clock.
        let rel = libc::timespec {
            tv_sec: 0,
            tv_nsec: 20_000_000,
        };
        let r = libc::clock_nanosleep(libc::CLOCK_REALTIME, 0, &rel, std::ptr::null_mut());
        assert_eq!(r, 0);
    }
    assert!(start.elapsed() >= ms(80), "{:?}", start.elapsed());
    assert!(other.is_dead(), "the other greenlet ran during the sleeps");
}

#[test]
fn a_plain_thread_and_unpatched_code_sleep_the_thread() {
    gevent_monkey::patch_all();
    // A thread without a hub: the real sleep.
    let start = Instant::now();
    std::thread::spawn(|| std::thread::sleep(ms(30)))
        .join()
        .unwrap();
    assert!(start.elapsed() >= ms(30));
    assert!(!greenlet::hub::has_hub() || greenlet::hub::in_greenlet());
    // In a greenlet, inside `unpatched`: the hub does not run.
    let other = greenlet::spawn(|| ());
    gevent_monkey::unpatched(|| std::thread::sleep(ms(20)));
    assert!(!other.is_dead(), "the hub did not run");
    other.join().unwrap();
}

#[test]
fn a_killed_sleeper_stops_sleeping_and_dies_at_its_next_blocking_call() {
    gevent_monkey::patch_all();
    let g = greenlet::spawn(|| {
        std::thread::sleep(Duration::from_secs(3600));
        greenlet::sleep(Duration::ZERO).unwrap(); // the kill unwinds here
        unreachable!("killed");
    });
    greenlet::yield_now().unwrap();
    let start = Instant::now();
    g.kill();
    assert!(g.join().is_err());
    assert!(start.elapsed() < Duration::from_secs(10));
}
