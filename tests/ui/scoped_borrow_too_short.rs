// A scoped greenlet may borrow only what outlives the scope: a value created inside the
// scope's closure dies before the scope waits for the greenlet.
fn main() {
    gevent::scope(|s| {
        let local = vec![1, 2, 3];
        s.spawn(|| local.len());
    });
}
