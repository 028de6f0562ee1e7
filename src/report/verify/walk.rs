//! The walk over every chunk of every heap of an arena, in address order:
//! sizes, flags, footers, no two free chunks side by side, and every free
//! chunk found on a list.

use super::batch::{Batch, CACHED, FAST, REGULAR};
use super::extent::Ctx;
use super::fault::{Check, Stats, fault};
use crate::chunk::*;

impl Ctx<'_> {
    // -----------------------------------------------------------------------
    // The walk
    // -----------------------------------------------------------------------

    /// Walks every chunk of every region, matching chunks in `batch`'s
    /// range against it. False if some part could not be walked.
    pub(super) fn walk(&self, batch: &mut Batch, st: &mut Stats) -> Check<bool> {
        self.for_each_region(&mut |first, end, holds_top| {
            st.heaps += 1;
            self.walk_region(first, end, holds_top, batch, st)
        })
    }

    fn walk_region(
        &self,
        first: usize,
        end: usize,
        holds_top: bool,
        batch: &mut Batch,
        st: &mut Stats,
    ) -> Check<bool> {
        // Chunks end at top, or at the fencepost header (size 0,
        // PREV_INUSE) in the last 16 bytes of a heap that has a newer one.
        let limit = if holds_top {
            self.top.addr()
        } else {
            end - CHUNK_HDR_SZ
        };
        let mut p = Chunk::first_at(first);
        let mut prev = Chunk::NULL;
        let mut prev_free = false;
        // SAFETY: the lock is held; `p` starts aligned inside the region and
        // only ever moves on by a size checked to keep it at or below
        // `limit`, where a readable header (top's, or the fencepost's) lies.
        unsafe {
            loop {
                if p.addr() > limit {
                    return fault("heap walk ran past the end of its heap", prev.addr());
                }
                if p.addr() == limit {
                    if holds_top {
                        if prev_free {
                            return fault(
                                "a free chunk borders top (it should have merged)",
                                prev.addr(),
                            );
                        }
                    } else if p.head() != PREV_INUSE {
                        return fault(
                            "heap does not end with a fencepost (size 0, PREV_INUSE)",
                            p.addr(),
                        );
                    }
                    return Ok(true);
                }
                let head = p.head();
                let size = head & !SIZE_BITS;
                if !is_aligned(size) {
                    return fault("chunk size is not a multiple of 16", p.addr());
                }
                if head & IS_MMAPPED != 0 {
                    return fault("heap chunk has IS_MMAPPED set", p.addr());
                }
                if size < MINSIZE {
                    // A heap chained to a newer one ends with a 16-byte
                    // chunk before its fencepost; in the main arena two of
                    // them end the brk area before a gap another sbrk user
                    // made, where the walk cannot go on.
                    let fence = size == CHUNK_HDR_SZ && !holds_top && p.addr() + size == limit;
                    if self.main
                        && size == CHUNK_HDR_SZ
                        && p.addr() + 2 * CHUNK_HDR_SZ <= limit
                        && p.plus(CHUNK_HDR_SZ).size() == CHUNK_HDR_SZ
                    {
                        st.in_use_chunks += 1;
                        return Ok(false);
                    }
                    if !fence {
                        return fault("chunk size is below MINSIZE", p.addr());
                    }
                }
                if size > limit - p.addr() {
                    return fault(
                        if holds_top {
                            "chunk overlaps top"
                        } else {
                            "chunk runs past the end of its heap"
                        },
                        p.addr(),
                    );
                }
                if prev.is_null() && head & PREV_INUSE == 0 {
                    return fault("first chunk of a heap has PREV_INUSE clear", p.addr());
                }
                let next = p.plus(size);
                let free = !next.prev_inuse();
                if free && prev_free {
                    return fault("two free chunks are adjacent", p.addr());
                }
                if free && next.prev_size() != size {
                    return fault(
                        "prev_size of the chunk after a free chunk disagrees with its size",
                        p.addr(),
                    );
                }
                if self.main {
                    if head & NON_MAIN_ARENA != 0 {
                        return fault("chunk of the main arena has NON_MAIN_ARENA set", p.addr());
                    }
                } else {
                    // The chunk before the end fencepost of a heap that has a
                    // newer one may be the remains of an old top, which keeps
                    // no arena bit.
                    let old_top_remains = !holds_top && next.addr() == limit;
                    if !free && head & NON_MAIN_ARENA == 0 && !old_top_remains {
                        return fault(
                            "in-use chunk of a thread arena lacks NON_MAIN_ARENA",
                            p.addr(),
                        );
                    }
                }
                if batch.covers(p.addr()) {
                    match batch.find(p.addr()) {
                        Some(REGULAR) if !free => {
                            return fault(
                                "binned chunk is marked in use (PREV_INUSE of the next chunk is set)",
                                p.addr(),
                            );
                        }
                        Some(FAST | CACHED) if free => {
                            return fault(
                                "fastbin or tcache chunk is marked free (PREV_INUSE of the next chunk is clear)",
                                p.addr(),
                            );
                        }
                        None if free => {
                            return fault(
                                "free chunk (PREV_INUSE of the next chunk is clear) is in no bin",
                                p.addr(),
                            );
                        }
                        _ => {}
                    }
                }
                if free {
                    st.free_chunks += 1;
                    st.free_bytes += size;
                } else {
                    st.in_use_chunks += 1;
                    st.in_use_bytes += size;
                }
                prev_free = free;
                prev = p;
                p = next;
            }
        }
    }
}
