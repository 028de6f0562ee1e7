//! glibc 2.36's `struct malloc_state`, field for field, and the main arena:
//! a `static` exported as `main_arena`, usable on the very first call,
//! before any constructor has run. Thread arenas live at the start of their
//! first heap (`locked::create_in_heap`).

use crate::chunk::bins::*;
use crate::chunk::*;
use crate::os::lock::Lock;
use core::cell::UnsafeCell;
use core::mem::offset_of;
use core::sync::atomic::{AtomicBool, AtomicI32};

/// `flags` bit: the arena's memory is not one contiguous brk region.
pub const NONCONTIGUOUS_BIT: i32 = 2;

/// glibc 2.36's `struct malloc_state`, field for field.
#[repr(C)]
pub struct Arena {
    /// Protects every other field and every chunk of the arena's heaps.
    pub mutex: Lock,
    pub flags: i32,
    /// Set (relaxed) by every fastbin push, cleared by `consolidate`.
    pub have_fastchunks: AtomicI32,
    /// Not glibc's: the 4 bytes of padding before `fastbinsY` in glibc's
    /// layout (so no offset moves). Non-zero while a calloc runs under the
    /// lock: a mapping made for it must be a new one (zero), not one the
    /// fast profile kept (`mmapped::cache`).
    pub calloc_running: u32,
    /// Pushed onto without the lock by other threads' frees (glibc
    /// profile); popped and emptied only under it.
    pub fastbins: [AtomicChunk; NFASTBINS],
    pub top: Chunk,
    pub last_remainder: Chunk,
    /// `bins[2i-2]`, `bins[2i-1]` are the `fd`, `bk` of bin `i`.
    pub bins: [Chunk; NBINS * 2 - 2],
    pub binmap: [u32; BINMAPSIZE],
    pub next: *mut Arena,
    pub next_free: *mut Arena,
    pub attached_threads: usize,
    pub system_mem: usize,
    pub max_system_mem: usize,
}

const _: () = assert!(core::mem::size_of::<Arena>() == 0x898);
const _: () = assert!(offset_of!(Arena, top) == 96 && offset_of!(Arena, bins) == 112);
const _: () = assert!(offset_of!(Arena, calloc_running) == 12 && offset_of!(Arena, fastbins) == 16);

impl Arena {
    /// An arena with no memory and uninitialised bins (see `Locked::init`).
    pub const fn new() -> Arena {
        Arena {
            mutex: Lock::new(),
            flags: 0,
            have_fastchunks: AtomicI32::new(0),
            calloc_running: 0,
            fastbins: [const { AtomicChunk::null() }; NFASTBINS],
            top: Chunk::NULL,
            last_remainder: Chunk::NULL,
            bins: [Chunk::NULL; NBINS * 2 - 2],
            binmap: [0; BINMAPSIZE],
            next: core::ptr::null_mut(),
            next_free: core::ptr::null_mut(),
            attached_threads: 0,
            system_mem: 0,
            max_system_mem: 0,
        }
    }
}

/// An arena in a `static`: shared between threads, changed only under its
/// lock.
#[repr(transparent)]
pub struct ArenaCell(UnsafeCell<Arena>);

// SAFETY: every access to the inner arena other than its (atomic) mutex goes
// through `Locked`, which exists only while the mutex is held.
unsafe impl Sync for ArenaCell {}

impl ArenaCell {
    pub const fn new() -> Self {
        ArenaCell(UnsafeCell::new(Arena::new()))
    }
    pub fn get(&self) -> *mut Arena {
        self.0.get()
    }
}

/// The main arena: a static, usable on the very first call, grown with brk.
/// Exported as `main_arena`, glibc's name for it, so debuggers' heap tools
/// find it.
#[cfg_attr(not(test), unsafe(export_name = "main_arena"))]
pub static MAIN_ARENA: ArenaCell = ArenaCell::new();

/// Whether the main arena's bins are set up (its first request came): what
/// glibc calls `__malloc_initialized`, which debuggers' heap tools read
/// (under that name: `report::debuginfo`) before trusting the arena.
pub static MALLOC_INITIALIZED: AtomicBool = AtomicBool::new(false);

/// Set by the first free handed over to a locked arena (`remote`): until
/// then taking a lock looks at no list of remote frees (one load, where
/// most programs never hand one over).
pub static REMOTE_FREES_SEEN: AtomicBool = AtomicBool::new(false);

pub fn main_arena() -> *mut Arena {
    MAIN_ARENA.get()
}

/// The arena's top chunk as read without its lock: a hint only (another
/// thread may be changing it), for a choice that is safe either way.
///
/// # Safety
/// `av` must point to a live arena.
#[inline]
pub unsafe fn top_hint(av: *mut Arena) -> usize {
    // SAFETY: the field lies in a live arena; a word-sized volatile read
    // sees either the old or the new top, and the caller only compares it.
    unsafe { core::ptr::read_volatile(&raw const (*av).top).addr() }
}

/// The arena's mutex, without touching any other field.
///
/// # Safety
/// `av` must point to a live arena.
pub unsafe fn mutex<'a>(av: *mut Arena) -> &'a Lock {
    // SAFETY: the mutex is an atomic, shared by design; the reference covers
    // only that field, never the fields the lock holder mutates.
    unsafe { &(*av).mutex }
}
