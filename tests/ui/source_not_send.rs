// A Source's watchers belong to its thread's hub: it must not reach another thread.
fn main() {
    let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
    let s = gevent::source::Source::new(a.into()).unwrap();
    std::thread::spawn(move || s.fd());
}
