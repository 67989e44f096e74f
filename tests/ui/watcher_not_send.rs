// A watcher belongs to its loop's thread.
use gevent::ev::{Loop, Timer};
use std::time::Duration;
fn main() {
    let lp = Loop::new().unwrap();
    let t = Timer::new(&lp, Duration::ZERO, Duration::ZERO, |_, _| {});
    std::thread::spawn(move || t.start());
}
