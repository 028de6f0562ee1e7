//! Layer 1, `os`: the only code that talks to the kernel.
//!
//! System calls (brk, mmap, mprotect, madvise, mremap, futex, write, abort),
//! the futex lock every arena and registry is guarded by, the thread's
//! kernel id, and the two ways out that every layer above may take:
//! formatted output to a file descriptor from stack buffers (`text`) and
//! glibc's corruption report followed by abort (`printerr`).
//!
//! Uses nothing of the crate.

pub mod lock;
pub mod printerr;
pub mod record;
pub mod sys;
pub mod text;
pub mod thread;
pub mod trace;
