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
use std::collections::VecDeque;
use std::fmt;
use std::marker::PhantomData;
use std::panic::{self, AssertUnwindSafe};
use std::rc::Rc;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread;
use std::time::Duration;

/// How many threads a hub's default pool has (gevent's default).
pub const DEFAULT_POOL_SIZE: usize = 10;

type Job = Box<dyn FnOnce() + Send>;

/// What the pool's threads share: the queue, how many threads there should be and are.
struct State {
    queue: VecDeque<Job>,
    /// The size asked for (at least 1).
    target: usize,
    /// Threads alive (a thread beyond `target` exits when it is between jobs).
    threads: usize,
    /// Names the next thread.
    next_id: usize,
    /// The pool was dropped: threads exit once the queue is empty.
    closed: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// One pool thread: takes queued jobs in order; leaves when there are more threads than
    /// asked for (only between jobs, never dropping one), or when the pool is gone and the
    /// queue is empty.
    fn work(&self) {
        let mut st = self.lock();
        loop {
            if st.threads > st.target {
                st.threads -= 1;
                if !st.queue.is_empty() {
                    // A wake-up meant for a job may have reached this thread: pass it on.
                    self.work.notify_one();
                }
                return;
            }
            if let Some(job) = st.queue.pop_front() {
                drop(st);
                job();
                st = self.lock();
                continue;
            }
            if st.closed {
                st.threads -= 1;
                return;
            }
            st = self.work.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }
}

/// Start threads until `st.threads` reaches `st.target`.
fn grow(shared: &Arc<Shared>, st: &mut State) -> std::io::Result<()> {
    while st.threads < st.target {
        let id = st.next_id;
        let s = shared.clone();
        thread::Builder::new()
            .name(format!("greenlet-pool-{id}"))
            .spawn(move || s.work())?;
        st.next_id += 1;
        st.threads += 1;
    }
    Ok(())
}

/// A pool of OS threads owned by the current thread's hub; `!Send`. Jobs beyond the number of
/// threads wait in a FIFO queue. Dropping the pool lets its threads finish the queued jobs and
/// exit. Its size can change while it runs ([`resize`](ThreadPool::resize), gevent's
/// `maxsize`).
///
/// ```
/// use greenlet::threadpool::ThreadPool;
/// let pool = ThreadPool::new(2).unwrap();
/// let tasks: Vec<_> = (0..4).map(|i| pool.spawn(move || i * 2)).collect();
/// let out: Vec<i32> = tasks.into_iter().map(|t| t.join().unwrap()).collect();
/// assert_eq!(out, [0, 2, 4, 6]);
/// ```
pub struct ThreadPool {
    shared: Arc<Shared>,
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
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                target: size.max(1),
                threads: 0,
                next_id: 0,
                closed: false,
            }),
            work: Condvar::new(),
        });
        let pool = ThreadPool {
            shared,
            _not_send: PhantomData,
        };
        let mut st = pool.shared.lock();
        let started = grow(&pool.shared, &mut st);
        drop(st);
        // On an error, dropping `pool` lets the threads already started exit.
        started.map(|()| pool)
    }

    /// The number of threads asked for (by [`new`](ThreadPool::new) or the last
    /// [`resize`](ThreadPool::resize)); after a shrink, threads beyond it may still be
    /// finishing their jobs.
    ///
    /// ```
    /// assert_eq!(greenlet::threadpool::ThreadPool::new(1).unwrap().size(), 1);
    /// ```
    pub fn size(&self) -> usize {
        self.shared.lock().target
    }

    /// Change the number of threads to `size` (at least 1), gevent's `maxsize`. Growing starts
    /// the new threads at once (they take queued jobs right away); shrinking never drops or
    /// interrupts work: a thread beyond the new size exits only between jobs, after finishing
    /// the one it runs, and the queued jobs run on the threads that stay.
    ///
    /// # Errors
    /// If the OS refuses to create a thread (the pool keeps the threads it could start, and
    /// [`size`](ThreadPool::size) says the size asked for).
    ///
    /// ```
    /// let pool = greenlet::threadpool::ThreadPool::new(1).unwrap();
    /// pool.resize(3).unwrap();
    /// assert_eq!(pool.size(), 3);
    /// pool.resize(0).unwrap(); // at least one thread
    /// assert_eq!(pool.size(), 1);
    /// assert_eq!(pool.apply(|| 7).unwrap(), 7);
    /// ```
    pub fn resize(&self, size: usize) -> std::io::Result<()> {
        let mut st = self.shared.lock();
        st.target = size.max(1);
        let grown = grow(&self.shared, &mut st);
        drop(st);
        // Idle threads beyond the new size wake up to leave.
        self.shared.work.notify_all();
        grown
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
        self.shared.lock().queue.push_back(job);
        self.shared.work.notify_one();
        BlockingTask {
            done,
            slot,
            _not_send: PhantomData,
        }
    }

    /// Run `f` on a pool thread and wait (cooperatively) for its value: gevent's
    /// `ThreadPool.apply`. The same as `spawn(f).join()`.
    ///
    /// # Errors
    /// A panic in `f` as [`JoinError::Panicked`]; a failed wait (a kill unwinds the greenlet
    /// instead) as [`JoinError::Wait`], `f` still running.
    ///
    /// ```
    /// let pool = greenlet::threadpool::ThreadPool::new(2).unwrap();
    /// assert_eq!(pool.apply(|| 6 * 7).unwrap(), 42);
    /// ```
    pub fn apply<F, T>(&self, f: F) -> Result<T, JoinError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        self.spawn(f).join()
    }

    /// Run `f` on every item, spread over the pool's threads, and wait (cooperatively) for the
    /// results, returned in the order of `items` whatever order the jobs finish in: gevent's
    /// `ThreadPool.map`.
    ///
    /// # Errors
    /// The first failure in input order, as for [`apply`](ThreadPool::apply); jobs after it
    /// keep running to their end, unwaited.
    ///
    /// ```
    /// let pool = greenlet::threadpool::ThreadPool::new(3).unwrap();
    /// let squares = pool.map(|x: u32| x * x, 1..=5).unwrap();
    /// assert_eq!(squares, [1, 4, 9, 16, 25]);
    /// ```
    pub fn map<F, I, T>(
        &self,
        f: F,
        items: impl IntoIterator<Item = I>,
    ) -> Result<Vec<T>, JoinError>
    where
        F: Fn(I) -> T + Send + Sync + 'static,
        I: Send + 'static,
        T: Send + 'static,
    {
        let f = Arc::new(f);
        let tasks: Vec<BlockingTask<T>> = items
            .into_iter()
            .map(|item| {
                let f = f.clone();
                self.spawn(move || f(item))
            })
            .collect();
        tasks.into_iter().map(BlockingTask::join).collect()
    }
}

impl Drop for ThreadPool {
    fn drop(&mut self) {
        // Every thread finishes the queued jobs and exits.
        self.shared.lock().closed = true;
        self.shared.work.notify_all();
    }
}

impl fmt::Debug for ThreadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let st = self.shared.lock();
        f.debug_struct("ThreadPool")
            .field("size", &st.target)
            .field("threads", &st.threads)
            .field("queued", &st.queue.len())
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

/// In a child of `fork` (see [`os::fork`](crate::os::fork)): the default pool's threads were
/// not copied, so forget it (without dropping it: its lock may have been held by one of
/// those threads) and let the next use start a new one.
pub(crate) fn forget_default_pool_after_fork() {
    if let Ok(Some(old)) = DEFAULT_POOL.try_with(|p| p.borrow_mut().take()) {
        std::mem::forget(old);
    }
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
