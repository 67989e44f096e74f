// The AsyncResult itself stays on its hub's thread; only its setter may travel (see the last
// line, the deliberate error: everything before it compiles).
fn assert_send<T: Send>(_: &T) {}
fn main() {
    let r: gevent::AsyncResult<u32> = gevent::AsyncResult::new();
    assert_send(&r.setter());
    assert_send(&r);
}
