//! A thread's hub is freed when the thread exits, however the hub was left: its libev loop's
//! descriptor is closed (and valgrind sees no hub, loop or stack left behind).

use std::time::Duration;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fn on_a_thread(f: impl FnOnce() + Send + 'static) {
    std::thread::spawn(f).join().unwrap();
}

#[test]
fn the_hub_and_its_loop_are_freed_at_thread_exit() {
    let before = open_fds();
    // The root was last switched to from inside the hub's callback loop (a join).
    on_a_thread(|| {
        let g = greenlet::spawn(|| greenlet::sleep(Duration::from_millis(1)).unwrap());
        g.join().unwrap();
    });
    // The loop ran dry (the hub left its loop by itself).
    on_a_thread(|| {
        greenlet::spawn(|| ());
        assert!(greenlet::wait(None).unwrap());
    });
    // A greenlet is still blocked at thread exit and is killed then.
    on_a_thread(|| {
        let ev = greenlet::Event::new();
        let e = ev.clone();
        greenlet::spawn(move || e.wait());
        greenlet::yield_now().unwrap();
    });
    // The hub was created but never ran.
    on_a_thread(|| {
        greenlet::spawn(|| ());
    });
    // Survivors of the kill at thread exit stay suspended for good: what their stacks hold
    // must not include the hub (their last waits went straight to another greenlet).
    on_a_thread(|| {
        for _ in 0..2 {
            greenlet::spawn(|| {
                loop {
                    let ev = greenlet::Event::new();
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| ev.wait()));
                }
            });
        }
        greenlet::yield_now().unwrap();
    });
    assert_eq!(open_fds(), before, "a hub's loop outlived its thread");
}
