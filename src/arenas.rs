//! The set of arenas, and which one serves a request.
//!
//! Today there is one, the main arena (a static, grown with brk), shared by
//! every thread under its lock. A chunk's arena is known from its header:
//! NON_MAIN_ARENA clear means the main arena.
//!
//! fork: a thread may hold an arena lock when another thread forks; the
//! child would inherit a lock that nobody will ever release. The `atfork`
//! handlers take every arena lock before the fork, release them in the
//! parent and reset them in the child. They never allocate.

use crate::arena::{self, Arena, main_arena};
use crate::chunk::Chunk;

/// The arena that serves the calling thread's requests.
#[inline]
pub fn arena_for_thread() -> *mut Arena {
    main_arena()
}

/// The arena that owns heap chunk `p`, or `None` when its header names an
/// arena we never made.
///
/// # Safety
/// `p`'s header must be readable.
#[inline]
pub unsafe fn arena_for_chunk(p: Chunk) -> Option<*mut Arena> {
    // SAFETY: forwarded from the caller.
    if unsafe { p.non_main_arena() } {
        None
    } else {
        Some(main_arena())
    }
}

extern "C" fn before_fork() {
    // SAFETY: the main arena is a static.
    unsafe { arena::mutex(main_arena()) }.lock();
}

extern "C" fn after_fork_parent() {
    // SAFETY: the main arena is a static; before_fork locked it.
    unsafe { arena::mutex(main_arena()) }.unlock();
}

extern "C" fn after_fork_child() {
    // SAFETY: the main arena is a static; the child has one thread, so no
    // one else can hold or wait for the lock.
    unsafe { arena::mutex(main_arena()) }.reset();
}

#[ctor::ctor(unsafe)]
fn register_fork_handlers() {
    // SAFETY: the handlers are plain functions that never return early or
    // allocate; glibc keeps the first handlers in static storage.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        );
    }
}
