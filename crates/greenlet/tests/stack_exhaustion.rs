//! When no guard-page stack can be had (vm.max_map_count exhausted), spawn returns an error
//! that says how to switch modes, never aborts, and the hub keeps working. In a binary of its
//! own, because it uses up the process's memory mappings.

use greenlet::{Builder, Event, StackMode, yield_now};

#[test]
fn spawn_fails_cleanly_when_stacks_run_out() {
    // Stacks of another size, finished and kept in the pool: they must not count against the
    // new ones (the pool gives them back when mappings run short).
    let warm: Vec<_> = (0..2000)
        .map(|_| greenlet::spawn(|| greenlet::sleep(std::time::Duration::from_millis(1))))
        .collect();
    for g in warm {
        g.join().unwrap().unwrap();
    }
    assert!(greenlet::hub_stats().pooled_stacks >= 2000);

    let max_map_count: usize = std::fs::read_to_string("/proc/sys/vm/max_map_count")
        .map(|s| s.trim().parse().unwrap())
        .unwrap_or(65530);
    let park = Event::new();
    let mut parked = Vec::with_capacity(max_map_count);
    let err = loop {
        let p = park.clone();
        match Builder::new().stack_size(16 * 1024).spawn(move || p.wait()) {
            Ok(g) => parked.push(g),
            Err(e) => break e,
        }
        assert!(parked.len() < 10_000_000, "stacks never ran out");
    };
    // The budget: all of vm.max_map_count but an eighth (at least 4096 mappings), two
    // mappings per stack (the hub's own stack and a few others come out of it too).
    let budget = (max_map_count - (max_map_count / 8).max(4096)) / 2;
    assert!(
        parked.len() + 16 >= budget && parked.len() <= budget,
        "{} parked, budget {budget}",
        parked.len()
    );
    // The mappings left over keep the rest of the process working: a large allocation (its
    // own mapping) and a new thread (a stack mapping and a guard) still succeed.
    let big = vec![1u8; 64 << 20];
    assert_eq!(big.iter().map(|&b| b as usize).sum::<usize>(), 64 << 20);
    drop(big);
    std::thread::spawn(|| 7).join().unwrap();
    let msg = err.to_string();
    assert!(msg.contains("StackMode::Canary"), "{msg}");
    assert!(msg.contains("vm.max_map_count"), "{msg}");
    assert!(matches!(err, greenlet::Error::Spawn(_)));
    // Canary stacks still work, beyond that limit.
    let extra: Vec<_> = (0..1000)
        .map(|_| {
            let p = park.clone();
            Builder::new()
                .stack_mode(StackMode::Canary)
                .stack_size(16 * 1024)
                .spawn(move || p.wait())
                .unwrap()
        })
        .collect();
    yield_now().unwrap();
    park.set();
    for g in parked.into_iter().chain(extra) {
        g.join().unwrap().unwrap();
    }
    // And with the stacks back in the pool, guard-page spawns work again.
    assert_eq!(greenlet::spawn(|| 5).join().unwrap(), 5);
}
