//! The bin lists, and the checks made before a link is followed or
//! rewritten. glibc's checks (`unlink`'s "corrupted double-linked list",
//! the unsorted bin's) report with glibc's message; beyond glibc, a link
//! must also lie in memory this arena got from the system (`check_link`),
//! so a wild pointer stops with a message instead of a fault.
//!
//! Small bins hold one size each, oldest last; large bins hold a range of
//! sizes, sorted by size, with the first chunk of each size on a second
//! list (`fd_nextsize`/`bk_nextsize`) so a best fit skips equal sizes.

use crate::os::record;
use core::sync::atomic::Ordering::Relaxed;

use super::heap;
use super::locked::{LINK_OUTSIDE, Locked, MAIN_HI, MAIN_LO, MALLOC_LINK_OUTSIDE};
use super::state::Arena;
use crate::chunk::bins::*;
use crate::chunk::*;
use crate::config::profile;
use crate::os::printerr::{assertion_failed, malloc_printerr};
use crate::os::sys;

impl Locked {
    // ----------------------------------------------------------------------
    // Bin lists
    // ----------------------------------------------------------------------

    /// Aborts with `msg` unless `c`, a link about to be followed, is a bin
    /// header of this arena or lies in memory this arena got from the system
    /// (`hardened` profile: beyond glibc), or, in the `glibc` profile, lies
    /// in readable memory: glibc follows any link, so an attack that works
    /// there works here, and only where glibc would fault does this stop
    /// with a message instead.
    #[inline(always)]
    pub(super) fn check_link(&self, c: Chunk, msg: &str) {
        self.check_link_in(self.span(), c, msg);
    }

    /// `check_link` with the arena's `span` already in hand: a loop over a
    /// bin reads it once.
    #[inline(always)]
    pub(super) fn check_link_in(&self, span: (usize, usize), c: Chunk, msg: &str) {
        if !self.link_near(span, c) {
            self.check_far_link(c.addr(), msg);
        }
    }

    /// `check_link` beyond the span: for the main arena, its span as it is
    /// now; for a thread arena, any of its heaps.
    #[inline(never)]
    fn check_far_link(&self, a: usize, msg: &str) {
        let ours = if self.is_main() {
            let lo = MAIN_LO.load(Relaxed);
            a.wrapping_sub(lo) < MAIN_HI.load(Relaxed).wrapping_sub(lo)
        } else {
            // SAFETY: `in_our_heap` found a live heap header below `a`.
            heap::in_our_heap(a, MINSIZE) && unsafe { (*heap::heap_for_ptr(a)).ar_ptr } == self.av
        };
        if ours || self.link_allowed_outside(a) {
            return;
        }
        malloc_printerr(msg);
    }

    /// A link outside the arena's memory: the `glibc` profile follows it as
    /// glibc does if the memory is there to read (only where glibc would
    /// fault does it stop, with the message); `hardened` never does.
    #[cold]
    fn link_allowed_outside(&self, a: usize) -> bool {
        if profile::hardened() {
            return false;
        }
        let _errno = sys::KeepErrno::new();
        sys::read_word_checked(a).is_some()
    }

    /// Whether link `c` passes `check_link` without a second look: in the
    /// arena's span or one of its bin headers.
    #[inline(always)]
    fn link_near(&self, (lo, len): (usize, usize), c: Chunk) -> bool {
        c.addr().wrapping_sub(lo) < len
            || c.addr().wrapping_sub(self.av as usize) < size_of::<Arena>()
    }

    /// Takes a free chunk off its doubly linked bin (and off the nextsize
    /// list, for the first chunk of its size in a large bin).
    ///
    /// When both links are near (`link_near`, the usual case) it calls
    /// nothing that returns, so it saves no registers: each save is a store,
    /// and after a program wrote much memory the stores wait. Otherwise
    /// `unlink_far` does the same with the full `check_link`.
    #[inline]
    pub(super) fn unlink(&self, p: Chunk) {
        // SAFETY: `p` is a free chunk of this arena (it was found in a bin
        // or as a free neighbour); its links are read, not followed, before
        // they are checked.
        let (fd, bk) = unsafe { (p.fd(), p.bk()) };
        let span = self.span();
        if self.link_near(span, fd) && self.link_near(span, bk) {
            // SAFETY: as above; both links point into the arena's memory.
            unsafe { self.unlink_checked(p) };
        } else {
            self.unlink_far(p);
        }
    }

    #[inline(never)]
    fn unlink_far(&self, p: Chunk) {
        // SAFETY: as for `unlink`; the links are checked before use, so a
        // corrupted list aborts instead of writing through a wild pointer.
        unsafe {
            // glibc's order: the size first, then the links (unlink_checked
            // looks at the size again: the usual path checks it only there).
            if p.size() != p.next().prev_size() {
                malloc_printerr("corrupted size vs. prev_size");
            }
            self.check_link(p.fd(), LINK_OUTSIDE);
            self.check_link(p.bk(), LINK_OUTSIDE);
            self.unlink_checked(p);
        }
    }

    /// `unlink` once `p`'s links are known to be safe to follow.
    ///
    /// # Safety
    /// `p` is a free chunk of this arena whose `fd` and `bk` passed
    /// `check_link`.
    #[inline(always)]
    unsafe fn unlink_checked(&self, p: Chunk) {
        // SAFETY: forwarded from the caller.
        unsafe {
            if p.size() != p.next().prev_size() {
                malloc_printerr("corrupted size vs. prev_size");
            }
            let fd = p.fd();
            let bk = p.bk();
            if fd.bk() != p || bk.fd() != p {
                malloc_printerr("corrupted double-linked list");
            }
            fd.set_bk(bk);
            bk.set_fd(fd);
            if !in_smallbin_range(p.size()) && !p.fd_nextsize().is_null() {
                if p.fd_nextsize().bk_nextsize() != p || p.bk_nextsize().fd_nextsize() != p {
                    malloc_printerr("corrupted double-linked list (not small)");
                }
                if fd.fd_nextsize().is_null() {
                    // `fd` (same size) becomes its size's head.
                    if p.fd_nextsize() == p {
                        fd.set_fd_nextsize(fd);
                        fd.set_bk_nextsize(fd);
                    } else {
                        fd.set_fd_nextsize(p.fd_nextsize());
                        fd.set_bk_nextsize(p.bk_nextsize());
                        p.fd_nextsize().set_bk_nextsize(fd);
                        p.bk_nextsize().set_fd_nextsize(fd);
                    }
                } else {
                    p.fd_nextsize().set_bk_nextsize(p.bk_nextsize());
                    p.bk_nextsize().set_fd_nextsize(p.fd_nextsize());
                }
            }
        }
    }

    /// Puts free chunk `p` of `size` at the head of the unsorted bin.
    pub(super) fn push_unsorted(&self, p: Chunk, size: usize, corrupt_msg: &str) {
        let bck = self.unsorted();
        // SAFETY: `p` is a free chunk of this arena; the unsorted bin's head
        // link is checked before it is rewritten.
        unsafe {
            let fwd = bck.fd();
            self.check_link(fwd, LINK_OUTSIDE);
            if fwd.bk() != bck {
                malloc_printerr(corrupt_msg);
            }
            if !in_smallbin_range(size) {
                p.set_fd_nextsize(Chunk::NULL);
                p.set_bk_nextsize(Chunk::NULL);
            }
            p.set_fd(fwd);
            p.set_bk(bck);
            bck.set_fd(p);
            fwd.set_bk(p);
        }
        record::chunk(record::state::UNSORTED, p.addr(), size, self.av as usize);
    }

    /// Files a chunk taken from the unsorted bin into its small or large bin.
    pub(super) fn file_into_bin(&self, victim: Chunk, size: usize) {
        // SAFETY: `victim` is a free chunk of this arena, off every list;
        // the chunks of the target bin are this arena's, and the links that
        // are rewritten are checked first.
        unsafe {
            let (index, mut bck, mut fwd);
            if in_smallbin_range(size) {
                index = smallbin_index(size);
                bck = self.bin_at(index);
                fwd = bck.fd();
            } else {
                index = largebin_index(size);
                bck = self.bin_at(index);
                fwd = bck.fd();
                // Sizes are compared as whole size words, flags included, as
                // glibc does (`raw` has PREV_INUSE, as every free chunk has);
                // a chunk in a bin never has NON_MAIN_ARENA (a free clears
                // it), and glibc asserts as much of each one it compares.
                let raw = size | PREV_INUSE;
                if fwd == bck {
                    victim.set_fd_nextsize(victim);
                    victim.set_bk_nextsize(victim);
                } else if raw < {
                    self.check_link(bck.bk(), MALLOC_LINK_OUTSIDE);
                    main_arena_chunk(bck.bk(), "chunk_main_arena (bck->bk)");
                    bck.bk().head()
                } {
                    // Smaller than everything: goes last.
                    fwd = bck;
                    bck = bck.bk();
                    let largest = fwd.fd();
                    self.check_link(largest, MALLOC_LINK_OUTSIDE);
                    self.check_link(largest.bk_nextsize(), MALLOC_LINK_OUTSIDE);
                    victim.set_fd_nextsize(largest);
                    victim.set_bk_nextsize(largest.bk_nextsize());
                    largest.bk_nextsize().set_fd_nextsize(victim);
                    largest.set_bk_nextsize(victim);
                } else {
                    main_arena_chunk(fwd, "chunk_main_arena (fwd)");
                    let span = self.span();
                    while raw < fwd.head() {
                        fwd = fwd.fd_nextsize();
                        self.check_link_in(span, fwd, MALLOC_LINK_OUTSIDE);
                        main_arena_chunk(fwd, "chunk_main_arena (fwd)");
                    }
                    if raw == fwd.head() {
                        // Not the first of its size: stays off the nextsize list.
                        fwd = fwd.fd();
                    } else {
                        victim.set_fd_nextsize(fwd);
                        victim.set_bk_nextsize(fwd.bk_nextsize());
                        self.check_link(fwd.bk_nextsize(), MALLOC_LINK_OUTSIDE);
                        if fwd.bk_nextsize().fd_nextsize() != fwd {
                            malloc_printerr(
                                "malloc(): largebin double linked list corrupted (nextsize)",
                            );
                        }
                        fwd.set_bk_nextsize(victim);
                        victim.bk_nextsize().set_fd_nextsize(victim);
                    }
                    bck = fwd.bk();
                    self.check_link(bck, MALLOC_LINK_OUTSIDE);
                    if bck.fd() != fwd {
                        malloc_printerr("malloc(): largebin double linked list corrupted (bk)");
                    }
                }
            }
            self.mark_bin(index);
            victim.set_bk(bck);
            victim.set_fd(fwd);
            fwd.set_bk(victim);
            bck.set_fd(victim);
        }
        file_recorded(victim, size, self.av as usize);
    }
}

/// A recording sees a chunk filed from the unsorted bin into its bin.
#[inline(always)]
fn file_recorded(victim: Chunk, size: usize, av: usize) {
    if record::on() {
        let st = if in_smallbin_range(size) {
            record::state::SMALL
        } else {
            record::state::LARGE
        };
        record::chunk(st, victim.addr(), size, av);
    }
}

/// glibc's assertion on a large-bin chunk that sorting compares against:
/// its size word has no NON_MAIN_ARENA bit (only a corrupted one has).
///
/// # Safety
/// `c`'s header must be readable (its link was checked).
unsafe fn main_arena_chunk(c: Chunk, expression: &str) {
    // SAFETY: forwarded from the caller.
    if unsafe { c.non_main_arena() } {
        assertion_failed("_int_malloc", expression);
    }
}
