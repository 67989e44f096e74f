// A greenlet handle from `park::current` names a greenlet of this thread's hub: it cannot be
// sent to another thread (whose hub could otherwise try to switch to it).
fn main() {
    let me = gevent::park::current();
    std::thread::spawn(move || me.unpark());
}
