// A scoped greenlet's handle cannot leave its scope: the scope waits for the greenlet, so a
// handle used after the scope (or a greenlet borrowing after it) must not compile.
fn main() {
    let mut escaped = None;
    gevent::scope(|s| {
        escaped = Some(s.spawn(|| 1));
    });
    drop(escaped);
}
