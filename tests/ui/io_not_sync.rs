// Sharing a watcher by reference across threads is refused too.
use gevent::ev::{Events, Io, Loop};
fn assert_sync<T: Sync>(_: &T) {}
fn main() {
    let lp = Loop::new().unwrap();
    let io = Io::new(&lp, 0, Events::READ, |_, _| {}).unwrap();
    assert_sync(&io);
}
