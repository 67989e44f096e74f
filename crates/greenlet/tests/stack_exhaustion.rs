//! When no guard-page stack can be had (vm.max_map_count exhausted), spawn returns an error
//! that says how to switch modes, never aborts, and the hub keeps working. In a binary of its
//! own, because it uses up the process's memory mappings.

use greenlet::{Builder, Event, StackMode, yield_now};

#[test]
fn spawn_fails_cleanly_when_stacks_run_out() {
    let park = Event::new();
    let mut parked = Vec::new();
    let err = loop {
        let p = park.clone();
        match Builder::new().stack_size(16 * 1024).spawn(move || p.wait()) {
            Ok(g) => parked.push(g),
            Err(e) => break e,
        }
        assert!(parked.len() < 10_000_000, "stacks never ran out");
    };
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
