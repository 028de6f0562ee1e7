//! Mmap'd chunks: requests of at least `mmap_threshold` bytes get a mapping
//! of their own, outside every arena, and go straight back to the kernel on
//! `free`. The chunk sits at the start of the mapping (`prev_size` holds any
//! gap before it, made by memalign), has IS_MMAPPED set and no neighbour.
//!
//! Unlike glibc, every such mapping is recorded (`registry`): `free` and
//! `realloc` of an mmap'd chunk whose mapping we did not make abort instead
//! of unmapping someone else's memory, and the heap dump lists them all.
//!
//! The `fast` profile keeps freed mappings for a while (`cache`) and hands
//! one out again for a request it fits, saving the system calls and the
//! page faults of a new mapping.

use crate::chunk::{Chunk, IS_MMAPPED, MALLOC_ALIGNMENT, SIZE_SZ, align_up};
use crate::config::profile;
use crate::config::tunables::{self, DEFAULT_MMAP_THRESHOLD_MAX, MP};
use crate::os::printerr::misuse;
use crate::os::record;
use crate::os::sys;
use crate::os::trace::trace;
use core::sync::atomic::Ordering::Relaxed;

/// Maps a chunk of at least `nb` bytes (a chunk size), or `None` when the
/// kernel refuses or `n_mmaps_max` is reached. With `may_reuse` (not for
/// calloc, which counts on a new mapping's zeros) the fast profile's cache
/// may give a mapping back instead.
pub fn map_chunk(nb: usize, may_reuse: bool) -> Option<Chunk> {
    if MP.n_mmaps.load(Relaxed) >= MP.n_mmaps_max.load(Relaxed) {
        return None;
    }
    map_recorded(
        nb,
        MALLOC_ALIGNMENT,
        may_reuse,
        format_args!("mmap threshold {}", tunables::mmap_threshold()),
        registry::insert,
    )
}

/// A chunk of at least `nb` bytes whose user pointer is `align`-aligned, at
/// the start of a mapping of its own (the gap before it, if any, kept in
/// `prev_size`, as memalign does for mmap'd chunks), recorded by `record`
/// (start, length); `None` if the kernel refuses or there is no room to
/// record it (then the mapping is undone). With `may_reuse`, the fast
/// profile's cache may give back a mapping kept from a free instead of a
/// new one.
fn map_recorded(
    nb: usize,
    align: usize,
    may_reuse: bool,
    why: core::fmt::Arguments,
    record: fn(usize, usize) -> bool,
) -> Option<Chunk> {
    let extra = if align > MALLOC_ALIGNMENT { align } else { 0 };
    let mut len = align_up(nb.checked_add(SIZE_SZ + extra)?, sys::page_size());
    let kept = if profile::fast() {
        len = cache::rounded(len);
        if may_reuse { cache::take(len) } else { None }
    } else {
        None
    };
    let (base, len) = match kept {
        Some((start, kept_len)) => {
            trace(format_args!(
                "reuse {start:#x} {kept_len:#x}  a kept mapping for a {nb}-byte chunk"
            ));
            record::served(record::how::MMAP_CACHE);
            (start, kept_len)
        }
        None => {
            trace(format_args!(
                "mmap {len:#x}  a chunk of its own for a {nb}-byte chunk ({why})"
            ));
            (sys::map_rw(len)? as usize, len)
        }
    };
    let p = Chunk::first_aligned_at(base, align);
    let gap = p.addr() - base;
    if !record(base, len) {
        // SAFETY: the mapping was made just above and is unused.
        unsafe { sys::unmap(base as *mut u8, len) };
        return None;
    }
    // SAFETY: the header lies inside the mapping we just made.
    unsafe {
        p.set_prev_size(gap);
        p.set_head((len - gap) | IS_MMAPPED);
    }
    tunables::note_mmap(len);
    Some(p)
}

/// A fork in another thread holds the registry's lock (see the `lock`
/// module): nothing was done; the caller goes around (see
/// `thread::arenas::free_or_defer`).
#[derive(Debug)]
pub struct Busy;

/// The mapping an mmap'd chunk's header describes, `(start, length)`, if it
/// is page-aligned with an aligned user pointer (not yet checked against
/// the registry).
///
/// # Safety
/// `p` must be a chunk with IS_MMAPPED whose header is readable.
unsafe fn claimed_mapping(p: Chunk) -> Option<(usize, usize)> {
    // SAFETY: forwarded from the caller.
    let (gap, size) = unsafe { (p.prev_size(), p.size()) };
    let start = p.addr().wrapping_sub(gap);
    let len = gap.wrapping_add(size);
    let page_mask = sys::page_size() - 1;
    if (start | len) & page_mask != 0 || !crate::chunk::is_aligned(p.mem() as usize) {
        return None;
    }
    Some((start, len))
}

/// Whether `p` (IS_MMAPPED set, header readable) is an mmap'd chunk of ours:
/// its mapping recorded with that length.
pub fn is_ours(p: Chunk) -> Result<bool, Busy> {
    // SAFETY: the caller read the header already.
    let Some((start, len)) = (unsafe { claimed_mapping(p) }) else {
        return Ok(false);
    };
    Ok(registry::length_of(start)? == Some(len))
}

/// Returns an mmap'd chunk to the kernel, first raising the dynamic mmap
/// threshold as glibc does: freeing a mapped chunk bigger than the threshold
/// (up to 32 MiB) shows that such sizes are used and reused, so they are
/// better served from the heap from now on.
///
/// # Safety
/// `p` must be a live mmap'd chunk made by `map_chunk` (or moved by
/// `remap_chunk`), given up by its user.
pub unsafe fn free_chunk(p: Chunk) -> Result<(), Busy> {
    // SAFETY: forwarded from the caller.
    let size = unsafe { p.size() };
    // SAFETY: forwarded from the caller.
    if !unsafe { unmap_chunk(p) }? {
        return Ok(());
    }
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
    Ok(())
}

/// Unmaps an mmap'd chunk without touching the threshold: true when done;
/// false, after reporting the misuse, if its mapping is not ours.
///
/// # Safety
/// As for `free_chunk`.
pub unsafe fn unmap_chunk(p: Chunk) -> Result<bool, Busy> {
    // SAFETY: forwarded from the caller.
    let claimed = unsafe { claimed_mapping(p) };
    let Some((start, len)) = claimed else {
        misuse("munmap_chunk(): invalid pointer");
        return Ok(false);
    };
    // glibc also wants the user pointer's offset in its page to be a power
    // of two (or 0); ours always are.
    let in_page = p.mem() as usize & (sys::page_size() - 1);
    if in_page & in_page.wrapping_sub(1) != 0 {
        misuse("munmap_chunk(): invalid pointer");
        return Ok(false);
    }
    if !registry::take(start, len)? {
        // A second free of a chunk whose mapping the cache keeps must not
        // unmap it under the cache.
        if cache::holds(start) || !unmap_unrecorded_as_glibc(start, len) {
            misuse("munmap_chunk(): invalid pointer");
            return Ok(false);
        }
    } else if profile::fast() && cache::put(start, len) {
        trace(format_args!(
            "cache {start:#x} {len:#x}  free of an mmap'd chunk, mapping kept"
        ));
        record::chunk(record::state::GONE, start, len, 0);
        tunables::note_munmap(len);
        return Ok(true);
    }
    trace(format_args!(
        "munmap {start:#x} {len:#x}  free of an mmap'd chunk"
    ));
    record::did(record::did::UNMAPPED);
    record::chunk(record::state::GONE, start, len, 0);
    tunables::note_munmap(len);
    // SAFETY: the whole mapping belonged to this one chunk, now given up.
    unsafe { sys::unmap(start as *mut u8, len) };
    Ok(true)
}

/// A mapping that the header of a chunk being freed describes but that we
/// never made (a faked mmap'd chunk): glibc records no mappings and unmaps
/// whatever a well-shaped header describes, so the default profile does
/// too (true); the hardened one refuses (false).
#[cold]
fn unmap_unrecorded_as_glibc(start: usize, len: usize) -> bool {
    if profile::hardened() {
        return false;
    }
    trace(format_args!(
        "munmap {start:#x} {len:#x}  free of an mmap'd chunk not made here (glibc unmaps it too)"
    ));
    true
}

/// Resizes an mmap'd chunk to serve `nb` bytes with `mremap`, or `None`.
///
/// # Safety
/// As for `free_chunk`, except that the chunk stays live.
pub unsafe fn remap_chunk(p: Chunk, nb: usize) -> Result<Option<Chunk>, Busy> {
    // SAFETY: forwarded from the caller.
    let claimed = unsafe { claimed_mapping(p) };
    let Some((start, len)) = claimed else {
        misuse("mremap_chunk(): invalid pointer");
        return Ok(None);
    };
    // SAFETY: forwarded from the caller.
    let gap = unsafe { p.prev_size() };
    let Some(new_len) = nb.checked_add(gap + SIZE_SZ) else {
        return Ok(None);
    };
    let new_len = align_up(new_len, sys::page_size());
    if new_len == len {
        return Ok(Some(p));
    }
    trace(format_args!(
        "mremap {start:#x} {len:#x} -> {new_len:#x}  realloc of an mmap'd chunk"
    ));
    record::served(record::how::MREMAP);
    // SAFETY: the mapping is this chunk's alone.
    let Some(moved) = (unsafe { registry::remap(start as *mut u8, len, new_len) })? else {
        return Ok(None);
    };
    let q = Chunk::first_at(moved as usize + gap);
    // SAFETY: the header moved with the mapping.
    unsafe { q.set_head((new_len - gap) | IS_MMAPPED) };
    tunables::note_mremap(len, new_len);
    Ok(Some(q))
}

/// An mmap'd chunk for a thread that must not wait for a fork (see the
/// `lock` module): as `map_chunk`, but recorded without the registry's lock
/// (in `registry::ESCAPED`), and with the user pointer `align`-aligned.
/// `None` if the kernel refuses.
pub fn map_chunk_unlocked(nb: usize, align: usize) -> Option<Chunk> {
    map_recorded(
        nb,
        align.max(MALLOC_ALIGNMENT),
        false,
        format_args!("a fork holds the arena"),
        registry::escaped_insert,
    )
}

/// The `fast` profile's cache of freed mappings: at most `SLOTS` of them,
/// of `MIN_LEN` bytes or more, `MAX_BYTES` in all, each given back to the
/// kernel once it has waited `MAX_AGE_NS` (seen at the cache's next use),
/// at `malloc_trim`, and when a request finds no memory (they count
/// against the address-space limit). A request takes a mapping at least as
/// long as it needs and at most a quarter longer. The cache's lock is only ever tried: a thread that finds
/// it taken maps or unmaps as if there were no cache (so a fork cannot
/// leave anyone waiting for it either).
pub mod cache {
    use crate::os::lock::Lock;
    use crate::os::sys;
    use core::cell::UnsafeCell;

    const SLOTS: usize = 8;
    /// Most bytes of mappings kept.
    pub const MAX_BYTES: usize = 64 << 20;
    /// Shorter mappings are not kept (their system calls and faults cost
    /// little), nor rounded below `ROUND_FROM`.
    pub const MIN_LEN: usize = 1 << 20;
    const ROUND_FROM: usize = 4 << 20;
    /// How long a mapping is kept.
    pub const MAX_AGE_NS: u64 = 1_000_000_000;

    #[derive(Clone, Copy)]
    struct Slot {
        start: usize,
        len: usize,
        freed_at: u64,
    }

    struct Cache {
        slots: [Slot; SLOTS],
        bytes: usize,
    }

    struct Shared {
        lock: Lock,
        cache: UnsafeCell<Cache>,
    }

    // SAFETY: `cache` is touched only with `lock` held.
    unsafe impl Sync for Shared {}

    const NONE: Slot = Slot {
        start: 0,
        len: 0,
        freed_at: 0,
    };

    static SHARED: Shared = Shared {
        lock: Lock::new(),
        cache: UnsafeCell::new(Cache {
            slots: [NONE; SLOTS],
            bytes: 0,
        }),
    };

    /// Runs `f` on the cache if its lock is free (`None` if not).
    fn with<R>(f: impl FnOnce(&mut Cache) -> R) -> Option<R> {
        if !SHARED.lock.try_lock() {
            return None;
        }
        // SAFETY: the lock is held.
        let r = f(unsafe { &mut *SHARED.cache.get() });
        SHARED.lock.unlock();
        Some(r)
    }

    impl Cache {
        /// Unmaps the slots freed before `now - MAX_AGE_NS` (all with
        /// `now` = u64::MAX).
        fn expire(&mut self, now: u64) {
            for s in self.slots.iter_mut() {
                if s.len != 0 && now.saturating_sub(s.freed_at) >= MAX_AGE_NS {
                    // SAFETY: the cache owned this mapping; no one uses it.
                    unsafe { sys::unmap(s.start as *mut u8, s.len) };
                    self.bytes -= s.len;
                    *s = NONE;
                }
            }
        }
    }

    /// The length the fast profile maps for `len` bytes (page-aligned):
    /// rounded up to an eighth of its highest power of two, so that
    /// requests of nearly the same size map, and reuse, the same length.
    /// At most an eighth more address space (pages never touched cost no
    /// memory).
    pub fn rounded(len: usize) -> usize {
        if len < ROUND_FROM {
            return len;
        }
        let eighth = (1usize << (usize::BITS - 1 - len.leading_zeros())) / 8;
        len.next_multiple_of(eighth)
    }

    /// Keeps the freed mapping `start`, `len` bytes (out of the registry
    /// already), giving the oldest kept ones back to make room; false when
    /// it cannot be kept (the caller unmaps it).
    pub fn put(start: usize, len: usize) -> bool {
        if !(MIN_LEN..=MAX_BYTES).contains(&len) {
            return false;
        }
        let now = sys::monotonic_ns();
        with(|c| {
            c.expire(now);
            while c.bytes + len > MAX_BYTES || c.slots.iter().all(|s| s.len != 0) {
                let Some(old) = c
                    .slots
                    .iter_mut()
                    .filter(|s| s.len != 0)
                    .min_by_key(|s| s.freed_at)
                else {
                    return false;
                };
                // SAFETY: the cache owned this mapping; no one uses it.
                unsafe { sys::unmap(old.start as *mut u8, old.len) };
                c.bytes -= old.len;
                *old = NONE;
            }
            let Some(s) = c.slots.iter_mut().find(|s| s.len == 0) else {
                return false;
            };
            *s = Slot {
                start,
                len,
                freed_at: now,
            };
            c.bytes += len;
            true
        })
        .unwrap_or(false)
    }

    /// Takes the shortest kept mapping of `len` to `len` + a quarter bytes.
    pub fn take(len: usize) -> Option<(usize, usize)> {
        let now = sys::monotonic_ns();
        with(|c| {
            c.expire(now);
            let best = c
                .slots
                .iter_mut()
                .filter(|s| s.len >= len && s.len - len <= len / 4)
                .min_by_key(|s| s.len)?;
            let got = (best.start, best.len);
            c.bytes -= best.len;
            *best = NONE;
            Some(got)
        })
        .flatten()
    }

    /// Whether the cache keeps a mapping that starts at `start`.
    pub fn holds(start: usize) -> bool {
        with(|c| c.slots.iter().any(|s| s.len != 0 && s.start == start)).unwrap_or(false)
    }

    /// Gives every kept mapping back (`malloc_trim`, or a request that
    /// found no memory); whether there was any.
    pub fn flush() -> bool {
        with(|c| {
            let had = c.bytes != 0;
            c.expire(u64::MAX);
            had
        })
        .unwrap_or(false)
    }
}

/// The record of every mapping behind an mmap'd chunk: an open-addressing
/// hash table of `(start, length)` pairs under its own lock (a leaf: no
/// other lock is taken while it is held; `remap` makes its system call
/// under it). The first 1024 slots are static
/// (zero pages until used, and no system call); beyond three quarters full
/// the table moves to a bigger mapping of its own.
pub mod registry {
    use super::Busy;
    use crate::os::lock::{Got, Lock};
    use crate::os::sys;
    use core::cell::UnsafeCell;
    use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
    use core::sync::atomic::{AtomicPtr, AtomicUsize};

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

    /// The registry; `crate::report::debuginfo` gives its address to tools, which
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

    /// Runs `f` on the table with the lock held, or returns `Busy` (nothing
    /// done) when another thread's fork holds the lock. The forking thread
    /// borrows the lock it holds (see the `lock` module).
    fn try_with<R>(f: impl FnOnce(&mut Table) -> R) -> Result<R, Busy> {
        match SHARED.lock.lock_unless_forking() {
            Got::Forking => Err(Busy),
            got => Ok(run(got == Got::Taken, f)),
        }
    }

    /// `try_with`, waiting for a fork: for `insert`, which runs under an
    /// arena lock (a fork takes that first, so never holds this one then),
    /// and for the fork handlers' own frees.
    fn with<R>(f: impl FnOnce(&mut Table) -> R) -> R {
        let taken = match SHARED.lock.lock_unless_forking() {
            Got::Forking => {
                SHARED.lock.lock();
                true
            }
            got => got == Got::Taken,
        };
        run(taken, f)
    }

    /// Runs `f` on the table, whose lock the caller holds; unlocks it after
    /// if `taken` (not if borrowed).
    fn run<R>(taken: bool, f: impl FnOnce(&mut Table) -> R) -> R {
        // SAFETY: the lock is held, so this is the only reference.
        let t = unsafe { &mut *SHARED.table.get() };
        if t.slots.is_null() {
            t.slots = SHARED.first.get().cast();
            t.cap = STATIC_SLOTS;
        }
        let r = f(t);
        if taken {
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

        /// Drops the record of the mapping at `start`, if any (true).
        fn forget(&mut self, start: usize) -> bool {
            let Some(i) = self.find(start) else {
                return false;
            };
            // SAFETY: i < cap.
            unsafe { (*self.slot(i))[0] = GONE };
            self.live -= 1;
            true
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
    pub unsafe fn remap(
        start: *mut u8,
        len: usize,
        new_len: usize,
    ) -> Result<Option<*mut u8>, Busy> {
        let done = try_with(|t| {
            if !t.room() {
                return None;
            }
            // SAFETY: forwarded from the caller.
            let moved = unsafe { sys::remap(start, len, new_len)? };
            if !t.forget(start as usize) {
                escaped_take(start as usize, len);
            }
            t.put(moved as usize, new_len);
            Some(moved)
        });
        if done.is_ok() || escaped_len(start as usize) != Some(len) {
            return done;
        }
        // A fork holds the lock, and the mapping is one made around a fork:
        // its record moves without the lock (the caller owns the mapping,
        // so nobody else touches that record meanwhile).
        escaped_take(start as usize, len);
        // SAFETY: forwarded from the caller.
        let moved = unsafe { sys::remap(start, len, new_len) };
        let (at, at_len) = match moved {
            Some(m) => (m, new_len),
            None => (start, len),
        };
        if !escaped_insert(at as usize, at_len) {
            // The side table filled up meanwhile: the mapping stays the
            // caller's, unrecorded; wait for the lock to record it.
            with(|t| {
                if t.room() {
                    t.put(at as usize, at_len)
                }
            });
        }
        Ok(moved)
    }

    /// The recorded length of the mapping at `start`. One made around a
    /// fork is found without the lock, so also while a fork holds it.
    pub fn length_of(start: usize) -> Result<Option<usize>, Busy> {
        if let Some(len) = escaped_len(start) {
            return Ok(Some(len));
        }
        // SAFETY: i < cap.
        try_with(|t| t.find(start).map(|i| unsafe { (*t.slot(i))[1] }))
    }

    /// Forgets the mapping at `start` if it is recorded with length `len`:
    /// true if it was. As `length_of`, one made around a fork needs no lock.
    pub fn take(start: usize, len: usize) -> Result<bool, Busy> {
        if escaped_take(start, len) {
            return Ok(true);
        }
        try_with(|t| match t.find(start) {
            // SAFETY: i < cap.
            Some(i) if unsafe { (*t.slot(i))[1] } == len => t.forget(start),
            _ => false,
        })
    }

    /// Mappings recorded while a fork held the lock (`map_chunk_unlocked`):
    /// pages of slots `(start, length)`, each claimed by a compare-and-swap
    /// of its start, so no thread waits for the fork. The first page is
    /// static; when every page is full another is mapped and linked on
    /// (pages are never given back). Looked up when a free or realloc
    /// needs a record; a slot is freed with its mapping.
    #[repr(C)]
    struct EscapedPage {
        slots: [[AtomicUsize; 2]; ESCAPED_SLOTS],
        next: AtomicPtr<EscapedPage>,
    }
    const ESCAPED_SLOTS: usize = 4096;
    static ESCAPED: EscapedPage = EscapedPage {
        slots: [const { [AtomicUsize::new(0), AtomicUsize::new(0)] }; ESCAPED_SLOTS],
        next: AtomicPtr::new(core::ptr::null_mut()),
    };
    /// How many slots are taken: while none is, lookups skip the pages.
    static ESCAPED_LIVE: AtomicUsize = AtomicUsize::new(0);

    /// Every page, first to last.
    fn escaped_pages() -> impl Iterator<Item = &'static EscapedPage> {
        let mut page: *const EscapedPage = &ESCAPED;
        core::iter::from_fn(move || {
            // SAFETY: pages are the static one or mappings never unmapped,
            // linked in once they are initialised (Release/Acquire).
            let this = unsafe { page.as_ref() }?;
            page = this.next.load(Acquire);
            Some(this)
        })
    }

    /// The slots in the order a search for `start` visits them: on each
    /// page from its hash on, round the page.
    fn escaped_slots(start: usize) -> impl Iterator<Item = &'static [AtomicUsize; 2]> {
        let first = home(start, ESCAPED_SLOTS);
        escaped_pages().flat_map(move |page| {
            (0..ESCAPED_SLOTS).map(move |i| &page.slots[(first + i) % ESCAPED_SLOTS])
        })
    }

    /// Records a mapping; false only if no page can be mapped for it.
    pub fn escaped_insert(start: usize, len: usize) -> bool {
        ESCAPED_LIVE.fetch_add(1, SeqCst);
        loop {
            for [s, l] in escaped_slots(start) {
                if s.compare_exchange(0, start, Acquire, Relaxed).is_ok() {
                    l.store(len, Release);
                    return true;
                }
            }
            if !escaped_grow() {
                ESCAPED_LIVE.fetch_sub(1, SeqCst);
                return false;
            }
        }
    }

    /// Links one more page on at the end (or finds that another thread
    /// just did). False if the kernel gives no memory for it.
    fn escaped_grow() -> bool {
        let Some(mem) = sys::map_rw(size_of::<EscapedPage>()) else {
            return false;
        };
        // A fresh mapping is zeroed: empty slots and a null `next`.
        let new = mem.cast::<EscapedPage>();
        let mut last: &EscapedPage = &ESCAPED;
        loop {
            match last
                .next
                .compare_exchange(core::ptr::null_mut(), new, Release, Acquire)
            {
                Ok(_) => return true,
                // SAFETY: a linked page, never unmapped.
                Err(next) => last = unsafe { &*next },
            }
        }
    }

    fn escaped_len(start: usize) -> Option<usize> {
        if ESCAPED_LIVE.load(SeqCst) == 0 {
            return None;
        }
        escaped_slots(start)
            .find(|[s, _]| s.load(Acquire) == start)
            .map(|[_, l]| l.load(Acquire))
    }

    fn escaped_take(start: usize, len: usize) -> bool {
        if ESCAPED_LIVE.load(SeqCst) == 0 {
            return false;
        }
        for [s, l] in escaped_slots(start) {
            if s.load(Acquire) == start && l.load(Acquire) == len {
                l.store(0, Relaxed);
                s.store(0, Release);
                ESCAPED_LIVE.fetch_sub(1, SeqCst);
                return true;
            }
        }
        false
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
        for [s, l] in escaped_pages().flat_map(|page| page.slots.iter()) {
            let (k, v) = (s.load(Acquire), l.load(Acquire));
            if k != 0 && v != 0 {
                f(k, v);
            }
        }
        true
    }

    /// Fork: held across `fork`, released in the parent, reset in the child.
    pub fn lock_for_fork() {
        SHARED.lock.lock();
    }
    pub fn mark_forking() {
        SHARED.lock.mark_forking();
    }
    pub fn unlock_after_fork() {
        SHARED.lock.unlock();
    }
    pub fn reset_in_child() {
        SHARED.lock.reset();
    }
}
