//! Freeing a chunk into an arena (glibc's `_int_free` once the tcache is
//! full or skipped): small chunks go to their fastbin unmerged; others merge
//! with free neighbours and go to the unsorted bin, or into top, after which
//! a big enough top is trimmed. `consolidate` merges the fastbins' chunks
//! (glibc's `malloc_consolidate`), before large requests and trims.

use crate::os::record::{self, did};
use core::sync::atomic::Ordering::Relaxed;

use super::locked::{Locked, fastbin_of, free_perturb};
use super::state::Arena;
use super::tcache::{TcBin, Tcache};
use crate::chunk::bins::*;
use crate::chunk::safelink::{has_fastbin_mark, reveal_fd, set_fastbin_mark, store_fd};
use crate::chunk::*;
use crate::config::profile;
use crate::config::tunables::{self, MP};
use crate::os::printerr::{malloc_printerr, misuse};
use crate::os::sys;

impl Locked {
    // ----------------------------------------------------------------------
    // free
    // ----------------------------------------------------------------------

    /// Frees heap chunk `p` of this arena (not an mmap'd one). A misuse
    /// found before anything changes (see `check`) ends the call.
    pub fn free_chunk(&self, p: Chunk) {
        // SAFETY: `p` was handed out by this arena (the caller found its arena
        // from its header); its neighbours are checked before being trusted.
        unsafe {
            let size = p.size();
            if size < MINSIZE || !is_aligned(size) {
                return misuse("free(): invalid size");
            }
            if size <= tunables::max_fast() {
                let next_head = p.plus(size).head();
                if next_head <= 2 * SIZE_SZ || next_head & !SIZE_BITS >= self.system_mem() {
                    return misuse("free(): invalid next size (fast)");
                }
                let idx = fastbin_index(size);
                let fb = self.fastbin(idx);
                if fb.load() == p {
                    return misuse("double free or corruption (fasttop)");
                }
                // Beyond glibc (`hardened`): a chunk already deeper in the
                // fastbin (the a, b, a double free) carries the fastbin mark.
                let hardened = profile::hardened();
                if hardened && has_fastbin_mark(p) && self.fastbin_holds(idx, p) {
                    return misuse("free(): double free detected in fastbin");
                }
                free_perturb(p.mem(), size - CHUNK_HDR_SZ);
                (*self.av).have_fastchunks.store(1, Relaxed);
                if hardened {
                    set_fastbin_mark(p);
                }
                // Other threads may push at once (see `free_fast_unlocked`).
                let Some(old) = push_fast(fb, p) else {
                    return misuse("double free or corruption (fasttop)");
                };
                // With the lock held, the chunk below may be looked at.
                if !old.is_null() && fastbin_index(old.size()) != idx {
                    malloc_printerr("invalid fastbin entry (free)");
                }
                record::chunk(record::state::FAST, p.addr(), size, self.av as usize);
                return;
            }
            self.free_merging(p, size);
        }
    }

    /// glibc's `_int_free` for a chunk the arena itself gives up (the tail of
    /// a shrinking realloc, the old block of a moving one, memalign's lead
    /// and tail, an old top fenced off): into the requesting thread's cache
    /// `tc` when its bin has room, as glibc's does (it shapes the layout
    /// that follows), else into the arena.
    pub(super) fn free_internal(&self, p: Chunk, tc: *mut Tcache) {
        // SAFETY: `p` is a chunk this arena just cut out, header written;
        // a non-null `tc` is the requesting thread's own cache.
        unsafe {
            if !tc.is_null()
                && let Some(bin) = TcBin::of_size(p.size())
                && (*tc).has_room(bin)
            {
                (*tc).stash(p, bin, self.av as usize);
                return;
            }
        }
        self.free_chunk(p);
    }

    /// Whether fastbin `idx` holds `p` (walked when a freed chunk carries
    /// the fastbin mark, which its user data may also hold by chance).
    ///
    /// # Safety
    /// The lock is held.
    unsafe fn fastbin_holds(&self, idx: usize, p: Chunk) -> bool {
        // SAFETY: forwarded from the caller; links are checked for alignment
        // before they are followed.
        unsafe {
            let mut c = self.fastbin(idx).load();
            while !c.is_null() && is_aligned(c.addr()) {
                if c == p {
                    return true;
                }
                c = reveal_fd(c);
            }
        }
        false
    }

    /// The non-fastbin part of free: merge with free neighbours and top,
    /// file in the unsorted bin, and consolidate/trim after a big free.
    fn free_merging(&self, p: Chunk, size: usize) {
        // SAFETY: as in `free_chunk`.
        unsafe {
            let next = p.plus(size);
            if p == self.top() {
                return misuse("double free or corruption (top)");
            }
            if self.contiguous() && next.addr() >= self.top().addr() + self.top().size() {
                return misuse("double free or corruption (out)");
            }
            if !next.prev_inuse() {
                return misuse("double free or corruption (!prev)");
            }
            let next_size = next.size();
            if next.head() <= 2 * SIZE_SZ || next_size >= self.system_mem() {
                return misuse("free(): invalid next size (normal)");
            }
            free_perturb(p.mem(), size - CHUNK_HDR_SZ);

            let size = self.coalesce(
                p,
                size,
                "corrupted size vs. prev_size while consolidating",
                "free(): corrupted unsorted chunks",
            );

            if size >= FASTBIN_CONSOLIDATION_THRESHOLD {
                if (*self.av).have_fastchunks.load(Relaxed) != 0 {
                    self.consolidate();
                }
                let _errno = sys::KeepErrno::new();
                if !self.is_main() {
                    // Even a small top may mean a whole heap can go.
                    self.heap_trim(MP.top_pad.load(Relaxed));
                } else if self.top().size() >= MP.trim_threshold.load(Relaxed)
                    && (!profile::fast()
                        || MP.no_dyn_threshold.load(Relaxed) != 0
                        || super::trim::main_trim_due())
                {
                    self.systrim(MP.top_pad.load(Relaxed));
                }
            }
        }
    }

    /// Merges chunk `p` (being freed, `size` bytes, checked by the caller)
    /// with a free previous chunk and a free next chunk, or with top, and
    /// files the result in the unsorted bin; returns the merged size.
    #[inline(always)]
    fn coalesce(&self, mut p: Chunk, mut size: usize, prev_msg: &str, unsorted_msg: &str) -> usize {
        // SAFETY: `p` is a chunk of this arena being freed; its neighbours
        // are found from sizes the caller checked, and every list link is
        // checked by `unlink`/`push_unsorted` before it is rewritten.
        unsafe {
            let next = p.plus(size);
            let next_size = next.size();
            if !p.prev_inuse() {
                let prev_size = p.prev_size();
                size += prev_size;
                p = p.minus(prev_size);
                if p.size() != prev_size {
                    malloc_printerr(prev_msg);
                }
                self.unlink(p);
            }
            if next != self.top() {
                if !next.inuse_at(0) {
                    self.unlink(next);
                    size += next_size;
                } else {
                    next.clear_prev_inuse_at(0);
                }
                self.push_unsorted(p, size, unsorted_msg);
                p.set_head(size | PREV_INUSE);
                p.set_foot(size);
            } else {
                size += next_size;
                p.set_head(size | PREV_INUSE);
                self.set_top(p);
            }
            size
        }
    }

    /// Empties every fastbin, merging each chunk with its free neighbours
    /// (or top) and filing the result in the unsorted bin.
    pub fn consolidate(&self) {
        // SAFETY: the lock is held; fastbin chunks are this arena's and are
        // checked (alignment, size class) before their neighbours are used.
        unsafe {
            (*self.av).have_fastchunks.store(0, Relaxed);
            record::did(did::CONSOLIDATED);
            for idx in 0..NFASTBINS {
                // Taken whole: pushes made meanwhile start a new list.
                let mut p = self.fastbin(idx).swap(Chunk::NULL);
                while !p.is_null() {
                    if !is_aligned(p.addr()) {
                        malloc_printerr("malloc_consolidate(): unaligned fastbin chunk detected");
                    }
                    if fastbin_index(p.size()) != idx {
                        malloc_printerr("malloc_consolidate(): invalid chunk size");
                    }
                    let next_p = reveal_fd(p);
                    self.coalesce(
                        p,
                        p.size(),
                        "corrupted size vs. prev_size in fastbins",
                        "malloc_consolidate(): corrupted unsorted chunks",
                    );
                    p = next_p;
                }
            }
        }
    }
}

/// Pushes chunk `p` onto fastbin `fb` (safe-linked), by compare-and-swap:
/// other threads may push at once. Returns the chunk it now sits on, or
/// `None` (nothing changed) when `p` is already on top: a double free.
///
/// # Safety
/// `p` is a chunk of the fastbin's arena given up by its user.
#[inline]
unsafe fn push_fast(fb: &AtomicChunk, p: Chunk) -> Option<Chunk> {
    let mut old = fb.load();
    loop {
        if old == p {
            return None;
        }
        // SAFETY: forwarded from the caller: `p`'s fd word is ours.
        unsafe { store_fd(p, old) };
        match fb.compare_exchange(old, p) {
            Ok(_) => return Some(old),
            Err(now) => old = now,
        }
    }
}

/// Whether frees of fastbin-sized chunks into another thread's arena may
/// push without the arena's lock (`free_fast_unlocked`): in a process with
/// threads, in the default profile (the hardened one's a-b-a check walks
/// the bin), unless the heap checker runs after every call (its counts
/// must not move under it).
#[inline]
pub fn lock_free_pushes() -> bool {
    !sys::single_threaded() && !profile::hardened() && !tunables::CHECK_HEAP.load(Relaxed)
}

/// glibc's `_int_free` of a fastbin-sized chunk in a process with threads
/// (default profile): pushed onto arena `av`'s fastbin without its lock,
/// with the checks glibc makes there (the next chunk's size against the
/// arena's memory, read without the lock; the bin's top). False when a
/// check needs the lock to tell (the caller frees the chunk the locked
/// way, which checks again). True when the chunk is in the bin or a misuse
/// was reported.
///
/// # Safety
/// `p` is a heap chunk of arena `av` (found from its header), of `size`
/// bytes, at most `max_fast()`, given up by its user.
pub unsafe fn free_fast_unlocked(av: *mut Arena, p: Chunk, size: usize) -> bool {
    // SAFETY: forwarded from the caller; `system_mem` is read without the
    // lock as glibc reads it here, only as a bound for a sanity check (a
    // stale value sends the free to the locked path, which looks again).
    unsafe {
        let next_head = p.plus(size).head();
        let system_mem = (*(&raw const (*av).system_mem).cast::<core::sync::atomic::AtomicUsize>())
            .load(Relaxed);
        if next_head <= 2 * SIZE_SZ || next_head & !SIZE_BITS >= system_mem {
            return false;
        }
        let fb = fastbin_of(av, fastbin_index(size));
        if fb.load() == p {
            misuse("double free or corruption (fasttop)");
            return true;
        }
        free_perturb(p.mem(), size - CHUNK_HDR_SZ);
        (*av).have_fastchunks.store(1, Relaxed);
        if push_fast(fb, p).is_none() {
            misuse("double free or corruption (fasttop)");
        } else {
            record::chunk(record::state::FAST, p.addr(), size, av as usize);
        }
    }
    true
}
