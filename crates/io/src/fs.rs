//! Files whose blocking calls run on the thread pool (gevent's `fileobject`, its
//! `FileObjectThread`): the calling greenlet waits cooperatively while a pool thread does the
//! system call, so a slow disk, a network file system or a FIFO with no writer yet does not
//! stop the hub. Shaped like `std::fs`.
//!
//! Each call moves its data to and from the pool thread (a read reads into a buffer of its
//! own there and copies it back), so a greenlet killed during a call leaves the pool thread a
//! buffer of its own to finish with: the call runs to its end off the hub, its result unused.
//!
//! ```
//! use std::io::{Read, Seek, SeekFrom, Write};
//! let dir = std::env::temp_dir().join(format!("gevent-fs-doc-{}", std::process::id()));
//! std::fs::create_dir_all(&dir).unwrap();
//! let path = dir.join("hello.txt");
//! let mut f = gevent_io::fs::File::create(&path).unwrap();
//! f.write_all(b"hello, hub").unwrap();
//! f.seek(SeekFrom::Start(7)).unwrap();
//! drop(f);
//! assert_eq!(gevent_io::fs::read(&path).unwrap(), b"hello, hub");
//! let mut s = String::new();
//! gevent_io::fs::File::open(&path).unwrap().read_to_string(&mut s).unwrap();
//! assert_eq!(s, "hello, hub");
//! # std::fs::remove_dir_all(&dir).unwrap();
//! ```

#![forbid(unsafe_code)]

use greenlet::threadpool::spawn_blocking;
use std::fmt;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::marker::PhantomData;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Run `f` on the default thread pool and wait for it cooperatively.
fn on_pool<T, F>(f: F) -> io::Result<T>
where
    F: FnOnce() -> io::Result<T> + Send + 'static,
    T: Send + 'static,
{
    match spawn_blocking(f).join() {
        Ok(r) => r,
        Err(greenlet::JoinError::Panicked(p)) => std::panic::resume_unwind(p),
        Err(greenlet::JoinError::Wait(e)) => Err(e.into()),
        Err(e) => Err(io::Error::other(e.to_string())),
    }
}

/// An open file whose reads, writes, seeks and syncs run on the thread pool; `!Send` like the
/// sockets (it belongs to its thread's hub). Reading and writing also work through `&File`,
/// as for `std::fs::File`.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("gevent-file-doc-{}", std::process::id()));
/// let mut f = gevent_io::fs::File::create(&path).unwrap();
/// f.write_all(b"abc").unwrap();
/// assert_eq!(f.metadata().unwrap().len(), 3);
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub struct File {
    inner: Arc<std::fs::File>,
    _not_send: PhantomData<*const ()>,
}

impl File {
    /// Open `path` for reading (`std::fs::File::open`), on the thread pool.
    ///
    /// # Errors
    /// The system's (`NotFound`, `PermissionDenied`, …), or the wait's.
    ///
    /// ```
    /// let e = gevent_io::fs::File::open("/no/such/file").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new().read(true).open(path)
    }

    /// Open `path` for writing, creating it or truncating it (`std::fs::File::create`), on
    /// the thread pool.
    ///
    /// # Errors
    /// As for [`File::open`].
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-create-doc-{}", std::process::id()));
    /// gevent_io::fs::File::create(&path).unwrap();
    /// assert_eq!(gevent_io::fs::metadata(&path).unwrap().len(), 0);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn create(path: impl AsRef<Path>) -> io::Result<File> {
        OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
    }

    /// Options to open a file with (`std::fs::File::options`).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-options-doc-{}", std::process::id()));
    /// let f = gevent_io::fs::File::options().append(true).create(true).open(&path).unwrap();
    /// # drop(f); std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn options() -> OpenOptions {
        OpenOptions::new()
    }

    /// Wrap a `std::fs::File` so that its calls run on the thread pool.
    ///
    /// ```
    /// let f = gevent_io::fs::File::from_std(std::fs::File::open("/dev/null").unwrap());
    /// assert_eq!(f.metadata().unwrap().len(), 0);
    /// ```
    pub fn from_std(file: std::fs::File) -> File {
        File {
            inner: Arc::new(file),
            _not_send: PhantomData,
        }
    }

    /// Run `f` with the file on a pool thread.
    fn call<T, F>(&self, f: F) -> io::Result<T>
    where
        F: FnOnce(&std::fs::File) -> io::Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let file = self.inner.clone();
        on_pool(move || f(&file))
    }

    /// The file's metadata (`fstat`), on the thread pool.
    ///
    /// # Errors
    /// The system's, or the wait's.
    ///
    /// ```
    /// let f = gevent_io::fs::File::open("/dev/null").unwrap();
    /// assert_eq!(f.metadata().unwrap().len(), 0);
    /// ```
    pub fn metadata(&self) -> io::Result<std::fs::Metadata> {
        self.call(|f| f.metadata())
    }

    /// Flush data and metadata to the device (`fsync`), on the thread pool.
    ///
    /// # Errors
    /// The system's, or the wait's.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-sync-doc-{}", std::process::id()));
    /// gevent_io::fs::File::create(&path).unwrap().sync_all().unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn sync_all(&self) -> io::Result<()> {
        self.call(|f| f.sync_all())
    }

    /// Truncate or extend the file to `size` bytes, on the thread pool.
    ///
    /// # Errors
    /// The system's (the file must be open for writing), or the wait's.
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-setlen-doc-{}", std::process::id()));
    /// let f = gevent_io::fs::File::create(&path).unwrap();
    /// f.set_len(10).unwrap();
    /// assert_eq!(f.metadata().unwrap().len(), 10);
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn set_len(&self, size: u64) -> io::Result<()> {
        self.call(move |f| f.set_len(size))
    }
}

impl Read for &File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let len = buf.len();
        let data = self.call(move |mut f| {
            let mut data = vec![0u8; len];
            let n = f.read(&mut data)?;
            data.truncate(n);
            Ok(data)
        })?;
        buf[..data.len()].copy_from_slice(&data);
        Ok(data.len())
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        // One job for the whole file, not one per buffer.
        let data = self.call(|mut f| {
            let mut data = Vec::new();
            f.read_to_end(&mut data)?;
            Ok(data)
        })?;
        buf.extend_from_slice(&data);
        Ok(data.len())
    }
}

impl Read for File {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        (&*self).read(buf)
    }

    fn read_to_end(&mut self, buf: &mut Vec<u8>) -> io::Result<usize> {
        (&*self).read_to_end(buf)
    }
}

impl Write for &File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let data = buf.to_vec();
        self.call(move |mut f| f.write(&data))
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        // One job for the whole buffer.
        let data = buf.to_vec();
        self.call(move |mut f| f.write_all(&data))
    }

    fn flush(&mut self) -> io::Result<()> {
        // Writes go straight to the kernel: nothing is buffered here.
        Ok(())
    }
}

impl Write for File {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        (&*self).write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        (&*self).write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        (&*self).flush()
    }
}

impl Seek for &File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.call(move |mut f| f.seek(pos))
    }
}

impl Seek for File {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        (&*self).seek(pos)
    }
}

impl AsRawFd for File {
    fn as_raw_fd(&self) -> RawFd {
        self.inner.as_raw_fd()
    }
}

impl AsFd for File {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.inner.as_fd()
    }
}

impl fmt::Debug for File {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("File")
            .field("fd", &self.inner.as_raw_fd())
            .finish()
    }
}

/// How to open a [`File`] (`std::fs::OpenOptions`); the open runs on the thread pool.
///
/// ```
/// use std::io::Write;
/// let path = std::env::temp_dir().join(format!("gevent-openopts-doc-{}", std::process::id()));
/// let opts = gevent_io::fs::OpenOptions::new().read(true).write(true).create(true).clone();
/// let mut f = opts.open(&path).unwrap();
/// f.write_all(b"x").unwrap();
/// # std::fs::remove_file(&path).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct OpenOptions(std::fs::OpenOptions);

impl Default for OpenOptions {
    fn default() -> OpenOptions {
        OpenOptions::new()
    }
}

impl OpenOptions {
    /// No access asked for yet (as `std::fs::OpenOptions::new`).
    ///
    /// ```
    /// let e = gevent_io::fs::OpenOptions::new().open("/dev/null").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::InvalidInput);
    /// ```
    pub fn new() -> OpenOptions {
        OpenOptions(std::fs::OpenOptions::new())
    }

    /// Open for reading.
    ///
    /// ```
    /// gevent_io::fs::OpenOptions::new().read(true).open("/dev/null").unwrap();
    /// ```
    pub fn read(&mut self, read: bool) -> &mut OpenOptions {
        self.0.read(read);
        self
    }

    /// Open for writing.
    ///
    /// ```
    /// gevent_io::fs::OpenOptions::new().write(true).open("/dev/null").unwrap();
    /// ```
    pub fn write(&mut self, write: bool) -> &mut OpenOptions {
        self.0.write(write);
        self
    }

    /// Open for appending (every write goes to the end).
    ///
    /// ```
    /// gevent_io::fs::OpenOptions::new().append(true).open("/dev/null").unwrap();
    /// ```
    pub fn append(&mut self, append: bool) -> &mut OpenOptions {
        self.0.append(append);
        self
    }

    /// Truncate the file to 0 bytes when opening it (needs write access).
    ///
    /// ```
    /// gevent_io::fs::OpenOptions::new().write(true).truncate(true).open("/dev/null").unwrap();
    /// ```
    pub fn truncate(&mut self, truncate: bool) -> &mut OpenOptions {
        self.0.truncate(truncate);
        self
    }

    /// Create the file if it does not exist (needs write or append access).
    ///
    /// ```
    /// let path = std::env::temp_dir().join(format!("gevent-oc-doc-{}", std::process::id()));
    /// gevent_io::fs::OpenOptions::new().write(true).create(true).open(&path).unwrap();
    /// # std::fs::remove_file(&path).unwrap();
    /// ```
    pub fn create(&mut self, create: bool) -> &mut OpenOptions {
        self.0.create(create);
        self
    }

    /// Create the file, failing with `AlreadyExists` if it exists.
    ///
    /// ```
    /// let e = gevent_io::fs::OpenOptions::new().write(true).create_new(true).open("/dev/null");
    /// assert_eq!(e.unwrap_err().kind(), std::io::ErrorKind::AlreadyExists);
    /// ```
    pub fn create_new(&mut self, create_new: bool) -> &mut OpenOptions {
        self.0.create_new(create_new);
        self
    }

    /// Open `path` with these options, on the thread pool.
    ///
    /// # Errors
    /// The system's, or the wait's.
    ///
    /// ```
    /// let e = gevent_io::fs::OpenOptions::new().read(true).open("/no/such/file").unwrap_err();
    /// assert_eq!(e.kind(), std::io::ErrorKind::NotFound);
    /// ```
    pub fn open(&self, path: impl AsRef<Path>) -> io::Result<File> {
        let opts = self.0.clone();
        let path: PathBuf = path.as_ref().to_owned();
        on_pool(move || opts.open(path)).map(File::from_std)
    }
}

/// The whole contents of the file at `path` (`std::fs::read`), read on the thread pool.
///
/// # Errors
/// The system's, or the wait's.
///
/// ```
/// assert!(gevent_io::fs::read("/dev/null").unwrap().is_empty());
/// ```
pub fn read(path: impl AsRef<Path>) -> io::Result<Vec<u8>> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read(path))
}

/// The whole contents of the file at `path` as UTF-8 (`std::fs::read_to_string`), read on the
/// thread pool.
///
/// # Errors
/// The system's, `InvalidData` if it is not UTF-8, or the wait's.
///
/// ```
/// assert_eq!(gevent_io::fs::read_to_string("/dev/null").unwrap(), "");
/// ```
pub fn read_to_string(path: impl AsRef<Path>) -> io::Result<String> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::read_to_string(path))
}

/// Write `contents` to the file at `path`, creating or truncating it (`std::fs::write`), on
/// the thread pool.
///
/// # Errors
/// The system's, or the wait's.
///
/// ```
/// let path = std::env::temp_dir().join(format!("gevent-write-doc-{}", std::process::id()));
/// gevent_io::fs::write(&path, "contents").unwrap();
/// assert_eq!(gevent_io::fs::read(&path).unwrap(), b"contents");
/// # std::fs::remove_file(&path).unwrap();
/// ```
pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    let contents = contents.as_ref().to_vec();
    on_pool(move || std::fs::write(path, contents))
}

/// The metadata of `path`, following symbolic links (`std::fs::metadata`), on the thread pool.
///
/// # Errors
/// The system's (`NotFound`, …), or the wait's.
///
/// ```
/// assert!(gevent_io::fs::metadata("/").unwrap().is_dir());
/// ```
pub fn metadata(path: impl AsRef<Path>) -> io::Result<std::fs::Metadata> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::metadata(path))
}

/// Remove the file at `path` (`std::fs::remove_file`), on the thread pool.
///
/// # Errors
/// The system's (`NotFound`, …), or the wait's.
///
/// ```
/// let path = std::env::temp_dir().join(format!("gevent-rm-doc-{}", std::process::id()));
/// gevent_io::fs::write(&path, "x").unwrap();
/// gevent_io::fs::remove_file(&path).unwrap();
/// assert!(gevent_io::fs::metadata(&path).is_err());
/// ```
pub fn remove_file(path: impl AsRef<Path>) -> io::Result<()> {
    let path = path.as_ref().to_owned();
    on_pool(move || std::fs::remove_file(path))
}
