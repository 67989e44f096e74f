//! What patching cannot make cooperative, shown: a `std::sync::Mutex` held across a
//! cooperative call blocks the thread when another greenlet of the thread wants it, and the
//! blocking monitor names that greenlet.

use std::sync::{Arc, Mutex};
use std::time::Duration;

#[test]
fn a_mutex_held_across_a_cooperative_sleep_deadlocks_and_the_monitor_names_the_waiter() {
    gevent_monkey::patch_all();
    let (tx, rx) = std::sync::mpsc::channel();
    // Its own thread and hub: that thread stays blocked for good (on purpose).
    std::thread::spawn(move || {
        let _monitor =
            greenlet::monitor::start_monitor_with(Duration::from_millis(100), move |r| {
                let _ = tx.send(r.greenlet_name.clone());
            });
        let m = Arc::new(Mutex::new(0));
        let m2 = m.clone();
        let holder = greenlet::Builder::new()
            .name("holder")
            .spawn(move || {
                let _g = m2.lock().unwrap();
                std::thread::sleep(Duration::from_millis(50)); // switches with the lock held
            })
            .unwrap();
        let wanter = greenlet::Builder::new()
            .name("wanter")
            .spawn(move || *m.lock().unwrap() += 1) // a futex wait: the whole thread stops
            .unwrap();
        let _ = (holder.join(), wanter.join());
    });
    // The thread may also have been slow for other reasons before the deadlock (a loaded
    // machine, valgrind): reports of other greenlets are passed over, the wanter's must come.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut others = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        match rx.recv_timeout(left) {
            Ok(named) if named == "wanter" => break,
            Ok(named) => others.push(named),
            Err(e) => panic!("no report names the wanter ({e}); others: {others:?}"),
        }
    }
}
