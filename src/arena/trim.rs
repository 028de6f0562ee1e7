//! Giving memory back: the main arena lowers the brk when top passes the
//! trim threshold (glibc's `systrim`); a thread arena unmaps heaps that
//! became entirely free and shrinks the last one (`heap_trim`); and
//! `malloc_trim` releases the free pages inside every bin as well.
//!
//! The `fast` profile gives the main heap's top back only once the heap has
//! not grown for `FAST_TRIM_DELAY_NS`: a program that frees and allocates
//! big blocks in turn would otherwise lower and raise the break again and
//! again, every page it gets back costing a fault. (`malloc_trim` trims at
//! once, as in every profile, and so does a trim threshold the program set.)

use crate::os::record;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::Relaxed;

use super::heap;
use super::locked::Locked;
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::tunables::MP;
use crate::os::printerr::assertion_failed;
use crate::os::sys;
use crate::os::trace::trace;

/// How long the main heap must not have grown before the `fast` profile
/// trims its top.
pub const FAST_TRIM_DELAY_NS: u64 = 1_000_000_000;

/// When the main heap last grew (the monotonic clock, ns), for the `fast`
/// profile's delayed trim.
static MAIN_GREW_AT: AtomicU64 = AtomicU64::new(0);

/// The main heap grew now (`fast` profile).
pub(super) fn main_grew() {
    MAIN_GREW_AT.store(sys::monotonic_ns(), Relaxed);
}

/// Whether the `fast` profile may trim the main heap's top now.
pub(super) fn main_trim_due() -> bool {
    sys::monotonic_ns().wrapping_sub(MAIN_GREW_AT.load(Relaxed)) >= FAST_TRIM_DELAY_NS
}

impl Locked {
    /// After a big free in a thread arena: unmap heaps that have become
    /// entirely free (never the arena's first), then give back the top's
    /// pages beyond `pad` if top passed the trim threshold.
    pub(super) fn heap_trim(&self, pad: usize) -> bool {
        let mut top = self.top();
        // SAFETY: the lock is held; heaps are found by masking top and by
        // `prev` links this arena wrote; the fencepost is checked before the
        // chunks before it are trusted.
        unsafe {
            let mut h = heap::heap_for_ptr(top.addr());
            let page = (*h).pagesize;
            while !(*h).prev.is_null() && top == heap::first_chunk(h) {
                // The whole heap is top: fold back into the previous heap,
                // whose end holds the fencepost grow_thread_heap wrote.
                let prev_heap = (*h).prev;
                let prev_end = heap::heap_end(prev_heap);
                let fence = Chunk::fencepost_before(prev_end);
                if fence.head() != PREV_INUSE {
                    // glibc's assertion here, with its text.
                    assertion_failed("heap_trim", "chunksize_nomask (p) == (0 | PREV_INUSE)");
                }
                let mut p = fence.minus(fence.prev_size());
                // The chunk before the fencepost, to the heap's end.
                let mut new_size = prev_end - p.addr();
                if !p.prev_inuse() {
                    new_size += p.prev_size();
                }
                if new_size + (heap::HEAP_MAX_SIZE - (*prev_heap).size) < pad + MINSIZE + page {
                    break;
                }
                (*self.av).system_mem -= (*h).size;
                record::did(record::did::TRIMMED);
                record::heap(2, h as usize, 0, self.av as usize);
                trace(format_args!(
                    "munmap {h:p}  thread arena {:p}: heap entirely free, given back",
                    self.av
                ));
                heap::delete_heap(h);
                h = prev_heap;
                // Top into the heap that stays before anything else runs:
                // `check_link` (in `unlink`) finds the arena's span from it.
                self.set_top(p);
                if !p.prev_inuse() {
                    p = p.minus(p.prev_size());
                    self.unlink(p);
                }
                top = p;
                top.set_head(new_size | PREV_INUSE);
                self.set_top(top);
            }

            let top_size = top.size();
            if top_size < MP.trim_threshold.load(Relaxed) {
                return false;
            }
            let Some(top_area) = top_size.checked_sub(MINSIZE + 1) else {
                return false;
            };
            if top_area <= pad {
                return false;
            }
            let extra = align_down(top_area - pad, page);
            if extra != 0 {
                record::did(record::did::TRIMMED);
                trace(format_args!(
                    "madvise+mprotect -{extra:#x}  thread heap {h:p}: top ({top_size} bytes) passed the trim threshold"
                ));
            }
            if extra == 0 || !heap::shrink_heap(h, extra) {
                return false;
            }
            (*self.av).system_mem -= extra;
            top.set_head((top_size - extra) | PREV_INUSE);
        }
        true
    }

    /// Gives the top of a contiguous main arena back to the kernel with a
    /// negative sbrk, keeping `pad` bytes; true if anything was released.
    pub fn systrim(&self, pad: usize) -> bool {
        let page = sys::page_size();
        let top = self.top();
        // SAFETY: top is this arena's.
        let top_size = unsafe { top.size() };
        let Some(top_area) = top_size.checked_sub(MINSIZE + 1) else {
            return false;
        };
        if top_area <= pad {
            return false;
        }
        let extra = align_down(top_area - pad, page);
        if extra == 0 {
            return false;
        }
        // Only if the break is still where our top ends (nobody else moved it).
        if sys::sbrk_by(0) != Some(top.plus(top_size).as_ptr()) {
            return false;
        }
        record::did(record::did::TRIMMED);
        trace(format_args!(
            "brk -{extra:#x}  main arena: top ({top_size} bytes) passed the trim threshold, keeping {pad} bytes of pad"
        ));
        let _ = sys::sbrk_by(-(extra as isize));
        let Some(new_brk) = sys::sbrk_by(0) else {
            return false;
        };
        let released = (top.addr() + top_size).wrapping_sub(new_brk as usize);
        if released == 0 || released > extra {
            return false;
        }
        // SAFETY: the lock is held; top's header is still ours.
        unsafe {
            (*self.av).system_mem -= released;
            top.set_head((top_size - released) | PREV_INUSE);
        }
        true
    }

    /// malloc_trim for one arena: consolidate, give back every whole page
    /// inside free chunks (MADV_DONTNEED), and for the main arena also trim
    /// top down to `pad`. True if anything was released.
    pub fn trim(&self, pad: usize) -> bool {
        self.consolidate();
        let page = sys::page_size();
        let header = 6 * SIZE_SZ; // a free chunk's header and links stay
        let mut released = false;
        for i in 1..NBINS {
            if i != UNSORTED && i < bin_index(page) {
                continue;
            }
            let bin = self.bin_at(i);
            // SAFETY: the lock is held; the chunks are this arena's free
            // chunks, and only whole pages strictly inside them (past their
            // links, before their footer) are discarded.
            unsafe {
                let mut p = bin.bk();
                while p != bin {
                    let size = p.size();
                    if size > page - 1 + header {
                        let first = align_up(p.addr() + header, page);
                        let rest = size - (first - p.addr());
                        if rest > page - 1 {
                            trace(format_args!(
                                "madvise {first:#x} {:#x}  malloc_trim: whole pages inside a free {size}-byte chunk",
                                align_down(rest, page)
                            ));
                            sys::discard(first as *mut u8, align_down(rest, page));
                            released = true;
                        }
                    }
                    p = p.bk();
                }
            }
        }
        let _errno = sys::KeepErrno::new();
        (self.is_main() && self.systrim(pad)) || released
    }
}
