//! The safe loop on its own: a repeating timer, a pipe watched for readability, and a signal.
//!
//! `cargo run --example ticker`

use gevent::ev::{Events, Io, Loop, Timer};
use std::cell::Cell;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::rc::Rc;
use std::time::Duration;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let lp = Loop::new()?;
    let (mut tx, mut rx) = UnixStream::pair()?;
    let ticks = Rc::new(Cell::new(0));

    let t = ticks.clone();
    let timer = Timer::new(
        &lp,
        Duration::from_millis(100),
        Duration::from_millis(100),
        move |w, _| {
            t.set(t.get() + 1);
            writeln!(tx, "tick {}", t.get()).unwrap();
            if t.get() == 5 {
                w.stop();
            }
        },
    );
    timer.start();

    let reader = Io::new(&lp, rx.as_raw_fd(), Events::READ, move |w, _| {
        let mut buf = [0u8; 64];
        let n = rx.read(&mut buf).unwrap();
        print!("{}", String::from_utf8_lossy(&buf[..n]));
        if buf[..n].ends_with(b"tick 5\n") {
            w.stop();
        }
    })?;
    reader.start();

    lp.run();
    println!(
        "done after {} ticks on the {:?} backend",
        ticks.get(),
        lp.backend()
    );
    Ok(())
}
