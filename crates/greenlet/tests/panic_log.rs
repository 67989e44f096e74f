//! What a greenlet's end logs: a panic once, at `error` level, with the greenlet's name and the
//! panic's message; a kill nothing. And what a panicking callback on the hub's loop logs (its
//! own binary: a logger is set once per process).

use greenlet::{Builder, hub_loop, sleep, yield_now};
use std::sync::{Mutex, Once};
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

/// Install the recorder (once for the process; the tests run on threads of their own).
fn record() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        log::set_logger(&Recorder).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
        // Keep the default panic hook's report off the test's output.
        std::panic::set_hook(Box::new(|_| {}));
    });
}

/// The records whose message holds `text`.
fn records_about(text: &str) -> Vec<(log::Level, String)> {
    RECORDS
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, m)| m.contains(text))
        .cloned()
        .collect()
}

#[test]
fn a_panic_is_logged_once_with_name_and_message_and_a_kill_is_not() {
    record();

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

    let panics = records_about("worker-7");
    assert_eq!(panics.len(), 1, "{panics:?}");
    assert_eq!(panics[0].0, log::Level::Error);
    assert!(panics[0].1.contains("the disk is full"), "{panics:?}");
    assert_eq!(records_about("sleeper-3"), [], "a kill is not an error");
}

#[test]
fn a_panicking_timer_callback_is_logged_once_and_the_hub_keeps_going() {
    record();
    let fired = std::rc::Rc::new(std::cell::Cell::new(false));
    let f = fired.clone();
    let t = ev_loop::Timer::new(
        &hub_loop(),
        Duration::from_millis(10),
        Duration::ZERO,
        move |_, _| {
            f.set(true);
            panic!("the timer's callback failed");
        },
    );
    t.start();
    // The hub runs the timer's callback during this sleep, and still wakes the sleeper.
    sleep(Duration::from_millis(100)).unwrap();
    assert!(fired.get() && !t.is_active());
    let logged = records_about("the timer's callback failed");
    assert_eq!(logged.len(), 1, "{logged:?}");
    assert_eq!(logged[0].0, log::Level::Error);
    assert!(
        logged[0].1.contains("a hub callback panicked"),
        "{logged:?}"
    );
}
