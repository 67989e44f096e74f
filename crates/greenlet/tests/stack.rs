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
