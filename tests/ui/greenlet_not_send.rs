// A greenlet handle belongs to its hub's thread.
fn main() {
    let g = gevent::spawn(|| 1);
    std::thread::spawn(move || g.join());
}
