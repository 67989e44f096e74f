// A `Loop` belongs to the thread that created it.
fn main() {
    let lp = gevent::ev::Loop::new().unwrap();
    std::thread::spawn(move || drop(lp));
}
