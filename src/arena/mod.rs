//! One arena: glibc's `struct malloc_state`, and the allocation logic that
//! runs inside it while its lock is held (glibc's `_int_malloc`, `_int_free`,
//! `_int_realloc`, `_int_memalign`, `malloc_consolidate`, `sysmalloc`,
//! `systrim`).
//!
//! The story of a request of chunk size `nb`, in the order it is tried:
//! 1. the fastbin of exactly that size (LIFO, no coalescing);
//! 2. the small bin of exactly that size;
//!    (a large request first consolidates the fastbins, so fragments merge);
//! 3. the unsorted bin, oldest first: an exact fit is taken at once, a small
//!    request may split the last remainder (locality), everything else is
//!    sorted into its small or large bin;
//! 4. for a large request, the best fit in its own (sorted) large bin;
//! 5. the smallest non-empty bin above, found through the binmap, split;
//! 6. the top chunk, split; if too small, consolidate fastbins and retry, or
//!    grow the arena (`sysmalloc`), or map the request on its own.
//!
//! A free chunk that is not in a fastbin is never next to another free chunk
//! or to top: `free` merges it with both neighbours first.
//!
//! Invariants the code relies on (the heap checker of later work checks them):
//! - every chunk reached from a bin or from `top` lies in memory this arena
//!   got from the kernel (the brk heap or its mmap'd fall-back regions);
//! - `top` is followed by nothing: its size reaches the end of the region,
//!   and its P bit is always set;
//! - `system_mem` is the number of bytes the arena holds from the kernel.
//!
//! Links are checked as glibc checks them before being followed or
//! rewritten; a failed check reports with glibc's message and aborts.

use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use crate::arena::tcache::{Tcache, csize2tidx};
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::tunables::{self, MP, PERTURB_BYTE};
use crate::os::lock::{Got, Lock};
use crate::os::printerr::{malloc_printerr, misuse};
use crate::os::sys;
use crate::os::text::trace;
use crate::thread::tls;
use heap::HeapInfo;

/// `flags` bit: the arena's memory is not one contiguous brk region.
pub const NONCONTIGUOUS_BIT: i32 = 2;
/// The main arena falls back to mappings of at least this size when brk fails.
const MMAP_AS_MORECORE_SIZE: usize = 1024 * 1024;
/// Most chunks sorted out of the unsorted bin by one request.
const MAX_UNSORTED_ITERS: usize = 10000;

/// glibc 2.36's `struct malloc_state`, field for field.
#[repr(C)]
pub struct Arena {
    /// Protects every other field and every chunk of the arena's heaps.
    pub mutex: Lock,
    pub flags: i32,
    pub have_fastchunks: i32,
    pub fastbins: [Chunk; NFASTBINS],
    pub top: Chunk,
    pub last_remainder: Chunk,
    /// `bins[2i-2]`, `bins[2i-1]` are the `fd`, `bk` of bin `i`.
    pub bins: [Chunk; NBINS * 2 - 2],
    pub binmap: [u32; BINMAPSIZE],
    pub next: *mut Arena,
    pub next_free: *mut Arena,
    pub attached_threads: usize,
    pub system_mem: usize,
    pub max_system_mem: usize,
}

const _: () = assert!(core::mem::size_of::<Arena>() == 0x898);
const _: () = assert!(offset_of!(Arena, top) == 96 && offset_of!(Arena, bins) == 112);

impl Arena {
    /// An arena with no memory and uninitialised bins (see `Locked::init`).
    pub const fn new() -> Arena {
        Arena {
            mutex: Lock::new(),
            flags: 0,
            have_fastchunks: 0,
            fastbins: [Chunk::NULL; NFASTBINS],
            top: Chunk::NULL,
            last_remainder: Chunk::NULL,
            bins: [Chunk::NULL; NBINS * 2 - 2],
            binmap: [0; BINMAPSIZE],
            next: core::ptr::null_mut(),
            next_free: core::ptr::null_mut(),
            attached_threads: 0,
            system_mem: 0,
            max_system_mem: 0,
        }
    }
}

/// An arena in a `static`: shared between threads, changed only under its
/// lock.
#[repr(transparent)]
pub struct ArenaCell(UnsafeCell<Arena>);

// SAFETY: every access to the inner arena other than its (atomic) mutex goes
// through `Locked`, which exists only while the mutex is held.
unsafe impl Sync for ArenaCell {}

impl ArenaCell {
    pub const fn new() -> Self {
        ArenaCell(UnsafeCell::new(Arena::new()))
    }
    pub fn get(&self) -> *mut Arena {
        self.0.get()
    }
}

/// The main arena: a static, usable on the very first call, grown with brk.
/// Exported as `main_arena`, glibc's name for it, so debuggers' heap tools
/// find it.
#[cfg_attr(not(test), unsafe(export_name = "main_arena"))]
pub static MAIN_ARENA: ArenaCell = ArenaCell::new();

pub fn main_arena() -> *mut Arena {
    MAIN_ARENA.get()
}

/// The messages of `Locked::check_link`.
const MALLOC_LINK_OUTSIDE: &str = "malloc(): corrupted bin link (points outside the heap)";
const LINK_OUTSIDE: &str = "corrupted bin link (points outside the heap)";

/// The span of addresses the main arena ever got from the system (brk and
/// any mappings made when brk failed): `free` checks a main-arena chunk
/// against it before trusting its header's neighbours.
static MAIN_LO: AtomicUsize = AtomicUsize::new(usize::MAX);
static MAIN_HI: AtomicUsize = AtomicUsize::new(0);

fn note_main_memory(start: usize, end: usize) {
    MAIN_LO.fetch_min(start, Relaxed);
    MAIN_HI.fetch_max(end, Relaxed);
}

/// Whether heap chunk `p` of `size` bytes (not mmap'd) lies in memory that
/// an arena of ours got from the system: a thread heap of ours when
/// NON_MAIN_ARENA is set (start and end), else the main arena's span (the
/// start only: glibc's own checks on the size, such as "double free or
/// corruption (out)", then report a chunk that reaches too far, in glibc's
/// words). Catches a pointer to a fake chunk on the stack or in static data
/// before it reaches a list.
///
/// # Safety
/// `p`'s header must be readable.
#[inline]
pub unsafe fn owns_chunk(p: Chunk, size: usize) -> bool {
    // SAFETY: forwarded from the caller.
    if unsafe { p.non_main_arena() } {
        heap::in_our_heap(p.addr(), size)
    } else {
        owns_main(p)
    }
}

/// Whether `p`'s header lies in the main arena's span.
#[inline]
fn owns_main(p: Chunk) -> bool {
    let lo = MAIN_LO.load(Relaxed);
    p.addr().wrapping_sub(lo) < MAIN_HI.load(Relaxed).wrapping_sub(lo)
}

/// Whether `p`'s header lies in memory of one of our arenas (for
/// `realloc`, whose arena then checks the size as glibc does).
///
/// # Safety
/// `p`'s header must be readable.
#[inline]
pub unsafe fn owns_chunk_start(p: Chunk) -> bool {
    // SAFETY: forwarded from the caller.
    if unsafe { p.non_main_arena() } {
        heap::in_our_heap(p.addr(), CHUNK_HDR_SZ)
    } else {
        owns_main(p)
    }
}

/// The arena's mutex, without touching any other field.
///
/// # Safety
/// `av` must point to a live arena.
pub unsafe fn mutex<'a>(av: *mut Arena) -> &'a Lock {
    // SAFETY: the mutex is an atomic, shared by design; the reference covers
    // only that field, never the fields the lock holder mutates.
    unsafe { &(*av).mutex }
}

/// Proof that the holder has the arena's lock (or that the process has a
/// single thread): the allocation logic hangs off it. Dropping it unlocks.
pub struct Locked {
    av: *mut Arena,
    hold: Hold,
    /// Where most of the arena's chunks lie, for `check_link`'s first
    /// compare: the main arena's span, or the heap of a thread arena's top.
    /// Refreshed when the arena grows or shrinks.
    span_lo: core::cell::Cell<usize>,
    span_len: core::cell::Cell<usize>,
}

/// How a `Locked` holds its arena, and so what dropping it undoes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// Its lock, taken: dropping unlocks.
    Locked,
    /// No lock (one thread in the process), the word marked: dropping
    /// unmarks.
    Marked,
    /// The lock the calling thread already holds for `fork` (see
    /// `Lock::lock_unless_forking`): dropping leaves it held.
    Borrowed,
}

impl Drop for Locked {
    fn drop(&mut self) {
        // SAFETY: `av` is live for as long as the process (arenas are never
        // freed).
        let m = unsafe { mutex(self.av) };
        match self.hold {
            Hold::Locked => m.unlock(),
            Hold::Marked => m.unmark(),
            Hold::Borrowed => {}
        }
    }
}

/// Locks `av` (skipped while the process has one thread) and initialises its
/// bins on first use. The forking thread borrows the lock it holds (see the
/// `lock` module); others wait, also for a fork.
///
/// # Safety
/// `av` must point to an arena that lives for the rest of the process.
pub unsafe fn lock(av: *mut Arena) -> Locked {
    // SAFETY: forwarded from the caller.
    if let Some(locked) = unsafe { lock_unless_forking(av) } {
        return locked;
    }
    // Another thread's fork holds it: wait for the fork to let go.
    // SAFETY: forwarded from the caller.
    unsafe { mutex(av) }.lock();
    // SAFETY: forwarded from the caller; the lock is held.
    unsafe { held(av, Hold::Locked) }
}

/// Locks `av` as `lock` does, for a call of the malloc family: `None`
/// instead of waiting when another thread's fork holds the lock (see the
/// `lock` module); the forking thread borrows the lock it holds.
///
/// # Safety
/// As for `lock`.
pub unsafe fn lock_unless_forking(av: *mut Arena) -> Option<Locked> {
    // SAFETY: forwarded from the caller.
    let m = unsafe { mutex(av) };
    let hold = if sys::single_threaded() {
        m.mark();
        Hold::Marked
    } else {
        match m.lock_unless_forking() {
            Got::Taken => Hold::Locked,
            Got::Borrowed => Hold::Borrowed,
            Got::Forking => return None,
        }
    };
    // SAFETY: forwarded from the caller; the lock is held (or needless).
    Some(unsafe { held(av, hold) })
}

/// Wraps an arena whose lock the caller already took (`Hold::Locked`),
/// borrowed (`Hold::Borrowed`), or that needs none and that the caller has
/// marked (`Hold::Marked`): the guard undoes that when dropped.
///
/// # Safety
/// `av` must point to an arena that lives for the rest of the process, and
/// the caller must hold its lock unless `hold` is `Hold::Marked`.
pub unsafe fn held(av: *mut Arena, hold: Hold) -> Locked {
    let locked = Locked::new(av, hold);
    // SAFETY: the lock is held; bin 1's fd is null only before `init`.
    if unsafe { (*av).bins[0].is_null() } {
        locked.init();
    }
    locked.refresh_span();
    locked
}

/// Makes a new thread arena at the start of heap `h`, right after its
/// header: bins initialised, one attached thread, and the rest of the heap
/// as its top chunk.
///
/// # Safety
/// `h` must be a fresh heap from `heap::new_heap` with room for the arena.
pub unsafe fn create_in_heap(h: *mut HeapInfo) -> *mut Arena {
    // SAFETY: the arena header fits in the heap's read-write start (the
    // caller sized the heap for it); nobody else knows the heap yet.
    unsafe {
        let av = h.add(1).cast::<Arena>();
        av.write(Arena::new());
        (*h).ar_ptr = av;
        let fresh = Locked::new(av, Hold::Marked);
        fresh.init();
        (*av).attached_threads = 1;
        (*av).system_mem = (*h).size;
        (*av).max_system_mem = (*h).size;
        let top = Chunk::first_at(av.add(1) as usize);
        top.set_head((heap::heap_end(h) - top.addr()) | PREV_INUSE);
        fresh.set_top(top);
        av
    }
}

impl Locked {
    fn new(av: *mut Arena, hold: Hold) -> Locked {
        Locked {
            av,
            hold,
            span_lo: core::cell::Cell::new(0),
            span_len: core::cell::Cell::new(0),
        }
    }

    /// Recomputes the span `check_link` tries first.
    fn refresh_span(&self) {
        let (lo, len) = if self.is_main() {
            let lo = MAIN_LO.load(Relaxed);
            (lo, MAIN_HI.load(Relaxed).wrapping_sub(lo))
        } else {
            let h = heap::heap_for_ptr(self.top().addr());
            // SAFETY: the lock is held; a thread arena's top lies in one of
            // its heaps, whose header is read-write.
            (h as usize, unsafe { (*h).size })
        };
        self.span_lo.set(lo);
        self.span_len.set(len);
    }

    pub fn arena(&self) -> *mut Arena {
        self.av
    }

    #[inline]
    fn is_main(&self) -> bool {
        core::ptr::eq(self.av, main_arena())
    }

    /// NON_MAIN_ARENA for chunks of a thread arena, 0 for the main arena.
    #[inline]
    fn arena_bit(&self) -> usize {
        if self.is_main() { 0 } else { NON_MAIN_ARENA }
    }

    #[inline]
    fn contiguous(&self) -> bool {
        // SAFETY: the lock is held (type invariant).
        unsafe { (*self.av).flags & NONCONTIGUOUS_BIT == 0 }
    }

    /// Bin `i` as a fake chunk whose fd/bk are `bins[2i-2]`, `bins[2i-1]`.
    /// Its other header words overlap neighbouring fields and are never
    /// written through it.
    #[inline]
    pub fn bin_at(&self, i: usize) -> Chunk {
        Chunk::from_ptr(
            self.av
                .cast::<u8>()
                .wrapping_add(offset_of!(Arena, bins) + (i - 1) * 2 * SIZE_SZ)
                .wrapping_sub(CHUNK_HDR_SZ),
        )
    }

    #[inline]
    fn unsorted(&self) -> Chunk {
        self.bin_at(UNSORTED)
    }

    #[inline]
    fn top(&self) -> Chunk {
        // SAFETY: the lock is held.
        unsafe { (*self.av).top }
    }

    #[inline]
    fn set_top(&self, c: Chunk) {
        // SAFETY: the lock is held.
        unsafe { (*self.av).top = c }
    }

    #[inline]
    fn system_mem(&self) -> usize {
        // SAFETY: the lock is held.
        unsafe { (*self.av).system_mem }
    }

    #[inline]
    fn mark_bin(&self, i: usize) {
        // SAFETY: the lock is held.
        unsafe { (*self.av).binmap[idx2block(i)] |= idx2bit(i) }
    }

    /// Empty bins pointing at themselves, top at the unsorted bin with size
    /// 0 (the size word is `last_remainder`, null), so the first request
    /// goes to `sysmalloc`.
    #[cold]
    fn init(&self) {
        for i in 1..NBINS {
            let b = self.bin_at(i);
            // SAFETY: fd/bk of a bin are entries of this arena's bins array.
            unsafe {
                b.set_fd(b);
                b.set_bk(b);
            }
        }
        // SAFETY: the lock is held.
        unsafe {
            if !self.is_main() {
                (*self.av).flags |= NONCONTIGUOUS_BIT;
            }
            (*self.av).have_fastchunks = 0;
        }
        self.set_top(self.unsorted());
    }

    // ----------------------------------------------------------------------
    // Bin lists
    // ----------------------------------------------------------------------

    /// Beyond glibc: aborts with `msg` unless `c`, a link about to be
    /// followed, is a bin header of this arena or lies in memory this arena
    /// got from the system. A list corrupted with a wild pointer then stops
    /// here with a message instead of faulting (or writing) through it.
    #[inline(always)]
    fn check_link(&self, c: Chunk, msg: &str) {
        let a = c.addr();
        if a.wrapping_sub(self.span_lo.get()) < self.span_len.get() {
            return;
        }
        // A bin header, inside the arena itself.
        if a.wrapping_sub(self.av as usize) < size_of::<Arena>() {
            return;
        }
        self.check_far_link(a, msg);
    }

    /// `check_link` beyond the span: for the main arena, its span as it is
    /// now; for a thread arena, any of its heaps.
    #[inline(never)]
    fn check_far_link(&self, a: usize, msg: &str) {
        if self.is_main() {
            let lo = MAIN_LO.load(Relaxed);
            if a.wrapping_sub(lo) < MAIN_HI.load(Relaxed).wrapping_sub(lo) {
                return;
            }
            malloc_printerr(msg);
        }
        self.check_thread_link(a, msg);
    }

    /// `check_link` for a thread arena: `a` must lie in one of its heaps.
    #[inline(never)]
    fn check_thread_link(&self, a: usize, msg: &str) {
        // SAFETY: `in_our_heap` found a live heap header below `a`.
        if heap::in_our_heap(a, MINSIZE) && unsafe { (*heap::heap_for_ptr(a)).ar_ptr } == self.av {
            return;
        }
        malloc_printerr(msg);
    }

    /// Takes a free chunk off its doubly linked bin (and off the nextsize
    /// list, for the first chunk of its size in a large bin).
    fn unlink(&self, p: Chunk) {
        // SAFETY: `p` is a free chunk of this arena (it was found in a bin
        // or as a free neighbour); its links are checked before use, so a
        // corrupted list aborts instead of writing through a wild pointer.
        unsafe {
            if p.size() != p.next().prev_size() {
                malloc_printerr("corrupted size vs. prev_size");
            }
            let fd = p.fd();
            let bk = p.bk();
            self.check_link(fd, LINK_OUTSIDE);
            self.check_link(bk, LINK_OUTSIDE);
            if fd.bk() != p || bk.fd() != p {
                malloc_printerr("corrupted double-linked list");
            }
            fd.set_bk(bk);
            bk.set_fd(fd);
            if !in_smallbin_range(p.size()) && !p.fd_nextsize().is_null() {
                if p.fd_nextsize().bk_nextsize() != p || p.bk_nextsize().fd_nextsize() != p {
                    malloc_printerr("corrupted double-linked list (not small)");
                }
                if fd.fd_nextsize().is_null() {
                    // `fd` (same size) becomes its size's head.
                    if p.fd_nextsize() == p {
                        fd.set_fd_nextsize(fd);
                        fd.set_bk_nextsize(fd);
                    } else {
                        fd.set_fd_nextsize(p.fd_nextsize());
                        fd.set_bk_nextsize(p.bk_nextsize());
                        p.fd_nextsize().set_bk_nextsize(fd);
                        p.bk_nextsize().set_fd_nextsize(fd);
                    }
                } else {
                    p.fd_nextsize().set_bk_nextsize(p.bk_nextsize());
                    p.bk_nextsize().set_fd_nextsize(p.fd_nextsize());
                }
            }
        }
    }

    /// Puts free chunk `p` of `size` at the head of the unsorted bin.
    fn push_unsorted(&self, p: Chunk, size: usize, corrupt_msg: &str) {
        let bck = self.unsorted();
        // SAFETY: `p` is a free chunk of this arena; the unsorted bin's head
        // link is checked before it is rewritten.
        unsafe {
            let fwd = bck.fd();
            self.check_link(fwd, LINK_OUTSIDE);
            if fwd.bk() != bck {
                malloc_printerr(corrupt_msg);
            }
            if !in_smallbin_range(size) {
                p.set_fd_nextsize(Chunk::NULL);
                p.set_bk_nextsize(Chunk::NULL);
            }
            p.set_fd(fwd);
            p.set_bk(bck);
            bck.set_fd(p);
            fwd.set_bk(p);
        }
    }

    /// Files a chunk taken from the unsorted bin into its small or large bin.
    fn file_into_bin(&self, victim: Chunk, size: usize) {
        // SAFETY: `victim` is a free chunk of this arena, off every list;
        // the chunks of the target bin are this arena's, and the links that
        // are rewritten are checked first.
        unsafe {
            let (index, mut bck, mut fwd);
            if in_smallbin_range(size) {
                index = smallbin_index(size);
                bck = self.bin_at(index);
                fwd = bck.fd();
            } else {
                index = largebin_index(size);
                bck = self.bin_at(index);
                fwd = bck.fd();
                if fwd == bck {
                    victim.set_fd_nextsize(victim);
                    victim.set_bk_nextsize(victim);
                } else if size < {
                    self.check_link(bck.bk(), MALLOC_LINK_OUTSIDE);
                    bck.bk().size()
                } {
                    // Smaller than everything: goes last.
                    fwd = bck;
                    bck = bck.bk();
                    let largest = fwd.fd();
                    self.check_link(largest, MALLOC_LINK_OUTSIDE);
                    self.check_link(largest.bk_nextsize(), MALLOC_LINK_OUTSIDE);
                    victim.set_fd_nextsize(largest);
                    victim.set_bk_nextsize(largest.bk_nextsize());
                    largest.bk_nextsize().set_fd_nextsize(victim);
                    largest.set_bk_nextsize(victim);
                } else {
                    while size < fwd.size() {
                        fwd = fwd.fd_nextsize();
                        self.check_link(fwd, MALLOC_LINK_OUTSIDE);
                    }
                    if size == fwd.size() {
                        // Not the first of its size: stays off the nextsize list.
                        fwd = fwd.fd();
                    } else {
                        victim.set_fd_nextsize(fwd);
                        victim.set_bk_nextsize(fwd.bk_nextsize());
                        self.check_link(fwd.bk_nextsize(), MALLOC_LINK_OUTSIDE);
                        if fwd.bk_nextsize().fd_nextsize() != fwd {
                            malloc_printerr(
                                "malloc(): largebin double linked list corrupted (nextsize)",
                            );
                        }
                        fwd.set_bk_nextsize(victim);
                        victim.bk_nextsize().set_fd_nextsize(victim);
                    }
                    bck = fwd.bk();
                    self.check_link(bck, MALLOC_LINK_OUTSIDE);
                    if bck.fd() != fwd {
                        malloc_printerr("malloc(): largebin double linked list corrupted (bk)");
                    }
                }
            }
            self.mark_bin(index);
            victim.set_bk(bck);
            victim.set_fd(fwd);
            fwd.set_bk(victim);
            bck.set_fd(victim);
        }
    }

    // ----------------------------------------------------------------------
    // Handing out a chunk
    // ----------------------------------------------------------------------

    /// Cuts free chunk `victim` (of `size`, off every list) to `nb` bytes and
    /// returns the remainder, which the caller files. Only headers are
    /// written: a remainder that goes to a bin also needs `set_foot` (top has
    /// no footer: nothing follows it).
    #[inline]
    fn split(&self, victim: Chunk, size: usize, nb: usize) -> Chunk {
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
    fn hand_out(&self, victim: Chunk, nb: usize) -> *mut u8 {
        let mem = victim.mem();
        alloc_perturb(mem, nb - SIZE_SZ);
        mem
    }

    // ----------------------------------------------------------------------
    // malloc
    // ----------------------------------------------------------------------

    /// Finds or makes a chunk of at least `nb` bytes (a chunk size from
    /// `request2size`); null when the kernel has nothing more to give.
    pub fn malloc(&self, nb: usize) -> *mut u8 {
        // 1. Fastbin of exactly this size.
        if nb <= tunables::max_fast() {
            let idx = fastbin_index(nb);
            // SAFETY: the lock is held; fastbin chunks are this arena's and
            // the revealed link is checked for alignment before use.
            unsafe {
                let slot = &raw mut (*self.av).fastbins[idx];
                let victim = *slot;
                if !victim.is_null() {
                    if !is_aligned(victim.addr()) {
                        malloc_printerr("malloc(): unaligned fastbin chunk detected 2");
                    }
                    *slot = reveal_fd(victim);
                    // glibc checks the next link here when threads share
                    // the arena (its lock-free pop); with one thread, only
                    // when that chunk is taken.
                    if !(*slot).is_null() && !is_aligned((*slot).addr()) && !sys::single_threaded()
                    {
                        malloc_printerr("malloc(): unaligned fastbin chunk detected");
                    }
                    if fastbin_index(victim.size()) != idx {
                        malloc_printerr("malloc(): memory corruption (fast)");
                    }
                    // The mark is not the user's to see.
                    victim.set_bk(Chunk::NULL);
                    // Move the rest of this size into the thread's tcache
                    // while we hold the lock anyway.
                    let (tc, tidx) = stash_target(nb);
                    while tcache_has_room(tc, tidx) && !(*slot).is_null() {
                        let c = *slot;
                        if !is_aligned(c.addr()) {
                            malloc_printerr("malloc(): unaligned fastbin chunk detected 3");
                        }
                        *slot = reveal_fd(c);
                        (*tc).put(c, tidx);
                    }
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
                    let (tc, tidx) = stash_target(nb);
                    while tcache_has_room(tc, tidx) {
                        let c = bin.bk();
                        if c == bin {
                            break;
                        }
                        let bck = c.bk();
                        self.check_link(bck, MALLOC_LINK_OUTSIDE);
                        if bck.fd() != c {
                            malloc_printerr("malloc(): smallbin double linked list corrupted");
                        }
                        self.take_whole(c, nb);
                        bin.set_bk(bck);
                        bck.set_fd(bin);
                        (*tc).put(c, tidx);
                    }
                    return self.hand_out(victim, nb);
                }
            }
        } else {
            idx = largebin_index(nb);
            // SAFETY: the lock is held.
            if unsafe { (*self.av).have_fastchunks } != 0 {
                self.consolidate();
            }
        }

        loop {
            // 3. Sort the unsorted bin, taking an exact fit on the way.
            if let Some(mem) = self.sort_unsorted(nb) {
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
                return self.hand_out(top, nb);
            }
            // SAFETY: the lock is held.
            if unsafe { (*self.av).have_fastchunks } != 0 {
                self.consolidate();
                if in_smallbin_range(nb) {
                    idx = smallbin_index(nb);
                }
                continue;
            }
            return self.sysmalloc(nb);
        }
    }

    /// Step 3: empties the unsorted bin (up to MAX_UNSORTED_ITERS chunks),
    /// returning an exact fit or a split of the last remainder.
    fn sort_unsorted(&self, nb: usize) -> Option<*mut u8> {
        let unsorted = self.unsorted();
        let mut iters = 0;
        // Exact fits fill the thread's tcache first; one of them is
        // returned when sorting ends.
        let (tc, tidx) = stash_target(nb);
        let mut cached = false;
        let finish = |cached: bool| {
            // SAFETY: `cached` means the bin got at least one chunk here.
            cached.then(|| unsafe { (*tc).get(tidx) })
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
                    return Some(self.hand_out(victim, nb));
                }

                unsorted.set_bk(bck);
                bck.set_fd(unsorted);

                if size == nb {
                    self.take_whole(victim, size);
                    if tcache_has_room(tc, tidx) {
                        (*tc).put(victim, tidx);
                        cached = true;
                        continue;
                    }
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
            self.check_link(victim, MALLOC_LINK_OUTSIDE);
            while victim.size() < nb {
                victim = victim.bk_nextsize();
                self.check_link(victim, MALLOC_LINK_OUTSIDE);
            }
            // Prefer a chunk that is not on the nextsize list: cheaper unlink.
            if victim != bin.bk() && victim.size() == victim.fd().size() {
                victim = victim.fd();
            }
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
    // Growing and shrinking
    // ----------------------------------------------------------------------

    /// Top is too small for `nb`: map the request on its own if it is big,
    /// else grow the arena and split the new top.
    #[cold]
    fn sysmalloc(&self, nb: usize) -> *mut u8 {
        let try_mmap = nb >= tunables::mmap_threshold();
        if try_mmap && let Some(p) = mmapped::map_chunk(nb) {
            return self.hand_out(p, nb);
        }
        if self.is_main() {
            self.grow_main(nb);
        } else if !self.grow_thread_heap(nb)
            && !try_mmap
            && let Some(p) = mmapped::map_chunk(nb)
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
        self.refresh_span();
        let top = self.top();
        // SAFETY: top is this arena's.
        let size = unsafe { top.size() };
        if size >= nb + MINSIZE {
            let rem = self.split(top, size, nb);
            self.set_top(rem);
            return self.hand_out(top, nb);
        }
        core::ptr::null_mut()
    }

    /// Grows the main arena by at least `nb` + top_pad bytes: with brk
    /// while the break is ours to move, else with a mapping of at least
    /// 1 MiB (the arena is then non-contiguous for good).
    fn grow_main(&self, nb: usize) {
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
            let aligned_brk = Chunk::first_at(brk_addr).addr();
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
            let new_top = Chunk::from_ptr(aligned_brk as *mut u8);
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
                    self.free_chunk(old_top);
                }
            }
        }
    }

    /// Makes room for `nb` bytes in a thread arena: grow the heap that holds
    /// top by mprotect'ing just what is missing, or chain a new heap (top
    /// then starts there; the old top is fenced off and freed).
    fn grow_thread_heap(&self, nb: usize) -> bool {
        let old_top = self.top();
        // SAFETY: the lock is held; top lies in one of this arena's heaps,
        // whose header the mask finds, and every chunk written lies inside
        // the old top or the new heap.
        unsafe {
            let old_size = old_top.size();
            let h = heap::heap_for_ptr(old_top.addr());
            let old_heap_size = (*h).size;
            trace(format_args!(
                "thread arena {:p}: top ({old_size} bytes) too small for a {nb}-byte chunk: growing heap {h:p}",
                self.av
            ));
            if nb + MINSIZE > old_size
                && heap::grow_heap(h, nb + MINSIZE - old_size, MP.top_pad.load(Relaxed))
            {
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
            let top = Chunk::from_ptr(new.cast::<u8>().add(hdr));
            top.set_head(((*new).size - hdr) | PREV_INUSE);
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
                self.free_chunk(old_top);
            } else {
                old_top.set_head((keep + CHUNK_HDR_SZ) | PREV_INUSE);
                old_top.set_foot(keep + CHUNK_HDR_SZ);
            }
        }
        true
    }

    /// After a big free in a thread arena: unmap heaps that have become
    /// entirely free (never the arena's first), then give back the top's
    /// pages beyond `pad` if top passed the trim threshold.
    fn heap_trim(&self, pad: usize) -> bool {
        let trimmed = self.heap_trim_now(pad);
        self.refresh_span();
        trimmed
    }

    fn heap_trim_now(&self, pad: usize) -> bool {
        let hdr = core::mem::size_of::<HeapInfo>();
        let mut top = self.top();
        // SAFETY: the lock is held; heaps are found by masking top and by
        // `prev` links this arena wrote; the fencepost is checked before the
        // chunks before it are trusted.
        unsafe {
            let mut h = heap::heap_for_ptr(top.addr());
            let page = (*h).pagesize;
            while top.addr() == h as usize + hdr {
                // The whole heap is top: fold back into the previous heap,
                // whose end holds the fencepost grow_thread_heap wrote.
                let prev_heap = (*h).prev;
                let end = prev_heap as usize + (*prev_heap).size - (MINSIZE - CHUNK_HDR_SZ);
                let misalign = end & ALIGN_MASK;
                let fence = Chunk::from_ptr((end - misalign) as *mut u8);
                if fence.head() != PREV_INUSE {
                    malloc_printerr("heap_trim(): corrupted fencepost");
                }
                let mut p = fence.minus(fence.prev_size());
                let mut new_size = p.size() + (MINSIZE - CHUNK_HDR_SZ) + misalign;
                if !p.prev_inuse() {
                    new_size += p.prev_size();
                }
                if new_size + (heap::HEAP_MAX_SIZE - (*prev_heap).size) < pad + MINSIZE + page {
                    break;
                }
                (*self.av).system_mem -= (*h).size;
                trace(format_args!(
                    "munmap {h:p}  thread arena {:p}: heap entirely free, given back",
                    self.av
                ));
                heap::delete_heap(h);
                h = prev_heap;
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
                let slot = &raw mut (*self.av).fastbins[idx];
                let old = *slot;
                if old == p {
                    return misuse("double free or corruption (fasttop)");
                }
                // Beyond glibc: a chunk already deeper in the fastbin (the
                // a, b, a double free) carries the fastbin mark.
                if p.bk().addr() == fastbin_mark() && self.fastbin_holds(idx, p) {
                    return misuse("free(): double free detected in fastbin");
                }
                if !old.is_null() && fastbin_index(old.size()) != idx {
                    malloc_printerr("invalid fastbin entry (free)");
                }
                free_perturb(p.mem(), size - CHUNK_HDR_SZ);
                (*self.av).have_fastchunks = 1;
                store_fd(p, old);
                p.set_bk(Chunk::from_ptr(fastbin_mark() as *mut u8));
                *slot = p;
                return;
            }
            self.free_merging(p, size);
        }
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
            let mut c = (*self.av).fastbins[idx];
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
                if (*self.av).have_fastchunks != 0 {
                    self.consolidate();
                }
                let _errno = sys::KeepErrno::new();
                if !self.is_main() {
                    // Even a small top may mean a whole heap can go.
                    self.heap_trim(MP.top_pad.load(Relaxed));
                } else if self.top().size() >= MP.trim_threshold.load(Relaxed) {
                    self.systrim(MP.top_pad.load(Relaxed));
                }
            }
        }
    }

    /// Merges chunk `p` (being freed, `size` bytes, checked by the caller)
    /// with a free previous chunk and a free next chunk, or with top, and
    /// files the result in the unsorted bin; returns the merged size.
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
            (*self.av).have_fastchunks = 0;
            for idx in 0..NFASTBINS {
                let slot = &raw mut (*self.av).fastbins[idx];
                let mut p = *slot;
                *slot = Chunk::NULL;
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

    // ----------------------------------------------------------------------
    // calloc, realloc, memalign
    // ----------------------------------------------------------------------

    /// malloc for calloc: returns the memory and how many of its first bytes
    /// may hold old data and need clearing (memory fresh from the kernel is
    /// already zero).
    pub fn calloc(&self, nb: usize) -> (*mut u8, usize) {
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
        let mem = self.malloc(nb);
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

    /// Resizes heap chunk `oldp` of this arena to `nb` bytes: in place when
    /// it is shrinking or the next chunk (free, or top) has room, else by
    /// malloc-copy-free. Null (and `oldp` untouched) when memory is short.
    pub fn realloc(&self, oldp: Chunk, nb: usize) -> *mut u8 {
        // SAFETY: `oldp` is an in-use heap chunk of this arena (the caller
        // checked its header); neighbours are checked before being trusted.
        unsafe {
            let old_size = oldp.size();
            if oldp.head() <= 2 * SIZE_SZ
                || old_size >= self.system_mem()
                || (!self.is_main() && !heap::in_our_heap(oldp.addr(), old_size))
            {
                malloc_printerr("realloc(): invalid old size");
            }
            let next = oldp.plus(old_size);
            let next_size = next.size();
            if next.head() <= 2 * SIZE_SZ || next_size >= self.system_mem() {
                malloc_printerr("realloc(): invalid next size");
            }
            let (newp, new_size);
            if old_size >= nb {
                newp = oldp;
                new_size = old_size;
            } else if next == self.top() && old_size + next_size >= nb + MINSIZE {
                // Grow into top.
                oldp.set_size_keep_flags(nb);
                let top = oldp.plus(nb);
                top.set_head((old_size + next_size - nb) | PREV_INUSE);
                self.set_top(top);
                return oldp.mem();
            } else if next != self.top() && !next.inuse() && old_size + next_size >= nb {
                // Grow into the free next chunk.
                self.unlink(next);
                newp = oldp;
                new_size = old_size + next_size;
            } else {
                let mem = self.malloc(nb);
                if mem.is_null() {
                    return mem;
                }
                let q = Chunk::from_mem(mem);
                if q == next {
                    // malloc handed out the very next chunk: merge instead of copying.
                    newp = oldp;
                    new_size = old_size + q.size();
                } else {
                    core::ptr::copy_nonoverlapping(oldp.mem(), mem, old_size - SIZE_SZ);
                    self.free_chunk(oldp);
                    return mem;
                }
            }
            // Give back what is left over beyond `nb`.
            if new_size - nb < MINSIZE {
                newp.set_size_keep_flags(new_size);
                newp.set_prev_inuse_at(new_size);
            } else {
                let rem = newp.plus(nb);
                newp.set_size_keep_flags(nb);
                rem.set_head((new_size - nb) | PREV_INUSE | self.arena_bit());
                rem.set_prev_inuse_at(new_size - nb);
                self.free_chunk(rem);
            }
            newp.mem()
        }
    }

    /// A chunk of `nb` bytes whose memory is aligned to `alignment` (a power
    /// of two ≥ MINSIZE): over-allocate, free the misaligned lead and the
    /// tail.
    pub fn memalign(&self, alignment: usize, nb: usize) -> *mut u8 {
        let Some(padded) = nb
            .checked_add(alignment + MINSIZE)
            .and_then(checked_request2size)
        else {
            return core::ptr::null_mut();
        };
        let m = self.malloc(padded);
        if m.is_null() {
            return m;
        }
        let mut p = Chunk::from_mem(m);
        // SAFETY: `p` was just handed out by this arena (or mapped) and is at
        // least `nb + alignment + MINSIZE` bytes, so every chunk written
        // below lies inside it.
        unsafe {
            if !(m as usize).is_multiple_of(alignment) {
                let aligned_mem = align_up(m as usize, alignment);
                let mut lead = aligned_mem - CHUNK_HDR_SZ - p.addr();
                if lead < MINSIZE {
                    lead += alignment;
                }
                let newp = p.plus(lead);
                let new_size = p.size() - lead;
                if p.is_mmapped() {
                    newp.set_prev_size(p.prev_size() + lead);
                    newp.set_head(new_size | IS_MMAPPED);
                    return newp.mem();
                }
                newp.set_head(new_size | PREV_INUSE | self.arena_bit());
                newp.set_prev_inuse_at(new_size);
                p.set_size_keep_flags(lead);
                self.free_chunk(p);
                p = newp;
            }
            if !p.is_mmapped() {
                let size = p.size();
                if size > nb + MINSIZE {
                    let rem = p.plus(nb);
                    rem.set_head((size - nb) | PREV_INUSE | self.arena_bit());
                    p.set_size_keep_flags(nb);
                    self.free_chunk(rem);
                }
            }
            p.mem()
        }
    }
}

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
                let mut p = (*self.av).fastbins[idx];
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
                let mut p = (*self.av).fastbins[idx];
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
                let mut p = Chunk::from_ptr(start as *mut u8);
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
                let first = if (*h).prev.is_null() {
                    // The arena header follows heap_info in the first heap.
                    Chunk::first_at(self.av.add(1) as usize).addr()
                } else {
                    h as usize + core::mem::size_of::<HeapInfo>()
                };
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

/// The calling thread's tcache and its bin for chunk size `nb`, where
/// chunks of that size may be stashed (null when there is no cache or the
/// size is not cached).
#[inline]
fn stash_target(nb: usize) -> (*mut Tcache, usize) {
    let idx = csize2tidx(nb);
    // SAFETY: the calling thread's own state.
    let tc = unsafe { (*tls::thread_state()).tcache };
    if idx < MP.tcache_bins.load(Relaxed) {
        (tc, idx)
    } else {
        (core::ptr::null_mut(), idx)
    }
}

#[inline]
fn tcache_has_room(tc: *mut Tcache, idx: usize) -> bool {
    // SAFETY: a non-null `tc` is the calling thread's cache.
    !tc.is_null() && usize::from(unsafe { (*tc).counts[idx] }) < MP.tcache_count.load(Relaxed)
}

#[inline]
fn perturbing() -> bool {
    PERTURB_BYTE.load(Relaxed) != 0
}

#[inline]
fn alloc_perturb(mem: *mut u8, n: usize) {
    let b = PERTURB_BYTE.load(Relaxed);
    if b != 0 {
        // SAFETY: `mem` is a chunk just handed out with at least `n` usable bytes.
        unsafe { core::ptr::write_bytes(mem, b ^ 0xff, n) };
    }
}

#[inline]
fn free_perturb(mem: *mut u8, n: usize) {
    let b = PERTURB_BYTE.load(Relaxed);
    if b != 0 {
        // SAFETY: `mem` is a chunk being freed with at least `n` bytes.
        unsafe { core::ptr::write_bytes(mem, b, n) };
    }
}

pub mod heap;
pub mod mmapped;
pub mod tcache;
