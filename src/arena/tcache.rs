//! The tcache (glibc 2.26+): a small per-thread cache of recently freed
//! chunks, one singly linked LIFO list per exact chunk size from 32 to 1040
//! bytes (requests up to 1032), at most `tcache_count` (16; glibc: 7) chunks
//! each.
//! Only the owning thread touches it, so it needs no lock and no atomic.
//! To the arena, a chunk in the tcache is still in use: it is neither
//! coalesced nor binned until it leaves the cache.
//!
//! The cache itself (`tcache_perthread_struct`, 0x280 bytes) is allocated
//! from the thread's arena by its first malloc, as glibc does (so the first
//! chunk of a heap is the cache, and the program's first block follows it).
//!
//! Each entry's `next` is safe-linked, and its second word holds a
//! per-process random key while it is cached: a `free` that finds the key in
//! a chunk looks for the chunk in its list and reports a double free.

use crate::os::record;
use core::sync::atomic::Ordering::Relaxed;

use crate::chunk::bins::{TCACHE_MAX_BINS, csize2tidx};
use crate::chunk::safelink::{key, protect};
use crate::chunk::{Chunk, is_aligned};
use crate::config::tunables::MP;
use crate::os::printerr::malloc_printerr;

/// glibc 2.36's `tcache_perthread_struct`.
#[repr(C)]
pub struct Tcache {
    pub counts: [u16; TCACHE_MAX_BINS],
    pub entries: [*mut Entry; TCACHE_MAX_BINS],
}

const _: () = assert!(core::mem::size_of::<Tcache>() == 0x280);

/// A tcache bin in use: below `mp_.tcache_bins` and below `TCACHE_MAX_BINS`
/// (the arrays' length) by construction, so the cache indexes its arrays
/// with it unchecked and no bounds check (no panic) is compiled in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct TcBin(usize);

impl TcBin {
    /// The bin of chunk size `nb` (a multiple of 16, at least MINSIZE) when
    /// the tcache caches that size. `mp_.tcache_bins` is clamped to the
    /// arrays: a program may write any value into the exported `mp_`.
    #[inline(always)]
    pub fn of_size(nb: usize) -> Option<TcBin> {
        let idx = csize2tidx(nb);
        (idx < MP.tcache_bins.load(Relaxed) && idx < TCACHE_MAX_BINS).then_some(TcBin(idx))
    }

    /// Every bin of the arrays, in use or not (for walks over a cache).
    pub fn all() -> impl Iterator<Item = TcBin> {
        (0..TCACHE_MAX_BINS).map(TcBin)
    }
}

/// A cached chunk's user memory.
#[repr(C)]
pub struct Entry {
    /// Safe-linked pointer to the next entry.
    pub(crate) next: *mut Entry,
    /// The process key while cached, 0 otherwise.
    key: usize,
}

impl Tcache {
    /// How many chunks bin `b` holds.
    #[inline(always)]
    pub fn count(&self, b: TcBin) -> usize {
        // SAFETY: `b.0 < TCACHE_MAX_BINS`, the array's length (TcBin's
        // invariant).
        usize::from(unsafe { *self.counts.get_unchecked(b.0) })
    }

    /// Whether bin `b` has room for one more chunk (`mp_.tcache_count`).
    #[inline(always)]
    pub fn has_room(&self, b: TcBin) -> bool {
        self.count(b) < MP.tcache_count.load(Relaxed)
    }

    /// The newest entry of bin `b` (null when empty).
    #[inline(always)]
    pub fn first(&self, b: TcBin) -> *mut Entry {
        // SAFETY: as in `count`.
        unsafe { *self.entries.get_unchecked(b.0) }
    }

    #[inline(always)]
    fn set(&mut self, b: TcBin, e: *mut Entry, count: u16) {
        // SAFETY: as in `count`.
        unsafe {
            *self.entries.get_unchecked_mut(b.0) = e;
            *self.counts.get_unchecked_mut(b.0) = count;
        }
    }

    /// Caches chunk `c` in bin `idx` (the caller checked there is room).
    ///
    /// # Safety
    /// `c` is an in-use chunk of size class `idx` that nobody else uses, and
    /// `self` is the calling thread's cache.
    #[inline]
    pub unsafe fn put(&mut self, c: Chunk, idx: TcBin) {
        let e = c.mem().cast::<Entry>();
        // SAFETY: the chunk's first two user words are ours to write.
        unsafe {
            (*e).key = key();
            (*e).next = protect(e as usize, self.first(idx) as usize) as *mut Entry;
        }
        self.set(idx, e, self.count(idx) as u16 + 1);
    }

    /// `put` for a chunk the arena code moves into the cache (a stash, a
    /// free inside the arena, a handed-over free): a recording sees it go.
    ///
    /// # Safety
    /// As for `put`; `arena` is the chunk's arena (for the record only).
    #[inline]
    pub unsafe fn stash(&mut self, c: Chunk, idx: TcBin, arena: usize) {
        // SAFETY: forwarded from the caller.
        unsafe {
            record::chunk(record::state::TCACHE, c.addr(), c.size(), arena);
            self.put(c, idx);
        }
    }

    /// Takes the most recently cached chunk of bin `idx` (non-empty).
    ///
    /// # Safety
    /// `self` is the calling thread's cache and bin `idx` is not empty.
    #[inline]
    pub unsafe fn get(&mut self, idx: TcBin) -> *mut u8 {
        let e = self.first(idx);
        if !is_aligned(e as usize) {
            malloc_printerr("malloc(): unaligned tcache chunk detected");
        }
        // SAFETY: a cached entry: its two words are the cache's.
        unsafe {
            let next = protect(e as usize, (*e).next as usize) as *mut Entry;
            self.set(idx, next, self.count(idx) as u16 - 1);
            (*e).key = 0;
        }
        e.cast()
    }

    /// After a free found the cache key in a chunk: walks bin `idx` and
    /// returns glibc's message if the chunk is already there (or the bin is
    /// corrupt), `None` if the key was a coincidence.
    ///
    /// # Safety
    /// `self` is the calling thread's cache.
    pub unsafe fn find_double_free(&self, mem: *mut u8, idx: TcBin) -> Option<&'static str> {
        let limit = MP.tcache_count.load(Relaxed);
        let mut e = self.first(idx);
        let mut n = 0;
        while !e.is_null() {
            if n >= limit {
                return Some("free(): too many chunks detected in tcache");
            }
            if !is_aligned(e as usize) {
                return Some("free(): unaligned chunk detected in tcache 2");
            }
            if e.cast() == mem {
                return Some("free(): double free detected in tcache 2");
            }
            // SAFETY: a cached entry (alignment checked above).
            e = protect(e as usize, unsafe { (*e).next } as usize) as *mut Entry;
            n += 1;
        }
        None
    }

    /// Whether a freed chunk's user memory carries the cache key.
    ///
    /// # Safety
    /// `mem` points to at least two readable words.
    #[inline]
    pub unsafe fn has_key(mem: *mut u8) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { (*mem.cast::<Entry>()).key == key() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunk::safelink::init_key;

    #[test]
    fn put_and_get_are_last_in_first_out_and_clear_the_key() {
        init_key();
        let mut tc = Tcache {
            counts: [0; TCACHE_MAX_BINS],
            entries: [core::ptr::null_mut(); TCACHE_MAX_BINS],
        };
        let mut bufs = [[0u128; 4]; 3];
        let chunks: std::vec::Vec<Chunk> = bufs
            .iter_mut()
            .map(|b| Chunk::from_ptr(b.as_mut_ptr().cast()))
            .collect();
        // SAFETY: each chunk lies in its own buffer of 64 bytes.
        unsafe {
            let bin = TcBin::of_size(64).expect("64-byte chunks are cached");
            for &c in &chunks {
                tc.put(c, bin);
                assert!(Tcache::has_key(c.mem()));
            }
            assert_eq!(tc.count(bin), 3);
            assert_eq!(tc.counts[2], 3);
            for &c in chunks.iter().rev() {
                let m = tc.get(bin);
                assert_eq!(m, c.mem());
                assert!(!Tcache::has_key(m));
            }
            assert_eq!(tc.counts[2], 0);
            assert!(tc.entries[2].is_null());
        }
    }
}
