// A scope belongs to its owner greenlet's thread: its greenlets run on that thread's hub, so
// another thread cannot spawn into it.
fn main() {
    gevent::scope(|s| {
        std::thread::scope(|t| {
            t.spawn(|| {
                s.spawn(|| ());
            });
        });
    });
}
