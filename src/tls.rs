//! The calling thread's state: a few words of static (initial-exec) TLS.
//!
//! Rust's `thread_local!` in a cdylib uses the general-dynamic TLS model:
//! every access calls `__tls_get_addr`. glibc's own malloc keeps its
//! thread state in initial-exec TLS, reached with one `%fs`-relative load.
//! Stable Rust cannot choose the model, so the state is declared here in
//! assembly (a hidden symbol in `.tbss`) and reached through its GOTTPOFF
//! slot: the thread pointer plus an offset the dynamic linker fills in once.
//! On the malloc/free fast paths this replaces a call with two loads.
//!
//! The library is then marked STATIC_TLS: fine under LD_PRELOAD, and
//! `dlopen` still works because glibc reserves surplus static TLS for such
//! libraries (we need 40 bytes of it).
//!
//! Every thread that has a tcache is also on a list of thread states
//! (`registry`), so the heap dump can show every thread's cache and which
//! threads an arena serves.

use crate::arena::Arena;
use crate::tcache::Tcache;

#[repr(C)]
pub struct ThreadState {
    /// The thread's cache: null before its first malloc and after its exit.
    pub tcache: *mut Tcache,
    /// The thread's arena: null before its first request, `TORN_DOWN`
    /// once its exit destructor has run.
    pub arena: *mut Arena,
    /// The thread's kernel id, fetched on first need (0 until then). Lock
    /// words hold it, so a dump can name an arena's lock holder.
    pub tid: u32,
    /// The fork (`lock::FORK_GEN`) whose locks this thread has stopped
    /// waiting for (see the `lock` module): it goes around them at once.
    pub fork_given_up: u32,
    /// Links in the registry of threads with a tcache.
    pub next: *mut ThreadState,
    pub prev: *mut ThreadState,
}

/// Marks a thread whose exit destructor has run: it gets no tcache and no
/// arena of its own any more.
pub const TORN_DOWN: *mut Arena = core::ptr::dangling_mut();

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
core::arch::global_asm!(
    ".pushsection .tbss,\"awT\",@nobits",
    ".p2align 4",
    ".globl ptmalloc_rs_thread_state",
    ".hidden ptmalloc_rs_thread_state",
    ".type ptmalloc_rs_thread_state, @object",
    ".size ptmalloc_rs_thread_state, 40",
    "ptmalloc_rs_thread_state:",
    ".zero 40",
    ".popsection",
);

const _: () = assert!(core::mem::size_of::<ThreadState>() == 40);

/// The calling thread's state (zero-initialised for every new thread).
#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
#[inline(always)]
pub fn thread_state() -> *mut ThreadState {
    let p: *mut ThreadState;
    // SAFETY: reads the thread pointer (%fs:0) and the GOT slot holding the
    // block's offset from it; both are fixed for the thread's whole life, so
    // the asm is pure and touches no memory Rust knows of.
    unsafe {
        core::arch::asm!(
            "mov {p}, qword ptr fs:[0]",
            "add {p}, qword ptr [rip + ptmalloc_rs_thread_state@GOTTPOFF]",
            p = out(reg) p,
            options(pure, nomem, nostack),
        );
    }
    p
}

/// Elsewhere: an ordinary thread-local (general-dynamic: one call).
#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
#[inline(always)]
pub fn thread_state() -> *mut ThreadState {
    std::thread_local! {
        static STATE: core::cell::UnsafeCell<ThreadState> = const {
            core::cell::UnsafeCell::new(ThreadState {
                tcache: core::ptr::null_mut(),
                arena: core::ptr::null_mut(),
                tid: 0,
                fork_given_up: 0,
                next: core::ptr::null_mut(),
                prev: core::ptr::null_mut(),
            })
        };
    }
    STATE.with(|s| s.get())
}

/// The calling thread's kernel id (one syscall on first use, a TLS load
/// after that). Never 0.
#[inline]
pub fn current_tid() -> u32 {
    let ts = thread_state();
    // SAFETY: the thread's own state.
    let tid = unsafe { (*ts).tid };
    if tid != 0 {
        return tid;
    }
    let tid = crate::sys::gettid();
    // SAFETY: as above.
    unsafe { (*ts).tid = tid };
    tid
}

/// Forgets the cached id: the child of `fork` has a new one.
pub fn forget_tid() {
    // SAFETY: the thread's own state.
    unsafe { (*thread_state()).tid = 0 };
}

/// The threads that have a tcache: a doubly linked list through their
/// `ThreadState`s, guarded by `REGISTRY_LOCK`. A thread joins when it gets
/// its cache and leaves in its exit destructor, before its TLS goes away.
pub mod registry {
    use super::{ThreadState, thread_state};
    use crate::lock::Lock;
    use core::ptr::null_mut;
    use core::sync::atomic::{AtomicPtr, Ordering::Relaxed};

    pub static REGISTRY_LOCK: Lock = Lock::new();
    /// The newest member (`crate::debuginfo` gives its address to tools).
    pub(crate) static HEAD: AtomicPtr<ThreadState> = AtomicPtr::new(null_mut());
    /// Most members `for_each` visits (a corrupted list cannot loop it).
    pub(crate) const LIST_LIMIT: usize = 1_000_000;

    /// Adds the calling thread.
    pub fn join() {
        let me = thread_state();
        REGISTRY_LOCK.lock();
        // SAFETY: the list is guarded by REGISTRY_LOCK; `me` lives until the
        // thread's exit destructor calls `leave`.
        unsafe {
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
