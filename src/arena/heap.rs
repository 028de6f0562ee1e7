//! Heaps of thread arenas: mmap'd regions of at most HEAP_MAX_SIZE (64 MiB),
//! each aligned to HEAP_MAX_SIZE, so the heap (and from it the arena) of any
//! chunk is found by masking its address: no lookup table, no lock.
//!
//! ```text
//!  64 MiB boundary
//!  +-----------+--------------------+---------------- ... ---------+---------------+
//!  | heap_info | malloc_state       | chunks ...           top     | PROT_NONE ... |
//!  | (48 B)    | (first heap only)  |                              |               |
//!  +-----------+--------------------+---------------- ... ---------+---------------+
//!  ^ heap      <-------------- size (read-write, grows by mprotect) -->  up to 64 MiB
//! ```
//!
//! A heap is born as a 64 MiB PROT_NONE reservation of which the first part
//! (132 KiB for a new arena) is made read-write; it grows by mprotect'ing
//! more of it, and shrinks by MADV_DONTNEED on its tail, which stays
//! read-write (glibc 2.36; PROT_NONE again only under strict overcommit:
//! see `shrink_heap`), so growing back costs no mprotect. An arena
//! that fills a heap chains a new one (`prev` points back); a heap that
//! empties completely (and is not its arena's first) is unmapped.

use super::state::Arena;
use crate::chunk::{CHUNK_HDR_SZ, Chunk, MALLOC_ALIGNMENT, align_up};
use crate::os::sys;

/// Largest heap, and the alignment of every heap (2 × the default mmap
/// threshold ceiling, as glibc has it on 64-bit).
pub const HEAP_MAX_SIZE: usize = 64 * 1024 * 1024;
/// Smallest heap glibc makes.
pub const HEAP_MIN_SIZE: usize = 32 * 1024;

/// glibc 2.36's `heap_info`, field for field.
#[repr(C)]
pub struct HeapInfo {
    /// The arena this heap belongs to.
    pub ar_ptr: *mut Arena,
    /// The arena's previous heap (null for its first).
    pub prev: *mut HeapInfo,
    /// Bytes in use by the arena, from the heap's start.
    pub size: usize,
    /// Bytes made read-write (≥ size).
    pub mprotect_size: usize,
    /// The page size the heap was made with.
    pub pagesize: usize,
    /// glibc's padding. In an arena's first heap, ours: the head of the
    /// arena's list of remote frees (`arena::remote`).
    pub remote: core::sync::atomic::AtomicPtr<u8>,
}

const _: () = assert!(core::mem::size_of::<HeapInfo>() == 48);
// The first chunk after the header must have 16-byte aligned memory.
const _: () =
    assert!((core::mem::size_of::<HeapInfo>() + CHUNK_HDR_SZ).is_multiple_of(MALLOC_ALIGNMENT));

/// The end of heap `h`'s used part.
///
/// # Safety
/// `h` must be a live heap header.
#[inline]
pub unsafe fn heap_end(h: *const HeapInfo) -> usize {
    // SAFETY: forwarded from the caller.
    h as usize + unsafe { (*h).size }
}

/// The header of thread arena `av`'s first heap: the arena lies right
/// after it (see the picture above). Address arithmetic only.
#[inline]
pub fn first_heap_of(av: *mut Arena) -> *mut HeapInfo {
    av.cast::<HeapInfo>().wrapping_sub(1)
}

/// The first chunk of heap `h`: right after the arena in an arena's first
/// heap (no `prev`), right after the `heap_info` header in the others.
///
/// # Safety
/// `h` must be a live heap header whose `prev` and `ar_ptr` are set.
#[inline]
pub unsafe fn first_chunk(h: *const HeapInfo) -> Chunk {
    // SAFETY: forwarded from the caller.
    let (prev, arena) = unsafe { ((*h).prev, (*h).ar_ptr) };
    if prev.is_null() {
        Chunk::first_at(arena as usize + core::mem::size_of::<Arena>())
    } else {
        Chunk::first_at(h as usize + core::mem::size_of::<HeapInfo>())
    }
}

/// The heap that holds address `addr` (of a NON_MAIN_ARENA chunk).
#[inline]
pub fn heap_for_ptr(addr: usize) -> *mut HeapInfo {
    (addr & !(HEAP_MAX_SIZE - 1)) as *mut HeapInfo
}

/// Where the next heap may go: just above the last one made, when the
/// kernel left that spot free (saves the 2 × reservation dance). Only a hint:
/// a stale value costs one failed mmap.
/// Which 64 MiB slots of the address space hold a heap of ours: a bit per
/// slot over the 47-bit user address space (2^21 slots, 256 KiB of zero
/// pages that stay untouched but for the words in use). `free` checks a
/// NON_MAIN_ARENA chunk against it before trusting the heap header below it.
const SLOT_WORDS: usize = (1usize << 47) / HEAP_MAX_SIZE / 64;
static OUR_HEAPS: [core::sync::atomic::AtomicU64; SLOT_WORDS] =
    [const { core::sync::atomic::AtomicU64::new(0) }; SLOT_WORDS];
/// Set if a heap ever lay beyond the bitmap (a 57-bit address space): the
/// check is then off, rather than wrong.
static HEAPS_UNTRACKED: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

fn mark_heap(base: usize, ours: bool) {
    use core::sync::atomic::Ordering::Relaxed;
    let slot = base / HEAP_MAX_SIZE;
    let Some(word) = OUR_HEAPS.get(slot / 64) else {
        HEAPS_UNTRACKED.store(true, Relaxed);
        return;
    };
    let bit = 1u64 << (slot % 64);
    if ours {
        word.fetch_or(bit, Relaxed);
    } else {
        word.fetch_and(!bit, Relaxed);
    }
}

/// Whether `addr` lies in the read-write part of a thread heap of ours,
/// past its header.
#[inline]
pub fn in_our_heap(addr: usize, len: usize) -> bool {
    use core::sync::atomic::Ordering::Relaxed;
    let slot = addr / HEAP_MAX_SIZE;
    let ours = match OUR_HEAPS.get(slot / 64) {
        Some(word) => word.load(Relaxed) & (1u64 << (slot % 64)) != 0,
        None => return HEAPS_UNTRACKED.load(Relaxed),
    };
    if !ours {
        return false;
    }
    let h = heap_for_ptr(addr);
    // SAFETY: a marked slot starts with a live heap's header (unmarked
    // before the heap is unmapped); `size` is a word its arena's lock
    // holder may be changing, and either value bounds the heap.
    let size = unsafe { core::ptr::read_volatile(&raw const (*h).size) };
    addr >= h as usize + size_of::<HeapInfo>() && addr.saturating_add(len) <= h as usize + size
}

static ALIGNED_HEAP_AREA: core::sync::atomic::AtomicUsize = core::sync::atomic::AtomicUsize::new(0);

/// Reserves a new heap and makes its first `size + top_pad` bytes (at least
/// HEAP_MIN_SIZE, at most HEAP_MAX_SIZE, page-rounded) read-write. The
/// header's `size`, `mprotect_size` and `pagesize` are set; `ar_ptr` and
/// `prev` are the caller's to fill. `None` if the kernel refuses.
pub fn new_heap(size: usize, top_pad: usize) -> Option<*mut HeapInfo> {
    use core::sync::atomic::Ordering::Relaxed;
    let page = sys::page_size();
    let size = if size.saturating_add(top_pad) < HEAP_MIN_SIZE {
        HEAP_MIN_SIZE
    } else if size.saturating_add(top_pad) <= HEAP_MAX_SIZE {
        size + top_pad
    } else if size > HEAP_MAX_SIZE {
        return None;
    } else {
        HEAP_MAX_SIZE
    };
    let size = align_up(size, page);

    let reserve = |len| sys::map_anonymous(len, libc::PROT_NONE, libc::MAP_NORESERVE);
    let mut heap: Option<*mut u8> = None;
    let hint = ALIGNED_HEAP_AREA.swap(0, Relaxed);
    if hint != 0 {
        let p = sys::map_anonymous_near(hint, HEAP_MAX_SIZE, libc::PROT_NONE, libc::MAP_NORESERVE);
        if let Some(p) = p {
            if p as usize & (HEAP_MAX_SIZE - 1) == 0 {
                heap = Some(p);
            } else {
                // SAFETY: we just made this mapping and nobody knows of it.
                unsafe { sys::unmap(p, HEAP_MAX_SIZE) };
            }
        }
    }
    if heap.is_none() {
        // Reserve twice the size and keep the aligned half.
        crate::os::trace::trace(format_args!(
            "mmap 128 MiB PROT_NONE  new thread heap: reserve twice 64 MiB to keep an aligned half ({size:#x} read-write)"
        ));
        if let Some(p1) = reserve(2 * HEAP_MAX_SIZE) {
            let p2 = align_up(p1 as usize, HEAP_MAX_SIZE);
            let lead = p2 - p1 as usize;
            // SAFETY: both ranges are parts of the reservation just made,
            // outside the aligned 64 MiB we keep.
            unsafe {
                if lead != 0 {
                    sys::unmap(p1, lead);
                } else {
                    ALIGNED_HEAP_AREA.store(p2 + HEAP_MAX_SIZE, Relaxed);
                }
                sys::unmap((p2 + HEAP_MAX_SIZE) as *mut u8, HEAP_MAX_SIZE - lead);
            }
            heap = Some(p2 as *mut u8);
        } else {
            // Little address space left: hope a plain 64 MiB lands aligned.
            let p = reserve(HEAP_MAX_SIZE)?;
            if p as usize & (HEAP_MAX_SIZE - 1) != 0 {
                // SAFETY: our own fresh mapping.
                unsafe { sys::unmap(p, HEAP_MAX_SIZE) };
                return None;
            }
            heap = Some(p);
        }
    }
    let base = heap?;
    // SAFETY: `base` starts a 64 MiB reservation we own.
    if unsafe { !sys::protect(base, size, libc::PROT_READ | libc::PROT_WRITE) } {
        // SAFETY: as above.
        unsafe { sys::unmap(base, HEAP_MAX_SIZE) };
        return None;
    }
    mark_heap(base as usize, true);
    let h = base.cast::<HeapInfo>();
    // SAFETY: the header lies in the read-write start of the new heap.
    unsafe {
        h.write(HeapInfo {
            ar_ptr: core::ptr::null_mut(),
            prev: core::ptr::null_mut(),
            size,
            mprotect_size: size,
            pagesize: page,
            remote: core::sync::atomic::AtomicPtr::new(core::ptr::null_mut()),
        });
    }
    Some(h)
}

/// Grows heap `h` by `diff` bytes (page-rounded); false when it would pass
/// HEAP_MAX_SIZE or mprotect fails. Pages are made read-write only as far
/// as the heap now reaches, as glibc's grow_heap does (so `/proc/PID/maps`
/// shows the same); a trimmed heap keeps its read-write tail (see
/// `shrink_heap`), so growing back into it needs no mprotect.
///
/// # Safety
/// `h` must be a live heap whose arena's lock the caller holds.
pub unsafe fn grow_heap(h: *mut HeapInfo, diff: usize) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        let page = (*h).pagesize;
        let new_size = (*h).size + align_up(diff, page);
        if new_size > HEAP_MAX_SIZE {
            return false;
        }
        if new_size > (*h).mprotect_size {
            let rw_end = new_size;
            let from = h.cast::<u8>().add((*h).mprotect_size);
            let len = rw_end - (*h).mprotect_size;
            crate::os::trace::trace(format_args!(
                "mprotect +{len:#x}  thread heap {h:p} grows (read-write part)"
            ));
            if !sys::protect(from, len, libc::PROT_READ | libc::PROT_WRITE) {
                return false;
            }
            (*h).mprotect_size = rw_end;
        }
        (*h).size = new_size;
    }
    true
}

/// Shrinks heap `h` by `diff` bytes (a multiple of the page size), as
/// glibc 2.36 does: the pages go back to the kernel (MADV_DONTNEED) and stay
/// read-write in `/proc/PID/maps`, so growing again costs no mprotect; only
/// under strict overcommit accounting is the tail mapped afresh PROT_NONE.
///
/// # Safety
/// `h` must be a live heap whose arena's lock the caller holds, and its last
/// `diff` bytes must be free (part of top).
pub unsafe fn shrink_heap(h: *mut HeapInfo, diff: usize) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe {
        let Some(new_size) = (*h).size.checked_sub(diff) else {
            return false;
        };
        if new_size < core::mem::size_of::<HeapInfo>() {
            return false;
        }
        let tail = h.cast::<u8>().add(new_size);
        // As glibc's shrink_heap: the tail's pages are dropped and it stays
        // read-write (a later growth needs no mprotect), unless the kernel
        // counts commit strictly, when it is mapped afresh without access.
        if sys::overcommit_strict() {
            if !sys::remap_inaccessible(tail, diff) {
                return false;
            }
            (*h).mprotect_size = new_size;
        } else {
            sys::discard(tail, diff);
        }
        (*h).size = new_size;
    }
    true
}

/// Unmaps a whole heap.
///
/// # Safety
/// No chunk of the heap may be in use or in any bin.
pub unsafe fn delete_heap(h: *mut HeapInfo) {
    use core::sync::atomic::Ordering::Relaxed;
    let _ = ALIGNED_HEAP_AREA.compare_exchange(h as usize + HEAP_MAX_SIZE, 0, Relaxed, Relaxed);
    mark_heap(h as usize, false);
    // SAFETY: forwarded from the caller.
    unsafe { sys::unmap(h.cast(), HEAP_MAX_SIZE) };
}
