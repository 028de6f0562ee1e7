//! Holding an arena. `Locked` is the proof that the caller has the arena's
//! lock (taken, borrowed from the thread that is forking, or not needed
//! while the process has one thread): every part of the allocation logic is
//! a method on it, so none runs without the lock. Dropping it lets go.
//!
//! Also the span of memory each arena got from the system, against which
//! `free` checks a chunk before trusting its header, and the bins' first
//! use (`init`).

use core::sync::atomic::Ordering::Relaxed;

use super::heap::{self, HeapInfo};
use super::state::{Arena, NONCONTIGUOUS_BIT, main_arena, mutex};
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::profile;
use crate::config::tunables::{MP, PERTURB_BYTE};
use crate::os::lock::{Got, Lock};
use crate::os::sys;
use core::sync::atomic::AtomicUsize;

/// The messages of `Locked::check_link`.
pub(super) const MALLOC_LINK_OUTSIDE: &str =
    "malloc(): corrupted bin link (points outside the heap)";
pub(super) const LINK_OUTSIDE: &str = "corrupted bin link (points outside the heap)";

/// The span of addresses the main arena ever got from the system (brk and
/// any mappings made when brk failed): `free` checks a main-arena chunk
/// against it before trusting its header's neighbours.
pub(super) static MAIN_LO: AtomicUsize = AtomicUsize::new(usize::MAX);
pub(super) static MAIN_HI: AtomicUsize = AtomicUsize::new(0);

pub(super) fn note_main_memory(start: usize, end: usize) {
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
///
/// In the `glibc` profile (glibc makes no such check) only a thread
/// arena's chunk is checked, and only for what glibc would fault on: its
/// heap header (where glibc reads the arena) must be readable.
#[inline]
pub unsafe fn owns_chunk(p: Chunk, size: usize) -> bool {
    // SAFETY: forwarded from the caller.
    let non_main = unsafe { p.non_main_arena() };
    if !profile::hardened() {
        // A heap of ours (a bitmap lookup) first: the system call of
        // `heap_header_readable` only for what is not.
        return !non_main || heap::in_our_heap(p.addr(), CHUNK_HDR_SZ) || heap_header_readable(p);
    }
    if non_main {
        heap::in_our_heap(p.addr(), size)
    } else {
        owns_main(p)
    }
}

/// Whether the heap header glibc would read for thread-arena chunk `p` is
/// readable memory (whatever it holds).
#[cold]
fn heap_header_readable(p: Chunk) -> bool {
    let _errno = sys::KeepErrno::new();
    sys::read_word_checked(heap::heap_for_ptr(p.addr()) as usize).is_some()
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
/// In the `glibc` profile, as `owns_chunk`.
#[inline]
pub unsafe fn owns_chunk_start(p: Chunk) -> bool {
    // SAFETY: forwarded from the caller.
    let non_main = unsafe { p.non_main_arena() };
    if !profile::hardened() {
        // A heap of ours (a bitmap lookup) first: the system call of
        // `heap_header_readable` only for what is not.
        return !non_main || heap::in_our_heap(p.addr(), CHUNK_HDR_SZ) || heap_header_readable(p);
    }
    if non_main {
        heap::in_our_heap(p.addr(), CHUNK_HDR_SZ)
    } else {
        owns_main(p)
    }
}

/// Proof that the holder has the arena's lock (or that the process has a
/// single thread): the allocation logic hangs off it. Dropping it unlocks.
pub struct Locked {
    pub(super) av: *mut Arena,
    hold: Hold,
}
// A pointer and a one-byte enum, so that `Option<Locked>` comes back in
// registers (a third field, even a `Cell<bool>`, and it does not: the
// size assertion below cannot tell). A bigger guard came back through the
// stack, and reading it there (a 16-byte load
// of fields stored 8 bytes at a time: no store forwarding) waited for every
// store before it to reach the cache: after a program wrote a block's pages,
// hundreds of cycles per call (`bench/workloads/medium`, 1.48 x glibc's time).
const _: () = assert!(core::mem::size_of::<Option<Locked>>() == 16);

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
        if crate::os::record::on() {
            self.record_top();
        }
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

impl Locked {
    /// For a recording, as the lock goes: the arena's top (and the heap it
    /// ends), when it is not what this thread recorded last. Every change
    /// of top happens under the lock, so this sees each one.
    #[cold]
    pub(super) fn record_top(&self) {
        let top = self.top();
        // SAFETY: the lock is held; top is this arena's (or the initial
        // fake top, size 0).
        let size = unsafe { top.size() };
        let av = self.av as usize;
        if size != 0 && crate::os::record::top(top.addr(), size, av) {
            let lo = if self.is_main() {
                MP.sbrk_base.load(Relaxed)
            } else {
                heap::heap_for_ptr(top.addr()) as usize
            };
            if lo != 0 {
                crate::os::record::heap(1, lo, top.addr() + size, av);
            }
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
#[inline]
pub unsafe fn lock_unless_forking(av: *mut Arena) -> Option<Locked> {
    // SAFETY: forwarded from the caller.
    unsafe {
        hold_with(av, |m| match m.lock_unless_forking() {
            Got::Taken => Some(Hold::Locked),
            Got::Borrowed => Some(Hold::Borrowed),
            Got::Forking => None,
        })
    }
}

/// The guard for `av` in a process with one thread (the lock word marked,
/// no lock needed), else with the hold `take` gets on its lock; `None`
/// when `take` gets none.
///
/// # Safety
/// As for `lock`.
#[inline(always)]
unsafe fn hold_with(av: *mut Arena, take: impl FnOnce(&Lock) -> Option<Hold>) -> Option<Locked> {
    // SAFETY: forwarded from the caller.
    let m = unsafe { mutex(av) };
    let hold = if sys::single_threaded() {
        m.mark();
        Hold::Marked
    } else {
        take(m)?
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
#[inline]
pub unsafe fn held(av: *mut Arena, hold: Hold) -> Locked {
    if super::state::REMOTE_FREES_SEEN.load(Relaxed) {
        // SAFETY: forwarded from the caller.
        unsafe { take_remote_frees(av) };
    }
    let locked = Locked::new(av, hold);
    // SAFETY: the lock is held; bin 1's fd is null only before `init`.
    if unsafe { (*av).bins[0].is_null() } {
        locked.init();
    }
    locked
}

/// The frees other threads handed over to `av` while its lock was taken,
/// done by the new holder (`arena::remote`), through a guard of its own
/// that leaves the lock held.
///
/// # Safety
/// As for `held`.
#[cold]
#[inline(never)]
unsafe fn take_remote_frees(av: *mut Arena) {
    let guard = Locked::new(av, Hold::Borrowed);
    // SAFETY: the lock is held; bin 1's fd is null only before `init`.
    if unsafe { (*av).bins[0].is_null() } {
        guard.init();
    }
    guard.take_remote_frees();
}

/// Takes `av`'s lock only if it is free (no waiting, also not for a fork):
/// `None` when another thread holds it.
///
/// # Safety
/// As for `lock`.
#[inline]
pub unsafe fn try_lock(av: *mut Arena) -> Option<Locked> {
    // SAFETY: forwarded from the caller.
    unsafe { hold_with(av, |m| m.try_lock().then_some(Hold::Locked)) }
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
    pub(super) fn new(av: *mut Arena, hold: Hold) -> Locked {
        Locked { av, hold }
    }

    /// Where most of the arena's chunks lie, for `check_link`'s first
    /// compare: the main arena's span, or the heap of a thread arena's top
    /// (its start and length).
    #[inline(always)]
    pub(super) fn span(&self) -> (usize, usize) {
        if self.is_main() {
            let lo = MAIN_LO.load(Relaxed);
            (lo, MAIN_HI.load(Relaxed).wrapping_sub(lo))
        } else {
            let h = heap::heap_for_ptr(self.top().addr());
            // SAFETY: the lock is held; a thread arena's top lies in one of
            // its heaps, whose header is read-write.
            (h as usize, unsafe { (*h).size })
        }
    }

    /// Whether the request under way is a calloc's (see
    /// `Arena::calloc_running`).
    #[inline]
    pub(super) fn zeroed_wanted(&self) -> bool {
        // SAFETY: the lock is held.
        unsafe { (*self.av).calloc_running != 0 }
    }

    pub fn arena(&self) -> *mut Arena {
        self.av
    }

    #[inline]
    pub(super) fn is_main(&self) -> bool {
        core::ptr::eq(self.av, main_arena())
    }

    /// NON_MAIN_ARENA for chunks of a thread arena, 0 for the main arena.
    #[inline]
    pub(super) fn arena_bit(&self) -> usize {
        if self.is_main() { 0 } else { NON_MAIN_ARENA }
    }

    #[inline]
    pub(super) fn contiguous(&self) -> bool {
        // SAFETY: the lock is held (type invariant).
        unsafe { (*self.av).flags & NONCONTIGUOUS_BIT == 0 }
    }

    /// The head of fastbin `idx`, for a chunk size of at most `max_fast()`:
    /// `set_max_fast` caps that at MAX_FAST_SIZE, whose index is below
    /// NFASTBINS, so the slot is in the array with no bounds check.
    #[inline(always)]
    pub(super) fn fastbin(&self, idx: usize) -> &AtomicChunk {
        // SAFETY: the arena lives for the process; `idx < NFASTBINS` (above),
        // a slot of its array, which is atomic: shared by design.
        unsafe { fastbin_of(self.av, idx) }
    }

    /// Bin `i` as a fake chunk whose fd/bk are `bins[2i-2]`, `bins[2i-1]`.
    /// Its other header words overlap neighbouring fields and are never
    /// written through it.
    #[inline]
    pub fn bin_at(&self, i: usize) -> Chunk {
        // SAFETY: only the address of the field is taken; `i` is a bin
        // number (1..NBINS), whose two words lie inside the array.
        let bins = unsafe { &raw mut (*self.av).bins }.cast::<Chunk>();
        Chunk::with_links_at(bins.wrapping_add((i - 1) * 2))
    }

    #[inline]
    pub(super) fn unsorted(&self) -> Chunk {
        self.bin_at(UNSORTED)
    }

    #[inline]
    pub(super) fn top(&self) -> Chunk {
        // SAFETY: the lock is held.
        unsafe { (*self.av).top }
    }

    #[inline]
    pub(super) fn set_top(&self, c: Chunk) {
        // SAFETY: the lock is held.
        unsafe { (*self.av).top = c }
    }

    #[inline]
    pub(super) fn system_mem(&self) -> usize {
        // SAFETY: the lock is held.
        unsafe { (*self.av).system_mem }
    }

    #[inline]
    pub(super) fn mark_bin(&self, i: usize) {
        // SAFETY: the lock is held.
        unsafe { (*self.av).binmap[idx2block(i)] |= idx2bit(i) }
    }

    /// Empty bins pointing at themselves, top at the unsorted bin with size
    /// 0 (the size word is `last_remainder`, null), so the first request
    /// goes to `sysmalloc`.
    #[cold]
    pub(super) fn init(&self) {
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
            } else {
                super::state::MALLOC_INITIALIZED.store(true, Relaxed);
            }
            (*self.av).have_fastchunks.store(0, Relaxed);
        }
        self.set_top(self.unsorted());
    }
}

#[inline]
pub(super) fn perturbing() -> bool {
    PERTURB_BYTE.load(Relaxed) != 0
}

#[inline]
pub(super) fn alloc_perturb(mem: *mut u8, n: usize) {
    let b = PERTURB_BYTE.load(Relaxed);
    if b != 0 {
        // SAFETY: `mem` is a chunk just handed out with at least `n` usable bytes.
        unsafe { core::ptr::write_bytes(mem, b ^ 0xff, n) };
    }
}

#[inline]
pub(super) fn free_perturb(mem: *mut u8, n: usize) {
    let b = PERTURB_BYTE.load(Relaxed);
    if b != 0 {
        // SAFETY: `mem` is a chunk being freed with at least `n` bytes.
        unsafe { core::ptr::write_bytes(mem, b, n) };
    }
}

/// Fastbin `idx` (below NFASTBINS: a size at most `max_fast()`, which
/// `set_max_fast` caps at MAX_FAST_SIZE) of arena `av`.
///
/// # Safety
/// `av` must be a live arena and `idx < NFASTBINS`.
#[inline(always)]
pub(super) unsafe fn fastbin_of<'a>(av: *mut Arena, idx: usize) -> &'a AtomicChunk {
    debug_assert!(idx < NFASTBINS);
    // SAFETY: forwarded from the caller; only a shared reference to the
    // atomic slot is made.
    unsafe { &*(&raw const (*av).fastbins).cast::<AtomicChunk>().add(idx) }
}
