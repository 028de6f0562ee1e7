//! ptmalloc-rs: glibc's ptmalloc2 design, rebuilt in Rust, as a drop-in
//! `malloc` for `LD_PRELOAD`.
//!
//! The source is in layer folders, lowest first. A module uses only its own
//! layer and the layers below it; inside a layer, its files use each other
//! without circles. `scripts/check-layers` (run by `make test`) keeps that a
//! fact, and also that no file is over 900 lines, that every file opens
//! with its part of the story, and that only the chunk layer makes a chunk
//! out of a raw address. docs/map.md follows a `malloc` and a `free`
//! through the layers.
//!
//! | layer      | part of the story                                             |
//! |------------|---------------------------------------------------------------|
//! | `os`       | the kernel: system calls, the futex lock, the thread's id and |
//! |            | TLS block, output from stack buffers, glibc's abort message,  |
//! |            | the trace, the recording's writer (records, buffers, file)    |
//! | `chunk`    | chunk headers and every raw address computation; bin and      |
//! |            | tcache size classes, the binmap; safe-linking and its keys    |
//! | `config`   | glibc's `mp_`, mallopt, `MALLOC_*` and `GLIBC_TUNABLES`;      |
//! |            | the profile (`glibc`, the default, `hardened` or `fast`)      |
//! | `arena`    | one arena (`malloc_state`) and the logic run under its lock,  |
//! |            | a file per part (malloc, free, grow, trim, ...); thread       |
//! |            | heaps, mmap'd chunks, the tcache's structure                  |
//! | `thread`   | which arena and cache serve a thread: TLS, the arena set,     |
//! |            | reuse, thread exit, fork, the route of each request           |
//! | `report`   | mallinfo, malloc_stats, malloc_info, malloc_trim, the dump,   |
//! |            | `malloc_rs_debug`, the heap checker; `observe`, which runs    |
//! |            | each exported call under the checker and the recording        |
//! | `api`      | the exported C functions only: errno, NULL, glibc's quirks    |
//! | `startup`  | what runs at load: the environment, the dump's signal, fork's |
//! |            | handlers, the exit key, the recording's flush at exit         |
//! | `fuzzing`  | cargo fuzz's entry (feature `fuzzing`, with std; fuzz/)       |
//!
//! Why these cuts: the chunk layer sits below `config` because the size
//! arithmetic needs no setting, while the settings' limits are sizes; the
//! tcache's structure sits in `arena` because an arena's malloc stashes
//! chunks into it (the requesting thread hands its cache in), while which
//! thread owns which cache is `thread`'s; the dump's signal is installed at
//! start-up, not by the arena set, which the dump reads.
//!
//! Nothing on the allocation path allocates, formats, panics or unwinds: the
//! crate is `no_std` (std only for unit tests), built with `panic = "abort"`,
//! and `scripts/check-no-panic` shows that no panic is compiled in at all.

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
