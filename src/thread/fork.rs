//! fork: the prepare handler takes every allocator lock so that the child
//! gets consistent arenas; the parent handler lets go; the child handler
//! resets the locks and gives every arena but its own to the free list.
//! Both then carry out the frees deferred while the fork held the locks
//! (`thread::arenas::free_or_defer`).
//!
//! The locks and their order are `arenas`'s (see there); how threads other
//! than the forking one go around the held locks is `os::lock`'s.

use core::ptr::null_mut;
use core::sync::atomic::Ordering::{Relaxed, SeqCst};

use super::arenas::{
    FREE_LIST, FREE_LIST_LOCK, LIST_LOCK, NARENAS, drain_pending, for_each_arena, thread_arena,
};
use super::tls::{self, TORN_DOWN};
use crate::arena;
use crate::os::lock::{FORK_GEN, FORK_HOLDER};
use crate::os::sys;

// glibc's `fork` runs the atfork prepare handlers (ours among them) first,
// then, when the process has more than one thread, takes libio's list-of-
// streams lock and, last, its own malloc's locks. A thread may hold a
// stream's lock while it waits in malloc (`getdelim` reallocates under it),
// and a thread in `fflush(NULL)` holds the list lock while it waits for a
// stream's lock: our handler taking the arena locks before the list lock
// would close that circle. So it takes the list lock itself first (the lock
// is recursive, so fork's own taking of it then succeeds), and lets go of
// it after fork's own release in the parent; in the child, fork resets it.
//
// In a process that has only ever had one thread, glibc's fork takes none of
// these locks, so that `fork` stays usable from a signal handler that
// interrupted malloc, free or fork itself; nor do we. The arenas then go
// unlocked anyway (see `arena::locked::lock`).
unsafe extern "C" {
    fn _IO_list_lock();
    fn _IO_list_unlock();
}

// Whether the running fork took the locks is whether FORK_HOLDER names a
// thread: the prepare handler sets it after taking them, the parent and
// child handlers of the same fork read it (glibc runs one fork's handlers
// at a time in a process with threads) and clear it.

extern "C" fn before_fork() {
    // A recording's buffers go out first: the child starts its own.
    crate::os::record::flush_all();
    if sys::single_threaded() {
        return;
    }
    // SAFETY: libio's recursive list lock; released in `after_fork_parent`,
    // reset by glibc's fork in the child.
    unsafe { _IO_list_lock() };
    LIST_LOCK.lock();
    // SAFETY: arenas live for the whole process.
    for_each_arena(|a| unsafe { arena::state::mutex(a) }.lock());
    crate::arena::mmapped::registry::lock_for_fork();
    // Atfork handlers that run after ours may allocate in this thread
    // (it borrows the locks it holds); other threads must not wait for
    // these locks: they may hold one that fork takes after the handlers.
    FORK_HOLDER.store(crate::os::thread::tid(), SeqCst);
    FORK_GEN.fetch_add(1, Relaxed);
    LIST_LOCK.mark_forking();
    // SAFETY: arenas live for the whole process.
    for_each_arena(|a| unsafe { arena::state::mutex(a) }.mark_forking());
    crate::arena::mmapped::registry::mark_forking();
}

extern "C" fn after_fork_parent() {
    if FORK_HOLDER.swap(0, SeqCst) == 0 {
        return;
    }
    crate::arena::mmapped::registry::unlock_after_fork();
    // SAFETY: before_fork locked every arena.
    for_each_arena(|a| unsafe { arena::state::mutex(a) }.unlock());
    LIST_LOCK.unlock();
    // SAFETY: taken in before_fork (fork has released its own hold).
    unsafe { _IO_list_unlock() };
    drain_pending();
}

/// In the child only the forking thread exists: every lock is reset, and
/// every arena but the thread's own goes to the free list. After the fork
/// of a single-threaded process nothing was locked and nothing is reset:
/// the fork may have come from a signal handler, and the code it
/// interrupted resumes in the child too.
extern "C" fn after_fork_child() {
    tls::forget_tid();
    crate::os::record::after_fork_child();
    if FORK_HOLDER.swap(0, SeqCst) == 0 {
        return;
    }
    tls::registry::keep_only_self();
    crate::arena::mmapped::registry::reset_in_child();
    FREE_LIST_LOCK.reset();
    let mine = thread_arena();
    let mine = if mine == TORN_DOWN { null_mut() } else { mine };
    FREE_LIST.store(null_mut(), Relaxed);
    // An arena another thread had counted but not yet linked in is never
    // finished in the child.
    let mut n = 0;
    for_each_arena(|_| n += 1);
    NARENAS.store(n, Relaxed);
    for_each_arena(|a| {
        // SAFETY: the child has one thread; nobody else touches arenas.
        unsafe {
            arena::state::mutex(a).reset();
            if a == mine {
                (*a).attached_threads = 1;
            } else {
                (*a).attached_threads = 0;
                (*a).next_free = FREE_LIST.load(Relaxed);
                FREE_LIST.store(a, Relaxed);
            }
        }
    });
    LIST_LOCK.reset();
    drain_pending();
}

/// Registers the handlers (at load, from `startup`).
pub fn register_handlers() {
    // SAFETY: the handlers never unwind and never allocate; glibc keeps the
    // first handlers in static storage.
    unsafe {
        libc::pthread_atfork(
            Some(before_fork),
            Some(after_fork_parent),
            Some(after_fork_child),
        );
    }
}
