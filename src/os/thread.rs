//! The calling thread's block of initial-exec TLS: in front, the words of
//! the thread layer's state (`thread::tls::ThreadState`, which this layer
//! does not know); behind them, this layer's own: the thread's kernel id,
//! cached, and the fork it has stopped waiting for (see `lock`). One block,
//! so that code using both (taking a lock for the thread's arena) computes
//! its address once.
//!
//! Rust's `thread_local!` in a cdylib uses the general-dynamic TLS model:
//! every access calls `__tls_get_addr`. glibc keeps its malloc's thread
//! state in initial-exec TLS, reached with one `%fs`-relative load. Stable
//! Rust cannot choose the model, so `static_tls!` declares a block in
//! assembly (a hidden symbol in `.tbss`) and reaches it through its
//! GOTTPOFF slot: the thread pointer plus an offset the dynamic linker fills
//! in once. The library is then marked STATIC_TLS: fine under LD_PRELOAD,
//! and `dlopen` still works because glibc reserves surplus static TLS for
//! such libraries (we need the block's 48 bytes of it).

/// Declares `$vis fn $get() -> *mut $ty`, the calling thread's zeroed
/// `$ty` in initial-exec TLS under the hidden symbol `$sym` (elsewhere than
/// x86-64 Linux, an ordinary `thread_local!`). `$ty` must be valid when
/// all-zero and `$size` bytes long.
macro_rules! static_tls {
    ($vis:vis fn $get:ident() -> *mut $ty:ty, $sym:literal, $size:literal) => {
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        core::arch::global_asm!(
            ".pushsection .tbss,\"awT\",@nobits",
            ".p2align 4",
            concat!(".globl ", $sym),
            concat!(".hidden ", $sym),
            concat!(".type ", $sym, ", @object"),
            concat!(".size ", $sym, ", ", $size),
            concat!($sym, ":"),
            concat!(".zero ", $size),
            ".popsection",
        );

        const _: () = assert!(core::mem::size_of::<$ty>() == $size);

        /// The calling thread's block (zero-initialised for every thread).
        #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
        #[inline(always)]
        $vis fn $get() -> *mut $ty {
            let p: *mut $ty;
            // SAFETY: reads the thread pointer (%fs:0) and the GOT slot
            // holding the block's offset from it; both are fixed for the
            // thread's whole life, so the asm is pure and touches no memory
            // Rust knows of.
            unsafe {
                core::arch::asm!(
                    "mov {p}, qword ptr fs:[0]",
                    concat!("add {p}, qword ptr [rip + ", $sym, "@GOTTPOFF]"),
                    p = out(reg) p,
                    options(pure, nomem, nostack),
                );
            }
            p
        }

        /// Elsewhere: an ordinary thread-local (general-dynamic: one call).
        #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
        #[inline(always)]
        $vis fn $get() -> *mut $ty {
            std::thread_local! {
                static BLOCK: core::cell::UnsafeCell<core::mem::MaybeUninit<$ty>> =
                    const { core::cell::UnsafeCell::new(core::mem::MaybeUninit::zeroed()) };
            }
            BLOCK.with(|s| s.get().cast())
        }
    };
}

/// Bytes at the start of the block kept for the thread layer's state.
pub const UPPER_BYTES: usize = 40;

#[repr(C)]
pub struct ThreadBlock {
    /// The thread layer's state (zeroed for every new thread).
    upper: [usize; UPPER_BYTES / 8],
    /// The thread's kernel id, fetched on first need (0 until then). Lock
    /// words hold it, so a dump can name a lock's holder.
    tid: u32,
    /// The fork (`lock::FORK_GEN`) whose locks this thread has stopped
    /// waiting for: it goes around them at once.
    pub fork_given_up: u32,
}

static_tls!(fn block() -> *mut ThreadBlock, "ptmalloc_rs_thread_state", 48);

/// The calling thread's words for the thread layer: `UPPER_BYTES` bytes,
/// 16-byte aligned, zero in a new thread.
#[inline(always)]
pub fn upper() -> *mut u8 {
    block().cast()
}

/// The calling thread's block.
#[inline(always)]
pub fn kernel_thread() -> *mut ThreadBlock {
    block()
}

/// The calling thread's kernel id (one syscall on first use, a TLS load
/// after that). Never 0.
#[inline]
pub fn tid() -> u32 {
    let kt = kernel_thread();
    // SAFETY: the thread's own block.
    let tid = unsafe { (*kt).tid };
    if tid != 0 {
        return tid;
    }
    let tid = super::sys::gettid();
    // SAFETY: as above.
    unsafe { (*kt).tid = tid };
    tid
}

/// Forgets the cached id: the child of `fork` has a new one.
pub fn forget_tid() {
    // SAFETY: the thread's own block.
    unsafe { (*kernel_thread()).tid = 0 };
}
