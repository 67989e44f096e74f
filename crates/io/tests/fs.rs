//! `gevent_io::fs`: files whose blocking calls run on the thread pool.

use gevent_io::fs::{self, File, OpenOptions};
use greenlet::Event;
use std::cell::Cell;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

#[path = "../../greenlet/tests/support/mod.rs"]
mod support;
use support::generous;

/// A fresh directory for one test, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("gevent-fs-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn contents_round_trip() {
    let dir = TempDir::new("roundtrip");
    let path = dir.0.join("a");
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    fs::write(&path, &data).unwrap();
    assert_eq!(fs::read(&path).unwrap(), data);

    let mut f = File::create(dir.0.join("b")).unwrap();
    f.write_all(b"hello ").unwrap();
    assert_eq!(f.write(b"world").unwrap(), 5);
    f.flush().unwrap();
    f.sync_all().unwrap();
    drop(f);
    assert_eq!(fs::read_to_string(dir.0.join("b")).unwrap(), "hello world");

    let mut f = File::open(dir.0.join("b")).unwrap();
    let mut buf = [0u8; 5];
    f.read_exact(&mut buf).unwrap();
    assert_eq!(&buf, b"hello");
    let mut rest = String::new();
    f.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, " world");
    assert_eq!(f.read(&mut buf).unwrap(), 0);

    let mut a = OpenOptions::new()
        .append(true)
        .open(dir.0.join("b"))
        .unwrap();
    a.write_all(b"!").unwrap();
    assert_eq!(fs::read(dir.0.join("b")).unwrap(), b"hello world!");
}

#[test]
fn seek_moves_the_position() {
    let dir = TempDir::new("seek");
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .open(dir.0.join("s"))
        .unwrap();
    f.write_all(b"0123456789").unwrap();
    assert_eq!(f.seek(SeekFrom::Start(3)).unwrap(), 3);
    let mut two = [0u8; 2];
    f.read_exact(&mut two).unwrap();
    assert_eq!(&two, b"34");
    assert_eq!(f.seek(SeekFrom::Current(1)).unwrap(), 6);
    assert_eq!(f.seek(SeekFrom::End(-2)).unwrap(), 8);
    f.read_exact(&mut two).unwrap();
    assert_eq!(&two, b"89");
    f.seek(SeekFrom::Start(0)).unwrap();
    f.write_all(b"ab").unwrap();
    assert_eq!(f.stream_position().unwrap(), 2);
    assert_eq!(fs::read(dir.0.join("s")).unwrap(), b"ab23456789");
}

#[test]
fn metadata_of_paths_and_files() {
    let dir = TempDir::new("meta");
    let path = dir.0.join("m");
    fs::write(&path, [7u8; 1234]).unwrap();
    let m = fs::metadata(&path).unwrap();
    assert!(m.is_file());
    assert_eq!(m.len(), 1234);
    assert!(fs::metadata(&dir.0).unwrap().is_dir());
    let f = OpenOptions::new().write(true).open(&path).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 1234);
    f.set_len(10).unwrap();
    assert_eq!(f.metadata().unwrap().len(), 10);
    fs::remove_file(&path).unwrap();
    assert_eq!(fs::metadata(&path).unwrap_err().kind(), ErrorKind::NotFound);
}

#[test]
fn errors_are_the_systems() {
    let dir = TempDir::new("errors");
    let missing = dir.0.join("missing");
    assert_eq!(
        File::open(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(fs::read(&missing).unwrap_err().kind(), ErrorKind::NotFound);
    assert_eq!(
        fs::remove_file(&missing).unwrap_err().kind(),
        ErrorKind::NotFound
    );
    assert_eq!(
        fs::write(dir.0.join("no/such/dir"), "x")
            .unwrap_err()
            .kind(),
        ErrorKind::NotFound
    );
    fs::write(&missing, "now it exists").unwrap();
    let e = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&missing)
        .unwrap_err();
    assert_eq!(e.kind(), ErrorKind::AlreadyExists);
    // Writing to a file opened only for reading.
    let mut r = File::open(&missing).unwrap();
    assert!(r.write_all(b"x").is_err());
    // Reading a directory.
    assert!(fs::read(&dir.0).is_err());
}

#[test]
fn another_greenlet_runs_while_a_read_is_in_progress() {
    // A FIFO: its open and its read block until the other side acts. The writer is another
    // greenlet of this thread that writes only after the reader's read has begun, so the
    // read can only end if it left the hub free to run the writer.
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: a valid NUL-terminated path; mkfifo only reads it.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    // Should the read block the thread, a watchdog thread ends it (with bytes the test
    // rejects) instead of letting the test hang.
    let watched = fifo.clone();
    std::thread::spawn(move || {
        std::thread::sleep(generous(Duration::from_secs(30)));
        use std::os::unix::fs::OpenOptionsExt;
        if let Ok(mut w) = std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&watched)
        {
            let _ = w.write_all(b"watchdog");
        }
    });

    let reading = Event::new();
    let writer_ran = Rc::new(Cell::new(false));
    let (r, p) = (reading.clone(), fifo.clone());
    let reader = greenlet::spawn(move || {
        let mut f = File::open(&p).unwrap();
        r.set();
        let mut buf = [0u8; 16];
        let n = f.read(&mut buf).unwrap();
        buf[..n].to_vec()
    });
    let (r, ran) = (reading.clone(), writer_ran.clone());
    let writer = greenlet::spawn(move || {
        let mut w = OpenOptions::new().write(true).open(&fifo).unwrap();
        // The reader set the event and went into its read, switching away from this thread
        // only because the read waits on the pool.
        r.wait().unwrap();
        ran.set(true);
        w.write_all(b"hello").unwrap();
    });
    assert_eq!(reader.join().unwrap(), b"hello");
    writer.join().unwrap();
    assert!(writer_ran.get());
}

#[test]
fn a_file_is_read_and_written_through_shared_references() {
    let dir = TempDir::new("shared");
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .open(dir.0.join("r"))
        .unwrap();
    (&f).write_all(b"xyz").unwrap();
    (&f).seek(SeekFrom::Start(1)).unwrap();
    let mut s = String::new();
    (&f).read_to_string(&mut s).unwrap();
    assert_eq!(s, "yz");
    assert!(format!("{f:?}").starts_with("File"));
}
