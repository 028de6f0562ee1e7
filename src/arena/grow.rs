//! Growing an arena when its top chunk is too small (glibc's `sysmalloc`):
//! the main arena extends the brk heap (falling back to mappings when brk
//! fails, after which it is no longer contiguous); a thread arena extends
//! its heap with mprotect or starts a new heap. A request at or above the
//! mmap threshold gets a mapping of its own instead (`mmapped`). The old
//! top, when the new memory does not follow it, is fenced and freed.

use crate::os::record;
use core::sync::atomic::Ordering::Relaxed;

use super::heap::{self, HeapInfo};
use super::locked::{Locked, note_main_memory};
use super::mmapped;
use super::state::NONCONTIGUOUS_BIT;
use super::tcache::Tcache;
use crate::chunk::*;
use crate::config::profile;
use crate::config::tunables::{self, MP};
use crate::os::printerr::{assertion_failed, malloc_printerr};
use crate::os::sys;
use crate::os::trace::trace;

/// The main arena falls back to mappings of at least this size when brk fails.
const MMAP_AS_MORECORE_SIZE: usize = 1024 * 1024;

impl Locked {
    // ----------------------------------------------------------------------
    // Growing and shrinking
    // ----------------------------------------------------------------------

    /// Top is too small for `nb`: map the request on its own if it is big,
    /// else grow the arena and split the new top.
    #[cold]
    pub(super) fn sysmalloc(&self, nb: usize, tc: *mut Tcache) -> *mut u8 {
        let try_mmap = nb >= tunables::mmap_threshold();
        if try_mmap && let Some(p) = mmapped::map_chunk(nb, !self.zeroed_wanted()) {
            return self.hand_out(p, nb);
        }
        self.assert_top_sane();
        if self.is_main() {
            self.grow_main(nb, tc);
        } else if !self.grow_thread_heap(nb, tc)
            && !try_mmap
            && let Some(p) = mmapped::map_chunk(nb, !self.zeroed_wanted())
        {
            // The heap is full and no new one can be made: a mapping of its
            // own may still be possible.
            return self.hand_out(p, nb);
        }
        // SAFETY: the lock is held; maybe-grown top is this arena's.
        unsafe {
            let (max, sys) = (&raw mut (*self.av).max_system_mem, (*self.av).system_mem);
            if sys > *max {
                *max = sys;
            }
        }
        // A recording sees the grown heap before any chunk in it.
        if record::on() {
            self.record_top();
        }
        let top = self.top();
        // SAFETY: top is this arena's.
        let size = unsafe { top.size() };
        if size >= nb + MINSIZE {
            let rem = self.split(top, size, nb);
            self.set_top(rem);
            record::served(record::how::TOP);
            return self.hand_out(top, nb);
        }
        core::ptr::null_mut()
    }

    /// glibc's assertion at this point of sysmalloc: top is either the
    /// initial one (the unsorted bin's header, size 0: nothing allocated
    /// yet) or a real chunk of at least MINSIZE, PREV_INUSE set, ending on
    /// a page boundary. A program that overwrote top's size (to 0, say)
    /// stops here, with glibc's message.
    fn assert_top_sane(&self) {
        let top = self.top();
        // SAFETY: the lock is held; top's header is this arena's (or the
        // unsorted bin's header, whose size word is `last_remainder`).
        let (size, prev_inuse) = unsafe { (top.size(), top.prev_inuse()) };
        let initial = top == self.unsorted() && size == 0;
        let end = top.addr().wrapping_add(size);
        let sane = size >= MINSIZE && prev_inuse && end % sys::page_size() == 0;
        if !(initial || sane) {
            assertion_failed(
                "sysmalloc",
                "(old_top == initial_top (av) && old_size == 0) || ((unsigned long) (old_size) >= MINSIZE && prev_inuse (old_top) && ((unsigned long) old_end & (pagesize - 1)) == 0)",
            );
        }
    }

    /// Grows the main arena by at least `nb` + top_pad bytes: with brk
    /// while the break is ours to move, else with a mapping of at least
    /// 1 MiB (the arena is then non-contiguous for good).
    fn grow_main(&self, nb: usize, tc: *mut Tcache) {
        if profile::fast() {
            super::trim::main_grew();
        }
        let page = sys::page_size();
        let old_top = self.top();
        // SAFETY: top is this arena's (or the fake initial top, size 0).
        let old_size = unsafe { old_top.size() };
        let old_end = old_top.addr() + old_size;

        let Some(mut size) = nb.checked_add(MP.top_pad.load(Relaxed) + MINSIZE) else {
            return;
        };
        if self.contiguous() {
            size -= old_size;
        }
        size = align_up(size, page);

        record::did(record::did::GREW);
        trace(format_args!(
            "brk +{size:#x}  main arena: top ({old_size} bytes) too small for a {nb}-byte chunk (+ top pad, page-rounded)"
        ));
        let mut brk = if size > 0 && size <= isize::MAX as usize {
            sys::sbrk_by(size as isize)
        } else {
            None
        };
        let mut snd_brk: Option<*mut u8> = None;
        if brk.is_none() {
            // Something is in the way of the break: map instead.
            if self.contiguous() {
                size = align_up(size + old_size, page);
            }
            size = size.max(MMAP_AS_MORECORE_SIZE);
            trace(format_args!(
                "mmap {size:#x}  main arena: brk failed (something is mapped in the way), growing with a mapping instead"
            ));
            if size > nb
                && let Some(m) = sys::map_rw(size)
            {
                brk = Some(m);
                snd_brk = Some(m.wrapping_add(size));
                // SAFETY: the lock is held.
                unsafe { (*self.av).flags |= NONCONTIGUOUS_BIT };
            }
        }
        let Some(brk) = brk else { return };
        let brk_addr = brk as usize;
        note_main_memory(brk_addr, brk_addr + size);
        let _ = MP.sbrk_base.compare_exchange(0, brk_addr, Relaxed, Relaxed);
        // SAFETY: the lock is held; all chunk writes below are inside memory
        // we just obtained or inside the old top.
        unsafe {
            (*self.av).system_mem += size;

            if brk_addr == old_end && snd_brk.is_none() {
                // The simple case: the break moved on from the end of top.
                old_top.set_head((old_size + size) | PREV_INUSE);
                return;
            }
            if self.contiguous() && old_size != 0 && brk_addr < old_end {
                malloc_printerr("break adjusted to free malloc space");
            }

            // A fresh region: start top there, aligned. When the break is
            // contiguous, also ask for what the old top cannot give any more
            // (it will not merge) and for whatever rounds the end to a page.
            let new_top = Chunk::first_at(brk_addr);
            let aligned_brk = new_top.addr();
            let mut correction = 0usize;
            if self.contiguous() {
                if old_size != 0 {
                    // A foreign sbrk moved the break: count the gap as ours.
                    (*self.av).system_mem += brk_addr - old_end;
                }
                correction = (aligned_brk - brk_addr) + old_size;
                let end = brk_addr + size + correction;
                correction += align_up(end, page) - end;
                snd_brk = sys::sbrk_by(correction as isize);
                if snd_brk.is_none() {
                    correction = 0;
                    snd_brk = sys::sbrk_by(0);
                }
            } else if snd_brk.is_none() {
                snd_brk = sys::sbrk_by(0);
            }
            let Some(end) = snd_brk else { return };
            // `end` is the break before the correction was added.
            new_top.set_head((end as usize - aligned_brk + correction) | PREV_INUSE);
            note_main_memory(aligned_brk, end as usize + correction);
            (*self.av).system_mem += correction;
            self.set_top(new_top);

            if old_size != 0 {
                // Fence off the old top: two tiny in-use headers so nothing
                // ever merges across the gap, and free what is left of it.
                let keep = (old_size - MINSIZE) & !ALIGN_MASK;
                old_top.set_head(keep | PREV_INUSE);
                old_top.plus(keep).set_head((2 * SIZE_SZ) | PREV_INUSE);
                old_top
                    .plus(keep + 2 * SIZE_SZ)
                    .set_head((2 * SIZE_SZ) | PREV_INUSE);
                if keep >= MINSIZE {
                    self.free_internal(old_top, tc);
                }
            }
        }
    }

    /// Makes room for `nb` bytes in a thread arena: grow the heap that holds
    /// top by mprotect'ing just what is missing, or chain a new heap (top
    /// then starts there; the old top is fenced off and freed).
    pub(super) fn grow_thread_heap(&self, nb: usize, tc: *mut Tcache) -> bool {
        let old_top = self.top();
        // SAFETY: the lock is held; top lies in one of this arena's heaps,
        // whose header the mask finds, and every chunk written lies inside
        // the old top or the new heap.
        unsafe {
            let old_size = old_top.size();
            let h = heap::heap_for_ptr(old_top.addr());
            let old_heap_size = (*h).size;
            record::did(record::did::GREW);
            trace(format_args!(
                "thread arena {:p}: top ({old_size} bytes) too small for a {nb}-byte chunk: growing heap {h:p}",
                self.av
            ));
            if nb + MINSIZE > old_size && heap::grow_heap(h, nb + MINSIZE - old_size) {
                (*self.av).system_mem += (*h).size - old_heap_size;
                old_top.set_head((heap::heap_end(h) - old_top.addr()) | PREV_INUSE);
                return true;
            }
            let hdr = core::mem::size_of::<HeapInfo>();
            let Some(new) = heap::new_heap(nb + MINSIZE + hdr, MP.top_pad.load(Relaxed)) else {
                return false;
            };
            (*new).ar_ptr = self.av;
            (*new).prev = h;
            (*self.av).system_mem += (*new).size;
            let top = heap::first_chunk(new);
            top.set_head((heap::heap_end(new) - top.addr()) | PREV_INUSE);
            self.set_top(top);

            // Fence off the old top: a zero-size in-use header ends the heap,
            // a 16-byte in-use chunk before it (with a footer, as it may
            // become part of top again when this new heap is given back).
            let keep = (old_size - MINSIZE) & !ALIGN_MASK;
            old_top.plus(keep + CHUNK_HDR_SZ).set_head(PREV_INUSE);
            if keep >= MINSIZE {
                old_top.plus(keep).set_head(CHUNK_HDR_SZ | PREV_INUSE);
                old_top.plus(keep).set_foot(CHUNK_HDR_SZ);
                old_top.set_head(keep | PREV_INUSE | NON_MAIN_ARENA);
                self.free_internal(old_top, tc);
            } else {
                old_top.set_head((keep + CHUNK_HDR_SZ) | PREV_INUSE);
                old_top.set_foot(keep + CHUNK_HDR_SZ);
            }
        }
        true
    }
}
