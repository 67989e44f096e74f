//! Greenlet stacks, in two modes (see [`StackMode`]):
//!
//! * [`StackMode::GuardPage`] (the default): each stack is its own mapping from the `context`
//!   crate with an inaccessible guard page below it, so an overflow faults at once and is
//!   reported with the greenlet's name. Guard pages split mappings, so with Linux's default
//!   `vm.max_map_count` (65530) only some tens of thousands can exist at once.
//! * [`StackMode::Canary`] (opt-in): stacks are carved from large shared mappings (one mapping
//!   per 4096 stacks), reserved with `MAP_NORESERVE` so only touched pages become resident
//!   (each stack's canary shares a page with the top of the stack below it, so a parked
//!   greenlet with shallow frames costs one page). The lowest word of each stack holds a canary that is checked every time the greenlet switches
//!   out; a smashed canary is reported with the greenlet's name and the process aborts (never
//!   silent corruption, but the overflow may already have damaged the neighbouring stack).
//!   This mode reaches a million parked greenlets.
//!
//! Both kinds are reused through a per-thread pool, so spawning in steady state does not map
//! memory.
//!
//! ```
//! use greenlet::{Builder, StackMode};
//! let g = Builder::new().stack_mode(StackMode::Canary).spawn(|| 7).unwrap();
//! assert_eq!(g.join().unwrap(), 7);
//! ```

use context::stack::{ProtectedFixedSizeStack, Stack};
use std::cell::{Cell, RefCell};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The default stack size of a greenlet: 256 KiB of address space (plus a guard page in
/// [`StackMode::GuardPage`]). Only the pages a greenlet actually touches become resident.
pub const DEFAULT_STACK_SIZE: usize = 256 * 1024;

/// How many free stacks a thread keeps for reuse.
const POOL_LIMIT: usize = 16 * 1024;

/// Stacks per shared mapping in [`StackMode::Canary`].
const ARENA_SLOTS: usize = 4096;

/// How far below a page boundary each canary-mode slot ends (and the next one, with its canary
/// word, begins).
const CANARY_SHIFT: usize = 64;

/// The lowest address of slot `index` of an arena at `base` with slots of `size` bytes (a
/// multiple of the page size).
///
/// Slots are contiguous, and each one ends `CANARY_SHIFT` bytes below a page boundary. So the
/// page holding the top of slot `i` — where its greenlet's first frames live, the page every
/// started greenlet touches anyway — also holds the canary word of slot `i + 1`. A parked
/// greenlet with shallow frames then costs one resident page, not two (its top page and a
/// page of its own just for the canary).
fn slot_bottom(base: usize, size: usize, index: usize) -> usize {
    base + page_size() - CANARY_SHIFT + index * size
}

/// Guard-paged stacks mapped by the process, in use or pooled (two memory mappings each).
static GUARDED_MAPPED: AtomicUsize = AtomicUsize::new(0);

/// `vm.max_map_count`, read once (Linux's default when it cannot be read).
fn max_map_count() -> usize {
    static MAX: OnceLock<usize> = OnceLock::new();
    *MAX.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/vm/max_map_count")
            .ok()
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(65530)
    })
}

/// How many guard-paged stacks the process may map. An eighth of `vm.max_map_count` (at least
/// 4096 mappings) is left to everything else: if stacks took every mapping, the next `malloc`
/// that needs one (a growing `Vec`, a new thread) would fail and abort the process, where a
/// refused spawn is an error the caller can handle.
pub(crate) fn guarded_stack_limit() -> usize {
    let max = max_map_count();
    max.saturating_sub((max / 8).max(4096)) / 2
}

/// A guard-paged stack, counted in `GUARDED_MAPPED` while it is mapped.
struct Guarded(ProtectedFixedSizeStack);

/// A free guard-paged stack in the pool.
struct Pooled {
    size: usize,
    stack: Guarded,
    /// Its pages were given back since it came to the pool ([`trim_pooled`]).
    trimmed: bool,
}

impl Guarded {
    fn map(size: usize) -> Result<Guarded, String> {
        if GUARDED_MAPPED.load(Ordering::Relaxed) >= guarded_stack_limit() {
            return Err(format!(
                "{} guard-paged stacks are mapped, the most vm.max_map_count ({}) allows while \
                 leaving mappings for the rest of the process",
                GUARDED_MAPPED.load(Ordering::Relaxed),
                max_map_count()
            ));
        }
        let s = ProtectedFixedSizeStack::new(size).map_err(|e| e.to_string())?;
        GUARDED_MAPPED.fetch_add(1, Ordering::Relaxed);
        Ok(Guarded(s))
    }
}

impl Drop for Guarded {
    fn drop(&mut self) {
        GUARDED_MAPPED.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The canary word at the bottom of every canary-mode stack.
const CANARY: u64 = 0x6772_6565_6e6c_6574; // "greenlet"

/// How greenlet stacks are allocated (see the module docs of `stack`; the default is `GuardPage`).
///
/// ```
/// assert_eq!(greenlet::StackMode::default(), greenlet::StackMode::GuardPage);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum StackMode {
    /// One mapping per stack with a guard page: overflows fault immediately.
    #[default]
    GuardPage,
    /// Slots of shared mappings with a canary checked at every switch out: scales to millions.
    Canary,
}

thread_local! {
    static GUARDED_POOL: RefCell<Vec<Pooled>> = const { RefCell::new(Vec::new()) };
    static ARENAS: RefCell<Vec<Arena>> = const { RefCell::new(Vec::new()) };
    static DEFAULT_MODE: Cell<StackMode> = const { Cell::new(StackMode::GuardPage) };
}

/// Choose the stack mode that greenlets spawned on this thread use unless their [`Builder`]
/// says otherwise.
///
/// [`Builder`]: crate::Builder
///
/// ```
/// use greenlet::{set_default_stack_mode, StackMode};
/// set_default_stack_mode(StackMode::Canary);
/// assert_eq!(greenlet::spawn(|| 1).join().unwrap(), 1);
/// set_default_stack_mode(StackMode::GuardPage);
/// ```
pub fn set_default_stack_mode(mode: StackMode) {
    DEFAULT_MODE.with(|m| m.set(mode));
}

pub(crate) fn default_stack_mode() -> StackMode {
    DEFAULT_MODE.with(|m| m.get())
}

/// One shared mapping, carved into equal slots.
struct Arena {
    base: usize,
    slot_size: usize,
    free: Vec<usize>,
    /// Each slot's state: [`SLOT_IN_USE`], [`SLOT_FREE`], or [`SLOT_TRIMMED`] (free, and its
    /// pages given back since).
    state: Vec<u8>,
}

const SLOT_IN_USE: u8 = 0;
const SLOT_FREE: u8 = 1;
const SLOT_TRIMMED: u8 = 2;

impl Arena {
    fn new(slot_size: usize) -> Result<Arena, String> {
        // One page more than the slots: they start `CANARY_SHIFT` into the mapping (see
        // `slot_bottom`).
        let len = slot_size * ARENA_SLOTS + page_size();
        // SAFETY: an anonymous private mapping with no address hint; checked for failure.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_NORESERVE,
                -1,
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(format!(
                "cannot reserve {len} bytes for canary-mode stacks: {}",
                std::io::Error::last_os_error()
            ));
        }
        Ok(Arena {
            base: p as usize,
            slot_size,
            free: (0..ARENA_SLOTS).rev().collect(),
            // Never used: nothing of them is resident.
            state: vec![SLOT_TRIMMED; ARENA_SLOTS],
        })
    }
}

enum Kind {
    Guarded(Guarded),
    Slot {
        /// The `context` view of the slot (plain pointers). Its arena's base follows from its
        /// bottom, its index and its size (see `arena_base`).
        stack: Stack,
        index: u32,
    },
}

/// A stack owned by one greenlet; returned to the pool when dropped. Kept small: every
/// greenlet's record holds one.
pub(crate) struct GreenletStack {
    /// The usable size (whole pages; `round_to_pages` keeps it below 4 GiB).
    size: u32,
    /// valgrind's id for this stack (see `crate::valgrind`; meaningless outside valgrind;
    /// valgrind numbers its stacks with C `unsigned`s).
    valgrind_id: u32,
    kind: Option<Kind>,
}

/// The base of the arena that holds the slot `index` of `size` bytes whose bottom is `bottom`
/// (the inverse of `slot_bottom`).
fn arena_base(bottom: usize, size: usize, index: usize) -> usize {
    bottom + CANARY_SHIFT - page_size() - index * size
}

fn round_to_pages(size: usize) -> usize {
    let page = page_size();
    size.max(Stack::min_size())
        .min(Stack::max_size())
        .min(u32::MAX as usize - page)
        .div_ceil(page)
        * page
}

impl GreenletStack {
    /// A stack of at least `size` bytes in `mode`: from the pool when one is free.
    pub(crate) fn new(size: usize, mode: StackMode) -> Result<GreenletStack, String> {
        let size = round_to_pages(size);
        let kind = match mode {
            StackMode::GuardPage => Kind::Guarded(Self::guarded(size)?),
            StackMode::Canary => Self::slot(size)?,
        };
        let mut stack = GreenletStack {
            size: size as u32,
            valgrind_id: 0,
            kind: Some(kind),
        };
        let (lo, hi) = stack.bounds();
        stack.valgrind_id = crate::valgrind::stack_register(lo, hi) as u32;
        Ok(stack)
    }

    fn guarded(size: usize) -> Result<Guarded, String> {
        let reused = GUARDED_POOL
            .try_with(|p| {
                let mut pool = p.borrow_mut();
                let idx = pool.iter().rposition(|p| p.size == size)?;
                Some(pool.swap_remove(idx).stack)
            })
            .ok()
            .flatten();
        if let Some(s) = reused {
            return Ok(s);
        }
        Guarded::map(size)
            .or_else(|_| {
                // Pooled stacks of other sizes hold mappings too: give them back and retry.
                let freed = GUARDED_POOL
                    .try_with(|p| std::mem::take(&mut *p.borrow_mut()).len())
                    .unwrap_or(0);
                log::debug!("unmapped {freed} pooled stacks to make room for a new one");
                Guarded::map(size)
            })
            .map_err(|e| {
                format!(
                    "no guard-paged stack of {size} bytes could be allocated: {e}. Each \
                     guard-paged stack needs two memory mappings, and vm.max_map_count limits \
                     how many exist at once: raise it, or switch to canary stacks carved from \
                     shared mappings with Builder::stack_mode(StackMode::Canary) or \
                     greenlet::set_default_stack_mode(StackMode::Canary)"
                )
            })
    }

    fn slot(size: usize) -> Result<Kind, String> {
        ARENAS
            .try_with(|arenas| {
                let mut arenas = arenas.borrow_mut();
                let found = arenas
                    .iter_mut()
                    .find(|a| a.slot_size == size && !a.free.is_empty());
                let arena = match found {
                    Some(a) => a,
                    None => {
                        arenas.push(Arena::new(size)?);
                        arenas.last_mut().expect("just pushed")
                    }
                };
                let index = arena.free.pop().expect("a free slot");
                arena.state[index] = SLOT_IN_USE;
                let bottom = slot_bottom(arena.base, size, index);
                let top = bottom + size;
                // SAFETY: the slot [bottom, top) lies inside our read-write mapping and belongs
                // to this stack alone until it is returned to the free list.
                unsafe { (bottom as *mut u64).write(CANARY) };
                Ok(Kind::Slot {
                    // SAFETY: top > bottom, both inside one mapping that outlives the stack
                    // (arenas are never unmapped while the thread lives).
                    stack: unsafe { Stack::new(top as *mut _, bottom as *mut _) },
                    index: index as u32,
                })
            })
            .map_err(|_| "the thread is shutting down".to_string())?
    }

    pub(crate) fn stack(&self) -> &Stack {
        match self.kind.as_ref().expect("stack present until drop") {
            Kind::Guarded(s) => &s.0,
            Kind::Slot { stack, .. } => stack,
        }
    }

    /// The lowest usable address and the top of the stack.
    pub(crate) fn bounds(&self) -> (usize, usize) {
        let s = self.stack();
        (s.bottom() as usize, s.top() as usize)
    }

    /// The top of the guard page below the stack (the stack's lowest address); 0 for canary
    /// stacks, which have none.
    pub(crate) fn guard_top(&self) -> usize {
        match self.kind.as_ref() {
            Some(Kind::Guarded(_)) => self.bounds().0,
            _ => 0,
        }
    }

    /// The address of the canary word, for canary stacks.
    pub(crate) fn canary(&self) -> Option<usize> {
        match self.kind.as_ref() {
            Some(Kind::Slot { .. }) => Some(self.bounds().0),
            _ => None,
        }
    }
}

/// Whether the canary at `addr` is intact.
///
/// # Safety
/// `addr` must be the canary word of a live canary-mode stack.
pub(crate) unsafe fn canary_intact(addr: usize) -> bool {
    // SAFETY: guaranteed by the caller; volatile so the check is never optimised away.
    unsafe { std::ptr::read_volatile(addr as *const u64) == CANARY }
}

/// How far below the frame of [`trim_stack`] the stack is left as it is: room for the frames
/// of the system call it makes (a few words) and for a signal handler's, with a wide margin.
const TRIM_MARGIN: usize = 1024;

/// Give back to the system the pages of the calling greenlet's stack below the frame it runs
/// in, which nothing uses until the stack grows down again (then they come back zero-filled,
/// one page fault each). A greenlet that once went deep (a TLS handshake, a large parse, a
/// recursive call) and then waits long with shallow frames (an idle keep-alive connection)
/// otherwise holds every page it ever touched: only the pages above its frames stay
/// resident after this. Python's greenlet gets the same by copying each stack's used part
/// aside when it switches out; here it is asked for where it pays, since it is one
/// `madvise(MADV_DONTNEED)` system call.
///
/// Returns how many bytes of the stack were given back, resident or not: 0 outside a spawned
/// greenlet (the thread's own stack is left to the system), or when the frames already reach
/// the lowest page the greenlet owns.
///
/// ```
/// fn deep(n: usize) -> u8 {
///     let buf = std::hint::black_box([n as u8; 1024]);
///     if n == 0 { buf[0] } else { deep(n - 1).wrapping_add(buf[n % 1024]) }
/// }
/// let g = greenlet::spawn(|| {
///     deep(64); // 64 KiB of frames, then back up
///     greenlet::trim_stack()
/// });
/// assert!(g.join().unwrap() >= 64 * 1024);
/// assert_eq!(greenlet::trim_stack(), 0); // the thread's own stack
/// ```
#[inline(never)]
pub fn trim_stack() -> usize {
    let Some((floor, canary)) = crate::hub::current_stack_floor() else {
        return 0;
    };
    let probe = 0u8;
    let here = std::hint::black_box(&probe) as *const u8 as usize;
    // SAFETY: the stack from `floor` up is the running greenlet's own, and below this
    // function's frame by more than the margin no frame is live: nothing points into a
    // greenlet's stack below its running frame.
    unsafe { release_below(floor, canary, here.saturating_sub(TRIM_MARGIN)) }
}

/// Give back the whole pages of a stack whose lowest address is `floor` (a canary-mode one's
/// if `canary`) that lie below `below`: one `madvise(MADV_DONTNEED)`, which only makes the
/// pages read as zero when touched again (the mapping stays as it was). Returns the bytes.
///
/// # Safety
/// The stack must be a greenlet stack this thread owns, and nothing in it below `below` may
/// be in use or pointed to.
pub(crate) unsafe fn release_below(floor: usize, canary: bool, below: usize) -> usize {
    let page = page_size();
    // A canary-mode stack's lowest page holds its canary word and the top of the stack below
    // it: what is given back starts at the first page that is this stack's alone.
    let start = if canary {
        (floor + 8).next_multiple_of(page)
    } else {
        floor
    };
    let end = below / page * page;
    if end <= start {
        return 0;
    }
    // SAFETY: [start, end) is whole pages of the stack (above its guard page or its canary's
    // page, so no other stack's), which the caller says nothing uses.
    let r = unsafe { libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED) };
    if r == 0 { end - start } else { 0 }
}

/// Give back the pages of this thread's free stacks that were not given back since they were
/// freed: the pooled guard-paged stacks whole, the free canary-mode slots but for the pages
/// they share with their neighbours (the lowest holds the slot's canary and the top of the
/// slot below; the highest the canary of the slot above). Nothing runs on a free stack, so
/// none of it is in use. Returns the bytes.
pub(crate) fn trim_pooled() -> usize {
    let guarded = GUARDED_POOL
        .try_with(|p| {
            let mut total = 0;
            for pooled in p.borrow_mut().iter_mut().filter(|p| !p.trimmed) {
                pooled.trimmed = true;
                let (bottom, top) = (
                    pooled.stack.0.bottom() as usize,
                    pooled.stack.0.top() as usize,
                );
                // SAFETY: a pooled stack is this thread's and no greenlet runs on it: nothing
                // of it is in use.
                total += unsafe { release_below(bottom, false, top) };
            }
            total
        })
        .unwrap_or(0);
    let slots = ARENAS
        .try_with(|arenas| {
            let mut total = 0;
            for a in arenas.borrow_mut().iter_mut() {
                // The free list: a byte looked at per free slot, a system call per one freed
                // since the last call.
                for &index in &a.free {
                    if a.state[index] != SLOT_FREE {
                        continue;
                    }
                    a.state[index] = SLOT_TRIMMED;
                    let bottom = slot_bottom(a.base, a.slot_size, index);
                    // SAFETY: a free slot is this thread's and no greenlet runs on it; what is
                    // given back starts above the page of its canary (`release_below` with
                    // `canary`) and ends below the page that holds the next slot's canary.
                    total += unsafe { release_below(bottom, true, bottom + a.slot_size) };
                }
            }
            total
        })
        .unwrap_or(0);
    guarded + slots
}

pub(crate) fn page_size() -> usize {
    static PAGE: OnceLock<usize> = OnceLock::new();
    *PAGE.get_or_init(|| {
        // SAFETY: sysconf has no preconditions.
        let p = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
        if p > 0 { p as usize } else { 4096 }
    })
}

impl Drop for GreenletStack {
    fn drop(&mut self) {
        crate::valgrind::stack_deregister(self.valgrind_id as usize);
        match self.kind.take() {
            Some(Kind::Guarded(s)) => {
                // During thread teardown the pool may be gone already; then it is unmapped.
                let _ = GUARDED_POOL.try_with(|p| {
                    let mut pool = p.borrow_mut();
                    if pool.len() < POOL_LIMIT {
                        pool.push(Pooled {
                            size: self.size as usize,
                            stack: s,
                            trimmed: false,
                        });
                    }
                });
            }
            Some(Kind::Slot { stack, index }) => {
                let index = index as usize;
                let arena_base = arena_base(stack.bottom() as usize, self.size as usize, index);
                let _ = ARENAS.try_with(|arenas| {
                    if let Some(a) = arenas
                        .borrow_mut()
                        .iter_mut()
                        .find(|a| a.base == arena_base)
                    {
                        a.free.push(index);
                        a.state[index] = SLOT_FREE;
                    }
                });
            }
            None => {}
        }
    }
}

/// How many free guard-paged stacks this thread's pool holds (for tests and introspection).
pub(crate) fn pooled() -> usize {
    GUARDED_POOL.try_with(|p| p.borrow().len()).unwrap_or(0)
}
