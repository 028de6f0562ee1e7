//! The calling thread's state: a few words of static (initial-exec) TLS.
//!
//! It is the front of the thread's initial-exec TLS block (`os::thread`):
//! one `%fs`-relative load reaches it, which on the malloc/free fast paths
//! replaces a call to `__tls_get_addr` with two loads.
//!
//! Every thread that has a tcache is also on a list of thread states
//! (`registry`), so the heap dump can show every thread's cache and which
//! threads an arena serves.

use crate::arena::state::Arena;
use crate::arena::tcache::Tcache;
use crate::os::thread;

#[repr(C)]
pub struct ThreadState {
    /// The thread's cache: null before its first malloc and after its exit.
    pub tcache: *mut Tcache,
    /// The thread's arena: null before its first request, `TORN_DOWN`
    /// once its exit destructor has run.
    pub arena: *mut Arena,
    /// The thread's kernel id, for the heap dump and outside tools: set when
    /// the thread joins the registry (and anew in a fork's child).
    pub tid: u32,
    _pad: u32,
    /// Links in the registry of threads with a tcache.
    pub next: *mut ThreadState,
    pub prev: *mut ThreadState,
}

/// Marks a thread whose exit destructor has run: it gets no tcache and no
/// arena of its own any more.
pub const TORN_DOWN: *mut Arena = core::ptr::dangling_mut();

const _: () =
    assert!(size_of::<ThreadState>() <= thread::UPPER_BYTES && align_of::<ThreadState>() <= 16);

/// The calling thread's state: the front of its TLS block (`os::thread`),
/// zero-initialised for every new thread.
#[inline(always)]
pub fn thread_state() -> *mut ThreadState {
    thread::upper().cast()
}

/// In the child of `fork`: the thread's kernel id is new.
pub fn forget_tid() {
    thread::forget_tid();
    let ts = thread_state();
    // SAFETY: the thread's own state.
    unsafe {
        if (*ts).tid != 0 {
            (*ts).tid = thread::tid();
        }
    }
}

/// The threads that have a tcache: a doubly linked list through their
/// `ThreadState`s, guarded by `REGISTRY_LOCK`. A thread joins when it gets
/// its cache and leaves in its exit destructor, before its TLS goes away.
pub mod registry {
    use super::{ThreadState, thread_state};
    use crate::os::lock::Lock;
    use core::ptr::null_mut;
    use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

    pub static REGISTRY_LOCK: Lock = Lock::new();
    /// The newest member (`crate::report::debuginfo` gives its address to tools).
    pub(crate) static HEAD: AtomicPtr<ThreadState> = AtomicPtr::new(null_mut());
    /// Most members `for_each` visits (a corrupted list cannot loop it).
    pub(crate) const LIST_LIMIT: usize = 1_000_000;

    /// Adds the calling thread.
    pub fn join() {
        crate::os::record::thread_start();
        let me = thread_state();
        REGISTRY_LOCK.lock();
        // SAFETY: the list is guarded by REGISTRY_LOCK; `me` lives until the
        // thread's exit destructor calls `leave`.
        unsafe {
            (*me).tid = crate::os::thread::tid();
            let head = HEAD.load(Relaxed);
            (*me).prev = null_mut();
            (*me).next = head;
            if !head.is_null() {
                (*head).prev = me;
            }
        }
        HEAD.store(me, Relaxed);
        REGISTRY_LOCK.unlock();
    }

    /// Removes the calling thread (if it joined).
    pub fn leave() {
        let me = thread_state();
        REGISTRY_LOCK.lock();
        // SAFETY: as in `join`; only members have non-null links or are HEAD.
        unsafe {
            let (next, prev) = ((*me).next, (*me).prev);
            if HEAD.load(Relaxed) == me {
                HEAD.store(next, Relaxed);
            } else if !prev.is_null() {
                (*prev).next = next;
            }
            if !next.is_null() {
                (*next).prev = prev;
            }
            (*me).next = null_mut();
            (*me).prev = null_mut();
        }
        REGISTRY_LOCK.unlock();
    }

    /// In the child of `fork`: only the calling thread is left.
    pub fn keep_only_self() {
        REGISTRY_LOCK.reset();
        let me = thread_state();
        // SAFETY: the child has one thread.
        unsafe {
            (*me).next = null_mut();
            (*me).prev = null_mut();
            let member = !(*me).tcache.is_null();
            HEAD.store(if member { me } else { null_mut() }, Relaxed);
        }
    }

    /// Calls `f` with every registered thread's state, under the lock
    /// (`f` must not allocate or take REGISTRY_LOCK). Returns false, having
    /// called nothing, if the lock stays taken (a dump from a signal handler
    /// that interrupted `join` or `leave` must not deadlock).
    pub fn for_each(mut f: impl FnMut(*const ThreadState)) -> bool {
        if !REGISTRY_LOCK.try_lock_for(10_000) {
            return false;
        }
        let mut t = HEAD.load(Relaxed);
        let mut n = 0;
        while !t.is_null() && n < LIST_LIMIT {
            f(t);
            // SAFETY: members stay alive while the lock is held.
            t = unsafe { (*t).next };
            n += 1;
        }
        REGISTRY_LOCK.unlock();
        true
    }
}
