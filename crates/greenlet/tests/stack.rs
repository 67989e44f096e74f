//! `stack`: greenlet stacks: their pooling and reuse, and canary-mode stacks.

use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;

#[test]
fn many_greenlets_and_stack_reuse() {
    let n = 10_000;
    let count = Rc::new(Cell::new(0));
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let c = count.clone();
            spawn(move || {
                yield_now().unwrap();
                c.set(c.get() + 1);
            })
        })
        .collect();
    assert_eq!(joinall(&gs, None).unwrap().len(), n);
    assert_eq!(count.get(), n);
    drop(gs);
    let stats = hub_stats();
    assert_eq!(stats.live_greenlets, 0);
    assert!(
        stats.pooled_stacks >= n.min(1000),
        "stacks were not pooled: {stats:?}"
    );
}

#[test]
fn canary_stacks_work_and_scale_past_guard_page_limits() {
    let ev = Event::new();
    let n = 40_000; // more than vm.max_map_count allows with guard pages (65530 / 2 mappings)
    let gs: Vec<_> = (0..n)
        .map(|_| {
            let ev = ev.clone();
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || ev.wait())
                .unwrap()
        })
        .collect();
    yield_now().unwrap();
    assert_eq!(hub_stats().live_greenlets, n);
    ev.set();
    for g in gs {
        g.join().unwrap().unwrap();
    }
}

/// Touches the 96 KiB below the caller's frame (every page of it), with one frame.
#[inline(never)]
fn deep() -> u64 {
    let mut buf = [0u8; 96 * 1024];
    for i in (0..buf.len()).step_by(1024) {
        buf[i] = (i / 1024) as u8;
    }
    std::hint::black_box(&mut buf)
        .iter()
        .map(|&b| u64::from(b))
        .sum()
}

/// How many of the pages in `[lo, hi)` (page-aligned) are resident.
fn resident_pages(lo: usize, hi: usize) -> usize {
    let mut vec = vec![0u8; (hi - lo) / 4096];
    // SAFETY: [lo, hi) lies in the calling greenlet's own mapped stack (see the caller);
    // `vec` has one byte per page of it, as mincore writes.
    let r = unsafe { libc::mincore(lo as *mut libc::c_void, hi - lo, vec.as_mut_ptr()) };
    assert_eq!(r, 0, "{}", std::io::Error::last_os_error());
    vec.iter().filter(|&&b| b & 1 != 0).count()
}

#[test]
fn trim_stack_gives_back_the_pages_below_the_running_frame() {
    assert_eq!(trim_stack(), 0, "the thread's own stack is left alone");
    for mode in [StackMode::GuardPage, StackMode::Canary] {
        let g = Builder::new()
            .stack_mode(mode)
            .spawn(move || {
                let probe = 0u8;
                let here = std::hint::black_box(&probe) as *const u8 as usize / 4096 * 4096;
                // The 16 pages from 16 KiB to 80 KiB below this frame: inside `deep`'s.
                let (lo, hi) = (here - 80 * 1024, here - 16 * 1024);
                let sum = deep();
                let before = resident_pages(lo, hi);
                let given = trim_stack();
                let after = resident_pages(lo, hi);
                // Still a stack: deep again, with the pages it gets back zero-filled, and the
                // switch's canary check passes.
                yield_now().unwrap();
                assert_eq!(deep(), sum);
                (before, given, after, resident_pages(lo, hi))
            })
            .unwrap();
        let (before, given, after, again) = g.join().unwrap();
        assert_eq!(before, 16, "{mode:?}: the deep frame's pages were resident");
        assert_eq!(after, 0, "{mode:?}: given back");
        assert!(given >= 96 * 1024, "{mode:?}: {given} bytes given back");
        assert_eq!(again, 16, "{mode:?}: touched again");
    }
}

#[test]
fn trim_parked_stacks_gives_back_what_switched_out_greenlets_left_below_their_frames() {
    for mode in [StackMode::GuardPage, StackMode::Canary] {
        let ev = Rc::new(Event::new());
        let region = Rc::new(Cell::new((0, 0)));
        let (e, r) = (ev.clone(), region.clone());
        let g = Builder::new()
            .stack_mode(mode)
            .spawn(move || {
                let probe = 0u8;
                let here = std::hint::black_box(&probe) as *const u8 as usize / 4096 * 4096;
                r.set((here - 80 * 1024, here - 16 * 1024));
                let sum = deep();
                e.wait().unwrap();
                e.clear();
                // Woken with the pages given back: deep again, and parked again.
                assert_eq!(deep(), sum);
                e.wait().unwrap();
            })
            .unwrap();
        yield_now().unwrap(); // it runs, goes deep and parks
        let (lo, hi) = region.get();
        assert_eq!(
            resident_pages(lo, hi),
            16,
            "{mode:?}: resident after the deep call"
        );
        assert!(trim_parked_stacks() >= 96 * 1024, "{mode:?}");
        assert_eq!(
            resident_pages(lo, hi),
            0,
            "{mode:?}: given back while parked"
        );
        // Nothing ran since: it is left alone.
        assert_eq!(trim_parked_stacks(), 0, "{mode:?}: nothing ran since");
        ev.set();
        yield_now().unwrap(); // it runs deep again and parks in another wait
        assert_eq!(resident_pages(lo, hi), 16, "{mode:?}: touched again");
        assert!(trim_parked_stacks() >= 96 * 1024, "{mode:?}: trimmed again");
        assert_eq!(resident_pages(lo, hi), 0, "{mode:?}");
        ev.set();
        g.join().unwrap();
    }
}

#[test]
fn a_stack_trim_interval_has_the_hub_trim_parked_stacks() {
    let ev = Rc::new(Event::new());
    let region = Rc::new(Cell::new((0, 0)));
    let (e, r) = (ev.clone(), region.clone());
    let g = spawn(move || {
        let probe = 0u8;
        let here = std::hint::black_box(&probe) as *const u8 as usize / 4096 * 4096;
        r.set((here - 80 * 1024, here - 16 * 1024));
        deep();
        e.wait().unwrap();
    });
    yield_now().unwrap();
    let (lo, hi) = region.get();
    assert_eq!(resident_pages(lo, hi), 16);
    hub::set_stack_trim_interval(Some(std::time::Duration::from_millis(20)));
    // The hub's timer gives the pages back while the greenlet stays parked.
    let started = std::time::Instant::now();
    while resident_pages(lo, hi) != 0 {
        assert!(started.elapsed().as_secs() < 30, "not trimmed");
        sleep(std::time::Duration::from_millis(5)).unwrap();
    }
    hub::set_stack_trim_interval(None);
    assert_eq!(hub::stack_trim_interval(), None);
    ev.set();
    g.join().unwrap();
}

#[test]
fn the_free_stacks_are_given_back_once_each() {
    for mode in [StackMode::GuardPage, StackMode::Canary] {
        trim_parked_stacks(); // what earlier tests of this thread left
        // Greenlets that go deep and finish: their stacks go to the pool as they were. Two
        // of them stay alive meanwhile, on the stacks (slots) beside the others.
        let ev = Rc::new(Event::new());
        let regions: Vec<_> = (0..4)
            .map(|i| {
                let e = ev.clone();
                let g = Builder::new()
                    .stack_mode(mode)
                    .spawn(move || {
                        let probe = 0u8;
                        let here = std::hint::black_box(&probe) as *const u8 as usize / 4096 * 4096;
                        let sum = deep();
                        if i % 2 == 0 {
                            e.wait().unwrap();
                            // Still a stack, its canary intact beside the trimmed ones.
                            assert_eq!(deep(), sum);
                        }
                        (here - 80 * 1024, here - 16 * 1024)
                    })
                    .unwrap();
                yield_now().unwrap();
                (i, g)
            })
            .collect();
        let (waiting, finishing): (Vec<_>, Vec<_>) =
            regions.into_iter().partition(|(i, _)| i % 2 == 0);
        let done: Vec<_> = finishing
            .into_iter()
            .map(|(_, g)| g.join().unwrap())
            .collect();
        for &(lo, hi) in &done {
            assert_eq!(
                resident_pages(lo, hi),
                16,
                "{mode:?}: a free stack as it was left"
            );
        }
        assert!(trim_parked_stacks() >= 2 * 96 * 1024, "{mode:?}");
        for &(lo, hi) in &done {
            assert_eq!(
                resident_pages(lo, hi),
                0,
                "{mode:?}: a free stack given back"
            );
        }
        assert_eq!(trim_parked_stacks(), 0, "{mode:?}: once each");
        ev.set();
        for (_, g) in waiting {
            g.join().unwrap();
        }
    }
}
