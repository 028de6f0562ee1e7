//! Where an arena's chunks may lie (its extent: a thread arena's heap chain,
//! the main arena's brk area) and the checks on single chunks the lists and
//! the walk share: the checker's context, `Ctx`, made once per arena.

use core::sync::atomic::Ordering::Relaxed;

use super::batch::InUseFaults;
use super::fault::{Check, fault};
use crate::arena::heap::{self, HEAP_MAX_SIZE, HeapInfo};
use crate::arena::{locked::Locked, state::Arena, state::NONCONTIGUOUS_BIT, state::main_arena};
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::tunables::MP;

// ---------------------------------------------------------------------------
// An arena's extent
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
pub(super) enum Extent {
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
pub(super) struct Ctx<'a> {
    pub(super) g: &'a Locked,
    pub(super) av: *mut Arena,
    pub(super) main: bool,
    pub(super) top: Chunk,
    pub(super) extent: Extent,
    pub(super) system_mem: usize,
    /// Longest list the arena's memory can hold (a cycle guard).
    pub(super) max_chunks: usize,
    /// Whether the calling thread's tcache entries outside this arena may
    /// be read directly (`check_all` checked that they lie in arenas).
    pub(super) tcache_trusted: bool,
}

impl<'a> Ctx<'a> {
    /// Finds and checks the arena's extent and top.
    pub(super) fn new(g: &'a Locked, tcache_trusted: bool) -> Check<Ctx<'a>> {
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
            if heap::first_heap_of(av) != h {
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
            let first = heap::first_chunk(h).addr();
            (first, heap::heap_end(h))
        }
    }

    /// Calls `f(first, end, holds_top)` for each chunk region.
    pub(super) fn for_each_region(
        &self,
        f: &mut dyn FnMut(usize, usize, bool) -> Check<bool>,
    ) -> Check<bool> {
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
    pub(super) fn contains(&self, addr: usize, len: usize) -> bool {
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
    pub(super) fn arena_bit(&self) -> usize {
        if self.main { 0 } else { NON_MAIN_ARENA }
    }

    /// What fastbin and tcache chunks share: they look in use. `c` (whose
    /// header lies in the arena) must lie wholly in its heap, carry the
    /// arena's flags, and have PREV_INUSE set in the next chunk.
    ///
    /// # Safety
    /// The lock is held and `c`'s header was found inside the arena.
    pub(super) unsafe fn check_looks_in_use(
        &self,
        c: Chunk,
        head: usize,
        m: &InUseFaults,
    ) -> Check {
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
}
