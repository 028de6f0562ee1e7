//! The path of a request of chunk size `nb` through an arena (glibc's
//! `_int_malloc`), in the order the places are tried: its fastbin, its
//! small bin, the unsorted bin (sorting as it goes, exact fits first into
//! the thread's tcache), its large bin's best fit, the next non-empty bin
//! found through the binmap, and last the top chunk, grown when too small
//! (`grow`). Also `calloc`'s part: which bytes of the chunk may already be
//! zero.

use core::sync::atomic::Ordering::Relaxed;

use super::heap;
use super::locked::{Locked, MALLOC_LINK_OUTSIDE, alloc_perturb, perturbing};
use super::tcache::{TcBin, Tcache};
use crate::chunk::bins::*;
use crate::chunk::safelink::reveal_fd;
use crate::chunk::*;
use crate::config::profile;
use crate::config::tunables::{self, MP};
use crate::os::printerr::{assertion_failed, malloc_printerr};
use crate::os::record::{self, how, state};
use crate::os::sys;

/// Most chunks sorted out of the unsorted bin by one request.
const MAX_UNSORTED_ITERS: usize = 10000;

impl Locked {
    // ----------------------------------------------------------------------
    // Handing out a chunk
    // ----------------------------------------------------------------------

    /// Cuts free chunk `victim` (of `size`, off every list) to `nb` bytes and
    /// returns the remainder, which the caller files. Only headers are
    /// written: a remainder that goes to a bin also needs `set_foot` (top has
    /// no footer: nothing follows it).
    #[inline]
    pub(super) fn split(&self, victim: Chunk, size: usize, nb: usize) -> Chunk {
        let rem = victim.plus(nb);
        let rem_size = size - nb;
        // SAFETY: both chunks lie inside `victim`, a free chunk of this arena.
        unsafe {
            victim.set_head(nb | PREV_INUSE | self.arena_bit());
            rem.set_head(rem_size | PREV_INUSE);
        }
        rem
    }

    /// Marks `victim` (off every list, `size` bytes) in use without splitting.
    #[inline]
    fn take_whole(&self, victim: Chunk, size: usize) {
        // SAFETY: `victim` is a free heap chunk of this arena with a next chunk.
        unsafe {
            victim.set_prev_inuse_at(size);
            if !self.is_main() {
                victim.set_head(victim.head() | NON_MAIN_ARENA);
            }
        }
    }

    #[inline]
    pub(super) fn hand_out(&self, victim: Chunk, nb: usize) -> *mut u8 {
        let mem = victim.mem();
        alloc_perturb(mem, nb - SIZE_SZ);
        mem
    }

    // ----------------------------------------------------------------------
    // malloc
    // ----------------------------------------------------------------------

    /// Finds or makes a chunk of at least `nb` bytes (a chunk size from
    /// `request2size`); null when the kernel has nothing more to give.
    pub fn malloc(&self, nb: usize, tc: *mut Tcache) -> *mut u8 {
        // 1. Fastbin of exactly this size.
        if nb <= tunables::max_fast() {
            let idx = fastbin_index(nb);
            // SAFETY: the lock is held; fastbin chunks are this arena's and
            // the revealed link is checked for alignment before use.
            unsafe {
                let fb = self.fastbin(idx);
                let victim = pop_fast(fb, "malloc(): unaligned fastbin chunk detected 2", true);
                if !victim.is_null() {
                    if fastbin_index(victim.size()) != idx {
                        malloc_printerr("malloc(): memory corruption (fast)");
                    }
                    // The fastbin mark (`hardened`) is not the user's to see.
                    if profile::hardened() {
                        victim.set_bk(Chunk::NULL);
                    }
                    // Move the rest of this size into the thread's tcache
                    // while we hold the lock anyway.
                    let stash = stash_target(nb, tc);
                    while let Some((tc, tidx)) = with_room(stash) {
                        let c = pop_fast(fb, "malloc(): unaligned fastbin chunk detected 3", false);
                        if c.is_null() {
                            break;
                        }
                        (*tc).stash(c, tidx, self.av as usize);
                    }
                    record::served(how::FASTBIN);
                    return self.hand_out(victim, nb);
                }
            }
        }

        // 2. Small bin of exactly this size.
        let mut idx;
        if in_smallbin_range(nb) {
            idx = smallbin_index(nb);
            let bin = self.bin_at(idx);
            // SAFETY: small-bin chunks are this arena's; the link is checked.
            unsafe {
                let victim = bin.bk();
                if victim != bin {
                    let bck = victim.bk();
                    self.check_link(bck, MALLOC_LINK_OUTSIDE);
                    if bck.fd() != victim {
                        malloc_printerr("malloc(): smallbin double linked list corrupted");
                    }
                    self.take_whole(victim, nb);
                    bin.set_bk(bck);
                    bck.set_fd(bin);
                    let stash = stash_target(nb, tc);
                    while let Some((tc, tidx)) = with_room(stash) {
                        let c = bin.bk();
                        if c == bin {
                            break;
                        }
                        let bck = c.bk();
                        self.check_link(bck, MALLOC_LINK_OUTSIDE);
                        // glibc 2.36 moves these chunks without checking
                        // their links (the tcache stashing attack works
                        // there); the hardened profile checks them.
                        if profile::hardened() && bck.fd() != c {
                            malloc_printerr("malloc(): smallbin double linked list corrupted");
                        }
                        self.take_whole(c, nb);
                        bin.set_bk(bck);
                        bck.set_fd(bin);
                        (*tc).stash(c, tidx, self.av as usize);
                    }
                    record::served(how::SMALLBIN);
                    return self.hand_out(victim, nb);
                }
            }
        } else {
            idx = largebin_index(nb);
            // SAFETY: the lock is held.
            if unsafe { (*self.av).have_fastchunks.load(Relaxed) } != 0 {
                self.consolidate();
            }
        }

        loop {
            // 3. Sort the unsorted bin, taking an exact fit on the way.
            if let Some(mem) = self.sort_unsorted(nb, tc) {
                return mem;
            }
            // 4. Best fit in the request's own large bin.
            if !in_smallbin_range(nb)
                && let Some(mem) = self.best_fit_in_large_bin(idx, nb)
            {
                return mem;
            }
            // 5. The smallest chunk of a bigger bin.
            if let Some(mem) = self.next_bigger_bin(idx + 1, nb) {
                return mem;
            }
            // 6. Top.
            let top = self.top();
            // SAFETY: top is this arena's (or the initial fake top, size 0).
            let size = unsafe { top.size() };
            if size > self.system_mem() {
                malloc_printerr("malloc(): corrupted top size");
            }
            if size >= nb + MINSIZE {
                let rem = self.split(top, size, nb);
                self.set_top(rem);
                record::served(how::TOP);
                return self.hand_out(top, nb);
            }
            // SAFETY: the lock is held.
            if unsafe { (*self.av).have_fastchunks.load(Relaxed) } != 0 {
                self.consolidate();
                if in_smallbin_range(nb) {
                    idx = smallbin_index(nb);
                }
                continue;
            }
            return self.sysmalloc(nb, tc);
        }
    }

    /// Step 3: empties the unsorted bin (up to MAX_UNSORTED_ITERS chunks),
    /// returning an exact fit or a split of the last remainder.
    fn sort_unsorted(&self, nb: usize, tc: *mut Tcache) -> Option<*mut u8> {
        let unsorted = self.unsorted();
        let mut iters = 0;
        // Exact fits fill the thread's tcache first; one of them is
        // returned when sorting ends.
        let stash = stash_target(nb, tc);
        let mut cached = false;
        let finish = |cached: bool| {
            // SAFETY: `cached` means the bin got at least one chunk here.
            stash.filter(|_| cached).map(|(tc, tidx)| {
                record::served(how::UNSORTED_EXACT);
                // SAFETY: as above.
                unsafe { (*tc).get(tidx) }
            })
        };
        // SAFETY: unsorted chunks are this arena's; every size and link is
        // checked as glibc does before the chunk is moved.
        unsafe {
            loop {
                let victim = unsorted.bk();
                if victim == unsorted {
                    return finish(cached);
                }
                let bck = victim.bk();
                let size = victim.size();
                let next = victim.plus(size);
                if victim.head() <= 2 * SIZE_SZ || size > self.system_mem() {
                    malloc_printerr("malloc(): invalid size (unsorted)");
                }
                if next.head() < 2 * SIZE_SZ || next.head() > self.system_mem() {
                    malloc_printerr("malloc(): invalid next size (unsorted)");
                }
                if next.prev_size() & !SIZE_BITS != size {
                    malloc_printerr("malloc(): mismatching next->prev_size (unsorted)");
                }
                self.check_link(bck, MALLOC_LINK_OUTSIDE);
                if bck.fd() != victim || victim.fd() != unsorted {
                    malloc_printerr("malloc(): unsorted double linked list corrupted");
                }
                if next.prev_inuse() {
                    malloc_printerr("malloc(): invalid next->prev_inuse (unsorted)");
                }

                // A small request and the last remainder alone in the bin:
                // split it, so consecutive small requests sit together.
                if in_smallbin_range(nb)
                    && bck == unsorted
                    && victim == (*self.av).last_remainder
                    && size > nb + MINSIZE
                {
                    let rem = self.split(victim, size, nb);
                    rem.set_foot(size - nb);
                    unsorted.set_fd(rem);
                    unsorted.set_bk(rem);
                    rem.set_fd(unsorted);
                    rem.set_bk(unsorted);
                    if !in_smallbin_range(size - nb) {
                        rem.set_fd_nextsize(Chunk::NULL);
                        rem.set_bk_nextsize(Chunk::NULL);
                    }
                    (*self.av).last_remainder = rem;
                    record::chunk(state::UNSORTED, rem.addr(), size - nb, self.av as usize);
                    record::served(how::LAST_REMAINDER);
                    return Some(self.hand_out(victim, nb));
                }

                unsorted.set_bk(bck);
                bck.set_fd(unsorted);

                if size == nb {
                    self.take_whole(victim, size);
                    if let Some((tc, tidx)) = with_room(stash) {
                        (*tc).stash(victim, tidx, self.av as usize);
                        cached = true;
                        continue;
                    }
                    record::served(how::UNSORTED_EXACT);
                    return Some(self.hand_out(victim, nb));
                }
                self.file_into_bin(victim, size);

                iters += 1;
                if iters >= MAX_UNSORTED_ITERS {
                    return finish(cached);
                }
            }
        }
    }

    /// Step 4: the smallest chunk of at least `nb` in large bin `idx`.
    fn best_fit_in_large_bin(&self, idx: usize, nb: usize) -> Option<*mut u8> {
        let bin = self.bin_at(idx);
        // SAFETY: large-bin chunks are this arena's; `unlink` checks links.
        unsafe {
            let largest = bin.fd();
            if largest == bin || largest.size() < nb {
                return None;
            }
            // Walk up from the smallest size.
            let mut victim = largest.bk_nextsize();
            let span = self.span();
            self.check_link_in(span, victim, MALLOC_LINK_OUTSIDE);
            while victim.size() < nb {
                victim = victim.bk_nextsize();
                self.check_link_in(span, victim, MALLOC_LINK_OUTSIDE);
            }
            // Prefer a chunk that is not on the nextsize list: cheaper unlink.
            if victim != bin.bk() && victim.size() == victim.fd().size() {
                victim = victim.fd();
            }
            record::served(how::LARGE_BEST_FIT);
            Some(self.carve(victim, nb, false, "malloc(): corrupted unsorted chunks"))
        }
    }

    /// Step 5: scans the binmap from bin `idx` upwards for a non-empty bin
    /// and carves the request from its smallest (last) chunk.
    fn next_bigger_bin(&self, mut idx: usize, nb: usize) -> Option<*mut u8> {
        if idx >= NBINS {
            return None;
        }
        let mut block = idx2block(idx);
        // SAFETY: the lock is held; bins and their chunks are this arena's.
        unsafe {
            let mut map = (*self.av).binmap[block];
            let mut bit = idx2bit(idx);
            loop {
                if bit > map || bit == 0 {
                    // Nothing at or above `bit` in this block: next block.
                    loop {
                        block += 1;
                        if block >= BINMAPSIZE {
                            return None;
                        }
                        map = (*self.av).binmap[block];
                        if map != 0 {
                            break;
                        }
                    }
                    idx = block << BINMAPSHIFT;
                    bit = 1;
                }
                while bit & map == 0 {
                    idx += 1;
                    bit <<= 1;
                }
                let bin = self.bin_at(idx);
                let victim = bin.bk();
                if victim == bin {
                    // A stale bit: clear it and go on.
                    map &= !bit;
                    (*self.av).binmap[block] = map;
                    idx += 1;
                    bit <<= 1;
                    continue;
                }
                // Every chunk in a bin past the request's is big enough,
                // unless its size was overwritten: glibc asserts it.
                self.check_link(victim, MALLOC_LINK_OUTSIDE);
                if victim.size() < nb {
                    assertion_failed(
                        "_int_malloc",
                        "(unsigned long) (size) >= (unsigned long) (nb)",
                    );
                }
                record::served(how::BINMAP);
                return Some(self.carve(
                    victim,
                    nb,
                    in_smallbin_range(nb),
                    "malloc(): corrupted unsorted chunks 2",
                ));
            }
        }
    }

    /// Unlinks free chunk `victim` and hands out `nb` bytes of it; a
    /// remainder big enough to be a chunk goes to the unsorted bin (and
    /// becomes the last remainder when `remember` is set).
    #[inline(always)]
    fn carve(&self, victim: Chunk, nb: usize, remember: bool, corrupt_msg: &str) -> *mut u8 {
        // SAFETY: `victim` is a free chunk found in one of this arena's bins.
        let size = unsafe { victim.size() };
        self.unlink(victim);
        if size - nb < MINSIZE {
            self.take_whole(victim, size);
        } else {
            let rem = self.split(victim, size, nb);
            // SAFETY: the remainder lies inside `victim`, which is ours.
            unsafe { rem.set_foot(size - nb) };
            self.push_unsorted(rem, size - nb, corrupt_msg);
            if remember {
                // SAFETY: the lock is held.
                unsafe { (*self.av).last_remainder = rem };
            }
        }
        self.hand_out(victim, nb)
    }

    // ----------------------------------------------------------------------
    // calloc, realloc, memalign
    // ----------------------------------------------------------------------

    /// malloc for calloc: returns the memory and how many of its first bytes
    /// may hold old data and need clearing (memory fresh from the kernel is
    /// already zero).
    pub fn calloc(&self, nb: usize, tc: *mut Tcache) -> (*mut u8, usize) {
        let old_top = self.top();
        // SAFETY: top is this arena's (or the fake initial top, size 0).
        let mut old_top_size = unsafe { old_top.size() };
        if self.is_main() && self.contiguous() {
            // Below the highest break ever reached, memory may have been
            // used (and trimmed, or merged into top) before.
            // SAFETY: the lock is held.
            let high = MP.sbrk_base.load(Relaxed) + unsafe { (*self.av).max_system_mem };
            old_top_size = old_top_size.max(high.saturating_sub(old_top.addr()));
        } else if !self.is_main() {
            // Pages a heap ever had read-write may hold old data (a
            // shrink makes them PROT_NONE and zero again).
            let h = heap::heap_for_ptr(old_top.addr());
            // SAFETY: the lock is held; top's heap header is ours.
            let rw_end = h as usize + unsafe { (*h).mprotect_size };
            old_top_size = old_top_size.max(rw_end.saturating_sub(old_top.addr()));
        } else {
            old_top_size = usize::MAX;
        }
        // SAFETY: the lock is held.
        unsafe { (*self.av).calloc_running = 1 };
        let mem = self.malloc(nb, tc);
        // SAFETY: as above.
        unsafe { (*self.av).calloc_running = 0 };
        if mem.is_null() {
            return (mem, 0);
        }
        let p = Chunk::from_mem(mem);
        // SAFETY: `p` was just handed out by this arena or mapped.
        unsafe {
            if p.is_mmapped() {
                return (
                    mem,
                    if perturbing() {
                        p.size() - CHUNK_HDR_SZ
                    } else {
                        0
                    },
                );
            }
            let mut csz = p.size();
            if !perturbing() && p == old_top && csz > old_top_size {
                csz = old_top_size;
            }
            (mem, csz - SIZE_SZ)
        }
    }
}

/// The requesting thread's cache `tc` (null: none) and its bin for chunk
/// size `nb`, when chunks of that size may be stashed there.
#[inline]
fn stash_target(nb: usize, tc: *mut Tcache) -> Option<(*mut Tcache, TcBin)> {
    if tc.is_null() {
        return None;
    }
    TcBin::of_size(nb).map(|b| (tc, b))
}

/// The stash target, if its bin has room for one more chunk.
#[inline]
fn with_room(stash: Option<(*mut Tcache, TcBin)>) -> Option<(*mut Tcache, TcBin)> {
    // SAFETY: a stash target's cache is the requesting thread's, which is
    // the one running this request.
    stash.filter(|&(tc, b)| unsafe { (*tc).has_room(b) })
}

/// Takes the top chunk of fastbin `fb` (null when empty), with the arena's
/// lock held: only lock holders pop, while other threads may push, hence
/// the compare-and-swap. The chunk must be aligned (`misaligned`: glibc's
/// message for this place); with `check_next` and threads about (glibc's
/// lock-free pop), so must the one below it.
///
/// # Safety
/// The caller holds the lock of the fastbin's arena.
#[inline]
unsafe fn pop_fast(fb: &AtomicChunk, misaligned: &str, check_next: bool) -> Chunk {
    let mut victim = fb.load();
    loop {
        if victim.is_null() {
            return victim;
        }
        if !is_aligned(victim.addr()) {
            malloc_printerr(misaligned);
        }
        // SAFETY: a chunk on the fastbin (aligned, checked above): its fd
        // word is the list's, and no other thread pops.
        let next = unsafe { reveal_fd(victim) };
        if check_next && !next.is_null() && !is_aligned(next.addr()) && !sys::single_threaded() {
            malloc_printerr("malloc(): unaligned fastbin chunk detected");
        }
        match fb.compare_exchange(victim, next) {
            Ok(_) => return victim,
            Err(now) => victim = now,
        }
    }
}
