// A Waker wakes a greenlet of its own thread: it must not reach another thread.
fn main() {
    let w = gevent::hub::Waiter::new("x").unwrap();
    let waker = w.waker();
    std::thread::spawn(move || waker.wake());
}
