//! What the checker reports: a `Fault` (what broke, and where), and the
//! figures it counted in an arena (`Stats`) and over all of them
//! (`Totals`).

/// What the checker found wrong, and where.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Fault {
    pub what: &'static str,
    /// The chunk (or list head, heap header, arena, cache) where it was seen.
    pub addr: usize,
}

pub type Check<T = ()> = Result<T, Fault>;

#[inline]
pub fn fault<T>(what: &'static str, addr: usize) -> Check<T> {
    Err(Fault { what, addr })
}

/// What the checker counted in one arena.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Heaps: a thread arena's chain, 1 for the main arena's brk area, 0
    /// for a main arena never grown or non-contiguous.
    pub heaps: usize,
    /// Whether every chunk of every heap was walked (see the module notes
    /// for when it cannot be).
    pub walked: bool,
    /// Chunks the walk found in use (fastbin and tcache chunks and
    /// fenceposts included), top excluded.
    pub in_use_chunks: usize,
    pub in_use_bytes: usize,
    /// Chunks in the unsorted, small and large bins.
    pub free_chunks: usize,
    pub free_bytes: usize,
    pub fast_chunks: usize,
    pub fast_bytes: usize,
    /// Entries of the calling thread's tcache that lie in this arena.
    pub tcache_chunks: usize,
    pub tcache_bytes: usize,
    pub top_size: usize,
    pub system_mem: usize,
}

/// The sums over every arena, from `check_all`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub arenas: usize,
    pub heaps: usize,
    pub in_use_bytes: usize,
    pub free_bytes: usize,
    pub fast_bytes: usize,
    pub tcache_chunks: usize,
    pub top_bytes: usize,
    pub system_mem: usize,
}
