//! The large cache (the `fast` profile only): a per-thread cache, like the
//! tcache, for the heap chunks above the tcache's largest (1040 bytes) up
//! to 32 MiB, so that a thread that frees and allocates blocks of a few
//! KiB to a few MiB reuses them without taking an arena's lock, searching
//! the large bins or coalescing. (glibc 2.42 grew its tcache the same way
//! when `tcache_max` is raised: bins by ranges of sizes, kept sorted.)
//!
//! Chunks are filed by size class, four classes per power of two (1 KiB to
//! 32 MiB: 60 classes), each class a singly linked list kept in ascending
//! order of size, so the first chunk big enough for a request is the best
//! fit in its class. A request takes a chunk only from its own class: at
//! most a quarter of it more than asked for. The cache holds at most
//! `LIMIT_BYTES` bytes of chunks and `CLASS_LIMIT` chunks per class; a free
//! that would go past either goes to the arena as usual.
//!
//! As in the tcache, a cached chunk is still in use to its arena (not
//! coalesced, not binned), its first user word links it (safe-linked) and
//! its second holds the tcache key, so that a second free of it is caught.
//! The cache lives right after the thread's `Tcache`, in the same chunk,
//! and the thread's batch of remote frees (`remote::Batch`) after it.
//! It keeps only chunks of the thread's own arena (the caller decides:
//! `thread::alloc`): a chunk of another arena would pin memory there that
//! this thread never allocates from.
//! Only the owning thread touches it; it is emptied into the arenas when the
//! thread exits and when the thread calls `malloc_trim`.

use core::sync::atomic::{AtomicUsize, Ordering::Relaxed};

use super::remote::Batch;
use super::tcache::Tcache;
use crate::chunk::safelink::{key, protect};
use crate::chunk::{Chunk, is_aligned};
use crate::os::printerr::malloc_printerr;

/// Smallest chunk the cache takes: just above the tcache's largest.
pub const MIN_CHUNK: usize = 1056;
/// Largest chunk the cache takes (glibc's largest mmap threshold).
pub const MAX_CHUNK: usize = 32 << 20;
/// Size classes: four per power of two from 2^10 to 2^25.
pub const CLASSES: usize = (25 - 10) * 4;
/// Most bytes of chunks one thread's cache holds.
pub const LIMIT_BYTES: usize = 4 << 20;
/// Most chunks per class.
pub const CLASS_LIMIT: u16 = 16;

#[repr(C)]
pub struct LargeCache {
    heads: [*mut u8; CLASSES],
    counts: [u16; CLASSES],
    /// Bytes and chunks cached: written by the owner only, read by
    /// `mallinfo` from any thread (so atomics, used relaxed).
    pub(crate) bytes: AtomicUsize,
    pub(crate) chunks: AtomicUsize,
}

/// The large cache of thread cache `tc`: right after it, in the same chunk
/// (the thread layer allocates both together under the fast profile).
///
/// # Safety
/// `tc` is a thread's cache made under the fast profile.
#[inline]
pub unsafe fn of(tc: *mut Tcache) -> *mut LargeCache {
    // SAFETY: forwarded from the caller: the chunk holds both.
    unsafe { tc.add(1).cast() }
}

/// The thread's batch of remote frees (`remote::Batch`), right after its
/// large cache in the same chunk.
///
/// # Safety
/// As for `of`.
#[inline]
pub unsafe fn batch_of(tc: *mut Tcache) -> *mut Batch {
    // SAFETY: forwarded from the caller: the chunk holds all three.
    unsafe { of(tc).add(1).cast() }
}

/// The class of a chunk size in MIN_CHUNK..=MAX_CHUNK.
#[inline]
fn class_of(size: usize) -> usize {
    let lg = (usize::BITS - 1 - size.leading_zeros()) as usize;
    ((lg - 10) * 4 + ((size >> (lg - 2)) & 3)).min(CLASSES - 1)
}

/// Whether a heap chunk of `size` bytes is one the cache may hold. None is
/// while `perturb_byte` is set: a program that asks for freed and fresh
/// memory to be filled gets every such chunk through the arena, which fills
/// it.
#[inline]
pub fn takes(size: usize) -> bool {
    (MIN_CHUNK..=MAX_CHUNK).contains(&size) && !super::locked::perturbing()
}

/// The next entry after cached chunk `mem` (its link, revealed).
///
/// # Safety
/// `mem` is the user memory of a cached chunk.
#[inline]
unsafe fn next_of(mem: *mut u8) -> *mut u8 {
    // SAFETY: forwarded from the caller: the link is ours.
    protect(mem as usize, unsafe { Chunk::from_mem(mem).held_link() }) as *mut u8
}

/// Links cached chunk `mem` to `next` (safe-linked).
///
/// # Safety
/// As for `next_of`.
#[inline]
unsafe fn set_next(mem: *mut u8, next: *mut u8) {
    // SAFETY: forwarded from the caller.
    unsafe { Chunk::from_mem(mem).set_held_link(protect(mem as usize, next as usize)) };
}

impl LargeCache {
    /// Takes the smallest cached chunk of `nb`'s class with at least `nb`
    /// bytes: its user pointer, or null.
    ///
    /// # Safety
    /// The calling thread's own cache; `nb` satisfies `takes`.
    pub unsafe fn get(&mut self, nb: usize) -> *mut u8 {
        let c = class_of(nb);
        let mut prev: *mut u8 = core::ptr::null_mut();
        // SAFETY: `c` is below CLASSES; every chunk on the list is an
        // in-use chunk this thread cached, linked through its first word.
        unsafe {
            let mut cur = *self.heads.get_unchecked(c);
            while !cur.is_null() {
                if !is_aligned(cur as usize) {
                    malloc_printerr("malloc(): unaligned large cache chunk detected");
                }
                let size = Chunk::from_mem(cur).size();
                let next = next_of(cur);
                if size >= nb {
                    if prev.is_null() {
                        *self.heads.get_unchecked_mut(c) = next;
                    } else {
                        set_next(prev, next);
                    }
                    *self.counts.get_unchecked_mut(c) -= 1;
                    self.count(size, false);
                    Chunk::from_mem(cur).set_held_mark(0);
                    return cur;
                }
                prev = cur;
                cur = next;
            }
        }
        core::ptr::null_mut()
    }

    /// Caches in-use chunk `p` of `size` bytes (satisfying `takes`), in
    /// order of size within its class; false (nothing done) when the class
    /// or the cache is full.
    ///
    /// # Safety
    /// The calling thread's own cache; `p` is a heap chunk given up by its
    /// user and not cached already.
    pub unsafe fn put(&mut self, p: Chunk, size: usize) -> bool {
        let c = class_of(size);
        // SAFETY: `c` is below CLASSES.
        let count = unsafe { *self.counts.get_unchecked(c) };
        if count >= CLASS_LIMIT || self.bytes.load(Relaxed) + size > LIMIT_BYTES {
            return false;
        }
        let mem = p.mem();
        let mut prev: *mut u8 = core::ptr::null_mut();
        // SAFETY: as in `get`; `mem`'s first two words are ours to write.
        unsafe {
            let mut cur = *self.heads.get_unchecked(c);
            while !cur.is_null() && Chunk::from_mem(cur).size() < size {
                prev = cur;
                cur = next_of(cur);
            }
            set_next(mem, cur);
            if prev.is_null() {
                *self.heads.get_unchecked_mut(c) = mem;
            } else {
                set_next(prev, mem);
            }
            Chunk::from_mem(mem).set_held_mark(key());
            *self.counts.get_unchecked_mut(c) = count + 1;
        }
        self.count(size, true);
        true
    }

    /// Whether `mem`, a chunk of `size` bytes being freed, is in the cache
    /// already (only looked for when its key word holds the key).
    ///
    /// # Safety
    /// The calling thread's own cache; `mem` is the user memory of a heap
    /// chunk of at least MINSIZE bytes.
    pub unsafe fn holds(&self, mem: *mut u8, size: usize) -> bool {
        // SAFETY: forwarded from the caller.
        if unsafe { Chunk::from_mem(mem).held_mark() } != key() {
            return false;
        }
        // SAFETY: as in `get`.
        unsafe {
            let mut cur = *self.heads.get_unchecked(class_of(size));
            while !cur.is_null() {
                if cur == mem {
                    return true;
                }
                cur = next_of(cur);
            }
        }
        false
    }

    /// Takes every cached chunk out, calling `f` with each (to free it).
    ///
    /// # Safety
    /// The calling thread's own cache.
    pub unsafe fn drain(&mut self, mut f: impl FnMut(Chunk)) {
        for c in 0..CLASSES {
            // SAFETY: as in `get`.
            unsafe {
                while !self.heads.get_unchecked(c).is_null() {
                    let mem = *self.heads.get_unchecked(c);
                    *self.heads.get_unchecked_mut(c) = next_of(mem);
                    Chunk::from_mem(mem).set_held_mark(0);
                    f(Chunk::from_mem(mem));
                }
                *self.counts.get_unchecked_mut(c) = 0;
            }
        }
        self.bytes.store(0, Relaxed);
        self.chunks.store(0, Relaxed);
    }

    /// The owner's update of the totals: a chunk of `size` bytes cached
    /// (`into`) or taken out.
    #[inline]
    fn count(&self, size: usize, into: bool) {
        let (b, c) = (self.bytes.load(Relaxed), self.chunks.load(Relaxed));
        let (b, c) = if into {
            (b.wrapping_add(size), c.wrapping_add(1))
        } else {
            (b.wrapping_sub(size), c.wrapping_sub(1))
        };
        self.bytes.store(b, Relaxed);
        self.chunks.store(c, Relaxed);
    }

    /// Bytes and chunks cached (from any thread: a moment's figures).
    pub fn totals(&self) -> (usize, usize) {
        (self.bytes.load(Relaxed), self.chunks.load(Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::safelink::init_key;

    fn empty() -> LargeCache {
        LargeCache {
            heads: [core::ptr::null_mut(); CLASSES],
            counts: [0; CLASSES],
            bytes: AtomicUsize::new(0),
            chunks: AtomicUsize::new(0),
        }
    }

    #[test]
    fn classes_are_four_per_power_of_two() {
        assert_eq!(class_of(1056), 0);
        assert_eq!(class_of(1279), 0);
        assert_eq!(class_of(1280), 1);
        assert_eq!(class_of(2048), 4);
        assert_eq!(class_of(MAX_CHUNK), CLASSES - 1);
        assert!(takes(MIN_CHUNK) && takes(MAX_CHUNK));
        assert!(!takes(1040) && !takes(MAX_CHUNK + 16));
    }

    /// Chunk headers for sizes 1344, 1296 and 1440 (one class: 1280..1535)
    /// in one buffer, each at a 2 KiB stride.
    #[test]
    fn a_request_takes_the_smallest_big_enough_chunk_of_its_class() {
        init_key();
        let mut buf = std::vec![0u128; 3 * 128];
        let base = buf.as_mut_ptr().cast::<u8>();
        let sizes = [1344usize, 1296, 1440];
        let chunks: std::vec::Vec<Chunk> = (0..3)
            // SAFETY: 2 KiB strides inside the 6 KiB buffer.
            .map(|i| Chunk::from_mem(unsafe { base.add(i * 2048 + 16) }))
            .collect();
        let mut lc = empty();
        // SAFETY: each chunk's header and first user words lie in the buffer.
        unsafe {
            for (c, &s) in chunks.iter().zip(&sizes) {
                c.set_head(s | 1);
                assert!(!lc.holds(c.mem(), s));
                assert!(lc.put(*c, s));
                assert!(lc.holds(c.mem(), s));
            }
            assert_eq!(lc.totals(), (1344 + 1296 + 1440, 3));
            // 1300 bytes: 1296 is too small, 1344 the best fit.
            assert_eq!(lc.get(1300), chunks[0].mem());
            assert!(!lc.holds(chunks[0].mem(), 1344));
            // 1200 bytes is of the class below: nothing there.
            assert!(lc.get(1200).is_null());
            assert_eq!(lc.get(1400), chunks[2].mem());
            assert!(lc.get(1300).is_null());
            assert_eq!(lc.get(1290), chunks[1].mem());
            assert_eq!(lc.totals(), (0, 0));
            // Past the byte limit: not taken.
            chunks[0].set_head((LIMIT_BYTES + 16) | 1);
            assert!(!lc.put(chunks[0], LIMIT_BYTES + 16));
            // Drained: every chunk handed back once, the totals zero.
            chunks[0].set_head(1344 | 1);
            assert!(lc.put(chunks[0], 1344) && lc.put(chunks[2], 1440));
            let mut back = std::vec::Vec::new();
            lc.drain(|c| back.push(c));
            assert_eq!(back.len(), 2);
            assert_eq!(lc.totals(), (0, 0));
            assert!(!lc.holds(chunks[0].mem(), 1344));
        }
    }
}
