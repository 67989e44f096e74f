// A thread pool belongs to the hub of the thread that made it.
fn main() {
    let pool = gevent::threadpool::ThreadPool::new(1).unwrap();
    std::thread::spawn(move || drop(pool));
}
