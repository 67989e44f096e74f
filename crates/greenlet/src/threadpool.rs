//! A pool of OS threads for blocking work (gevent's `threadpool`): the calling greenlet waits
//! cooperatively, so the hub keeps serving other greenlets meanwhile, and the finished job wakes
//! the hub through an `ev_async` watcher.
//!
//! It lives in this crate, not in the I/O layer, because of what it depends on: a job's result
//! is an [`AsyncResult`] (set from the pool thread, waited on like any
//! other, and so also one of the things [`wait_any`](crate::wait_any()) takes), and it needs no
//! descriptor. The I/O layer uses it in turn, to resolve names off the hub.
//!
//! ```
//! use greenlet::threadpool::spawn_blocking;
//! // Runs on a pool thread; the greenlet (here the root) waits without blocking the hub.
//! let sum = spawn_blocking(|| (1..=100u64).sum::<u64>()).join().unwrap();
//! assert_eq!(sum, 5050);
//! ```

use crate::error::JoinError;
use crate::event::AsyncResult;
use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

/// How many threads a hub's default pool has (gevent's default).
pub const DEFAULT_POOL_SIZE: usize = 10;

type Job = Box<dyn FnOnce() + Send>;

/// A pool of OS threads owned by the current thread's hub; `!Send`. Jobs beyond the number of
/// threads wait in a FIFO queue. Dropping the pool lets its threads finish the queued jobs and
/// exit.
///
/// ```
/// use greenlet::threadpool::ThreadPool;
/// let pool = ThreadPool::new(2).unwrap();
/// let tasks: Vec<_> = (0..4).map(|i| pool.spawn(move || i * 2)).collect();
/// let out: Vec<i32> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
/// assert_eq!(out, [0, 2, 4, 6]);
/// ```
pub struct ThreadPool {
    tx: Option<Sender<Job>>,
    size: usize,
    _not_send: PhantomData<*const ()>,
}

impl ThreadPool {
    /// A pool of `size` threads (at least 1).
    ///
    /// # Errors
    /// If the OS refuses to create a thread.
    ///
    /// ```
    /// let pool = greenlet::threadpool::ThreadPool::new(4).unwrap();
    /// assert_eq!(pool.size(), 4);
    /// ```
    pub fn new(size: usize) -> std::io::Result<ThreadPool> {
        let size = size.max(1);
        let (tx, rx) = mpsc::channel::<Job>();
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..size {
            let rx: Arc<Mutex<Receiver<Job>>> = rx.clone();
            thread::Builder::new()
                .name(format!("greenlet-pool-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            Ok(job) => job(),
                            Err(_) => return, // the pool was dropped
                        }
                    }
                })?;
        }
        Ok(ThreadPool {
            tx: Some(tx),
            size,
            _not_send: PhantomData,
        })
    }

    /// The number of threads.
    ///
    /// ```
    /// assert_eq!(greenlet::threadpool::ThreadPool::new(1).unwrap().size(), 1);
    /// ```
    pub fn size(&self) -> usize {
        self.size
    }

    /// Run `f` on a pool thread. The returned task is waited for cooperatively.
    ///
    /// ```
    /// let pool = greenlet::threadpool::ThreadPool::new(1).unwrap();
    /// let t = pool.spawn(|| std::thread::current().name().map(String::from));
    /// assert_eq!(t.join().unwrap().as_deref(), Some("greenlet-pool-0"));
    /// ```
    pub fn spawn<F, T>(&self, f: F) -> BlockingTask<T>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let done: AsyncResult<()> = AsyncResult::new();
        let setter = done.setter();
        let slot: Arc<Mutex<Option<thread::Result<T>>>> = Arc::new(Mutex::new(None));
        let s = slot.clone();
        let job: Job = Box::new(move || {
            let r = panic::catch_unwind(AssertUnwindSafe(f));
            *s.lock().unwrap_or_else(|e| e.into_inner()) = Some(r);
            setter.set(());
        });
        self.tx
            .as_ref()
            .expect("pool is alive")
            .send(job)
            .expect("pool threads exit only when the pool is dropped");
        BlockingTask {
            done,
            slot,
            _not_send: PhantomData,
        }
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // Closing the channel lets every thread finish the queued jobs and exit.
        self.tx.take();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadPool")
            .field("size", &self.size)
            .finish()
    }
}

/// A job running on a [`ThreadPool`]; `!Send`.
///
/// ```
/// let t = greenlet::threadpool::spawn_blocking(|| 1 + 1);
/// assert_eq!(t.join().unwrap(), 2);
/// ```
pub struct BlockingTask<T> {
    done: AsyncResult<()>,
    slot: Arc<Mutex<Option<thread::Result<T>>>>,
    _not_send: PhantomData<*const ()>,
}

impl<T> BlockingTask<T> {
    /// Whether the job has finished.
    ///
    /// ```
    /// let t = greenlet::threadpool::spawn_blocking(|| ());
    /// t.wait(None).unwrap();
    /// assert!(t.is_done());
    /// ```
    pub fn is_done(&self) -> bool {
        self.done.is_ready()
    }

    /// What tells that the job is done (see `wait_any`).
    pub(crate) fn done_result(&self) -> &AsyncResult<()> {
        &self.done
    }

    /// Wait (at most `timeout`) for the job to finish; returns whether it did.
    ///
    /// ```
    /// use std::time::Duration;
    /// let (go, wait_for_go) = std::sync::mpsc::channel::<()>();
    /// let t = greenlet::threadpool::spawn_blocking(move || wait_for_go.recv());
    /// assert!(!t.wait(Some(Duration::from_millis(1))).unwrap());
    /// go.send(()).unwrap();
    /// assert!(t.wait(None).unwrap());
    /// ```
    pub fn wait(&self, timeout: Option<Duration>) -> crate::Result<bool> {
        self.done.wait(timeout)
    }

    /// Wait for the job and return its value; a panic in the job is returned as
    /// [`JoinError::Panicked`].
    ///
    /// ```
    /// let t = greenlet::threadpool::spawn_blocking(|| -> u8 { panic!("in a pool thread") });
    /// assert_eq!(t.join().unwrap_err().panic_message(), Some("in a pool thread"));
    /// ```
    pub fn join(self) -> Result<T, JoinError> {
        match self.done.wait(None) {
            Ok(true) => {}
            Ok(false) => return Err(JoinError::Wait(crate::Error::WouldBlockForever)),
            Err(e) => return Err(JoinError::Wait(e)),
        }
        let r = self
            .slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .expect("a finished job stored its result");
        r.map_err(JoinError::Panicked)
    }
}

impl<T> fmt::Debug for BlockingTask<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BlockingTask")
            .field("done", &self.is_done())
            .finish()
    }
}

thread_local! {
    static DEFAULT_POOL: RefCell<Option<Rc<ThreadPool>>> = const { RefCell::new(None) };
}

/// The current thread's default pool ([`DEFAULT_POOL_SIZE`] threads), created on first use.
///
/// # Panics
/// If the OS refuses to create the pool's threads.
///
/// ```
/// assert_eq!(greenlet::threadpool::default_pool().size(), greenlet::threadpool::DEFAULT_POOL_SIZE);
/// ```
pub fn default_pool() -> Rc<ThreadPool> {
    DEFAULT_POOL.with(|p| {
        p.borrow_mut()
            .get_or_insert_with(|| {
                Rc::new(
                    ThreadPool::new(DEFAULT_POOL_SIZE)
                        .unwrap_or_else(|e| panic!("cannot start the thread pool: {e}")),
                )
            })
            .clone()
    })
}

/// Run `f` on the current thread's default pool.
///
/// ```
/// let t = greenlet::threadpool::spawn_blocking(|| "off the hub");
/// assert_eq!(t.join().unwrap(), "off the hub");
/// ```
pub fn spawn_blocking<F, T>(f: F) -> BlockingTask<T>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    default_pool().spawn(f)
}
