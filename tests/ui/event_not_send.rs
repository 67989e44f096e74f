// Hub-bound primitives stay on their thread.
fn main() {
    let ev = gevent::Event::new();
    std::thread::spawn(move || ev.set());
}
