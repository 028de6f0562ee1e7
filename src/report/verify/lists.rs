//! Every list of an arena, followed link by link: fastbins, the unsorted,
//! small and large bins (with the large bins' size order and nextsize
//! ring, and the binmap), and the calling thread's tcache.

use super::batch::{CACHED, FAST, FASTBIN_FAULTS, REGULAR, TCACHE_FAULTS};
use super::extent::{Ctx, Extent};
use super::fault::{Check, Stats, fault};
use crate::chunk::bins::TCACHE_MAX_BINS;
use crate::chunk::bins::csize2tidx;
use crate::chunk::bins::*;
use crate::chunk::safelink::{protect, reveal_fd};
use crate::chunk::*;
use crate::os::sys;
use crate::thread::tls;

impl Ctx<'_> {
    // -----------------------------------------------------------------------
    // The lists
    // -----------------------------------------------------------------------

    /// Checks every list and calls `f(chunk, kind)` for each listed chunk:
    /// fastbins, bins, and the calling thread's tcache entries in this
    /// arena. Returns the counts.
    pub(super) fn lists(&self, f: &mut dyn FnMut(usize, usize) -> Check) -> Check<Stats> {
        let mut st = Stats::default();
        self.fastbins(&mut st, f)?;
        for i in 1..NBINS {
            self.bin(i, &mut st, f)?;
        }
        self.tcache(&mut st, f)?;
        Ok(st)
    }

    pub(super) fn fastbins(
        &self,
        st: &mut Stats,
        f: &mut dyn FnMut(usize, usize) -> Check,
    ) -> Check {
        let av = self.av;
        // SAFETY: the lock is held; every chunk is checked to lie inside
        // the arena (header and links, then its whole size and the next
        // header) before it is read.
        unsafe {
            for idx in 0..NFASTBINS {
                let mut p = (*av).fastbins[idx].load();
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
            if st.fast_chunks != 0
                && (*av)
                    .have_fastchunks
                    .load(core::sync::atomic::Ordering::Relaxed)
                    == 0
            {
                return fault(
                    "fastbins hold chunks but have_fastchunks is clear",
                    av as usize,
                );
            }
        }
        Ok(())
    }

    /// Bin `i` (unsorted, small or large).
    pub(super) fn bin(
        &self,
        i: usize,
        st: &mut Stats,
        f: &mut dyn FnMut(usize, usize) -> Check,
    ) -> Check {
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
    pub(super) fn tcache(&self, st: &mut Stats, f: &mut dyn FnMut(usize, usize) -> Check) -> Check {
        // SAFETY: the calling thread's own state and cache. Entries in this
        // arena are checked to lie inside it before they are read; others
        // are read directly only when `check_all` has checked that they lie
        // in some arena, else through the kernel.
        unsafe {
            walk_own_tcache(|idx, e| {
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
                    if c.bk().addr() != crate::chunk::safelink::key() {
                        return fault("tcache entry lost the cache key", c.addr());
                    }
                    f(c.addr(), CACHED)?;
                    st.tcache_chunks += 1;
                    st.tcache_bytes += size;
                }
                Ok(next)
            })?;
        }
        Ok(())
    }
}

/// Walks the calling thread's tcache: every list as long as its count, its
/// entries aligned, none left after the count. `f(bin, entry)` checks an
/// entry and returns its stored (safe-linked) next word, read as it sees
/// fit. Returns how many entries there are.
///
/// # Safety
/// `f` must read an entry only where it is sure the memory is there.
pub(super) unsafe fn walk_own_tcache(
    mut f: impl FnMut(usize, usize) -> Check<usize>,
) -> Check<usize> {
    // SAFETY: the calling thread's own state and cache (its arrays are
    // read, the entries only by `f`).
    unsafe {
        let tc = (*tls::thread_state()).tcache;
        if tc.is_null() {
            return Ok(0);
        }
        let mut total = 0;
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
                e = protect(e, f(idx, e)?);
                total += 1;
            }
            if e != 0 {
                return fault("tcache list is longer than its count", tc as usize);
            }
        }
        Ok(total)
    }
}
