//! ptmalloc-rs: glibc's ptmalloc2 design, rebuilt in Rust, as a drop-in
//! `malloc` for `LD_PRELOAD`.
//!
//! Layers, lowest first; each module calls only the ones above it in this
//! list:
//!
//! | module     | part of the story                                          |
//! |------------|------------------------------------------------------------|
//! | `sys`      | the kernel: brk, mmap, mremap, futex, write, errno         |
//! | `tls`      | the thread's state in initial-exec TLS (tcache, arena)     |
//! | `lock`     | the futex mutex of each arena                              |
//! | `check`    | corruption reports: glibc's message, then abort            |
//! | `chunk`    | chunk headers and all raw chunk arithmetic                 |
//! | `bins`     | bin indexes and the binmap                                  |
//! | `tunables` | glibc's `mp_` parameters and statistics                    |
//! | `tcache`   | the per-thread cache of freed chunks                       |
//! | `heap`     | the 64 MiB-aligned mmap'd heaps of thread arenas           |
//! | `mmapped`  | chunks with a mapping of their own                         |
//! | `arena`    | one arena (`malloc_state`) and the malloc/free logic in it |
//! | `arenas`   | the set of arenas, which serves whom, fork                 |
//! | `alloc`    | entry logic: arena choice, mmap'd chunks, realloc/memalign |
//! | `stats`    | mallinfo, malloc_stats, malloc_info, malloc_trim, mallopt  |
//! | `inspect`  | the heap dump (function, signal, at exit)                  |
//! | `debuginfo`| `malloc_rs_debug`: where outside tools find the state      |
//! | `verify`   | the heap-consistency checker (PTMALLOC_RS_CHECK_HEAP)      |
//! | `api`      | the exported C functions: errno, NULL, glibc's quirks      |
//! | `fuzzing`  | cargo fuzz's entry (feature `fuzzing`, with std; fuzz/)    |
//!
//! Nothing on the allocation path allocates, formats, panics or unwinds: the
//! crate is `no_std` (std only for unit tests) and built with
//! `panic = "abort"`.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

#[cfg(any(test, feature = "fuzzing"))]
extern crate std;

// The precompiled `core` of a stable toolchain refers to the unwinder's
// personality routine, which std would provide. Nothing here ever unwinds
// (panic = "abort"), so a hidden stub that traps takes its place: hidden,
// so it cannot interpose on a Rust program that loads us, and without std
// the library needs neither libgcc_s nor std's code and relocations.
#[cfg(not(any(test, feature = "fuzzing")))]
core::arch::global_asm!(
    ".globl rust_eh_personality",
    ".hidden rust_eh_personality",
    ".type rust_eh_personality, @function",
    "rust_eh_personality:",
    "ud2",
);

/// A panic is a bug in the allocator; say so without allocating and stop.
#[cfg(not(any(test, feature = "fuzzing")))]
#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    os::sys::write_all(2, b"ptmalloc-rs: internal error\n");
    os::sys::abort()
}

pub mod api;
mod arena;
mod chunk;
mod config;
mod os;
mod report;
mod startup;
mod thread;

/// The cargo-fuzz target's entry point (feature `fuzzing`, fuzz/ only).
#[cfg(feature = "fuzzing")]
pub mod fuzzing;

#[cfg(test)]
mod tests;
