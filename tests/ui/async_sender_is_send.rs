// The one type that does cross threads is `AsyncSender` (this file proves the harness would
// accept a Send type: only the deliberate error at the end fails).
use gevent::ev::{Async, Loop};
fn assert_send_sync<T: Send + Sync>(_: &T) {}
fn main() {
    let lp = Loop::new().unwrap();
    let a = Async::new(&lp, |_, _| {});
    assert_send_sync(&a.sender());
    let _deliberate: () = "the only error in this file";
}
