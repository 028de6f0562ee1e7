//! The calling thread's state: two words of static (initial-exec) TLS.
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
//! libraries (we need 16 bytes of it).

use crate::arena::Arena;
use crate::tcache::Tcache;

#[repr(C)]
pub struct ThreadState {
    /// The thread's cache: null before its first malloc and after its exit.
    pub tcache: *mut Tcache,
    /// The thread's arena: null before its first request, `TORN_DOWN`
    /// once its exit destructor has run.
    pub arena: *mut Arena,
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
    ".size ptmalloc_rs_thread_state, 16",
    "ptmalloc_rs_thread_state:",
    ".zero 16",
    ".popsection",
);

const _: () = assert!(core::mem::size_of::<ThreadState>() == 16);

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
            })
        };
    }
    STATE.with(|s| s.get())
}
