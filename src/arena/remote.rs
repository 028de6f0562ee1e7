//! Remote frees: a free that finds its chunk's arena locked by another
//! thread does not wait. It pushes the chunk onto that arena's list of
//! pending frees (one compare-and-swap) and returns; whoever next takes the
//! arena's lock frees the pending chunks first, in the order they came.
//! Producer and consumer threads then never queue behind each other's
//! arena lock. In a process with one thread no lock is ever found taken,
//! so nothing changes there: glibc's layouts stay.
//!
//! A pending chunk is still in use to its arena. It is linked through its
//! first user word, safe-linked as the tcache's entries are. The head of a
//! thread arena's list is the spare word (glibc's padding) of its first
//! heap's `heap_info`, right before the arena; the main arena's is a static.
//! (glibc pushes fastbin-sized chunks onto another arena's fastbin without
//! its lock; that stays as glibc has it: `free::free_fast_unlocked`.)
//!
//! A thread whose tcache has no chunk for a request takes its arena's
//! whole list into the tcache where the bins have room (`take_all`), with
//! no lock; the rest go back on the list.
//!
//! The `fast` profile batches: a thread's frees of small chunks of another
//! arena gather in its `Batch` (no atomic operation, no look at the lock)
//! and go onto that arena's list in one compare-and-swap, 64 at a time or
//! when a chunk of a different arena comes.

use core::ptr::null_mut;
use core::sync::atomic::AtomicPtr;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};

use super::heap;
use super::locked::Locked;
use super::state::{Arena, REMOTE_FREES_SEEN, main_arena};
use crate::chunk::Chunk;
use crate::chunk::safelink::{key, protect};
use crate::os::printerr::misuse;

static MAIN_PENDING: AtomicPtr<u8> = AtomicPtr::new(null_mut());

/// Arena `av`'s list head.
///
/// # Safety
/// `av` must point to a live arena.
#[inline]
unsafe fn head<'a>(av: *mut Arena) -> &'a AtomicPtr<u8> {
    if core::ptr::eq(av, main_arena()) {
        &MAIN_PENDING
    } else {
        // SAFETY: a thread arena lies right after its first heap's header,
        // which lives as long as the arena (a first heap is never unmapped).
        unsafe { &(*heap::first_heap_of(av)).remote }
    }
}

/// What a pending chunk's second user word holds while it waits: the
/// tcache key, turned (so that neither cache takes it for one of its own).
fn pending_mark() -> usize {
    key().rotate_left(17) ^ 1
}

/// Marks `p` as waiting on a list; reports the misuse (false) if it is
/// already: a second free of it would link it twice, and the list would
/// become a cycle that whoever takes it goes round for ever.
///
/// # Safety
/// `p` is a heap chunk of at least MINSIZE bytes, given up by its user.
unsafe fn mark_pending(p: Chunk) -> bool {
    // SAFETY: the chunk's user words are ours until it is freed.
    unsafe {
        if p.held_mark() == pending_mark() {
            misuse("free(): double free detected in tcache 2");
            return false;
        }
        p.set_held_mark(pending_mark());
    }
    true
}

/// Pushes the chain `newest` .. `oldest` (linked newest first, the oldest's
/// link to be set here) of in-use chunks of `av` onto its list in one
/// compare-and-swap.
///
/// # Safety
/// `av` is a live arena; every chunk of the chain is an in-use chunk of it,
/// given up by its user and waiting (marked).
unsafe fn push_chain(av: *mut Arena, newest: Chunk, oldest: Chunk) {
    if !REMOTE_FREES_SEEN.load(Relaxed) {
        REMOTE_FREES_SEEN.store(true, Relaxed);
    }
    // SAFETY: forwarded from the caller.
    let head = unsafe { head(av) };
    let mut first = head.load(Relaxed);
    loop {
        // SAFETY: the oldest chunk's link is ours until the push lands.
        unsafe { oldest.set_held_link(protect(oldest.mem() as usize, first as usize)) };
        match head.compare_exchange_weak(first, newest.mem(), Release, Relaxed) {
            Ok(_) => return,
            Err(now) => first = now,
        }
    }
}

/// Hands in-use chunk `p`, given up by its user, to arena `av`'s list of
/// pending frees (its lock is held by another thread).
///
/// # Safety
/// `av` is `p`'s arena; `p` is a heap chunk of at least MINSIZE bytes.
pub unsafe fn hand_over(av: *mut Arena, p: Chunk) {
    // SAFETY: forwarded from the caller.
    unsafe {
        if mark_pending(p) {
            push_chain(av, p, p);
            crate::os::record::did(crate::os::record::did::HANDED_OVER);
        }
    }
}

/// Whether any free was ever handed over (then lock takers and tcache
/// misses look for waiting frees).
#[inline]
pub fn ever_handed_over() -> bool {
    REMOTE_FREES_SEEN.load(Relaxed)
}

/// Whether arena `av` has frees waiting (read without its lock: a hint).
///
/// # Safety
/// `av` must point to a live arena.
#[inline]
pub unsafe fn pending(av: *mut Arena) -> bool {
    // SAFETY: forwarded from the caller.
    REMOTE_FREES_SEEN.load(Relaxed) && unsafe { !head(av).load(Relaxed).is_null() }
}

/// Takes arena `av`'s whole list of waiting frees, newest first (follow it
/// with `next_taken`), for a thread of that arena to use as it sees fit
/// (the fast profile fills its tcache from it); what it cannot use it
/// hands back with a `Batch`.
///
/// # Safety
/// `av` must point to a live arena; every chunk taken is an in-use chunk
/// of it, given up by its user, that the caller must dispose of.
pub unsafe fn take_all(av: *mut Arena) -> *mut u8 {
    // SAFETY: forwarded from the caller.
    unsafe { head(av).swap(null_mut(), Acquire) }
}

/// The chunk after `mem` on a list from `take_all`.
///
/// # Safety
/// `mem` is on such a list, not yet disposed of.
pub unsafe fn next_taken(mem: *mut u8) -> *mut u8 {
    // SAFETY: a listed chunk's link is its safe-linked next.
    unsafe { protect(mem as usize, Chunk::from_mem(mem).held_link()) as *mut u8 }
}

/// Chunks of one arena given up by the owning thread of this batch, linked
/// newest first as on the arena's list, waiting to be handed over together
/// (the `fast` profile; it lives with the thread's caches).
#[repr(C)]
pub struct Batch {
    arena: *mut Arena,
    newest: *mut u8,
    oldest: *mut u8,
    count: usize,
}

/// Chunks a batch gathers before it is handed over.
pub const BATCH_MAX: usize = 64;

impl Batch {
    pub const fn new() -> Batch {
        Batch {
            arena: null_mut(),
            newest: null_mut(),
            oldest: null_mut(),
            count: 0,
        }
    }

    /// Adds in-use chunk `p` of arena `av`, handing the batch over first if
    /// it holds another arena's chunks, and after if it is full.
    ///
    /// # Safety
    /// `av` is `p`'s arena; `p` is a heap chunk of at least MINSIZE bytes,
    /// given up by its user.
    pub unsafe fn add(&mut self, av: *mut Arena, p: Chunk) {
        // SAFETY: forwarded from the caller.
        if unsafe { mark_pending(p) } {
            // SAFETY: as above.
            unsafe { self.add_taken(av, p) };
        }
    }

    /// `add` for a chunk taken off a list (`take_all`), still marked as
    /// waiting.
    ///
    /// # Safety
    /// As for `add`.
    pub unsafe fn add_taken(&mut self, av: *mut Arena, p: Chunk) {
        if self.count != 0 && self.arena != av {
            // SAFETY: the batch holds chunks of `self.arena` only.
            unsafe { self.hand_over() };
        }
        // SAFETY: the chunk's first user word is ours until it is freed.
        unsafe { p.set_held_link(protect(p.mem() as usize, self.newest as usize)) };
        if self.count == 0 {
            self.oldest = p.mem();
            self.arena = av;
        }
        self.newest = p.mem();
        self.count += 1;
        if self.count == BATCH_MAX {
            // SAFETY: as above.
            unsafe { self.hand_over() };
        }
    }

    /// Puts the whole batch on its arena's list of pending frees at once.
    ///
    /// # Safety
    /// The batch's chunks are in-use chunks of its live arena.
    pub unsafe fn hand_over(&mut self) {
        if self.count == 0 {
            return;
        }
        // SAFETY: forwarded from the caller; the batch's chunks are marked.
        unsafe {
            push_chain(
                self.arena,
                Chunk::from_mem(self.newest),
                Chunk::from_mem(self.oldest),
            );
        }
        *self = Batch::new();
    }
}

impl Locked {
    /// Frees the chunks other threads handed over while the lock was taken,
    /// oldest first. Called whenever the lock is taken (once any was).
    #[inline(never)]
    pub(super) fn take_remote_frees(&self) {
        // SAFETY: `self.av` is a live arena.
        let head = unsafe { head(self.av) };
        if head.load(Relaxed).is_null() {
            return;
        }
        self.free_remote(head.swap(null_mut(), Acquire));
    }

    #[cold]
    fn free_remote(&self, newest: *mut u8) {
        // Reverse the list (newest first) to free in the order handed over.
        let (mut oldest, mut cur) = (null_mut::<u8>(), newest);
        while !cur.is_null() {
            // SAFETY: every listed chunk's link is ours (it waits).
            unsafe {
                let next = next_taken(cur);
                Chunk::from_mem(cur).set_held_link(oldest as usize);
                oldest = cur;
                cur = next;
            }
        }
        while !oldest.is_null() {
            // SAFETY: as above (now plain links); each chunk is an in-use
            // chunk of this arena given up by its user.
            unsafe {
                let p = Chunk::from_mem(oldest);
                let next = p.held_link() as *mut u8;
                // No longer waiting: a fastbin keeps the second word as is,
                // and a later hand-over of the block must not find the mark.
                p.set_held_mark(0);
                self.free_chunk(p);
                oldest = next;
            }
        }
    }
}
