//! The heap-consistency checker: walks every heap of an arena chunk by
//! chunk and every list that points into it (fastbins, the unsorted, small
//! and large bins, the calling thread's tcache), and reports the first
//! thing that breaks the allocator's invariants, as a message and the
//! address where it was seen. `check_arena` checks one locked arena,
//! `check_all` every arena; with `PTMALLOC_RS_CHECK_HEAP=1` the exported
//! malloc family runs `check_all` after every call and aborts on a fault.
//!
//! First the set of arenas (`arenas::check_lists`): the ring holds no more
//! arenas than were counted, each once; the free list only arenas of the ring
//! with no thread attached, each once; the calling thread's arena is one of
//! the ring (in a fork child, too: the child rebuilds the free list).
//!
//! What is checked, per arena:
//! - its extent: a thread arena's heap chain (each header names the arena,
//!   the oldest holds the arena, `system_mem` is the sum of the heap
//!   sizes); a contiguous main arena's brk area (`system_mem` is its size);
//! - top: aligned, at least MINSIZE, not mmap'd, PREV_INUSE set, ending
//!   exactly where its heap ends;
//! - every chunk of every heap, in address order: aligned (the walk starts
//!   aligned and sizes are multiples of 16), size at least MINSIZE (but for
//!   the fenceposts that end a heap a new one was chained after), inside
//!   its heap, not IS_MMAPPED, NON_MAIN_ARENA as the arena wants it (set on
//!   every in-use chunk of a thread arena, clear everywhere in the main
//!   arena), the first chunk of a heap with PREV_INUSE set, no two free
//!   chunks adjacent, a free chunk's size repeated in the next chunk's
//!   prev_size, no free chunk before top;
//! - a chunk is free (the next chunk's PREV_INUSE is clear) exactly when it
//!   is in the unsorted, a small or a large bin; fastbin and tcache chunks
//!   look in use; no chunk is on two lists (or twice on one); every listed
//!   chunk is a chunk of the walk;
//! - every doubly linked bin: fd/bk agree both ways, sizes of the bin's
//!   class (small bin `i`: exactly `16 i`; large bin `i`: its range, sorted
//!   largest first, the first chunk of each size on a consistent
//!   fd_nextsize/bk_nextsize ring and the others off it; large chunks in
//!   the unsorted bin off it too), the binmap bit set for every non-empty
//!   bin (a set bit over an empty bin is allowed: it is cleared lazily);
//! - fastbins: sizes of the bin's class, no cycle, `have_fastchunks` set
//!   while any holds a chunk;
//! - the calling thread's tcache: each list as long as its count, entries
//!   aligned, carrying the cache key, of the bin's size class, in use, in
//!   some arena (other threads' caches change without a lock: unchecked);
//! - the totals `census` reports (what mallinfo, malloc_stats and
//!   malloc_info show) agree with the lists and the walk.
//!
//! A link or size is checked to lie inside the arena's heaps before it is
//! followed or read, so a corrupted heap gives a fault rather than a
//! crash; heap headers and top themselves are trusted. The regions of a
//! non-contiguous main arena (brk failed, it grew with mmap) are not
//! recorded anywhere: there, only the lists are checked, trusting any
//! aligned link, and the heap walk is skipped; so is the part of a brk area
//! after a gap another sbrk user made.
//!
//! Nothing here allocates: listed chunks are matched against the walk
//! through a fixed array of addresses on the stack, in address batches of
//! at most `BATCH` chunks (one walk per batch). The checker uses about
//! 16 KiB of stack.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use crate::arena::heap::{self, HEAP_MAX_SIZE, HeapInfo};
use crate::arena::tcache::{self, TCACHE_MAX_BINS, csize2tidx};
use crate::arena::{self, Arena, Locked, NONCONTIGUOUS_BIT, main_arena};
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::tunables::{CHECK_HEAP, MP};
use crate::os::sys;
use crate::os::text::{Out, Sink};
use crate::thread::arenas;
use crate::thread::tls;

/// What the checker found wrong, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub what: &'static str,
    /// The chunk (or list head, heap header, arena, cache) where it was seen.
    pub addr: usize,
}

type Check<T = ()> = Result<T, Fault>;

#[inline]
fn fault<T>(what: &'static str, addr: usize) -> Check<T> {
    Err(Fault { what, addr })
}

/// What the checker counted in one arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Heaps: a thread arena's chain, 1 for the main arena's brk area, 0
    /// for a main arena never grown or non-contiguous.
    pub heaps: usize,
    /// Whether every chunk of every heap was walked (see the module notes
    /// for when it cannot be).
    pub walked: bool,
    /// Chunks the walk found in use (fastbin and tcache chunks and
    /// fenceposts included), top excluded.
    pub in_use_chunks: usize,
    pub in_use_bytes: usize,
    /// Chunks in the unsorted, small and large bins.
    pub free_chunks: usize,
    pub free_bytes: usize,
    pub fast_chunks: usize,
    pub fast_bytes: usize,
    /// Entries of the calling thread's tcache that lie in this arena.
    pub tcache_chunks: usize,
    pub tcache_bytes: usize,
    pub top_size: usize,
    pub system_mem: usize,
}

/// The sums over every arena, from `check_all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub arenas: usize,
    pub heaps: usize,
    pub in_use_bytes: usize,
    pub free_bytes: usize,
    pub fast_bytes: usize,
    pub tcache_chunks: usize,
    pub top_bytes: usize,
    pub system_mem: usize,
}

// ---------------------------------------------------------------------------
// Listed chunks, matched against the walk
// ---------------------------------------------------------------------------

/// Kinds of listed chunks, kept in the low bits of their (16-aligned)
/// addresses.
const REGULAR: usize = 1;
const FAST: usize = 2;
const CACHED: usize = 3;
const KIND: usize = 3;
/// Set once the walk met the chunk.
const FOUND: usize = 4;

/// The messages of `check_looks_in_use`, per list.
struct InUseFaults {
    past_end: &'static str,
    mmapped: &'static str,
    arena_bit: &'static str,
    marked_free: &'static str,
}

const FASTBIN_FAULTS: InUseFaults = InUseFaults {
    past_end: "fastbin chunk runs past the end of its heap",
    mmapped: "fastbin chunk has IS_MMAPPED set",
    arena_bit: "fastbin chunk's NON_MAIN_ARENA flag is wrong for its arena",
    marked_free: "fastbin chunk is marked free (PREV_INUSE of the next chunk is clear)",
};

const TCACHE_FAULTS: InUseFaults = InUseFaults {
    past_end: "tcache entry runs past the end of its heap",
    mmapped: "tcache entry has IS_MMAPPED set",
    arena_bit: "tcache entry's NON_MAIN_ARENA flag is wrong for its arena",
    marked_free: "tcache entry is marked free (PREV_INUSE of the next chunk is clear)",
};

/// Most listed chunks matched per walk of the heaps.
const BATCH: usize = 1024;

/// The listed chunks whose addresses lie in `[lo, hi)`, sorted. `hi`
/// starts open and comes down whenever the array fills: the upper half is
/// dropped, to be matched by a later batch.
struct Batch {
    items: [usize; BATCH],
    len: usize,
    lo: usize,
    hi: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            items: [0; BATCH],
            len: 0,
            lo: 0,
            hi: usize::MAX,
        }
    }

    #[inline]
    fn covers(&self, addr: usize) -> bool {
        self.lo <= addr && addr < self.hi
    }

    fn offer(&mut self, addr: usize, kind: usize) -> Check {
        if !self.covers(addr) {
            return Ok(());
        }
        if self.len == BATCH {
            self.seal()?;
            let keep = BATCH / 2;
            self.hi = self.items[keep] & !ALIGN_MASK;
            self.len = keep;
            if addr >= self.hi {
                return Ok(());
            }
        }
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = addr | kind;
            self.len += 1;
        }
        Ok(())
    }

    /// Sorts the batch; a chunk listed twice is a fault.
    fn seal(&mut self) -> Check {
        let items = &mut self.items[..self.len];
        items.sort_unstable();
        for w in items.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a & !ALIGN_MASK == b & !ALIGN_MASK {
                let what = match (a & KIND, b & KIND) {
                    (REGULAR, REGULAR) => "chunk is in the bins twice",
                    (FAST, FAST) => "chunk is in the fastbins twice",
                    (CACHED, CACHED) => "chunk is in the tcache twice",
                    (REGULAR, FAST) => "chunk is both in a bin and in a fastbin",
                    (REGULAR, _) => "chunk is both in a bin and in the tcache",
                    _ => "chunk is both in a fastbin and in the tcache",
                };
                return fault(what, a & !ALIGN_MASK);
            }
        }
        Ok(())
    }

    /// Marks the listed chunk at `addr` found and returns its kind.
    fn find(&mut self, addr: usize) -> Option<usize> {
        let items = &mut self.items[..self.len];
        let i = items
            .binary_search_by_key(&addr, |v| v & !ALIGN_MASK)
            .ok()?;
        let v = &mut items[i];
        *v |= FOUND;
        Some(*v & KIND)
    }

    /// The first listed chunk the walk did not meet.
    fn missing(&self) -> Option<usize> {
        self.items[..self.len]
            .iter()
            .find(|&&v| v & FOUND == 0)
            .map(|&v| v & !ALIGN_MASK)
    }
}

// ---------------------------------------------------------------------------
// An arena's extent
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum Extent {
    /// The main arena before its first growth: no memory at all.
    Fresh,
    /// A contiguous main arena: its chunks lie in `[start, end)`, top last.
    Brk { start: usize, end: usize },
    /// A non-contiguous main arena: where its regions are is not recorded.
    Unknown,
    /// A thread arena: `count` heaps chained from `newest` (top's).
    Heaps { newest: *mut HeapInfo, count: usize },
}

/// Longest heap chain believed (4 TiB of heaps).
const MAX_HEAPS: usize = 1 << 16;

/// One locked arena being checked.
struct Ctx<'a> {
    g: &'a Locked,
    av: *mut Arena,
    main: bool,
    top: Chunk,
    extent: Extent,
    system_mem: usize,
    /// Longest list the arena's memory can hold (a cycle guard).
    max_chunks: usize,
    /// Whether the calling thread's tcache entries outside this arena may
    /// be read directly (`check_all` checked that they lie in arenas).
    tcache_trusted: bool,
}

impl<'a> Ctx<'a> {
    /// Finds and checks the arena's extent and top.
    fn new(g: &'a Locked, tcache_trusted: bool) -> Check<Ctx<'a>> {
        let av = g.arena();
        let main = core::ptr::eq(av, main_arena());
        // SAFETY: the lock is held (the guard's invariant): the arena's
        // fields are ours to read; heap headers are found from top and read
        // only after each was checked to be 64 MiB-aligned (a heap); chunk
        // headers read lie inside the extent just established.
        unsafe {
            let top = (*av).top;
            let system_mem = (*av).system_mem;
            if (*av).max_system_mem < system_mem {
                return fault("max_system_mem is below system_mem", av as usize);
            }
            let mut ctx = Ctx {
                g,
                av,
                main,
                top,
                extent: Extent::Fresh,
                system_mem,
                max_chunks: system_mem / MINSIZE + 1,
                tcache_trusted,
            };
            if top == g.bin_at(UNSORTED) {
                if !main {
                    return fault("thread arena without a top chunk", av as usize);
                }
                return Ok(ctx);
            }
            if top.is_null() || !is_aligned(top.addr()) {
                return fault("top chunk is misaligned", top.addr());
            }
            if main {
                if (*av).flags & NONCONTIGUOUS_BIT != 0 {
                    ctx.extent = Extent::Unknown;
                    ctx.check_top_header()?;
                    return Ok(ctx);
                }
                let base = MP.sbrk_base.load(Relaxed);
                let start = Chunk::first_at(base).addr();
                if base == 0 || top.addr() < start {
                    return fault("top lies below the start of the brk heap", top.addr());
                }
                ctx.check_top_header()?;
                let end = top.addr() + top.size();
                if end - base != system_mem {
                    return fault(
                        "system_mem disagrees with the extent of the brk heap",
                        av as usize,
                    );
                }
                ctx.extent = Extent::Brk { start, end };
                return Ok(ctx);
            }
            let newest = heap::heap_for_ptr(top.addr());
            let mut h = newest;
            let mut count = 0;
            let mut sum = 0usize;
            loop {
                if count == MAX_HEAPS {
                    return fault("heap chain does not end", h as usize);
                }
                if (*h).ar_ptr != av {
                    return fault("heap header names another arena", h as usize);
                }
                let size = (*h).size;
                if size > HEAP_MAX_SIZE
                    || size > (*h).mprotect_size
                    || size < size_of::<HeapInfo>() + CHUNK_HDR_SZ
                {
                    return fault("heap size out of range", h as usize);
                }
                count += 1;
                sum += size;
                let prev = (*h).prev;
                if prev.is_null() {
                    break;
                }
                if prev as usize & (HEAP_MAX_SIZE - 1) != 0 || prev == h {
                    return fault("heap's prev link is not a heap", h as usize);
                }
                h = prev;
            }
            if av as usize != h as usize + size_of::<HeapInfo>() {
                return fault("arena does not live in its oldest heap", h as usize);
            }
            if sum != system_mem {
                return fault(
                    "system_mem disagrees with the sizes of the arena's heaps",
                    av as usize,
                );
            }
            ctx.extent = Extent::Heaps { newest, count };
            let (first, end) = ctx.heap_bounds(newest);
            if top.addr() < first || top.addr() + CHUNK_HDR_SZ > end {
                return fault("top lies outside its heap", top.addr());
            }
            ctx.check_top_header()?;
            if top.addr() + top.size() != end {
                return fault("top does not end where its heap ends", top.addr());
            }
            Ok(ctx)
        }
    }

    /// Top's own header: size, flags.
    ///
    /// # Safety
    /// Top's header must be readable (established by the caller).
    unsafe fn check_top_header(&self) -> Check {
        let top = self.top;
        // SAFETY: forwarded from the caller.
        let head = unsafe { top.head() };
        let size = head & !SIZE_BITS;
        if size < MINSIZE || !is_aligned(size) {
            return fault(
                "top is smaller than MINSIZE or misaligned in size",
                top.addr(),
            );
        }
        if size > self.system_mem {
            return fault("top is bigger than the arena's memory", top.addr());
        }
        if head & IS_MMAPPED != 0 {
            return fault("top has IS_MMAPPED set", top.addr());
        }
        if head & PREV_INUSE == 0 {
            return fault(
                "top's PREV_INUSE is clear (a free chunk should have merged into it)",
                top.addr(),
            );
        }
        Ok(())
    }

    /// The chunk region `[first, end)` of heap `h` of this thread arena.
    fn heap_bounds(&self, h: *mut HeapInfo) -> (usize, usize) {
        // SAFETY: `h` is on the arena's checked heap chain.
        unsafe {
            let first = if (*h).prev.is_null() {
                Chunk::first_at(self.av.wrapping_add(1) as usize).addr()
            } else {
                h as usize + size_of::<HeapInfo>()
            };
            (first, heap::heap_end(h))
        }
    }

    /// Calls `f(first, end, holds_top)` for each chunk region.
    fn for_each_region(&self, f: &mut dyn FnMut(usize, usize, bool) -> Check<bool>) -> Check<bool> {
        match self.extent {
            Extent::Fresh => Ok(true),
            Extent::Unknown => Ok(false),
            Extent::Brk { start, end } => f(start, end, true),
            Extent::Heaps { newest, count } => {
                let mut complete = true;
                let mut h = newest;
                for _ in 0..count {
                    let (first, end) = self.heap_bounds(h);
                    complete &= f(first, end, h == newest)?;
                    // SAFETY: the chain was checked by `new`.
                    h = unsafe { (*h).prev };
                }
                Ok(complete)
            }
        }
    }

    /// Whether `[addr, addr + len)` lies inside one chunk region of the
    /// arena (any aligned address for a non-contiguous main arena, whose
    /// regions are unknown).
    fn contains(&self, addr: usize, len: usize) -> bool {
        let within = |first: usize, end: usize| first <= addr && addr < end && len <= end - addr;
        match self.extent {
            Extent::Fresh => false,
            Extent::Unknown => addr != 0 && is_aligned(addr),
            Extent::Brk { start, end } => within(start, end),
            Extent::Heaps { newest, count } => {
                let want = heap::heap_for_ptr(addr);
                let mut h = newest;
                for _ in 0..count {
                    if h == want {
                        let (first, end) = self.heap_bounds(h);
                        return within(first, end);
                    }
                    // SAFETY: the chain was checked by `new`.
                    h = unsafe { (*h).prev };
                }
                false
            }
        }
    }

    /// The NON_MAIN_ARENA bit every in-use chunk of this arena carries.
    fn arena_bit(&self) -> usize {
        if self.main { 0 } else { NON_MAIN_ARENA }
    }

    /// What fastbin and tcache chunks share: they look in use. `c` (whose
    /// header lies in the arena) must lie wholly in its heap, carry the
    /// arena's flags, and have PREV_INUSE set in the next chunk.
    ///
    /// # Safety
    /// The lock is held and `c`'s header was found inside the arena.
    unsafe fn check_looks_in_use(&self, c: Chunk, head: usize, m: &InUseFaults) -> Check {
        let size = head & !SIZE_BITS;
        if !self.contains(c.addr(), size.saturating_add(CHUNK_HDR_SZ)) {
            return fault(m.past_end, c.addr());
        }
        if head & IS_MMAPPED != 0 {
            return fault(m.mmapped, c.addr());
        }
        if head & NON_MAIN_ARENA != self.arena_bit() {
            return fault(m.arena_bit, c.addr());
        }
        // SAFETY: the whole chunk and the next header lie in the heap.
        if unsafe { !c.next().prev_inuse() } {
            return fault(m.marked_free, c.addr());
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // The lists
    // -----------------------------------------------------------------------

    /// Checks every list and calls `f(chunk, kind)` for each listed chunk:
    /// fastbins, bins, and the calling thread's tcache entries in this
    /// arena. Returns the counts.
    fn lists(&self, f: &mut dyn FnMut(usize, usize) -> Check) -> Check<Stats> {
        let mut st = Stats::default();
        self.fastbins(&mut st, f)?;
        for i in 1..NBINS {
            self.bin(i, &mut st, f)?;
        }
        self.tcache(&mut st, f)?;
        Ok(st)
    }

    fn fastbins(&self, st: &mut Stats, f: &mut dyn FnMut(usize, usize) -> Check) -> Check {
        let av = self.av;
        // SAFETY: the lock is held; every chunk is checked to lie inside
        // the arena (header and links, then its whole size and the next
        // header) before it is read.
        unsafe {
            for idx in 0..NFASTBINS {
                let mut p = (*av).fastbins[idx];
                let mut from = av as usize;
                let mut n = 0;
                while !p.is_null() {
                    n += 1;
                    if n > self.max_chunks {
                        return fault("fastbin list does not end", from);
                    }
                    if !is_aligned(p.addr()) || !self.contains(p.addr(), 4 * SIZE_SZ) {
                        return fault("fastbin link points outside the arena's heaps", from);
                    }
                    let head = p.head();
                    let size = head & !SIZE_BITS;
                    if size < MINSIZE || fastbin_index(size) != idx {
                        return fault("fastbin chunk of the wrong size", p.addr());
                    }
                    self.check_looks_in_use(p, head, &FASTBIN_FAULTS)?;
                    f(p.addr(), FAST)?;
                    st.fast_chunks += 1;
                    st.fast_bytes += size;
                    from = p.addr();
                    p = reveal_fd(p);
                }
            }
            if st.fast_chunks != 0 && (*av).have_fastchunks == 0 {
                return fault(
                    "fastbins hold chunks but have_fastchunks is clear",
                    av as usize,
                );
            }
        }
        Ok(())
    }

    /// Bin `i` (unsorted, small or large).
    fn bin(&self, i: usize, st: &mut Stats, f: &mut dyn FnMut(usize, usize) -> Check) -> Check {
        let bin = self.g.bin_at(i);
        let large = i >= NSMALLBINS;
        // SAFETY: the lock is held; the bin's own fd/bk are entries of the
        // arena's bins array; every chunk is checked to lie inside the
        // arena before its header and links are read, and again with its
        // size before the next chunk's header is read. Link values are only
        // compared, never followed, until checked.
        unsafe {
            let mut prev = bin;
            let mut p = bin.fd();
            let mut n = 0;
            let mut last_size = usize::MAX;
            let (mut first_head, mut prev_head) = (Chunk::NULL, Chunk::NULL);
            while p != bin {
                n += 1;
                if n > self.max_chunks {
                    return fault("bin list does not end", bin.addr());
                }
                if !is_aligned(p.addr()) || !self.contains(p.addr(), 6 * SIZE_SZ) {
                    return fault("bin link points outside the arena's heaps", prev.addr());
                }
                if p.bk() != prev {
                    return fault(
                        "bin list is broken: bk does not point to the previous chunk",
                        p.addr(),
                    );
                }
                let head = p.head();
                let size = head & !SIZE_BITS;
                if size < MINSIZE || !is_aligned(size) {
                    return fault(
                        "binned chunk's size is below MINSIZE or misaligned",
                        p.addr(),
                    );
                }
                if !self.contains(p.addr(), size.saturating_add(CHUNK_HDR_SZ)) {
                    return fault("binned chunk runs past the end of its heap", p.addr());
                }
                if head & IS_MMAPPED != 0 {
                    return fault("binned chunk has IS_MMAPPED set", p.addr());
                }
                if self.main && head & NON_MAIN_ARENA != 0 {
                    return fault("chunk of the main arena has NON_MAIN_ARENA set", p.addr());
                }
                if head & PREV_INUSE == 0 {
                    return fault(
                        "binned chunk's PREV_INUSE is clear (it should have merged with the chunk before it)",
                        p.addr(),
                    );
                }
                let next = p.plus(size);
                if next.prev_inuse() {
                    return fault(
                        "binned chunk is marked in use (PREV_INUSE of the next chunk is set)",
                        p.addr(),
                    );
                }
                if next.prev_size() != size {
                    return fault(
                        "prev_size of the chunk after a free chunk disagrees with its size",
                        p.addr(),
                    );
                }
                if i == UNSORTED {
                    if !in_smallbin_range(size) && !p.fd_nextsize().is_null() {
                        return fault(
                            "large chunk in the unsorted bin has fd_nextsize set",
                            p.addr(),
                        );
                    }
                } else if !large {
                    if !in_smallbin_range(size) || smallbin_index(size) != i {
                        return fault("chunk in a small bin of another size", p.addr());
                    }
                } else {
                    if in_smallbin_range(size) || largebin_index(size) != i {
                        return fault("chunk in a large bin of another size range", p.addr());
                    }
                    if size > last_size {
                        return fault("large bin is not sorted by size, largest first", p.addr());
                    }
                    if size != last_size {
                        // The first chunk of its size: on the nextsize ring.
                        if p.fd_nextsize().is_null() || p.bk_nextsize().is_null() {
                            return fault(
                                "first chunk of its size in a large bin is off the nextsize list",
                                p.addr(),
                            );
                        }
                        if !prev_head.is_null()
                            && (prev_head.fd_nextsize() != p || p.bk_nextsize() != prev_head)
                        {
                            return fault("large bin's nextsize links are broken", p.addr());
                        }
                        if first_head.is_null() {
                            first_head = p;
                        }
                        prev_head = p;
                    } else if !p.fd_nextsize().is_null() {
                        return fault(
                            "chunk after the first of its size in a large bin is on the nextsize list",
                            p.addr(),
                        );
                    }
                    last_size = size;
                }
                f(p.addr(), REGULAR)?;
                st.free_chunks += 1;
                st.free_bytes += size;
                prev = p;
                p = p.fd();
            }
            if bin.bk() != prev {
                return fault("bin's bk does not point to its last chunk", bin.addr());
            }
            if !first_head.is_null()
                && (prev_head.fd_nextsize() != first_head || first_head.bk_nextsize() != prev_head)
            {
                return fault("large bin's nextsize ring is not closed", first_head.addr());
            }
            if i != UNSORTED && n != 0 && (*self.av).binmap[idx2block(i)] & idx2bit(i) == 0 {
                return fault("binmap bit is clear for a non-empty bin", bin.fd().addr());
            }
        }
        Ok(())
    }

    /// The calling thread's tcache entries that lie in this arena.
    fn tcache(&self, st: &mut Stats, f: &mut dyn FnMut(usize, usize) -> Check) -> Check {
        // SAFETY: the calling thread's own state and cache. Entries in this
        // arena are checked to lie inside it before they are read; others
        // are read directly only when `check_all` has checked that they lie
        // in some arena, else through the kernel.
        unsafe {
            let tc = (*tls::thread_state()).tcache;
            if tc.is_null() {
                return Ok(());
            }
            for idx in 0..TCACHE_MAX_BINS {
                let count = usize::from((*tc).counts[idx]);
                let mut e = (*tc).entries[idx] as usize;
                for _ in 0..count {
                    if e == 0 {
                        return fault("tcache list is shorter than its count", tc as usize);
                    }
                    if !is_aligned(e) {
                        return fault("misaligned tcache entry", e);
                    }
                    let c = Chunk::from_mem(e as *mut u8);
                    let mine = match self.extent {
                        Extent::Fresh => false,
                        // Only the main arena's chunks lack NON_MAIN_ARENA.
                        Extent::Unknown => {
                            let head = if self.tcache_trusted {
                                Some(c.head())
                            } else {
                                sys::read_word_checked(c.addr() + SIZE_SZ)
                            };
                            head.is_some_and(|h| h & NON_MAIN_ARENA == 0)
                        }
                        _ => self.contains(c.addr(), 4 * SIZE_SZ),
                    };
                    let next = if mine || self.tcache_trusted {
                        c.fd().addr()
                    } else {
                        match sys::read_word_checked(e) {
                            Some(w) => w,
                            None => return fault("tcache entry is not readable", e),
                        }
                    };
                    if mine {
                        let head = c.head();
                        let size = head & !SIZE_BITS;
                        if size < MINSIZE || !is_aligned(size) || csize2tidx(size) != idx {
                            return fault("tcache entry of the wrong size", c.addr());
                        }
                        self.check_looks_in_use(c, head, &TCACHE_FAULTS)?;
                        if c.bk().addr() != tcache::key() {
                            return fault("tcache entry lost the cache key", c.addr());
                        }
                        f(c.addr(), CACHED)?;
                        st.tcache_chunks += 1;
                        st.tcache_bytes += size;
                    }
                    e = protect_link(e, Chunk::from_ptr(next as *mut u8)).addr();
                }
                if e != 0 {
                    return fault("tcache list is longer than its count", tc as usize);
                }
            }
        }
        Ok(())
    }

    // -----------------------------------------------------------------------
    // The walk
    // -----------------------------------------------------------------------

    /// Walks every chunk of every region, matching chunks in `batch`'s
    /// range against it. False if some part could not be walked.
    fn walk(&self, batch: &mut Batch, st: &mut Stats) -> Check<bool> {
        self.for_each_region(&mut |first, end, holds_top| {
            st.heaps += 1;
            self.walk_region(first, end, holds_top, batch, st)
        })
    }

    fn walk_region(
        &self,
        first: usize,
        end: usize,
        holds_top: bool,
        batch: &mut Batch,
        st: &mut Stats,
    ) -> Check<bool> {
        // Chunks end at top, or at the fencepost header (size 0,
        // PREV_INUSE) in the last 16 bytes of a heap that has a newer one.
        let limit = if holds_top {
            self.top.addr()
        } else {
            end - CHUNK_HDR_SZ
        };
        let mut p = Chunk::from_ptr(first as *mut u8);
        let mut prev = Chunk::NULL;
        let mut prev_free = false;
        // SAFETY: the lock is held; `p` starts aligned inside the region and
        // only ever moves on by a size checked to keep it at or below
        // `limit`, where a readable header (top's, or the fencepost's) lies.
        unsafe {
            loop {
                if p.addr() > limit {
                    return fault("heap walk ran past the end of its heap", prev.addr());
                }
                if p.addr() == limit {
                    if holds_top {
                        if prev_free {
                            return fault(
                                "a free chunk borders top (it should have merged)",
                                prev.addr(),
                            );
                        }
                    } else if p.head() != PREV_INUSE {
                        return fault(
                            "heap does not end with a fencepost (size 0, PREV_INUSE)",
                            p.addr(),
                        );
                    }
                    return Ok(true);
                }
                let head = p.head();
                let size = head & !SIZE_BITS;
                if !is_aligned(size) {
                    return fault("chunk size is not a multiple of 16", p.addr());
                }
                if head & IS_MMAPPED != 0 {
                    return fault("heap chunk has IS_MMAPPED set", p.addr());
                }
                if size < MINSIZE {
                    // A heap chained to a newer one ends with a 16-byte
                    // chunk before its fencepost; in the main arena two of
                    // them end the brk area before a gap another sbrk user
                    // made, where the walk cannot go on.
                    let fence = size == CHUNK_HDR_SZ && !holds_top && p.addr() + size == limit;
                    if self.main
                        && size == CHUNK_HDR_SZ
                        && p.addr() + 2 * CHUNK_HDR_SZ <= limit
                        && p.plus(CHUNK_HDR_SZ).size() == CHUNK_HDR_SZ
                    {
                        st.in_use_chunks += 1;
                        return Ok(false);
                    }
                    if !fence {
                        return fault("chunk size is below MINSIZE", p.addr());
                    }
                }
                if size > limit - p.addr() {
                    return fault(
                        if holds_top {
                            "chunk overlaps top"
                        } else {
                            "chunk runs past the end of its heap"
                        },
                        p.addr(),
                    );
                }
                if prev.is_null() && head & PREV_INUSE == 0 {
                    return fault("first chunk of a heap has PREV_INUSE clear", p.addr());
                }
                let next = p.plus(size);
                let free = !next.prev_inuse();
                if free && prev_free {
                    return fault("two free chunks are adjacent", p.addr());
                }
                if free && next.prev_size() != size {
                    return fault(
                        "prev_size of the chunk after a free chunk disagrees with its size",
                        p.addr(),
                    );
                }
                if self.main {
                    if head & NON_MAIN_ARENA != 0 {
                        return fault("chunk of the main arena has NON_MAIN_ARENA set", p.addr());
                    }
                } else {
                    // The chunk before the end fencepost of a heap that has a
                    // newer one may be the remains of an old top, which keeps
                    // no arena bit.
                    let old_top_remains = !holds_top && next.addr() == limit;
                    if !free && head & NON_MAIN_ARENA == 0 && !old_top_remains {
                        return fault(
                            "in-use chunk of a thread arena lacks NON_MAIN_ARENA",
                            p.addr(),
                        );
                    }
                }
                if batch.covers(p.addr()) {
                    match batch.find(p.addr()) {
                        Some(REGULAR) if !free => {
                            return fault(
                                "binned chunk is marked in use (PREV_INUSE of the next chunk is set)",
                                p.addr(),
                            );
                        }
                        Some(FAST | CACHED) if free => {
                            return fault(
                                "fastbin or tcache chunk is marked free (PREV_INUSE of the next chunk is clear)",
                                p.addr(),
                            );
                        }
                        None if free => {
                            return fault(
                                "free chunk (PREV_INUSE of the next chunk is clear) is in no bin",
                                p.addr(),
                            );
                        }
                        _ => {}
                    }
                }
                if free {
                    st.free_chunks += 1;
                    st.free_bytes += size;
                } else {
                    st.in_use_chunks += 1;
                    st.in_use_bytes += size;
                }
                prev_free = free;
                prev = p;
                p = next;
            }
        }
    }
}

// ---------------------------------------------------------------------------
// Checking an arena, and all of them
// ---------------------------------------------------------------------------

/// Checks one locked arena (see the module notes); the calling thread's
/// tcache entries in other arenas are read through the kernel. (The
/// library itself checks through `check_all`; tests check single arenas.)
#[cfg_attr(not(test), allow(dead_code))]
pub fn check_arena(av: &Locked) -> Result<Stats, Fault> {
    check_locked(av, false)
}

fn check_locked(g: &Locked, tcache_trusted: bool) -> Check<Stats> {
    let ctx = Ctx::new(g, tcache_trusted)?;
    let mut batch = Batch::new();
    let (lists, walked, walk) = loop {
        batch.len = 0;
        batch.hi = usize::MAX;
        let lists = ctx.lists(&mut |addr, kind| batch.offer(addr, kind))?;
        batch.seal()?;
        let mut walk = Stats::default();
        let walked = ctx.walk(&mut batch, &mut walk)?;
        if walked && let Some(addr) = batch.missing() {
            return fault("listed chunk is not a chunk of the arena's heaps", addr);
        }
        if batch.hi == usize::MAX {
            break (lists, walked, walk);
        }
        batch.lo = batch.hi;
    };
    if walked && (walk.free_chunks, walk.free_bytes) != (lists.free_chunks, lists.free_bytes) {
        return fault(
            "free chunks of the heap walk and of the bins disagree",
            g.arena() as usize,
        );
    }
    // SAFETY: the lock is held; top was checked (or is the fresh arena's
    // fake top, of size 0).
    let top_size = unsafe { ctx.top.size() };
    // The figures mallinfo and malloc_stats report (the lists were checked,
    // so census can follow them).
    let c = g.census();
    if c.fast() != (lists.fast_chunks, lists.fast_bytes) {
        return fault(
            "census of the fastbins disagrees with the heap",
            g.arena() as usize,
        );
    }
    if c.rest(false) != (lists.free_chunks + 1, lists.free_bytes + top_size)
        || c.system_mem != ctx.system_mem
    {
        return fault(
            "census of the bins disagrees with the heap",
            g.arena() as usize,
        );
    }
    Ok(Stats {
        heaps: walk.heaps,
        walked,
        in_use_chunks: walk.in_use_chunks,
        in_use_bytes: walk.in_use_bytes,
        top_size,
        system_mem: ctx.system_mem,
        ..lists
    })
}

/// Chunk regions of every arena, recorded by `check_all` before it reads
/// the calling thread's cache (whose entries may lie in any arena).
struct Regions {
    r: [(usize, usize); 128],
    n: usize,
    /// False when some arena's regions are unknown or did not fit.
    complete: bool,
}

impl Regions {
    fn contains(&self, addr: usize, len: usize) -> bool {
        self.r[..self.n]
            .iter()
            .any(|&(first, end)| first <= addr && addr < end && len <= end - addr)
    }
}

/// Checks that every entry of the calling thread's tcache lies in some
/// arena (reading what lies elsewhere through the kernel); returns how many
/// entries it holds.
fn check_own_tcache(regions: &Regions) -> Check<usize> {
    let mut total = 0;
    // SAFETY: the calling thread's own state and cache; an entry is read
    // directly only inside a region of an arena (where this thread's cached
    // chunk keeps its heap mapped), else through the kernel.
    unsafe {
        let tc = (*tls::thread_state()).tcache;
        if tc.is_null() {
            return Ok(0);
        }
        for idx in 0..TCACHE_MAX_BINS {
            let count = usize::from((*tc).counts[idx]);
            let mut e = (*tc).entries[idx] as usize;
            for _ in 0..count {
                if e == 0 {
                    return fault("tcache list is shorter than its count", tc as usize);
                }
                if !is_aligned(e) {
                    return fault("misaligned tcache entry", e);
                }
                let next = if regions.contains(Chunk::from_mem(e as *mut u8).addr(), 4 * SIZE_SZ) {
                    Chunk::from_mem(e as *mut u8).fd().addr()
                } else if regions.complete {
                    return fault("tcache entry lies outside every arena's heaps", e);
                } else {
                    match sys::read_word_checked(e) {
                        Some(w) => w,
                        None => return fault("tcache entry is not readable", e),
                    }
                };
                e = protect_link(e, Chunk::from_ptr(next as *mut u8)).addr();
                total += 1;
            }
            if e != 0 {
                return fault("tcache list is longer than its count", tc as usize);
            }
        }
    }
    Ok(total)
}

/// Checks every arena (locking each in turn; the caller must hold none),
/// the calling thread's tcache, and, while the process has one thread, the
/// mmap'd-chunk statistics against the record of mappings. While another
/// thread's fork holds the arenas it checks only the arena lists and
/// returns empty totals.
pub fn check_all() -> Result<Totals, Fault> {
    arenas::check_lists().or_else(|(what, addr)| fault(what, addr))?;
    // Another thread's fork holds the arenas (see the `lock` module): this
    // thread must not wait for them, and checks nothing this time.
    let mut forking = false;
    let mut result = Ok(());
    let mut regions = Regions {
        r: [(0, 0); 128],
        n: 0,
        complete: true,
    };
    arenas::for_each_arena(|a| {
        if result.is_err() {
            return;
        }
        // SAFETY: arenas live for the whole process.
        let Some(g) = (unsafe { arena::lock_unless_forking(a) }) else {
            forking = true;
            return;
        };
        match Ctx::new(&g, false) {
            Ok(ctx) => {
                if matches!(ctx.extent, Extent::Unknown) {
                    regions.complete = false;
                }
                let _ = ctx.for_each_region(&mut |first, end, _| {
                    if regions.n < regions.r.len() {
                        regions.r[regions.n] = (first, end);
                        regions.n += 1;
                    } else {
                        regions.complete = false;
                    }
                    Ok(true)
                });
            }
            Err(f) => result = Err(f),
        }
    });
    result?;
    if forking {
        return Ok(Totals::default());
    }
    let cached = check_own_tcache(&regions)?;

    let mut t = Totals::default();
    arenas::for_each_arena(|a| {
        if result.is_err() {
            return;
        }
        // SAFETY: arenas live for the whole process.
        let Some(g) = (unsafe { arena::lock_unless_forking(a) }) else {
            forking = true;
            return;
        };
        match check_locked(&g, true) {
            Ok(s) => {
                t.arenas += 1;
                t.heaps += s.heaps;
                t.in_use_bytes += s.in_use_bytes;
                t.free_bytes += s.free_bytes;
                t.fast_bytes += s.fast_bytes;
                t.tcache_chunks += s.tcache_chunks;
                t.top_bytes += s.top_size;
                t.system_mem += s.system_mem;
            }
            Err(f) => result = Err(f),
        }
    });
    result?;
    if forking {
        return Ok(Totals::default());
    }
    if t.tcache_chunks != cached {
        // SAFETY: the calling thread's own state.
        let tc = unsafe { (*tls::thread_state()).tcache };
        return fault("a tcache entry lies in no arena", tc as usize);
    }
    if sys::single_threaded() {
        let (mut n, mut bytes) = (0usize, 0usize);
        let listed = crate::arena::mmapped::registry::for_each(|_, len| {
            n += 1;
            bytes += len;
        });
        if listed
            && (n != MP.n_mmaps.load(Relaxed) as usize || bytes != MP.mmapped_mem.load(Relaxed))
        {
            return fault("mmap'd-chunk statistics disagree with the mappings made", 0);
        }
    }
    Ok(t)
}

/// After an exported call: check every arena if PTMALLOC_RS_CHECK_HEAP is
/// set (one relaxed load otherwise).
#[inline(always)]
pub fn after(op: &'static str) {
    if CHECK_HEAP.load(Relaxed) {
        check_after(op);
    }
}

/// Runs `check_all`; on a fault prints
/// `ptmalloc-rs: heap check failed after OP: WHAT at 0xADDR` and aborts.
#[cold]
#[inline(never)]
fn check_after(op: &'static str) {
    let _errno = sys::KeepErrno::new();
    if let Err(f) = check_all() {
        let mut out = Out::<256>::new(Sink::Fd(2));
        let _ = writeln!(
            out,
            "ptmalloc-rs: heap check failed after {op}: {} at {:#x}",
            f.what, f.addr
        );
        out.flush();
        sys::abort();
    }
}

#[cfg(test)]
mod tests {
    //! The checker on arenas of its own (as in `crate::tests`), in good
    //! shape and corrupted on purpose: each corruption must be reported.

    use super::*;
    use crate::arena::Arena;

    /// A fresh thread arena in a heap of its own (never freed).
    fn test_arena() -> *mut Arena {
        let room = size_of::<HeapInfo>() + size_of::<Arena>() + MALLOC_ALIGNMENT;
        let h = heap::new_heap(room, 128 * 1024).expect("cannot map a heap");
        // SAFETY: a fresh heap sized for the arena.
        unsafe { arena::create_in_heap(h) }
    }

    fn locked(av: *mut Arena) -> Locked {
        // SAFETY: test arenas are leaked.
        unsafe { arena::lock(av) }
    }

    /// The chunks of a scene with every kind of list in use.
    struct Scene {
        av: *mut Arena,
        /// In use.
        used: Chunk,
        /// In the fastbin of 48-byte chunks.
        fast: Chunk,
        /// In the small bin of 208-byte chunks.
        small: Chunk,
        /// In large bin 64, with `large2` (bigger) before it.
        large: Chunk,
        large2: Chunk,
        /// In the unsorted bin (large).
        unsorted: Chunk,
    }

    /// Builds the scene: every free chunk is kept apart from the others by
    /// an in-use guard, so none merge.
    fn scene() -> Scene {
        let av = test_arena();
        let g = locked(av);
        let guard = || g.malloc(48);
        let used = g.malloc(request2size(100));
        guard();
        let fast = g.malloc(48);
        guard();
        let small = g.malloc(208);
        guard();
        let large = g.malloc(1040);
        guard();
        let large2 = g.malloc(1072);
        guard();
        let unsorted = g.malloc(4000);
        guard();
        for p in [small, large, large2] {
            g.free_chunk(Chunk::from_mem(p));
        }
        // A request nothing fits sorts the unsorted bin into the bins (and
        // would consolidate the fastbins: the fast chunk is freed after).
        g.malloc(8000);
        g.free_chunk(Chunk::from_mem(unsorted));
        g.free_chunk(Chunk::from_mem(fast));
        drop(g);
        Scene {
            av,
            used: Chunk::from_mem(used),
            fast: Chunk::from_mem(fast),
            small: Chunk::from_mem(small),
            large: Chunk::from_mem(large),
            large2: Chunk::from_mem(large2),
            unsorted: Chunk::from_mem(unsorted),
        }
    }

    fn check(av: *mut Arena) -> Check<Stats> {
        check_arena(&locked(av))
    }

    #[track_caller]
    fn assert_fault(av: *mut Arena, what: &str, addr: Chunk) {
        match check(av) {
            Ok(_) => panic!("corruption not found (expected: {what})"),
            Err(f) => {
                assert_eq!(f.what, what, "at {:#x}", f.addr);
                if !addr.is_null() {
                    assert_eq!(f.addr, addr.addr(), "{what}");
                }
            }
        }
    }

    #[test]
    fn a_healthy_arena_passes_and_is_counted() {
        let s = scene();
        let st = check(s.av).expect("healthy arena");
        assert!(st.walked);
        assert_eq!(st.heaps, 1);
        assert_eq!((st.fast_chunks, st.fast_bytes), (1, 48));
        assert_eq!(st.free_chunks, 4);
        assert_eq!(st.free_bytes, 208 + 1040 + 1072 + 4000);
        // SAFETY: the arena is idle.
        unsafe {
            assert_eq!(s.large.size(), 1040);
            assert_eq!(s.unsorted.size(), 4000);
            assert_eq!((*s.av).top.size(), st.top_size);
        }
        let g = locked(s.av);
        let c = g.census();
        assert_eq!(c.fast(), (1, 48));
        assert_eq!(c.rest(false), (5, st.free_bytes + st.top_size));
    }

    #[test]
    fn a_size_that_is_not_a_multiple_of_16_is_found() {
        let s = scene();
        // SAFETY: the test owns the arena; `used` is an in-use chunk.
        unsafe { s.used.set_head(s.used.head() + 8) };
        assert_fault(s.av, "chunk size is not a multiple of 16", s.used);
    }

    #[test]
    fn a_size_that_runs_past_top_is_found() {
        let s = scene();
        // SAFETY: as above.
        unsafe { s.used.set_size_keep_flags(1 << 20) };
        assert_fault(s.av, "chunk overlaps top", s.used);
        let s = scene();
        // SAFETY: the header of a free chunk: a size near the address
        // space's end must not overflow anything.
        unsafe { s.small.set_size_keep_flags(usize::MAX & !ALIGN_MASK) };
        assert_fault(s.av, "binned chunk runs past the end of its heap", s.small);
    }

    #[test]
    fn a_missing_or_stray_flag_is_found() {
        let s = scene();
        // SAFETY: as above.
        unsafe { s.used.set_head(s.used.head() & !NON_MAIN_ARENA) };
        assert_fault(
            s.av,
            "in-use chunk of a thread arena lacks NON_MAIN_ARENA",
            s.used,
        );
        let s = scene();
        // SAFETY: as above.
        unsafe { s.used.set_head(s.used.head() | IS_MMAPPED) };
        assert_fault(s.av, "heap chunk has IS_MMAPPED set", s.used);
    }

    #[test]
    fn a_wrong_prev_size_after_a_free_chunk_is_found() {
        let s = scene();
        // SAFETY: the footer of the free small chunk.
        unsafe { s.small.next().set_prev_size(224) };
        assert_fault(
            s.av,
            "prev_size of the chunk after a free chunk disagrees with its size",
            s.small,
        );
    }

    #[test]
    fn a_free_chunk_marked_in_use_is_found() {
        let s = scene();
        // SAFETY: the next chunk's header (an in-use guard).
        unsafe { s.small.set_prev_inuse_at(208) };
        assert_fault(
            s.av,
            "binned chunk is marked in use (PREV_INUSE of the next chunk is set)",
            s.small,
        );
    }

    #[test]
    fn an_in_use_chunk_marked_free_is_found() {
        let s = scene();
        // SAFETY: the headers of `used` and of the guard after it.
        unsafe {
            let size = s.used.size();
            s.used.clear_prev_inuse_at(size);
            s.used.set_foot(size);
        }
        assert_fault(
            s.av,
            "free chunk (PREV_INUSE of the next chunk is clear) is in no bin",
            s.used,
        );
    }

    #[test]
    fn broken_bin_links_are_found() {
        let s = scene();
        // SAFETY: the links of free chunks.
        unsafe { s.small.set_bk(s.small) };
        assert_fault(
            s.av,
            "bin list is broken: bk does not point to the previous chunk",
            s.small,
        );
        let s = scene();
        // SAFETY: as above.
        unsafe { s.small.set_fd(Chunk::from_ptr(0x10000 as *mut u8)) };
        assert_fault(s.av, "bin link points outside the arena's heaps", s.small);
        let s = scene();
        // SAFETY: as above.
        unsafe { s.unsorted.set_fd_nextsize(s.unsorted) };
        assert_fault(
            s.av,
            "large chunk in the unsorted bin has fd_nextsize set",
            s.unsorted,
        );
    }

    #[test]
    fn broken_large_bin_order_and_nextsize_links_are_found() {
        let s = scene();
        // SAFETY: the nextsize links of the two large-bin chunks.
        unsafe { s.large.set_bk_nextsize(s.large) };
        assert_fault(s.av, "large bin's nextsize links are broken", s.large);
        let s = scene();
        // Swap the two chunks' places in the list (links only): smaller first.
        let g = locked(s.av);
        let bin = g.bin_at(largebin_index(1040));
        // SAFETY: the bin and its two chunks.
        unsafe {
            assert_eq!((bin.fd(), bin.bk()), (s.large2, s.large));
            bin.set_fd(s.large);
            bin.set_bk(s.large2);
            s.large.set_fd(s.large2);
            s.large.set_bk(bin);
            s.large2.set_fd(bin);
            s.large2.set_bk(s.large);
        }
        drop(g);
        assert_fault(
            s.av,
            "large bin is not sorted by size, largest first",
            s.large2,
        );
    }

    #[test]
    fn a_chunk_in_the_wrong_bin_or_off_the_binmap_is_found() {
        let s = scene();
        let g = locked(s.av);
        let (from, to) = (g.bin_at(smallbin_index(208)), g.bin_at(smallbin_index(240)));
        // SAFETY: move the small chunk (alone in its bin) to another small bin.
        unsafe {
            from.set_fd(from);
            from.set_bk(from);
            to.set_fd(s.small);
            to.set_bk(s.small);
            s.small.set_fd(to);
            s.small.set_bk(to);
            let i = smallbin_index(240);
            (*s.av).binmap[idx2block(i)] |= idx2bit(i);
        }
        drop(g);
        assert_fault(s.av, "chunk in a small bin of another size", s.small);
        let s = scene();
        let i = smallbin_index(208);
        // SAFETY: the test owns the arena.
        unsafe { (*s.av).binmap[idx2block(i)] &= !idx2bit(i) };
        assert_fault(s.av, "binmap bit is clear for a non-empty bin", s.small);
    }

    #[test]
    fn fastbin_corruption_is_found() {
        let s = scene();
        // SAFETY: the fastbin chunk's size word.
        unsafe { s.fast.set_size_keep_flags(64) };
        assert_fault(s.av, "fastbin chunk of the wrong size", s.fast);
        let s = scene();
        // SAFETY: its link: a cycle onto itself.
        unsafe { store_fd(s.fast, s.fast) };
        assert_fault(s.av, "chunk is in the fastbins twice", s.fast);
        let s = scene();
        // SAFETY: the test owns the arena.
        unsafe { (*s.av).have_fastchunks = 0 };
        assert_fault(
            s.av,
            "fastbins hold chunks but have_fastchunks is clear",
            Chunk::NULL,
        );
    }

    #[test]
    fn a_listed_chunk_that_is_not_a_chunk_of_the_heap_is_found() {
        let s = scene();
        let g = locked(s.av);
        let big = Chunk::from_mem(g.malloc(512));
        // A well-formed fake free chunk of 64 bytes inside `big`'s user
        // data, alone in its small bin: only the walk can tell.
        let fake = big.plus(64);
        let bin = g.bin_at(smallbin_index(64));
        // SAFETY: everything written lies inside `big`, or is the bin.
        unsafe {
            fake.set_head(64 | PREV_INUSE);
            fake.plus(64).set_prev_size(64);
            fake.plus(64).set_head(64 | PREV_INUSE | NON_MAIN_ARENA);
            fake.clear_prev_inuse_at(64);
            fake.set_fd(bin);
            fake.set_bk(bin);
            bin.set_fd(fake);
            bin.set_bk(fake);
            let i = smallbin_index(64);
            (*s.av).binmap[idx2block(i)] |= idx2bit(i);
        }
        drop(g);
        assert_fault(
            s.av,
            "listed chunk is not a chunk of the arena's heaps",
            fake,
        );
    }

    #[test]
    fn a_top_that_does_not_reach_the_end_of_its_heap_is_found() {
        let s = scene();
        // SAFETY: the test owns the arena.
        unsafe {
            let top = (*s.av).top;
            top.set_size_keep_flags(top.size() - 16);
        }
        assert_fault(s.av, "top does not end where its heap ends", Chunk::NULL);
        let s = scene();
        // SAFETY: as above.
        unsafe {
            (*s.av).system_mem += 4096;
            (*s.av).max_system_mem += 4096;
        }
        assert_fault(
            s.av,
            "system_mem disagrees with the sizes of the arena's heaps",
            Chunk::NULL,
        );
    }

    #[test]
    fn chained_heaps_and_their_fenceposts_pass() {
        let av = test_arena();
        let g = locked(av);
        let nb = request2size(120 * 1024);
        let mut blocks = std::vec::Vec::new();
        let first = heap::heap_for_ptr(av as usize);
        loop {
            let p = g.malloc(nb);
            assert!(!p.is_null());
            blocks.push(p);
            if heap::heap_for_ptr(p as usize) != first {
                break;
            }
        }
        drop(g);
        let st = check(av).expect("two heaps");
        assert_eq!(st.heaps, 2);
        // Free every other block: free chunks in both heaps.
        let g = locked(av);
        for p in blocks.iter().step_by(2) {
            g.free_chunk(Chunk::from_mem(*p));
        }
        drop(g);
        check(av).expect("two heaps with free chunks");
    }

    #[test]
    fn the_calling_threads_tcache_is_checked() {
        // A thread of its own: its arena and cache, made through the API.
        // Its arena is one of the process's, which other tests check at the
        // same time: only the thread's own cache may be corrupted.
        std::thread::spawn(|| {
            // SAFETY: plain C API calls on blocks of our own.
            unsafe {
                let p = crate::api::malloc(40).cast::<u8>();
                let q = crate::api::malloc(40).cast::<u8>();
                crate::api::free(p.cast());
                let t = check_all().expect("healthy");
                assert!(t.tcache_chunks >= 1);
                let c = Chunk::from_mem(p);
                let key = c.bk();
                c.set_bk(Chunk::NULL);
                assert_eq!(
                    check_all().map(|_| ()),
                    fault("tcache entry lost the cache key", c.addr())
                );
                c.set_bk(key);
                // Move the cache's list of 48-byte chunks to the bin of
                // 64-byte ones. (Only the cache is changed: other tests
                // check this thread's arena meanwhile, never its cache.)
                let tc = (*tls::thread_state()).tcache;
                let (from, to) = (csize2tidx(48), csize2tidx(64));
                assert_eq!((*tc).counts[to], 0);
                (*tc).entries.swap(from, to);
                (*tc).counts.swap(from, to);
                assert_eq!(
                    check_all().map(|_| ()),
                    fault("tcache entry of the wrong size", c.addr())
                );
                (*tc).entries.swap(from, to);
                (*tc).counts.swap(from, to);
                check_all().expect("repaired");
                crate::api::free(q.cast());
            }
        })
        .join()
        .expect("tcache checks");
    }
}
