//! Resizing a heap chunk in its arena (glibc's `_int_realloc`): shrink in
//! place (the tail freed), grow into a free neighbour or top, or else
//! allocate, copy and free.

use super::heap;
use super::locked::Locked;
use super::tcache::Tcache;
use crate::chunk::*;
use crate::os::printerr::malloc_printerr;

impl Locked {
    /// Resizes heap chunk `oldp` of this arena to `nb` bytes: in place when
    /// it is shrinking or the next chunk (free, or top) has room, else by
    /// malloc-copy-free. Null (and `oldp` untouched) when memory is short.
    pub fn realloc(&self, oldp: Chunk, nb: usize, tc: *mut Tcache) -> *mut u8 {
        // SAFETY: `oldp` is an in-use heap chunk of this arena (the caller
        // checked its header); neighbours are checked before being trusted.
        unsafe {
            let old_size = oldp.size();
            if oldp.head() <= 2 * SIZE_SZ
                || old_size >= self.system_mem()
                || (!self.is_main() && !heap::in_our_heap(oldp.addr(), old_size))
            {
                malloc_printerr("realloc(): invalid old size");
            }
            let next = oldp.plus(old_size);
            let next_size = next.size();
            if next.head() <= 2 * SIZE_SZ || next_size >= self.system_mem() {
                malloc_printerr("realloc(): invalid next size");
            }
            let (newp, new_size);
            if old_size >= nb {
                newp = oldp;
                new_size = old_size;
            } else if next == self.top() && old_size + next_size >= nb + MINSIZE {
                // Grow into top.
                oldp.set_size_keep_flags(nb);
                let top = oldp.plus(nb);
                top.set_head((old_size + next_size - nb) | PREV_INUSE);
                self.set_top(top);
                return oldp.mem();
            } else if next != self.top() && !next.inuse() && old_size + next_size >= nb {
                // Grow into the free next chunk.
                self.unlink(next);
                newp = oldp;
                new_size = old_size + next_size;
            } else {
                let mem = self.malloc(nb, tc);
                if mem.is_null() {
                    return mem;
                }
                let q = Chunk::from_mem(mem);
                if q == next {
                    // malloc handed out the very next chunk: merge instead of copying.
                    newp = oldp;
                    new_size = old_size + q.size();
                } else {
                    core::ptr::copy_nonoverlapping(oldp.mem(), mem, old_size - SIZE_SZ);
                    self.free_internal(oldp, tc);
                    return mem;
                }
            }
            // Give back what is left over beyond `nb`.
            if new_size - nb < MINSIZE {
                newp.set_size_keep_flags(new_size);
                newp.set_prev_inuse_at(new_size);
            } else {
                let rem = newp.plus(nb);
                newp.set_size_keep_flags(nb);
                rem.set_head((new_size - nb) | PREV_INUSE | self.arena_bit());
                rem.set_prev_inuse_at(new_size - nb);
                self.free_internal(rem, tc);
            }
            newp.mem()
        }
    }
}
