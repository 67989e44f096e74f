//! Greenlet stacks: guard-paged stacks from the `context` crate, reused through a per-thread pool
//! so that spawning in steady state does not call `mmap`.

use context::stack::{ProtectedFixedSizeStack, Stack};
use std::cell::RefCell;

/// The default stack size of a greenlet: 256 KiB of address space plus a guard page. Only the
/// pages a greenlet actually touches become resident.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How many free stacks of each size a thread keeps for reuse.
const POOL_LIMIT: usize = 16 * 1024;

thread_local! {
    static POOL: RefCell<Vec<(usize, ProtectedFixedSizeStack)>> = const { RefCell::new(Vec::new()) };
}

/// A stack owned by one greenlet; returned to the pool when dropped.
pub(crate) struct GreenletStack {
    size: usize,
    stack: Option<ProtectedFixedSizeStack>,
}

impl GreenletStack {
    /// A stack of at least `size` bytes: from the pool when one of that size is free.
    pub(crate) fn new(size: usize) -> Result<GreenletStack, String> {
        let size = size.max(Stack::min_size()).min(Stack::max_size());
        let reused = POOL
            .try_with(|p| {
                let mut pool = p.borrow_mut();
                let idx = pool.iter().rposition(|(n, _)| *n == size)?;
                Some(pool.swap_remove(idx).1)
            })
            .ok()
            .flatten();
        let stack = match reused {
            Some(s) => s,
            None => ProtectedFixedSizeStack::new(size).map_err(|e| {
                format!(
                    "no stack of {size} bytes could be allocated ({e}); with many greenlets \
                     alive, raise vm.max_map_count (each guard-paged stack needs two mappings) \
                     or use smaller stacks via Builder::stack_size"
                )
            })?,
        };
        Ok(GreenletStack {
            size,
            stack: Some(stack),
        })
    }

    pub(crate) fn stack(&self) -> &Stack {
        self.stack.as_ref().expect("stack present until drop")
    }

    /// The lowest usable address and the guard page below it, for overflow reports.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        let s = self.stack();
        (s.bottom() as usize, s.top() as usize)
    }
}

pub(crate) fn page_size() -> usize {
    // SAFETY: sysconf has no preconditions.
    let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    if p > 0 { p as usize } else { 4096 }
}

impl Drop for GreenletStack {
    fn drop(&mut self) {
        if let Some(s) = self.stack.take() {
            // During thread teardown the pool may be gone already; then the stack is unmapped.
            let _ = POOL.try_with(|p| {
                let mut pool = p.borrow_mut();
                if pool.len() < POOL_LIMIT {
                    pool.push((self.size, s));
                }
            });
        }
    }
}

/// How many free stacks this thread's pool holds (for tests and introspection).
pub(crate) fn pooled() -> usize {
    POOL.try_with(|p| p.borrow().len()).unwrap_or(0)
}
