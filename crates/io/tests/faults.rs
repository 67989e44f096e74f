//! Faults: kills during blocking calls and panics in the places users put code; the hub keeps
//! serving afterwards.

use gevent_io::{dns, net, signal};
use greenlet::*;
use std::cell::Cell;
use std::rc::Rc;
use std::time::{Duration, Instant};

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::generous;

struct Flag(Rc<Cell<bool>>);
impl Drop for Flag {
    fn drop(&mut self) {
        self.0.set(true);
    }
}

#[test]
fn kill_during_a_queue_get_unwinds_and_loses_no_item() {
    let q: Queue<u32> = Queue::unbounded();
    let dropped = Rc::new(Cell::new(false));
    let (q2, d) = (q.clone(), dropped.clone());
    let getter = spawn(move || {
        let _f = Flag(d);
        q2.get()
    });
    yield_now().unwrap();
    getter.kill();
    assert!(getter.was_killed() && dropped.get());
    // The killed getter does not swallow a later item.
    q.put(7).unwrap();
    assert_eq!(q.try_get().unwrap(), 7);
}

#[test]
fn kill_during_a_socket_read_unwinds() {
    let (a, _b) = net::UnixStream::pair().unwrap();
    let dropped = Rc::new(Cell::new(false));
    let d = dropped.clone();
    let reader = spawn(move || {
        let _f = Flag(d);
        std::io::Read::read(&mut &a, &mut [0u8; 8])
    });
    yield_now().unwrap();
    let start = Instant::now();
    reader.kill();
    // A kill takes effect at once (generously bounded: the machine may be loaded).
    assert!(start.elapsed() < generous(Duration::from_secs(5)));
    assert!(reader.was_killed() && dropped.get());
}

#[test]
fn a_panicking_link_callback_does_not_stop_other_links_or_the_hub() {
    let ran = Rc::new(Cell::new(0));
    let g = spawn(|| 1);
    g.link(|| panic!("link failure"));
    let r = ran.clone();
    g.link(move || r.set(r.get() + 1));
    assert_eq!(g.join().unwrap(), 1);
    idle().unwrap();
    assert_eq!(ran.get(), 1);
    let start = Instant::now();
    sleep(Duration::from_millis(50)).unwrap();
    assert!(start.elapsed() >= Duration::from_millis(50));
}

#[test]
fn bad_input_gives_clear_errors_and_the_hub_keeps_serving() {
    // Kill of a dead greenlet: a no-op.
    let g = spawn(|| ());
    g.wait(None).unwrap();
    g.kill();
    assert!(g.successful());
    // Huge and zero durations.
    assert!(
        with_timeout(Duration::ZERO, || sleep(Duration::from_secs(1)))
            .unwrap_err()
            .is_timeout()
    );
    let keep = spawn(|| sleep(Duration::MAX));
    yield_now().unwrap();
    keep.kill();
    // Releasing a BoundedSemaphore too often.
    let s = BoundedSemaphore::new(1);
    assert!(s.release().is_err());
    // A signal number out of range.
    assert!(signal::wait(999, Some(Duration::from_millis(1))).is_err());
    // A port in use, a refused connection, a name that does not resolve.
    let l = net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    assert_eq!(
        net::TcpListener::bind(addr).unwrap_err().kind(),
        std::io::ErrorKind::AddrInUse
    );
    drop(l);
    assert_eq!(
        net::TcpStream::connect(addr).unwrap_err().kind(),
        std::io::ErrorKind::ConnectionRefused
    );
    assert!(dns::lookup_host("no-such-host.invalid").is_err());
    // Still serving.
    assert_eq!(spawn(|| 5).join().unwrap(), 5);
}
