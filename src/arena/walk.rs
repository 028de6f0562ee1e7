//! Reading an arena for the reports without changing it: the census of free
//! chunks (mallinfo, malloc_stats, malloc_info), and walks over its bins,
//! its heaps and every chunk in them (the dump and the heap checker).

use core::sync::atomic::Ordering::Relaxed;

use super::heap::{self, HeapInfo};
use super::locked::{Hold, Locked, held};
use super::state::{Arena, mutex};
use crate::chunk::bins::*;
use crate::chunk::safelink::reveal_fd;
use crate::chunk::*;
use crate::config::tunables::MP;
use crate::os::printerr::malloc_printerr;
use crate::os::sys;

/// Free chunks of one bin, for the reports: glibc's `malloc_info` figures.
#[derive(Clone, Copy, Default)]
pub struct BinSizes {
    pub from: usize,
    pub to: usize,
    pub total: usize,
    pub count: usize,
    /// `total` without flag bits (what mallinfo counts).
    pub bytes: usize,
}

/// One arena's state as the reports see it, taken under its lock.
pub struct Census {
    pub is_main: bool,
    pub system_mem: usize,
    pub max_system_mem: usize,
    pub top_size: usize,
    /// Fastbins (entries 0..NFASTBINS), then bins 1..NBINS at
    /// `NFASTBINS - 1 + i` (so the unsorted bin is at NFASTBINS).
    pub sizes: [BinSizes; NFASTBINS + NBINS - 1],
    /// Heaps of a thread arena: total size, read-write size, count.
    pub heap_size: usize,
    pub heap_mprotect_size: usize,
    pub heap_count: usize,
}

impl Census {
    /// (chunks, bytes) in fastbins.
    pub fn fast(&self) -> (usize, usize) {
        self.sizes[..NFASTBINS]
            .iter()
            .fold((0, 0), |(c, t), s| (c + s.count, t + s.bytes))
    }
    /// (chunks, bytes) in the other bins, top included; `with_flags` counts
    /// size words as they are (malloc_info), else sizes (mallinfo).
    pub fn rest(&self, with_flags: bool) -> (usize, usize) {
        self.sizes[NFASTBINS..]
            .iter()
            .fold((1, self.top_size), |(c, t), s| {
                (c + s.count, t + if with_flags { s.total } else { s.bytes })
            })
    }
}

impl Locked {
    /// Counts the arena's free chunks for the reports.
    pub fn census(&self) -> Census {
        let mut c = Census {
            is_main: self.is_main(),
            system_mem: self.system_mem(),
            // SAFETY: the lock is held.
            max_system_mem: unsafe { (*self.av).max_system_mem },
            // SAFETY: top is this arena's.
            top_size: unsafe { self.top().size() },
            sizes: [BinSizes::default(); NFASTBINS + NBINS - 1],
            heap_size: 0,
            heap_mprotect_size: 0,
            heap_count: 0,
        };
        // SAFETY: the lock is held; bins and fastbins hold this arena's
        // chunks (fastbin links are checked for alignment before use).
        unsafe {
            for idx in 0..NFASTBINS {
                let mut p = (*self.av).fastbins[idx].load();
                if p.is_null() {
                    continue;
                }
                let size = p.size();
                let mut n = 0;
                while !p.is_null() {
                    if !is_aligned(p.addr()) {
                        malloc_printerr("__malloc_info(): unaligned fastbin chunk detected");
                    }
                    n += 1;
                    p = reveal_fd(p);
                }
                c.sizes[idx] = BinSizes {
                    from: size - ALIGN_MASK,
                    to: size,
                    total: n * size,
                    count: n,
                    bytes: n * size,
                };
            }
            for i in 1..NBINS {
                let bin = self.bin_at(i);
                let mut s = BinSizes {
                    from: usize::MAX,
                    ..BinSizes::default()
                };
                let mut p = bin.fd();
                while p != bin {
                    // glibc reports the size word as it is, flag bits included.
                    let head = p.head();
                    s.count += 1;
                    s.total += head;
                    s.from = s.from.min(head);
                    s.to = s.to.max(head);
                    s.bytes += p.size();
                    p = p.fd();
                }
                if s.count == 0 {
                    s.from = 0;
                }
                c.sizes[NFASTBINS - 1 + i] = s;
            }
            if !self.is_main() {
                let mut h = heap::heap_for_ptr(self.top().addr());
                while !h.is_null() {
                    c.heap_size += (*h).size;
                    c.heap_mprotect_size += (*h).mprotect_size;
                    c.heap_count += 1;
                    h = (*h).prev;
                }
            }
        }
        c
    }
}

/// Which list a free chunk is on, for the heap dump.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Bin {
    Fast(usize),
    Unsorted,
    Small(usize),
    Large(usize),
}

/// What `walk_heap_chunks` reports, in address order.
pub enum HeapEvent {
    /// A heap begins (the main arena's brk area, or a thread heap).
    Heap { start: usize, end: usize },
    /// A chunk: `free` means binned (the next chunk's P bit is clear).
    Chunk {
        chunk: Chunk,
        head: usize,
        free: bool,
        top: bool,
    },
}

/// Most chunks the dump follows on one list (a corrupted list cannot make
/// it loop forever).
pub(crate) const DUMP_LIST_LIMIT: usize = 100_000;

impl Locked {
    /// Takes the arena's lock only if it comes free soon; `None` if another
    /// thread keeps it (the heap dump must not deadlock).
    ///
    /// # Safety
    /// `av` must point to an arena that lives for the rest of the process.
    pub unsafe fn try_lock(av: *mut Arena) -> Option<Locked> {
        // SAFETY: forwarded from the caller.
        let m = unsafe { mutex(av) };
        if sys::single_threaded() {
            // The only thread is inside the allocator if the arena is
            // marked: this call interrupted it (a signal handler).
            if m.holder().is_some() {
                return None;
            }
            m.mark();
            // SAFETY: forwarded from the caller; no other thread exists.
            return Some(unsafe { held(av, Hold::Marked) });
        }
        if m.try_lock_for(10_000) {
            // SAFETY: we hold the lock now.
            return Some(unsafe { held(av, Hold::Locked) });
        }
        None
    }

    /// The arena's address, top chunk and size, last remainder, and the
    /// fields the dump prints.
    pub fn header(&self) -> (usize, Chunk, usize, Chunk, usize, usize, usize, bool) {
        // SAFETY: the lock is held; top is this arena's.
        unsafe {
            let a = &raw const *self.av;
            (
                self.av as usize,
                (*a).top,
                (*a).top.size(),
                (*a).last_remainder,
                (*a).system_mem,
                (*a).max_system_mem,
                (*a).attached_threads,
                self.contiguous(),
            )
        }
    }

    /// Calls `f(bin, chunk, size word)` for every chunk in every fastbin and
    /// bin, in list order; stops a list at a misaligned link or after
    /// DUMP_LIST_LIMIT chunks.
    pub fn walk_bins(&self, f: &mut dyn FnMut(Bin, Chunk, usize)) {
        // SAFETY: the lock is held; every link is checked for alignment
        // before it is followed.
        unsafe {
            for idx in 0..NFASTBINS {
                let mut p = (*self.av).fastbins[idx].load();
                let mut n = 0;
                while !p.is_null() && is_aligned(p.addr()) && n < DUMP_LIST_LIMIT {
                    f(Bin::Fast(idx), p, p.head());
                    p = reveal_fd(p);
                    n += 1;
                }
            }
            for i in 1..NBINS {
                let bin = self.bin_at(i);
                let kind = if i == UNSORTED {
                    Bin::Unsorted
                } else if i < NSMALLBINS {
                    Bin::Small(i)
                } else {
                    Bin::Large(i)
                };
                let mut p = bin.fd();
                let mut n = 0;
                while p != bin && is_aligned(p.addr()) && n < DUMP_LIST_LIMIT {
                    f(kind, p, p.head());
                    p = p.fd();
                    n += 1;
                }
            }
        }
    }

    /// Walks every chunk of the arena's heaps in address order, oldest heap
    /// first: `heap(start, end)` before each heap's chunks, then
    /// `chunk(chunk, size word, free, is_top)` where `free` means the next
    /// chunk's P bit is clear (a binned chunk; tcache and fastbin chunks
    /// count as in use). The main arena is walked only while contiguous.
    /// Stops a heap at a size that leaves it (the heap is corrupt).
    pub fn walk_heap_chunks(&self, f: &mut dyn FnMut(HeapEvent)) {
        let top = self.top();
        // SAFETY: the lock is held; each chunk is read only after its
        // address was checked to lie inside the heap being walked.
        unsafe {
            let top_end = top.addr() + top.size();
            let walk = |start: usize, end: usize, f: &mut dyn FnMut(HeapEvent)| {
                let mut p = Chunk::first_at(start);
                while p.addr() + CHUNK_HDR_SZ <= end {
                    let head = p.head();
                    let size = head & !SIZE_BITS;
                    if p == top {
                        f(HeapEvent::Chunk {
                            chunk: p,
                            head,
                            free: false,
                            top: true,
                        });
                        break;
                    }
                    if size < CHUNK_HDR_SZ || p.addr() + size > end {
                        break; // a fencepost (size 0 or 16 at the end) or corruption
                    }
                    let free = p.addr() + size + CHUNK_HDR_SZ <= end && !p.next().prev_inuse();
                    f(HeapEvent::Chunk {
                        chunk: p,
                        head,
                        free,
                        top: false,
                    });
                    p = p.next();
                }
            };
            if self.is_main() {
                let base = MP.sbrk_base.load(Relaxed);
                if !self.contiguous() || base == 0 || top.addr() < base {
                    return;
                }
                let first = Chunk::first_at(base).addr();
                f(HeapEvent::Heap {
                    start: first,
                    end: top_end,
                });
                walk(first, top_end, f);
                return;
            }
            // Thread arena: collect the heap chain (newest first), then walk
            // oldest first.
            let mut heaps = [core::ptr::null_mut::<HeapInfo>(); 64];
            let mut n = 0;
            let mut h = heap::heap_for_ptr(top.addr());
            while !h.is_null() && n < heaps.len() {
                heaps[n] = h;
                n += 1;
                h = (*h).prev;
            }
            for &h in heaps[..n].iter().rev() {
                let first = heap::first_chunk(h).addr();
                let end = if heap::heap_for_ptr(top.addr()) == h {
                    top_end
                } else {
                    heap::heap_end(h)
                };
                f(HeapEvent::Heap {
                    start: h as usize,
                    end,
                });
                walk(first, end, f);
            }
        }
    }

    /// The thread arena's heaps, newest first: (start, size, read-write size).
    pub fn walk_heaps(&self, f: &mut dyn FnMut(usize, usize, usize)) {
        if self.is_main() {
            return;
        }
        // SAFETY: the lock is held; heap headers are this arena's.
        unsafe {
            let mut h = heap::heap_for_ptr(self.top().addr());
            while !h.is_null() {
                f(h as usize, (*h).size, (*h).mprotect_size);
                h = (*h).prev;
            }
        }
    }
}
