//! Layer 4, `arena`: one arena, glibc's `struct malloc_state`, and the
//! allocation logic that runs inside it while its lock is held (glibc's `_int_malloc`, `_int_free`,
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
//!
//! One file per part of the story: `state` (the struct, the main arena),
//! `locked` (holding it), `links` (the bin lists), `malloc`, `free`,
//! `grow`, `trim`, `realloc`, `memalign`, `walk` (reading it for reports);
//! beside them `heap` (a thread arena's mmap'd heaps), `mmapped` (chunks
//! with a mapping of their own), `tcache` (the per-thread cache's
//! structure; which thread owns which cache is `thread`'s business),
//! `largecache` (the fast profile's per-thread cache of larger chunks) and
//! `remote` (frees handed over to an arena whose lock another thread holds).
//!
//! Uses `os`, `chunk` and `config`.

pub mod free;
pub mod grow;
pub mod heap;
pub mod largecache;
pub mod links;
pub mod locked;
pub mod malloc;
pub mod memalign;
pub mod mmapped;
pub mod realloc;
pub mod remote;
pub mod state;
pub mod tcache;
pub mod trim;
pub mod walk;
