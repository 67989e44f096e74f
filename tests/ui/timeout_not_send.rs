// A Timeout belongs to the greenlet (and thread) that started it.
fn main() {
    let t = gevent::Timeout::start(std::time::Duration::from_secs(1));
    std::thread::spawn(move || drop(t));
}
