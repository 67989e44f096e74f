//! What a greenlet's end logs: a panic once, at `error` level, with the greenlet's name and the
//! panic's message; a kill nothing (its own binary: a logger is set once per process).

use greenlet::{Builder, sleep, yield_now};
use std::sync::Mutex;
use std::time::Duration;

/// Every record at `warn` or above, as `(level, message)`.
static RECORDS: Mutex<Vec<(log::Level, String)>> = Mutex::new(Vec::new());

struct Recorder;

impl log::Log for Recorder {
    fn enabled(&self, m: &log::Metadata) -> bool {
        m.level() <= log::Level::Warn
    }

    fn log(&self, r: &log::Record) {
        if self.enabled(r.metadata()) {
            RECORDS
                .lock()
                .unwrap()
                .push((r.level(), r.args().to_string()));
        }
    }

    fn flush(&self) {}
}

#[test]
fn a_panic_is_logged_once_with_name_and_message_and_a_kill_is_not() {
    log::set_logger(&Recorder).unwrap();
    log::set_max_level(log::LevelFilter::Warn);
    // Keep the default panic hook's report off the test's output.
    std::panic::set_hook(Box::new(|_| {}));

    let bad = Builder::new()
        .name("worker-7")
        .spawn(|| -> u32 { panic!("the disk is full") })
        .unwrap();
    assert!(bad.join().is_err());
    let killed = Builder::new()
        .name("sleeper-3")
        .spawn(|| sleep(Duration::from_secs(3600)))
        .unwrap();
    yield_now().unwrap();
    killed.kill();
    assert!(killed.join().is_err());

    let records = RECORDS.lock().unwrap().clone();
    let about = |name: &str| {
        records
            .iter()
            .filter(|(_, m)| m.contains(name))
            .cloned()
            .collect::<Vec<_>>()
    };
    let panics = about("worker-7");
    assert_eq!(panics.len(), 1, "{records:?}");
    assert_eq!(panics[0].0, log::Level::Error);
    assert!(panics[0].1.contains("the disk is full"), "{records:?}");
    assert_eq!(about("sleeper-3"), [], "a kill is not an error");
}
