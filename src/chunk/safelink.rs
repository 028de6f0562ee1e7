//! Safe-linking and the keys that mark free chunks.
//!
//! Singly linked lists (fastbins, tcache bins) store each link XOR-ed with
//! the address of the slot that holds it, shifted right by the page bits
//! (glibc 2.32+): a leaked link does not give away an address, and a
//! corrupted one rarely points anywhere useful (and must still be aligned).
//!
//! A per-process random key, picked when the first tcache is made, marks a
//! chunk sitting in a tcache (its second word); a value derived from it
//! marks a chunk in a fastbin (beyond glibc). A `free` that finds the mark
//! searches the list and reports a double free.

use core::num::NonZeroUsize;

use once_cell::race::OnceNonZeroUsize;

use super::Chunk;
use crate::os::sys;

/// The per-process key of cached entries: set once, by whichever thread
/// makes the first tcache (a race between two is harmless: one value wins
/// and both read it back).
static KEY: OnceNonZeroUsize = OnceNonZeroUsize::new();

/// The key; 0 until the first tcache exists.
#[inline]
pub fn key() -> usize {
    KEY.get().map_or(0, NonZeroUsize::get)
}

/// Picks the process key (once): random bytes from the kernel, or if the
/// kernel will not give them without blocking, a mix of addresses and time.
pub fn init_key() {
    KEY.get_or_init(|| {
        let k = match sys::random_word() {
            Some(k) if k != 0 => k,
            _ => {
                (&raw const KEY as usize).rotate_left(17)
                    ^ (sys::monotonic_ns() as usize).wrapping_mul(0x9e37_79b9_7f4a_7c15)
                    | 1
            }
        };
        NonZeroUsize::new(k).unwrap_or(NonZeroUsize::MIN)
    });
}

/// Safe-linking (glibc 2.32+) of singly linked lists: a stored link is
/// XOR-ed with the address of the slot it is stored in, shifted by the page
/// bits, so a corrupted or leaked link does not point anywhere useful.
#[inline]
pub fn protect(slot: usize, target: usize) -> usize {
    (slot >> 12) ^ target
}

/// `protect` for a link to a chunk (fastbins link chunk headers).
#[inline]
pub fn protect_link(slot: usize, target: Chunk) -> Chunk {
    Chunk::from_ptr(protect(slot, target.addr()) as *mut u8)
}

/// What a chunk in a fastbin holds in its `bk` word, unused by the singly
/// linked fastbins: a per-process value derived from the tcache key. A
/// free that finds it there walks the fastbin, so a chunk freed twice with
/// another free in between (a, b, a), which glibc misses, is caught.
#[inline]
pub fn fastbin_mark() -> usize {
    key().rotate_left(23) ^ 0x6a09_e667_f3bc_c908
}

/// Marks chunk `c`, going into a fastbin (see `fastbin_mark`).
///
/// # Safety
/// The chunk's bk word must be owned memory.
#[inline]
pub unsafe fn set_fastbin_mark(c: Chunk) {
    // SAFETY: forwarded from the caller.
    unsafe { c.set_bk(Chunk::from_ptr(fastbin_mark() as *mut u8)) }
}

/// Whether chunk `c` carries the fastbin mark.
///
/// # Safety
/// The chunk's bk word must be readable.
#[inline]
pub unsafe fn has_fastbin_mark(c: Chunk) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { c.bk() }.addr() == fastbin_mark()
}

/// Reads the safe-linked `fd` of a chunk on a singly linked list.
///
/// # Safety
/// The chunk's fd word must be owned memory.
#[inline]
pub unsafe fn reveal_fd(c: Chunk) -> Chunk {
    // SAFETY: forwarded from the caller.
    protect_link(c.mem() as usize, unsafe { c.fd() })
}

/// Stores `target` as the safe-linked `fd` of `c`.
///
/// # Safety
/// The chunk's fd word must be owned memory.
#[inline]
pub unsafe fn store_fd(c: Chunk, target: Chunk) {
    // SAFETY: forwarded from the caller.
    unsafe { c.set_fd(protect_link(c.mem() as usize, target)) }
}
