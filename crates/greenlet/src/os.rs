//! Process-level operations that must know about the hub (gevent's `gevent.os`): [`fork`].

use std::io;

/// Which side of a [`fork`] the caller is on.
///
/// ```
/// use greenlet::os::ForkResult;
/// assert_ne!(ForkResult::Child, ForkResult::Parent { child: 42 });
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ForkResult {
    /// The original process; `child` is the new process's id (to wait for it with
    /// `waitpid`, or [`process`](https://docs.rs/gevent-io)-style child watching).
    Parent {
        /// The child's process id.
        child: libc::pid_t,
    },
    /// The new process.
    Child,
}

/// Fork the process (gevent's `gevent.os.fork`), leaving the calling thread's hub usable in
/// the child.
///
/// Both processes return from `fork` in the calling greenlet, with every greenlet of the
/// calling thread as it was: in the child they go on running on the child's copy of the hub.
/// In the child, before `fork` returns:
///
/// * the hub's loop is told of the fork (libev's `ev_loop_fork`,
///   [`Loop::reinit_after_fork`](ev_loop::Loop::reinit_after_fork)), so that its next
///   iteration gets a kernel state of its own (an epoll descriptor shared with the parent
///   would deliver each process the other's events) and re-arms every watcher: sockets,
///   timers and waits keep working;
/// * the thread's default pool ([`spawn_blocking`](crate::threadpool::spawn_blocking)) is
///   forgotten: its threads were not copied, so the child's first `spawn_blocking` starts a
///   new pool. Its pending tasks never finish in the child;
/// * the registry of hubs that [`all_hubs_run_info`](crate::monitor::all_hubs_run_info)
///   asks keeps only the calling thread's.
///
/// Only the calling thread exists in the child: the hubs and greenlets of other threads are
/// gone (their memory is still there, never to run again), as are [`ThreadPool`]s' threads
/// (a pool created with [`ThreadPool::new`](crate::threadpool::ThreadPool::new) is unusable in
/// the child) and blocking monitor threads. As after any `fork` in a threaded process, the
/// child should only use what the calling thread owns, or `exec`. A child that does not want
/// to run the parent's destructors and exit handlers ends with `libc::_exit`.
///
/// [`ThreadPool`]: crate::threadpool::ThreadPool
///
/// # Errors
/// The error of `fork(2)` (`EAGAIN`, `ENOMEM`), in the parent; no child exists then.
///
/// ```
/// use greenlet::os::{ForkResult, fork};
/// use std::time::Duration;
///
/// match fork().unwrap() {
///     ForkResult::Child => {
///         // The child's hub runs timers and the thread pool as before.
///         greenlet::sleep(Duration::from_millis(1)).unwrap();
///         let ok = greenlet::threadpool::spawn_blocking(|| 2 + 2).join().unwrap() == 4;
///         // SAFETY: `_exit` ends the child without running the parent's exit handlers.
///         unsafe { libc::_exit(if ok { 0 } else { 1 }) }
///     }
///     ForkResult::Parent { child } => {
///         let mut status = 0;
///         // SAFETY: waiting for our own child, with a valid status pointer.
///         assert_eq!(unsafe { libc::waitpid(child, &mut status, 0) }, child);
///         assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0);
///     }
/// }
/// ```
pub fn fork() -> io::Result<ForkResult> {
    // SAFETY: fork has no memory-safety preconditions of its own; in the child only this
    // thread exists, and the code below touches only what this thread owns (its hub and its
    // thread-locals).
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            after_fork_in_child();
            Ok(ForkResult::Child)
        }
        child => Ok(ForkResult::Parent { child }),
    }
}

fn after_fork_in_child() {
    if let Some(h) = crate::hub::try_hub() {
        h.lp.reinit_after_fork();
    }
    crate::threadpool::forget_default_pool_after_fork();
    crate::monitor::HubRegistration::keep_only_current_thread_after_fork();
}
