//! An io watcher whose fd is closed behind its back reports EV_ERROR instead of aborting. In
//! a binary of its own: tests running in parallel would reuse the closed descriptor number.

use ev_loop::{Events, Io, Loop};
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

mod support;
use support::generous;

#[test]
fn io_on_a_closed_fd_reports_an_error_event() {
    let lp = Loop::new().unwrap();
    let mut fds = [0; 2];
    // SAFETY: valid out array.
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let got = Rc::new(Cell::new(Events::default()));
    let g = got.clone();
    let io = Io::new(&lp, fds[0], Events::READ, move |_, ev| g.set(ev)).unwrap();
    io.start();
    // SAFETY: closing our own pipe ends behind the active watcher's back.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    // epoll drops closed fds silently; libev notices when it re-arms. Make it re-arm by
    // changing the events, which is what a stale fd in real code looks like.
    io.set_events(Events::READ | Events::WRITE).unwrap();
    let start = Instant::now();
    lp.run();
    assert!(got.get().is_error(), "got {:?}", got.get());
    assert!(!io.is_active());
    // libev stopped it by itself: the loop's active count follows.
    assert_eq!(lp.active_watchers(), 0);
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
}
