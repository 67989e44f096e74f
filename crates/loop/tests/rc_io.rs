//! `RcIo`: an io watcher sharing its allocation with its owner's value.

use ev_loop::{Break, Events, IoHandler, Loop, RcIo, Timer};
use std::cell::{Cell, RefCell};
use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

/// What a probe does when called (stop, when it has nothing to do).
type Action = Box<dyn FnMut(&RcIo<Probe>)>;

/// Counts its calls; what it does on each is set by the test.
struct Probe {
    calls: Cell<u32>,
    events: Cell<Events>,
    action: RefCell<Option<Action>>,
    dropped: Rc<Cell<bool>>,
}

impl IoHandler for Probe {
    fn on_io(io: &RcIo<Self>, events: Events) {
        io.calls.set(io.calls.get() + 1);
        io.events.set(events);
        let action = io.action.borrow_mut().take();
        if let Some(mut f) = action {
            f(io);
        } else {
            io.stop();
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        self.dropped.set(true);
    }
}

fn probe(action: Option<Action>) -> (RcIo<Probe>, Rc<Cell<bool>>) {
    let dropped = Rc::new(Cell::new(false));
    let io = RcIo::new(Probe {
        calls: Cell::new(0),
        events: Cell::new(Events::default()),
        action: RefCell::new(action),
        dropped: dropped.clone(),
    });
    (io, dropped)
}

#[test]
fn reports_readiness_and_counts_as_active() {
    let lp = Loop::new().unwrap();
    let (mut a, b) = UnixStream::pair().unwrap();
    let (io, _) = probe(None);
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (0, 0));
    io.start(&lp, b.as_raw_fd(), Events::READ).unwrap();
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (1, 1));
    a.write_all(b"x").unwrap();
    lp.run();
    assert_eq!(io.calls.get(), 1);
    assert!(io.events.get().is_readable());
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (1, 0));
    drop(io);
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (0, 0));
}

#[test]
fn changing_events_of_an_active_watcher_restarts_it() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let (io, _) = probe(None);
    io.start(&lp, b.as_raw_fd(), Events::READ).unwrap();
    // Nothing to read: only WRITE can fire once it is asked for.
    io.start(&lp, b.as_raw_fd(), Events::READ | Events::WRITE)
        .unwrap();
    assert_eq!(lp.active_watchers(), 1);
    lp.run();
    assert_eq!(io.calls.get(), 1);
    assert!(io.events.get().is_writable() && !io.events.get().is_readable());
}

#[test]
fn the_handler_may_drop_the_last_handle() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let keep: Rc<RefCell<Option<RcIo<Probe>>>> = Rc::new(RefCell::new(None));
    let k = keep.clone();
    let (io, dropped) = probe(Some(Box::new(move |_| drop(k.borrow_mut().take()))));
    io.start(&lp, b.as_raw_fd(), Events::WRITE).unwrap();
    *keep.borrow_mut() = Some(io);
    lp.run();
    assert!(
        dropped.get(),
        "the value died with its last handle, after the handler"
    );
    assert_eq!((lp.watcher_count(), lp.active_watchers()), (0, 0));
}

#[test]
fn a_panic_in_the_handler_resumes_from_run() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let (io, _) = probe(Some(Box::new(|io| {
        io.stop();
        panic!("from the handler");
    })));
    io.start(&lp, b.as_raw_fd(), Events::WRITE).unwrap();
    let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| lp.run()));
    assert!(r.is_err());
    assert_eq!(io.calls.get(), 1);
}

#[test]
fn dropping_a_pending_watcher_drops_its_event() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let (first, _) = probe(None);
    let (second, dropped) = probe(None);
    let slot = Rc::new(RefCell::new(Some(second)));
    let s = slot.clone();
    // Both become ready in the same poll; whichever runs first drops the second one.
    first.action.replace(Some(Box::new(move |io| {
        io.stop();
        drop(s.borrow_mut().take());
    })));
    first.start(&lp, b.as_raw_fd(), Events::WRITE).unwrap();
    let second_ref = slot.borrow().as_ref().unwrap().clone();
    second_ref.start(&lp, b.as_raw_fd(), Events::WRITE).unwrap();
    second_ref.action.replace(Some(Box::new(|io| io.stop())));
    drop(second_ref);
    lp.run();
    assert!(dropped.get());
    assert_eq!(lp.active_watchers(), 0);
}

#[test]
fn a_closed_descriptor_or_bad_input_leaves_nothing_active() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    let (io, _) = probe(None);
    io.start(&lp, fd, Events::READ).unwrap();
    // Not keeping the loop alive either: libev's own stop must give the reference back.
    io.set_keep_alive(false);
    drop(b);
    // Whatever libev makes of the closed descriptor, the watcher ends up inactive and counted
    // right. (Its number is not tried again: other tests may have been given it meanwhile.)
    lp.run_nowait();
    io.stop();
    assert_eq!(lp.active_watchers(), 0);
    assert!(io.keeps_alive());
    let (_c, d) = UnixStream::pair().unwrap();
    assert_references_right(&lp, d.as_raw_fd());
    let (other, _) = probe(None);
    assert!(other.start(&lp, -1, Events::READ).is_err());
    assert!(other.start(&lp, 0, Events::default()).is_err());
}

/// Run `lp` until it returns by itself: whether it did, rather than being broken off by a
/// guard after ten seconds (a watcher kept the loop alive that should not have).
fn runs_out(lp: &Loop) -> bool {
    let broken = Rc::new(Cell::new(false));
    let b = broken.clone();
    let guard = Timer::new(lp, Duration::from_secs(10), Duration::ZERO, move |w, _| {
        b.set(true);
        w.event_loop().break_loop(Break::All);
    });
    guard.set_keep_alive(false);
    guard.start();
    lp.run();
    !broken.get()
}

/// A probe's next call does nothing (the one after stops it).
fn then_nothing(io: &RcIo<Probe>) {
    io.action.replace(Some(Box::new(|_| {})));
}

/// A fresh watcher on `fd` (writable) keeps `lp` running until it stops itself, at its
/// second call, and no longer: the loop's count of references is right.
fn assert_references_right(lp: &Loop, fd: std::os::fd::RawFd) {
    let (io, _) = probe(None);
    io.start(lp, fd, Events::WRITE).unwrap();
    then_nothing(&io);
    assert!(runs_out(lp));
    assert_eq!(io.calls.get(), 2);
}

#[test]
fn a_watcher_that_does_not_keep_the_loop_alive_takes_its_reference_back_when_stopped() {
    let lp = Loop::new().unwrap();
    let (_a, b) = UnixStream::pair().unwrap();
    let fd = b.as_raw_fd();
    // Writable at once: reported at every iteration while started.
    let (io, _) = probe(None);
    assert!(io.keeps_alive());
    io.set_keep_alive(false); // inactive: nothing to give up
    assert!(io.keeps_alive());
    io.start(&lp, fd, Events::WRITE).unwrap();
    then_nothing(&io);
    io.set_keep_alive(false);
    assert!(!io.keeps_alive());
    // One iteration, and the loop returns with the watcher still started.
    assert!(runs_out(&lp));
    assert_eq!((io.calls.get(), io.is_active()), (1, true));
    assert_eq!(lp.active_watchers(), 1);
    // Stopped, it takes its reference back: started afresh, it keeps the loop running until
    // it stops itself (at its second call from now). Were the reference lost, the loop would
    // return after one call; were it taken twice, it would never return by itself.
    io.stop();
    assert!(io.keeps_alive());
    io.start(&lp, fd, Events::WRITE).unwrap();
    then_nothing(&io);
    assert!(runs_out(&lp));
    assert_eq!((io.calls.get(), io.is_active()), (3, false));
    // Given back by `set_keep_alive(true)` too, and by a restart with other events.
    io.start(&lp, fd, Events::WRITE).unwrap();
    then_nothing(&io);
    io.set_keep_alive(false);
    io.set_keep_alive(true);
    assert!(runs_out(&lp));
    assert_eq!(io.calls.get(), 5);
    io.start(&lp, fd, Events::WRITE).unwrap();
    io.set_keep_alive(false);
    io.start(&lp, fd, Events::READ | Events::WRITE).unwrap();
    assert!(io.keeps_alive());
    then_nothing(&io);
    assert!(runs_out(&lp));
    assert_eq!(io.calls.get(), 7);
    // Dropped while it did not keep the loop alive: another watcher keeps it running as
    // before.
    io.start(&lp, fd, Events::WRITE).unwrap();
    io.set_keep_alive(false);
    drop(io);
    assert_eq!(lp.active_watchers(), 0);
    assert_references_right(&lp, fd);
}
