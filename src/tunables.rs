//! The allocator's parameters: glibc's `struct malloc_par` (`mp_`), with the
//! same fields in the same order so debuggers that know glibc can read it,
//! plus the two globals glibc keeps beside it (`global_max_fast`, the
//! perturb byte).
//!
//! Every field is an atomic: they are read on the allocation path without a
//! lock, and the statistics (`n_mmaps`, `mmapped_mem`) change outside arena
//! locks because mmap'd chunks belong to no arena.
//!
//! | field            | default  | meaning                                        |
//! |------------------|----------|------------------------------------------------|
//! | trim_threshold   | 128 KiB  | shrink the heap when top exceeds this          |
//! | top_pad          | 128 KiB  | extra asked of the kernel on each growth      |
//! | mmap_threshold   | 128 KiB  | requests this big get their own mapping        |
//! | arena_test       | 8        | arenas made before the limit is computed       |
//! | arena_max        | 0 (auto) | arena limit; 0 means 8 × cores                 |
//! | n_mmaps_max      | 65536    | most mmap'd chunks at once                     |
//! | no_dyn_threshold | 0        | 1 once the user fixed a threshold              |
//! | global_max_fast  | 128      | largest chunk size kept in fastbins           |
//! | tcache_bins      | 64       | tcache bins in use (chunk sizes 32..=1040)     |
//! | tcache_count     | 16       | chunks cached per tcache bin (glibc: 7)        |

use core::sync::atomic::{AtomicI32, AtomicU8, AtomicUsize, Ordering::Relaxed};

pub const DEFAULT_TRIM_THRESHOLD: usize = 128 * 1024;
pub const DEFAULT_TOP_PAD: usize = 128 * 1024;
pub const DEFAULT_MMAP_THRESHOLD: usize = 128 * 1024;
/// The dynamic mmap threshold never rises above this (64-bit).
pub const DEFAULT_MMAP_THRESHOLD_MAX: usize = 4 * 1024 * 1024 * core::mem::size_of::<usize>();
pub const DEFAULT_MMAP_MAX: i32 = 65536;
pub const ARENA_TEST: usize = 8;

#[repr(C)]
pub struct Params {
    pub trim_threshold: AtomicUsize,
    pub top_pad: AtomicUsize,
    pub mmap_threshold: AtomicUsize,
    pub arena_test: AtomicUsize,
    pub arena_max: AtomicUsize,
    pub thp_pagesize: AtomicUsize,
    pub hp_pagesize: AtomicUsize,
    pub hp_flags: AtomicI32,
    pub n_mmaps: AtomicI32,
    pub n_mmaps_max: AtomicI32,
    pub max_n_mmaps: AtomicI32,
    pub no_dyn_threshold: AtomicI32,
    pub mmapped_mem: AtomicUsize,
    pub max_mmapped_mem: AtomicUsize,
    /// The first address the main arena got from sbrk.
    pub sbrk_base: AtomicUsize,
    pub tcache_bins: AtomicUsize,
    pub tcache_max_bytes: AtomicUsize,
    pub tcache_count: AtomicUsize,
    pub tcache_unsorted_limit: AtomicUsize,
}

pub static MP: Params = Params {
    trim_threshold: AtomicUsize::new(DEFAULT_TRIM_THRESHOLD),
    top_pad: AtomicUsize::new(DEFAULT_TOP_PAD),
    mmap_threshold: AtomicUsize::new(DEFAULT_MMAP_THRESHOLD),
    arena_test: AtomicUsize::new(ARENA_TEST),
    arena_max: AtomicUsize::new(0),
    thp_pagesize: AtomicUsize::new(0),
    hp_pagesize: AtomicUsize::new(0),
    hp_flags: AtomicI32::new(0),
    n_mmaps: AtomicI32::new(0),
    n_mmaps_max: AtomicI32::new(DEFAULT_MMAP_MAX),
    max_n_mmaps: AtomicI32::new(0),
    no_dyn_threshold: AtomicI32::new(0),
    mmapped_mem: AtomicUsize::new(0),
    max_mmapped_mem: AtomicUsize::new(0),
    sbrk_base: AtomicUsize::new(0),
    tcache_bins: AtomicUsize::new(crate::tcache::TCACHE_MAX_BINS),
    tcache_max_bytes: AtomicUsize::new(crate::tcache::TCACHE_MAX_BYTES),
    tcache_count: AtomicUsize::new(crate::tcache::TCACHE_FILL_COUNT),
    tcache_unsorted_limit: AtomicUsize::new(0),
};

const _: () = assert!(core::mem::size_of::<Params>() == 0x88);

/// Largest chunk size that goes to a fastbin (M_MXFAST rounded as glibc does).
pub static GLOBAL_MAX_FAST: AtomicUsize = AtomicUsize::new(crate::bins::DEFAULT_MXFAST);
/// M_PERTURB: when non-zero, new memory is filled with `!byte` and freed
/// memory with `byte`.
pub static PERTURB_BYTE: AtomicU8 = AtomicU8::new(0);

#[inline]
pub fn max_fast() -> usize {
    GLOBAL_MAX_FAST.load(Relaxed)
}

#[inline]
pub fn mmap_threshold() -> usize {
    MP.mmap_threshold.load(Relaxed)
}

/// Adds `size` to the mmap'd-memory statistics.
pub fn note_mmap(size: usize) {
    let n = MP.n_mmaps.fetch_add(1, Relaxed) + 1;
    MP.max_n_mmaps.fetch_max(n, Relaxed);
    let total = MP.mmapped_mem.fetch_add(size, Relaxed) + size;
    MP.max_mmapped_mem.fetch_max(total, Relaxed);
}

/// Removes `size` from the mmap'd-memory statistics.
pub fn note_munmap(size: usize) {
    MP.n_mmaps.fetch_sub(1, Relaxed);
    MP.mmapped_mem.fetch_sub(size, Relaxed);
}

/// Resizes an mmap'd chunk in the statistics.
pub fn note_mremap(old: usize, new: usize) {
    let total = MP.mmapped_mem.fetch_add(new.wrapping_sub(old), Relaxed);
    MP.max_mmapped_mem
        .fetch_max(total.wrapping_add(new.wrapping_sub(old)), Relaxed);
}
