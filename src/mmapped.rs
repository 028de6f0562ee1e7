//! Mmap'd chunks: requests of at least `mmap_threshold` bytes get a mapping
//! of their own, outside every arena, and go straight back to the kernel on
//! `free`. The chunk sits at the start of the mapping (`prev_size` holds any
//! gap before it, made by memalign), has IS_MMAPPED set and no neighbour.
//!
//! Unlike glibc, every such mapping is recorded (`registry`): `free` and
//! `realloc` of an mmap'd chunk whose mapping we did not make abort instead
//! of unmapping someone else's memory, and the heap dump lists them all.

use crate::check::misuse;
use crate::chunk::{Chunk, IS_MMAPPED, SIZE_SZ, align_up};
use crate::sys;
use crate::text::trace;
use crate::tunables::{self, DEFAULT_MMAP_THRESHOLD_MAX, MP};
use core::sync::atomic::Ordering::Relaxed;

/// Maps a chunk of at least `nb` bytes (a chunk size), or `None` when the
/// kernel refuses or `n_mmaps_max` is reached.
pub fn map_chunk(nb: usize) -> Option<Chunk> {
    if MP.n_mmaps.load(Relaxed) >= MP.n_mmaps_max.load(Relaxed) {
        return None;
    }
    let size = nb.checked_add(SIZE_SZ + sys::page_size() - 1)? & !(sys::page_size() - 1);
    trace(format_args!(
        "mmap {size:#x}  a chunk of its own for a {nb}-byte chunk (mmap threshold {})",
        tunables::mmap_threshold()
    ));
    let base = sys::map_rw(size)?;
    if !registry::insert(base as usize, size) {
        // No room to record it (out of memory): as if mmap had failed.
        // SAFETY: the mapping was made just above and is unused.
        unsafe { sys::unmap(base, size) };
        return None;
    }
    let p = Chunk::from_ptr(base);
    // SAFETY: the header lies at the start of the mapping we just made.
    unsafe {
        p.set_prev_size(0);
        p.set_head(size | IS_MMAPPED);
    }
    tunables::note_mmap(size);
    Some(p)
}

/// The mapping behind an mmap'd chunk, `(start, length)`, if the header
/// describes a mapping we made: page-aligned, with an aligned user pointer,
/// and recorded in the registry with that length.
///
/// # Safety
/// `p` must be a chunk with IS_MMAPPED whose header is readable.
unsafe fn mapping_of(p: Chunk) -> Option<(*mut u8, usize)> {
    // SAFETY: forwarded from the caller.
    let (gap, size) = unsafe { (p.prev_size(), p.size()) };
    let start = p.addr().wrapping_sub(gap);
    let len = gap.wrapping_add(size);
    let page_mask = sys::page_size() - 1;
    if (start | len) & page_mask != 0 || !crate::chunk::is_aligned(p.mem() as usize) {
        return None;
    }
    (registry::length_of(start) == Some(len)).then_some((start as *mut u8, len))
}

/// Whether `p` (IS_MMAPPED set, header readable) is an mmap'd chunk of ours.
pub fn is_ours(p: Chunk) -> bool {
    // SAFETY: the caller read the header already.
    unsafe { mapping_of(p) }.is_some()
}

/// Returns an mmap'd chunk to the kernel, first raising the dynamic mmap
/// threshold as glibc does: freeing a mapped chunk bigger than the threshold
/// (up to 32 MiB) shows that such sizes are used and reused, so they are
/// better served from the heap from now on.
///
/// # Safety
/// `p` must be a live mmap'd chunk made by `map_chunk` (or moved by
/// `remap_chunk`), given up by its user.
pub unsafe fn free_chunk(p: Chunk) {
    if !is_ours(p) {
        misuse("munmap_chunk(): invalid pointer");
        return;
    }
    // SAFETY: forwarded from the caller.
    let size = unsafe { p.size() };
    if MP.no_dyn_threshold.load(Relaxed) == 0
        && size > tunables::mmap_threshold()
        && size <= DEFAULT_MMAP_THRESHOLD_MAX
    {
        MP.mmap_threshold.store(size, Relaxed);
        MP.trim_threshold.store(2 * size, Relaxed);
        trace(format_args!(
            "mmap threshold raised to {size}, trim threshold to {}",
            2 * size
        ));
    }
    // SAFETY: forwarded from the caller.
    unsafe { unmap_chunk(p) }
}

/// Unmaps an mmap'd chunk without touching the threshold.
///
/// # Safety
/// As for `free_chunk`.
pub unsafe fn unmap_chunk(p: Chunk) {
    // SAFETY: forwarded from the caller.
    let Some((start, len)) = (unsafe { mapping_of(p) }) else {
        misuse("munmap_chunk(): invalid pointer");
        return;
    };
    trace(format_args!(
        "munmap {start:p} {len:#x}  free of an mmap'd chunk"
    ));
    tunables::note_munmap(len);
    registry::remove(start as usize);
    // SAFETY: the whole mapping belonged to this one chunk, now given up.
    unsafe { sys::unmap(start, len) };
}

/// Resizes an mmap'd chunk to serve `nb` bytes with `mremap`, or `None`.
///
/// # Safety
/// As for `free_chunk`, except that the chunk stays live.
pub unsafe fn remap_chunk(p: Chunk, nb: usize) -> Option<Chunk> {
    // SAFETY: forwarded from the caller.
    let Some((start, len)) = (unsafe { mapping_of(p) }) else {
        misuse("mremap_chunk(): invalid pointer");
        return None;
    };
    // SAFETY: forwarded from the caller.
    let gap = unsafe { p.prev_size() };
    let new_len = align_up(nb.checked_add(gap + SIZE_SZ)?, sys::page_size());
    if new_len == len {
        return Some(p);
    }
    trace(format_args!(
        "mremap {start:p} {len:#x} -> {new_len:#x}  realloc of an mmap'd chunk"
    ));
    // SAFETY: the mapping is this chunk's alone.
    let moved = unsafe { registry::remap(start, len, new_len)? };
    let q = Chunk::from_ptr(moved.wrapping_add(gap));
    // SAFETY: the header moved with the mapping.
    unsafe { q.set_head((new_len - gap) | IS_MMAPPED) };
    tunables::note_mremap(len, new_len);
    Some(q)
}

/// The record of every mapping behind an mmap'd chunk: an open-addressing
/// hash table of `(start, length)` pairs under its own lock (a leaf: no
/// other lock is taken while it is held; `remap` makes its system call
/// under it). The first 1024 slots are static
/// (zero pages until used, and no system call); beyond three quarters full
/// the table moves to a bigger mapping of its own.
pub mod registry {
    use crate::lock::Lock;
    use crate::sys;
    use core::cell::UnsafeCell;

    pub(crate) const EMPTY: usize = 0;
    /// A removed entry: probing goes on past it.
    pub(crate) const GONE: usize = 1;
    const STATIC_SLOTS: usize = 1024;

    /// The slots, `cap` pairs (start, length). `repr(C)`, as `Shared`:
    /// tools outside the process read both (scripts/heaplib/layout.txt).
    #[repr(C)]
    pub(crate) struct Table {
        pub(crate) slots: *mut [usize; 2],
        pub(crate) cap: usize,
        /// Slots not EMPTY (live entries and GONE markers).
        used: usize,
        live: usize,
    }

    /// The registry; `crate::debuginfo` gives its address to tools, which
    /// trust `table` while `lock` is free.
    #[repr(C)]
    pub(crate) struct Shared {
        pub(crate) lock: Lock,
        pub(crate) table: UnsafeCell<Table>,
        first: UnsafeCell<[[usize; 2]; STATIC_SLOTS]>,
    }

    // SAFETY: `table` and `first` are touched only with `lock` held.
    unsafe impl Sync for Shared {}

    pub(crate) static SHARED: Shared = Shared {
        lock: Lock::new(),
        table: UnsafeCell::new(Table {
            slots: core::ptr::null_mut(),
            cap: 0,
            used: 0,
            live: 0,
        }),
        first: UnsafeCell::new([[0; 2]; STATIC_SLOTS]),
    };

    /// Runs `f` on the table with the lock held.
    fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
        // Borrowed by an atfork handler in the forking thread, which holds
        // it already (see `Lock::lock_or_borrow`): not unlocked here.
        let took = SHARED.lock.lock_or_borrow();
        // SAFETY: the lock is held, so this is the only reference.
        let t = unsafe { &mut *SHARED.table.get() };
        if t.slots.is_null() {
            t.slots = SHARED.first.get().cast();
            t.cap = STATIC_SLOTS;
        }
        let r = f(t);
        if took {
            SHARED.lock.unlock();
        }
        r
    }

    fn home(start: usize, cap: usize) -> usize {
        ((start >> 12).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 20) & (cap - 1)
    }

    impl Table {
        fn slot(&self, i: usize) -> *mut [usize; 2] {
            // SAFETY: callers pass i < cap; slots has cap entries.
            unsafe { self.slots.add(i) }
        }

        /// The slot holding `start`, if recorded.
        fn find(&self, start: usize) -> Option<usize> {
            let mut i = home(start, self.cap);
            for _ in 0..self.cap {
                // SAFETY: i < cap.
                let key = unsafe { (*self.slot(i))[0] };
                if key == start {
                    return Some(i);
                }
                if key == EMPTY {
                    return None;
                }
                i = (i + 1) & (self.cap - 1);
            }
            None
        }

        /// Drops the record of the mapping at `start`, if any.
        fn forget(&mut self, start: usize) {
            if let Some(i) = self.find(start) {
                // SAFETY: i < cap.
                unsafe { (*self.slot(i))[0] = GONE };
                self.live -= 1;
            }
        }

        /// Records a pair; there must be room (`room`).
        fn put(&mut self, start: usize, len: usize) {
            let mut i = home(start, self.cap);
            loop {
                // SAFETY: i < cap; the table is never full (see `room`).
                let s = unsafe { &mut *self.slot(i) };
                if s[0] == EMPTY || s[0] == GONE {
                    if s[0] == EMPTY {
                        self.used += 1;
                    }
                    *s = [start, len];
                    self.live += 1;
                    return;
                }
                i = (i + 1) & (self.cap - 1);
            }
        }

        /// Makes sure one more `put` keeps the table at most 3/4 used,
        /// moving it to a bigger mapping if needed. False if out of memory.
        fn room(&mut self) -> bool {
            if (self.used + 1) * 4 <= self.cap * 3 {
                return true;
            }
            let cap = ((self.live + 1) * 4).next_power_of_two().max(STATIC_SLOTS);
            let Some(mem) = sys::map_rw(cap * 16) else {
                return false;
            };
            let old = Table {
                slots: self.slots,
                cap: self.cap,
                used: 0,
                live: 0,
            };
            *self = Table {
                slots: mem.cast(),
                cap,
                used: 0,
                live: 0,
            };
            for i in 0..old.cap {
                // SAFETY: i < old.cap.
                let [k, v] = unsafe { *old.slot(i) };
                if k > GONE {
                    self.put(k, v);
                }
            }
            if old.slots != SHARED.first.get().cast() {
                // SAFETY: the old table was our own mapping of cap * 16
                // bytes, no longer referenced.
                unsafe { sys::unmap(old.slots.cast(), old.cap * 16) };
            }
            true
        }
    }

    /// Records a new mapping; false if there is no memory to record it.
    pub fn insert(start: usize, len: usize) -> bool {
        with(|t| {
            if !t.room() {
                return false;
            }
            t.put(start, len);
            true
        })
    }

    /// Resizes a recorded mapping with `mremap` and moves its record, the
    /// lock held throughout: once the kernel has released the old range,
    /// another thread may map it and record it, and must not find this
    /// mapping's record still under that address (a stale length would make
    /// its `free` look like a bad pointer). `None` (nothing changed) when
    /// the kernel refuses or there is no room for the new record.
    ///
    /// # Safety
    /// `[start, start + len)` must be a whole recorded mapping that the
    /// caller owns.
    pub unsafe fn remap(start: *mut u8, len: usize, new_len: usize) -> Option<*mut u8> {
        with(|t| {
            if !t.room() {
                return None;
            }
            // SAFETY: forwarded from the caller.
            let moved = unsafe { sys::remap(start, len, new_len)? };
            t.forget(start as usize);
            t.put(moved as usize, new_len);
            Some(moved)
        })
    }

    /// The recorded length of the mapping at `start`.
    pub fn length_of(start: usize) -> Option<usize> {
        // SAFETY: i < cap.
        with(|t| t.find(start).map(|i| unsafe { (*t.slot(i))[1] }))
    }

    /// Forgets the mapping at `start`.
    pub fn remove(start: usize) {
        with(|t| t.forget(start))
    }

    /// Calls `f(start, length)` for every mapping, with the lock held (`f`
    /// must not allocate). False, having called nothing, if the lock stays
    /// taken (a dump that interrupted this thread inside the registry).
    pub fn for_each(mut f: impl FnMut(usize, usize)) -> bool {
        if !SHARED.lock.try_lock_for(10_000) {
            return false;
        }
        // SAFETY: the lock is held.
        let t = unsafe { &*SHARED.table.get() };
        for i in 0..t.cap {
            // SAFETY: i < cap.
            let [k, v] = unsafe { *t.slot(i) };
            if k > GONE {
                f(k, v);
            }
        }
        SHARED.lock.unlock();
        true
    }

    /// Fork: held across `fork`, released in the parent, reset in the child.
    pub fn lock_for_fork() {
        SHARED.lock.lock();
    }
    pub fn unlock_after_fork() {
        SHARED.lock.unlock();
    }
    pub fn reset_in_child() {
        SHARED.lock.reset();
    }
}
