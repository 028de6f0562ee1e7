//! Matching listed chunks against the walk without allocating: the
//! addresses of listed chunks go into a fixed array on the stack, in address
//! batches of at most `BATCH` (one heap walk per batch); the walk marks each
//! one it meets, and one it never meets is a listed chunk that is not a
//! chunk of the heap.

use super::fault::{Check, fault};
use crate::chunk::*;

// ---------------------------------------------------------------------------
// Listed chunks, matched against the walk
// ---------------------------------------------------------------------------

/// Kinds of listed chunks, kept in the low bits of their (16-aligned)
/// addresses.
pub(super) const REGULAR: usize = 1;
pub(super) const FAST: usize = 2;
pub(super) const CACHED: usize = 3;
const KIND: usize = 3;
/// Set once the walk met the chunk.
const FOUND: usize = 4;

/// The messages of `check_looks_in_use`, per list.
pub(super) struct InUseFaults {
    pub(super) past_end: &'static str,
    pub(super) mmapped: &'static str,
    pub(super) arena_bit: &'static str,
    pub(super) marked_free: &'static str,
}

pub(super) const FASTBIN_FAULTS: InUseFaults = InUseFaults {
    past_end: "fastbin chunk runs past the end of its heap",
    mmapped: "fastbin chunk has IS_MMAPPED set",
    arena_bit: "fastbin chunk's NON_MAIN_ARENA flag is wrong for its arena",
    marked_free: "fastbin chunk is marked free (PREV_INUSE of the next chunk is clear)",
};

pub(super) const TCACHE_FAULTS: InUseFaults = InUseFaults {
    past_end: "tcache entry runs past the end of its heap",
    mmapped: "tcache entry has IS_MMAPPED set",
    arena_bit: "tcache entry's NON_MAIN_ARENA flag is wrong for its arena",
    marked_free: "tcache entry is marked free (PREV_INUSE of the next chunk is clear)",
};

/// Most listed chunks matched per walk of the heaps.
pub(super) const BATCH: usize = 1024;

/// The listed chunks whose addresses lie in `[lo, hi)`, sorted. `hi`
/// starts open and comes down whenever the array fills: the upper half is
/// dropped, to be matched by a later batch.
pub(super) struct Batch {
    pub(super) items: [usize; BATCH],
    pub(super) len: usize,
    pub(super) lo: usize,
    pub(super) hi: usize,
}

impl Batch {
    pub(super) fn new() -> Batch {
        Batch {
            items: [0; BATCH],
            len: 0,
            lo: 0,
            hi: usize::MAX,
        }
    }

    #[inline]
    pub(super) fn covers(&self, addr: usize) -> bool {
        self.lo <= addr && addr < self.hi
    }

    pub(super) fn offer(&mut self, addr: usize, kind: usize) -> Check {
        if !self.covers(addr) {
            return Ok(());
        }
        if self.len == BATCH {
            self.seal()?;
            let keep = BATCH / 2;
            self.hi = self.items[keep] & !ALIGN_MASK;
            self.len = keep;
            if addr >= self.hi {
                return Ok(());
            }
        }
        if let Some(slot) = self.items.get_mut(self.len) {
            *slot = addr | kind;
            self.len += 1;
        }
        Ok(())
    }

    /// Sorts the batch; a chunk listed twice is a fault.
    pub(super) fn seal(&mut self) -> Check {
        let items = self.items.get_mut(..self.len).unwrap_or_default();
        crate::report::sort::sort(items);
        for w in items.windows(2) {
            let (a, b) = (w[0], w[1]);
            if a & !ALIGN_MASK == b & !ALIGN_MASK {
                let what = match (a & KIND, b & KIND) {
                    (REGULAR, REGULAR) => "chunk is in the bins twice",
                    (FAST, FAST) => "chunk is in the fastbins twice",
                    (CACHED, CACHED) => "chunk is in the tcache twice",
                    (REGULAR, FAST) => "chunk is both in a bin and in a fastbin",
                    (REGULAR, _) => "chunk is both in a bin and in the tcache",
                    _ => "chunk is both in a fastbin and in the tcache",
                };
                return fault(what, a & !ALIGN_MASK);
            }
        }
        Ok(())
    }

    /// Marks the listed chunk at `addr` found and returns its kind.
    pub(super) fn find(&mut self, addr: usize) -> Option<usize> {
        let items = self.items.get_mut(..self.len).unwrap_or_default();
        let i = items
            .binary_search_by_key(&addr, |v| v & !ALIGN_MASK)
            .ok()?;
        let v = items.get_mut(i)?;
        *v |= FOUND;
        Some(*v & KIND)
    }

    /// The first listed chunk the walk did not meet.
    pub(super) fn missing(&self) -> Option<usize> {
        self.items
            .get(..self.len)
            .unwrap_or_default()
            .iter()
            .find(|&&v| v & FOUND == 0)
            .map(|&v| v & !ALIGN_MASK)
    }
}
