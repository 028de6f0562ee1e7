//! Aligned chunks (glibc's `_int_memalign`): allocate enough to find an
//! aligned chunk inside, and give the misaligned lead and the tail back.

use super::locked::Locked;
use super::tcache::Tcache;
use crate::chunk::*;

impl Locked {
    /// A chunk of `nb` bytes whose memory is aligned to `alignment` (a power
    /// of two ≥ MINSIZE): over-allocate, free the misaligned lead and the
    /// tail.
    pub fn memalign(&self, alignment: usize, nb: usize, tc: *mut Tcache) -> *mut u8 {
        let Some(padded) = nb
            .checked_add(alignment + MINSIZE)
            .and_then(checked_request2size)
        else {
            return core::ptr::null_mut();
        };
        let m = self.malloc(padded, tc);
        if m.is_null() {
            return m;
        }
        let mut p = Chunk::from_mem(m);
        // SAFETY: `p` was just handed out by this arena (or mapped) and is at
        // least `nb + alignment + MINSIZE` bytes, so every chunk written
        // below lies inside it.
        unsafe {
            if !(m as usize).is_multiple_of(alignment) {
                let aligned_mem = align_up(m as usize, alignment);
                let mut lead = aligned_mem - CHUNK_HDR_SZ - p.addr();
                if lead < MINSIZE {
                    lead += alignment;
                }
                let newp = p.plus(lead);
                let new_size = p.size() - lead;
                if p.is_mmapped() {
                    newp.set_prev_size(p.prev_size() + lead);
                    newp.set_head(new_size | IS_MMAPPED);
                    return newp.mem();
                }
                newp.set_head(new_size | PREV_INUSE | self.arena_bit());
                newp.set_prev_inuse_at(new_size);
                p.set_size_keep_flags(lead);
                self.free_internal(p, tc);
                p = newp;
            }
            if !p.is_mmapped() {
                let size = p.size();
                if size > nb + MINSIZE {
                    let rem = p.plus(nb);
                    rem.set_head((size - nb) | PREV_INUSE | self.arena_bit());
                    p.set_size_keep_flags(nb);
                    self.free_internal(rem, tc);
                }
            }
            p.mem()
        }
    }
}
