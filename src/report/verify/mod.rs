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

mod batch;
mod extent;
pub mod fault;
mod lists;
mod walk;

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use crate::arena::{self, locked::Locked};
use crate::chunk::*;
use crate::config::tunables::{CHECK_HEAP, MP};
use crate::os::sys;
use crate::os::text::{Out, Sink};
use crate::thread::arenas;
use crate::thread::tls;
use batch::Batch;
use extent::{Ctx, Extent};
use fault::{Check, fault};
pub use fault::{Fault, Stats, Totals};

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
    // Where other threads' frees push onto fastbins without the lock (see
    // `arena::free::lock_free_pushes`), the bins can only have grown since
    // the lists were walked: pops and consolidation need the lock we hold.
    let (fast_chunks, fast_bytes) = c.fast();
    let fast_ok = if crate::arena::free::lock_free_pushes() {
        fast_chunks >= lists.fast_chunks && fast_bytes >= lists.fast_bytes
    } else {
        (fast_chunks, fast_bytes) == (lists.fast_chunks, lists.fast_bytes)
    };
    if !fast_ok {
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
        self.r
            .get(..self.n)
            .unwrap_or_default()
            .iter()
            .any(|&(first, end)| first <= addr && addr < end && len <= end - addr)
    }
}

/// Checks that every entry of the calling thread's tcache lies in some
/// arena (reading what lies elsewhere through the kernel); returns how many
/// entries it holds.
fn check_own_tcache(regions: &Regions) -> Check<usize> {
    // SAFETY: an entry is read directly only inside a region of an arena
    // (where this thread's cached chunk keeps its heap mapped), else through
    // the kernel.
    unsafe {
        lists::walk_own_tcache(|_, e| {
            if regions.contains(Chunk::from_mem(e as *mut u8).addr(), 4 * SIZE_SZ) {
                Ok(Chunk::from_mem(e as *mut u8).fd().addr())
            } else if regions.complete {
                fault("tcache entry lies outside every arena's heaps", e)
            } else {
                sys::read_word_checked(e)
                    .map_or_else(|| fault("tcache entry is not readable", e), Ok)
            }
        })
    }
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
    let mut regions = Regions {
        r: [(0, 0); 128],
        n: 0,
        complete: true,
    };
    each_locked(&mut forking, |g| {
        let ctx = Ctx::new(g, false)?;
        if matches!(ctx.extent, Extent::Unknown) {
            regions.complete = false;
        }
        let _ = ctx.for_each_region(&mut |first, end, _| {
            if let Some(slot) = regions.r.get_mut(regions.n) {
                *slot = (first, end);
                regions.n += 1;
            } else {
                regions.complete = false;
            }
            Ok(true)
        });
        Ok(())
    })?;
    if forking {
        return Ok(Totals::default());
    }
    let cached = check_own_tcache(&regions)?;

    let mut t = Totals::default();
    each_locked(&mut forking, |g| {
        let s = check_locked(g, true)?;
        t.arenas += 1;
        t.heaps += s.heaps;
        t.in_use_bytes += s.in_use_bytes;
        t.free_bytes += s.free_bytes;
        t.fast_bytes += s.fast_bytes;
        t.tcache_chunks += s.tcache_chunks;
        t.top_bytes += s.top_size;
        t.system_mem += s.system_mem;
        Ok(())
    })?;
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

/// Calls `f` with every arena, locked, up to the first fault, which it
/// returns; an arena that another thread's fork holds is skipped and sets
/// `forking` (this thread must not wait for it).
fn each_locked(forking: &mut bool, mut f: impl FnMut(&Locked) -> Check) -> Check {
    let mut result = Ok(());
    arenas::for_each_arena(|a| {
        if result.is_err() {
            return;
        }
        // SAFETY: arenas live for the whole process.
        match unsafe { arena::locked::lock_unless_forking(a) } {
            Some(g) => result = f(&g),
            None => *forking = true,
        }
    });
    result
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
