//! Layer 2, `chunk`: chunks, the unit of everything in a ptmalloc2 heap,
//! and the only layer that does raw address arithmetic on them (the others
//! get a chunk from a user pointer, from another chunk, or from the
//! constructors here that say where it is: the first chunk of a region, a
//! heap's closing fencepost, a bin's words read as a chunk). Beside it:
//! `bins` (which bin or tcache bin a size belongs to, the binmap) and
//! `safelink` (safe-linking, and the keys that mark free chunks). Uses only
//! `os`.
//!
//! ```text
//!     chunk -> +-------------------------------------------------+
//!              | prev_size: size of the previous chunk, if free  |  (lent to the previous
//!              |            chunk's user while that one is used) |   chunk otherwise)
//!              +-------------------------------------------------+
//!              | size of this chunk                      |A|M|P|  A: NON_MAIN_ARENA
//!       mem -> +-------------------------------------------------+  M: IS_MMAPPED
//!              | user data ...            (free: fd)             |  P: PREV_INUSE (the
//!              |                          (free: bk)             |     previous chunk
//!              |                 (free, large: fd_nextsize)      |     is in use)
//!              |                 (free, large: bk_nextsize)      |
//!              |  ...                                            |
//! next chunk ->+-------------------------------------------------+
//!              | prev_size: user data while this chunk is used,  |
//!              |            this chunk's size once it is free    |
//!              +-------------------------------------------------+
//! ```
//!
//! A chunk of size `s` starts on a 16-byte boundary, `s` is a multiple of 16
//! and at least `MINSIZE` (32). The user gets `mem = chunk + 16` and may use
//! `s - 8` bytes: up to the end of the chunk plus the next chunk's
//! `prev_size` word, which is only meaningful while this chunk is free.
//! Whether a chunk is in use is recorded in the *next* chunk's P bit.
//!
//! Mmap'd chunks (M set) stand alone in their own mapping: `prev_size` holds
//! the gap between the mapping's start and the chunk, there is no next chunk,
//! and the user may use `size - 16` bytes.

/// One header word.
pub const SIZE_SZ: usize = 8;
/// Every pointer handed out is aligned to this.
pub const MALLOC_ALIGNMENT: usize = 16;
pub const ALIGN_MASK: usize = MALLOC_ALIGNMENT - 1;
/// The smallest chunk: header plus room for fd and bk.
pub const MINSIZE: usize = 32;
/// `mem - chunk`.
pub const CHUNK_HDR_SZ: usize = 2 * SIZE_SZ;

pub const PREV_INUSE: usize = 0x1;
pub const IS_MMAPPED: usize = 0x2;
pub const NON_MAIN_ARENA: usize = 0x4;
pub const SIZE_BITS: usize = PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA;

/// Largest request: glibc refuses anything above PTRDIFF_MAX.
pub const MAX_REQUEST: usize = isize::MAX as usize;

const _: () = assert!(MINSIZE == 4 * SIZE_SZ && MALLOC_ALIGNMENT == 2 * SIZE_SZ);

/// The chunk size that serves a request of `n` bytes (n ≤ MAX_REQUEST).
#[inline]
pub const fn request2size(n: usize) -> usize {
    if n + SIZE_SZ + ALIGN_MASK < MINSIZE {
        MINSIZE
    } else {
        (n + SIZE_SZ + ALIGN_MASK) & !ALIGN_MASK
    }
}

/// `request2size`, or `None` for requests glibc refuses (ENOMEM).
#[inline]
pub const fn checked_request2size(n: usize) -> Option<usize> {
    if n > MAX_REQUEST {
        None
    } else {
        Some(request2size(n))
    }
}

#[inline]
pub const fn is_aligned(addr: usize) -> bool {
    addr & ALIGN_MASK == 0
}

#[inline]
pub const fn align_up(n: usize, to: usize) -> usize {
    (n + to - 1) & !(to - 1)
}

#[inline]
pub const fn align_down(n: usize, to: usize) -> usize {
    n & !(to - 1)
}

/// A pointer to a chunk header. Making or moving one is plain arithmetic and
/// safe; reading or writing its words is `unsafe` and needs the chunk to lie
/// in memory the allocator owns (a heap, an mmap'd chunk, or an arena's bin
/// array, whose entries double as fake chunks: see `bins`).
#[repr(transparent)]
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Debug)]
pub struct Chunk(*mut u8);

// Word offsets inside a chunk.
const PREV_SIZE: usize = 0;
const SIZE: usize = 1;
const FD: usize = 2;
const BK: usize = 3;
const FD_NEXTSIZE: usize = 4;
const BK_NEXTSIZE: usize = 5;

/// A chunk pointer that several threads may change at once: a fastbin's
/// head, onto which a thread freeing another arena's chunk pushes without
/// that arena's lock (glibc's lock-free fastbin push); the lock holder pops
/// with compare-and-swap. Same layout as a plain pointer.
#[repr(transparent)]
pub struct AtomicChunk(core::sync::atomic::AtomicPtr<u8>);

impl AtomicChunk {
    pub const fn null() -> AtomicChunk {
        AtomicChunk(core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()))
    }
    #[inline]
    pub fn load(&self) -> Chunk {
        Chunk(self.0.load(core::sync::atomic::Ordering::Acquire))
    }
    #[inline]
    pub fn swap(&self, c: Chunk) -> Chunk {
        Chunk(self.0.swap(c.0, core::sync::atomic::Ordering::AcqRel))
    }
    /// Replaces `current` with `new`; `Err` with what is there instead.
    #[inline]
    pub fn compare_exchange(&self, current: Chunk, new: Chunk) -> Result<Chunk, Chunk> {
        use core::sync::atomic::Ordering::{AcqRel, Acquire};
        self.0
            .compare_exchange(current.0, new.0, AcqRel, Acquire)
            .map(Chunk)
            .map_err(Chunk)
    }
}

impl Chunk {
    pub const NULL: Chunk = Chunk(core::ptr::null_mut());

    /// The chunk whose header starts at `p`. Only the chunk layer (and the
    /// unit tests) build chunks from raw addresses; the other layers use
    /// the constructors below, which say where a chunk is (scripts/
    /// check-layers keeps it so).
    #[inline]
    pub fn from_ptr(p: *mut u8) -> Chunk {
        Chunk(p)
    }
    #[inline]
    pub fn as_ptr(self) -> *mut u8 {
        self.0
    }
    #[inline]
    pub fn addr(self) -> usize {
        self.0 as usize
    }
    #[inline]
    pub fn is_null(self) -> bool {
        self.0.is_null()
    }
    /// The chunk whose user memory starts at `mem`.
    #[inline]
    pub fn from_mem(mem: *mut u8) -> Chunk {
        Chunk(mem.wrapping_sub(CHUNK_HDR_SZ))
    }
    /// The user memory of this chunk.
    #[inline]
    pub fn mem(self) -> *mut u8 {
        self.0.wrapping_add(CHUNK_HDR_SZ)
    }
    /// The first chunk at or after address `addr` whose user memory is
    /// 16-byte aligned (where a heap region's chunks start).
    #[inline]
    pub fn first_at(addr: usize) -> Chunk {
        Chunk::first_aligned_at(addr, MALLOC_ALIGNMENT)
    }
    /// The first chunk at or after address `addr` whose user memory is
    /// `align`-aligned (a power of two, at least MALLOC_ALIGNMENT): where
    /// an mmap'd chunk starts in its mapping.
    #[inline]
    pub fn first_aligned_at(addr: usize, align: usize) -> Chunk {
        Chunk::from_ptr((align_up(addr + CHUNK_HDR_SZ, align) - CHUNK_HDR_SZ) as *mut u8)
    }
    /// The fencepost that closes a region ending at `end`: the last aligned
    /// chunk header with `MINSIZE - CHUNK_HDR_SZ` bytes after it (where a
    /// thread heap that got a successor keeps its fencepost).
    #[inline]
    pub fn fencepost_before(end: usize) -> Chunk {
        let at = end - (MINSIZE - CHUNK_HDR_SZ);
        Chunk::from_ptr((at & !ALIGN_MASK) as *mut u8)
    }
    /// The fake chunk whose `fd` word is `*fd_slot` (and `bk` the word
    /// after): how a bin's two list words in the arena read as a chunk.
    /// Its other header words overlap whatever lies before and are never
    /// written through it.
    #[inline]
    pub fn with_links_at(fd_slot: *mut Chunk) -> Chunk {
        Chunk(fd_slot.cast::<u8>().wrapping_sub(FD * SIZE_SZ))
    }
    /// The chunk `n` bytes further up.
    #[inline]
    pub fn plus(self, n: usize) -> Chunk {
        Chunk(self.0.wrapping_add(n))
    }
    /// The chunk `n` bytes further down.
    #[inline]
    pub fn minus(self, n: usize) -> Chunk {
        Chunk(self.0.wrapping_sub(n))
    }

    #[inline]
    unsafe fn word(self, i: usize) -> usize {
        // SAFETY: the caller guarantees the chunk's header words are owned memory.
        unsafe { self.0.cast::<usize>().add(i).read() }
    }
    #[inline]
    unsafe fn set_word(self, i: usize, v: usize) {
        // SAFETY: as in `word`.
        unsafe { self.0.cast::<usize>().add(i).write(v) }
    }
}

/// Generates the accessors of a header word: `$get`/`$set` read and write it.
macro_rules! word_accessors {
    ($($(#[$m:meta])* $get:ident, $set:ident, $idx:expr, $ty:ty;)*) => {
        impl Chunk {
            $(
                $(#[$m])*
                /// # Safety
                /// The word must lie in memory the allocator owns.
                #[inline]
                pub unsafe fn $get(self) -> $ty {
                    // SAFETY: forwarded from the caller.
                    unsafe { <$ty>::from_word(self.word($idx)) }
                }
                /// # Safety
                /// The word must lie in memory the allocator owns and be
                /// this chunk's to write (not lent to a user).
                #[inline]
                pub unsafe fn $set(self, v: $ty) {
                    // SAFETY: forwarded from the caller.
                    unsafe { self.set_word($idx, v.to_word()) }
                }
            )*
        }
    };
}

trait Word {
    fn from_word(w: usize) -> Self;
    fn to_word(self) -> usize;
}
impl Word for usize {
    fn from_word(w: usize) -> Self {
        w
    }
    fn to_word(self) -> usize {
        self
    }
}
impl Word for Chunk {
    fn from_word(w: usize) -> Self {
        Chunk(w as *mut u8)
    }
    fn to_word(self) -> usize {
        self.0 as usize
    }
}

word_accessors! {
    /// The previous chunk's size (valid only while that chunk is free).
    prev_size, set_prev_size, PREV_SIZE, usize;
    /// The size word, flags included.
    head, set_head, SIZE, usize;
    /// Forward link in a bin (raw: fastbins store it safe-linked).
    fd, set_fd, FD, Chunk;
    /// Backward link in a bin.
    bk, set_bk, BK, Chunk;
    /// Large bins: next smaller size.
    fd_nextsize, set_fd_nextsize, FD_NEXTSIZE, Chunk;
    /// Large bins: next larger size.
    bk_nextsize, set_bk_nextsize, BK_NEXTSIZE, Chunk;
    /// While a given-up chunk waits outside the bins (the large cache, a
    /// list of remote frees): its link, safe-linked against its own user
    /// address (the first user word, where a bin keeps `fd`).
    held_link, set_held_link, FD, usize;
    /// While it waits so: its mark (a key, the second user word).
    held_mark, set_held_mark, BK, usize;
}

impl Chunk {
    /// Size without flag bits.
    ///
    /// # Safety
    /// The header must lie in owned memory.
    #[inline]
    pub unsafe fn size(self) -> usize {
        // SAFETY: forwarded from the caller.
        unsafe { self.head() & !SIZE_BITS }
    }
    /// # Safety
    /// The header must lie in owned memory.
    #[inline]
    pub unsafe fn prev_inuse(self) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.head() & PREV_INUSE != 0 }
    }
    /// # Safety
    /// The header must lie in owned memory.
    #[inline]
    pub unsafe fn is_mmapped(self) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.head() & IS_MMAPPED != 0 }
    }
    /// # Safety
    /// The header must lie in owned memory.
    #[inline]
    pub unsafe fn non_main_arena(self) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.head() & NON_MAIN_ARENA != 0 }
    }
    /// The next chunk in memory.
    ///
    /// # Safety
    /// The header must lie in owned memory.
    #[inline]
    pub unsafe fn next(self) -> Chunk {
        // SAFETY: forwarded from the caller.
        self.plus(unsafe { self.size() })
    }
    /// Whether this (heap) chunk is in use: the next chunk's P bit.
    ///
    /// # Safety
    /// This chunk and the next one's header must lie in owned memory.
    #[inline]
    pub unsafe fn inuse(self) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.next().prev_inuse() }
    }
    /// Whether the chunk at `off` bytes from here is in use.
    ///
    /// # Safety
    /// The chunk at `off` and its successor's header must be owned memory.
    #[inline]
    pub unsafe fn inuse_at(self, off: usize) -> bool {
        // SAFETY: forwarded from the caller.
        unsafe { self.plus(off).plus(self.plus(off).size()).prev_inuse() }
    }
    /// Marks the chunk at `off` bytes from here (its header is `off`) as
    /// having an in-use predecessor, i.e. marks this chunk in use when
    /// `off == size`.
    ///
    /// # Safety
    /// The header at `off` must be owned memory.
    #[inline]
    pub unsafe fn set_prev_inuse_at(self, off: usize) {
        let c = self.plus(off);
        // SAFETY: forwarded from the caller.
        unsafe { c.set_head(c.head() | PREV_INUSE) }
    }
    /// Clears the P bit of the header at `off` bytes from here.
    ///
    /// # Safety
    /// The header at `off` must be owned memory.
    #[inline]
    pub unsafe fn clear_prev_inuse_at(self, off: usize) {
        let c = self.plus(off);
        // SAFETY: forwarded from the caller.
        unsafe { c.set_head(c.head() & !PREV_INUSE) }
    }
    /// Replaces the size but keeps the flag bits.
    ///
    /// # Safety
    /// The header must be owned memory.
    #[inline]
    pub unsafe fn set_size_keep_flags(self, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.set_head((self.head() & SIZE_BITS) | size) }
    }
    /// Writes `size` into the next chunk's prev_size (a free chunk's footer).
    ///
    /// # Safety
    /// The word at `self + size` must be owned memory not lent to a user.
    #[inline]
    pub unsafe fn set_foot(self, size: usize) {
        // SAFETY: forwarded from the caller.
        unsafe { self.plus(size).set_prev_size(size) }
    }
}

#[cfg(test)]
mod tests {
    use super::safelink::{reveal_fd, store_fd};
    use super::*;

    #[test]
    fn request2size_matches_glibc_formula() {
        for n in 0..5000usize {
            let want = core::cmp::max(32, (n + 8 + 15) & !15);
            assert_eq!(request2size(n), want, "n = {n}");
        }
        assert_eq!(request2size(24), 32);
        assert_eq!(request2size(25), 48);
        assert_eq!(request2size(1000), 1008);
    }

    #[test]
    fn requests_above_ptrdiff_max_are_refused() {
        assert_eq!(checked_request2size(isize::MAX as usize + 1), None);
        assert_eq!(checked_request2size(usize::MAX), None);
        assert!(checked_request2size(isize::MAX as usize).is_some());
    }

    #[test]
    fn header_words_and_flags_round_trip() {
        let mut buf = [0usize; 16];
        let c = Chunk::from_ptr(buf.as_mut_ptr().cast());
        // SAFETY: the chunk lies inside `buf` (6 words of header plus next).
        unsafe {
            c.set_head(64 | PREV_INUSE | NON_MAIN_ARENA);
            assert_eq!(c.size(), 64);
            assert!(c.prev_inuse() && c.non_main_arena() && !c.is_mmapped());
            c.set_size_keep_flags(48);
            assert_eq!(c.head(), 48 | PREV_INUSE | NON_MAIN_ARENA);
            assert_eq!(c.next().addr(), c.addr() + 48);
            c.set_foot(48);
            assert_eq!(c.next().prev_size(), 48);
            c.next().set_head(32);
            assert!(!c.inuse());
            c.set_prev_inuse_at(48);
            assert!(c.inuse());
            c.clear_prev_inuse_at(48);
            assert!(!c.inuse_at(0));
        }
        assert_eq!(Chunk::from_mem(c.mem()), c);
        assert_eq!(c.mem() as usize - c.addr(), 16);
    }

    #[test]
    fn safe_linking_round_trips_and_hides_the_pointer() {
        let mut buf = [0usize; 4];
        let c = Chunk::from_ptr(buf.as_mut_ptr().cast());
        let target = Chunk::from_ptr(0x5555_1234_5670 as *mut u8);
        // SAFETY: fd lies inside `buf`.
        unsafe {
            store_fd(c, target);
            assert_eq!(reveal_fd(c), target);
            assert_ne!(c.fd(), target);
            store_fd(c, Chunk::NULL);
            assert_eq!(reveal_fd(c), Chunk::NULL);
        }
    }
}
pub mod bins;
pub mod safelink;
