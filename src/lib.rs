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
//! | `api`      | the exported C functions: errno, NULL, glibc's quirks      |
//!
//! Nothing on the allocation path allocates, formats, panics or unwinds: the
//! crate is `no_std` (std only for unit tests) and built with
//! `panic = "abort"`.

#![no_std]
#![deny(unsafe_op_in_unsafe_fn)]

// The code is `no_std`, so nothing in it can reach an allocating std API.
// std is still linked: the precompiled `core` of a stable toolchain refers
// to the unwinder's personality routine, which only std provides (hidden,
// so it cannot interpose on a Rust program that loads us). Unit tests use
// std freely.
extern crate std;

mod alloc;
pub mod api;
mod arena;
mod arenas;
mod bins;
mod check;
mod chunk;
mod heap;
mod lock;
mod mmapped;
mod sys;
mod tcache;
mod tls;
mod tunables;

#[cfg(test)]
mod tests;
