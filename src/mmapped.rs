//! Mmap'd chunks: requests of at least `mmap_threshold` bytes get a mapping
//! of their own, outside every arena, and go straight back to the kernel on
//! `free`. The chunk sits at the start of the mapping (`prev_size` holds any
//! gap before it, made by memalign), has IS_MMAPPED set and no neighbour.

use crate::check::malloc_printerr;
use crate::chunk::{Chunk, IS_MMAPPED, SIZE_SZ, align_up};
use crate::sys;
use crate::text::trace;
use crate::tunables::{self, DEFAULT_MMAP_THRESHOLD_MAX, MP};
use core::sync::atomic::Ordering::Relaxed;

/// Maps a chunk of at least `nb` bytes (a chunk size), or `None` when the
/// kernel refuses or `n_mmaps_max` is reached.
pub fn map_chunk(nb: usize) -> Option<Chunk> {
    if MP.n_mmaps.load(Relaxed) >= MP.n_mmaps_max.load(Relaxed) {
        return None;
    }
    let size = nb.checked_add(SIZE_SZ + sys::page_size() - 1)? & !(sys::page_size() - 1);
    trace(format_args!(
        "mmap {size:#x}  a chunk of its own for a {nb}-byte chunk (mmap threshold {})",
        tunables::mmap_threshold()
    ));
    let base = sys::map_rw(size)?;
    let p = Chunk::from_ptr(base);
    // SAFETY: the header lies at the start of the mapping we just made.
    unsafe {
        p.set_prev_size(0);
        p.set_head(size | IS_MMAPPED);
    }
    tunables::note_mmap(size);
    Some(p)
}

/// The mapping behind an mmap'd chunk, checked: `(start, length)`.
///
/// # Safety
/// `p` must be a chunk with IS_MMAPPED whose header is readable.
unsafe fn mapping_of(p: Chunk, what: &str) -> (*mut u8, usize) {
    // SAFETY: forwarded from the caller.
    let (gap, size) = unsafe { (p.prev_size(), p.size()) };
    let start = p.addr().wrapping_sub(gap);
    let len = gap.wrapping_add(size);
    let page_mask = sys::page_size() - 1;
    if (start | len) & page_mask != 0 || !crate::chunk::is_aligned(p.mem() as usize) {
        malloc_printerr(what);
    }
    (start as *mut u8, len)
}

/// Returns an mmap'd chunk to the kernel, first raising the dynamic mmap
/// threshold as glibc does: freeing a mapped chunk bigger than the threshold
/// (up to 32 MiB) shows that such sizes are used and reused, so they are
/// better served from the heap from now on.
///
/// # Safety
/// `p` must be a live mmap'd chunk made by `map_chunk` (or moved by
/// `remap_chunk`), given up by its user.
pub unsafe fn free_chunk(p: Chunk) {
    // SAFETY: forwarded from the caller.
    let size = unsafe { p.size() };
    if MP.no_dyn_threshold.load(Relaxed) == 0
        && size > tunables::mmap_threshold()
        && size <= DEFAULT_MMAP_THRESHOLD_MAX
    {
        MP.mmap_threshold.store(size, Relaxed);
        MP.trim_threshold.store(2 * size, Relaxed);
        trace(format_args!(
            "mmap threshold raised to {size}, trim threshold to {}",
            2 * size
        ));
    }
    // SAFETY: forwarded from the caller.
    unsafe { unmap_chunk(p) }
}

/// Unmaps an mmap'd chunk without touching the threshold.
///
/// # Safety
/// As for `free_chunk`.
pub unsafe fn unmap_chunk(p: Chunk) {
    // SAFETY: forwarded from the caller.
    let (start, len) = unsafe { mapping_of(p, "munmap_chunk(): invalid pointer") };
    trace(format_args!(
        "munmap {start:p} {len:#x}  free of an mmap'd chunk"
    ));
    tunables::note_munmap(len);
    // SAFETY: the whole mapping belonged to this one chunk, now given up.
    unsafe { sys::unmap(start, len) };
}

/// Resizes an mmap'd chunk to serve `nb` bytes with `mremap`, or `None`.
///
/// # Safety
/// As for `free_chunk`, except that the chunk stays live.
pub unsafe fn remap_chunk(p: Chunk, nb: usize) -> Option<Chunk> {
    // SAFETY: forwarded from the caller.
    let (start, len) = unsafe { mapping_of(p, "mremap_chunk(): invalid pointer") };
    // SAFETY: forwarded from the caller.
    let gap = unsafe { p.prev_size() };
    let new_len = align_up(nb.checked_add(gap + SIZE_SZ)?, sys::page_size());
    if new_len == len {
        return Some(p);
    }
    trace(format_args!(
        "mremap {start:p} {len:#x} -> {new_len:#x}  realloc of an mmap'd chunk"
    ));
    // SAFETY: the mapping is this chunk's alone.
    let moved = unsafe { sys::remap(start, len, new_len)? };
    let q = Chunk::from_ptr(moved.wrapping_add(gap));
    // SAFETY: the header moved with the mapping.
    unsafe { q.set_head((new_len - gap) | IS_MMAPPED) };
    tunables::note_mremap(len, new_len);
    Some(q)
}
