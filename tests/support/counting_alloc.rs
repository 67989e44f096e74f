//! A global allocator that counts, per request size, how many blocks are live: what a test
//! alone in its binary uses to find the heap one more connection holds (the allocator counts
//! every thread's allocations).

// Each test binary uses what it needs of it.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

/// Request sizes are counted in 8-byte classes up to this; bigger ones share the last class.
const CLASSES: usize = 1024;

/// The system allocator, counting.
pub(crate) struct Counting;

static LIVE: [AtomicIsize; CLASSES] = [const { AtomicIsize::new(0) }; CLASSES];

fn class(size: usize) -> usize {
    (size.div_ceil(8)).min(CLASSES - 1)
}

// SAFETY: every call is passed to the system allocator unchanged; the counters beside it
// allocate nothing.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's layout contract is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE[class(layout.size())].fetch_add(1, Ordering::Relaxed);
        // SAFETY: as in `alloc`.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE[class(layout.size())].fetch_sub(1, Ordering::Relaxed);
        LIVE[class(new_size)].fetch_add(1, Ordering::Relaxed);
        // SAFETY: `ptr` came from `alloc` with `layout`; the caller checked `new_size`.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// How many blocks of each size class are live now.
pub(crate) fn snapshot() -> Vec<isize> {
    LIVE.iter().map(|c| c.load(Ordering::Relaxed)).collect()
}

/// What `n` more connections added between two snapshots, per connection.
#[derive(Debug)]
pub(crate) struct PerConnection {
    /// Blocks, and the bytes requested for them.
    pub(crate) blocks: f64,
    pub(crate) bytes: f64,
    /// The bytes of glibc's chunks for them: each request plus an 8-byte header, in 16-byte
    /// steps, at least 32.
    pub(crate) malloc_bytes: f64,
    /// Blocks of at least 1 KiB.
    pub(crate) large_blocks: f64,
    /// One line per size class: how many blocks of that size.
    pub(crate) lines: Vec<String>,
}

impl PerConnection {
    /// The difference from `before` to `after` over `n` connections, the classes `skip`
    /// picks (by size) left out.
    pub(crate) fn between(
        before: &[isize],
        after: &[isize],
        n: usize,
        skip: impl Fn(usize) -> bool,
    ) -> Self {
        let mut p = PerConnection {
            blocks: 0.0,
            bytes: 0.0,
            malloc_bytes: 0.0,
            large_blocks: 0.0,
            lines: Vec::new(),
        };
        for (c, (a, b)) in after.iter().zip(before).enumerate() {
            let per = (a - b) as f64 / n as f64;
            let size = c * 8;
            if skip(size) || per.abs() < 0.05 {
                continue;
            }
            let chunk = ((size + 8).div_ceil(16) * 16).max(32) as f64;
            p.blocks += per;
            p.bytes += per * size as f64;
            p.malloc_bytes += per * chunk;
            if size >= 1024 {
                p.large_blocks += per;
            }
            p.lines.push(format!("  {per:6.2} x {size:5} B"));
        }
        p
    }
}
