//! A logger is user code too: one that panics while a scope stops its greenlets must not let
//! the scope end before them (its own binary: a logger is set once per process).

use greenlet::park::GreenletRef;
use greenlet::{Event, scope, yield_now};
use std::cell::RefCell;
use std::panic::{self, AssertUnwindSafe};

struct PanickyLogger;

impl log::Log for PanickyLogger {
    fn enabled(&self, _: &log::Metadata) -> bool {
        true
    }

    fn log(&self, r: &log::Record) {
        if r.args().to_string().contains("stopping the greenlets") {
            panic!("the logger panicked");
        }
    }

    fn flush(&self) {}
}

/// Reads its borrow when dropped.
struct Reader<'a>(&'a Vec<u64>);

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        assert_eq!(self.0.iter().sum::<u64>(), 448);
    }
}

#[test]
fn a_panicking_logger_does_not_end_the_scope_early() {
    log::set_logger(&PanickyLogger).unwrap();
    log::set_max_level(log::LevelFilter::Debug);
    let never = Event::new();
    let leftover: RefCell<Option<GreenletRef>> = RefCell::new(None);
    {
        let data = vec![7u64; 64];
        let r = panic::catch_unwind(AssertUnwindSafe(|| {
            scope(|s| {
                let (d, never) = (&data, &never);
                let g = s.spawn(move || {
                    let _r = Reader(d);
                    never.wait()
                });
                *leftover.borrow_mut() = Some(g.handle());
                // The scope's wait would block forever: it logs, and the logger panics.
            })
        }));
        assert_eq!(
            r.unwrap_err().downcast_ref::<&str>(),
            Some(&"the logger panicked")
        );
    }
    let g = leftover.borrow_mut().take().unwrap();
    assert!(g.is_dead(), "a scoped greenlet outlived its scope");
    never.set();
    for _ in 0..5 {
        let _ = yield_now();
    }
}
