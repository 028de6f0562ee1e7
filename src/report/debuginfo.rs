//! The way in for tools that read the heap from outside the process.
//!
//! `scripts/heap-inspect` and `scripts/heap-map` stop a running program for a
//! moment (ptrace), read its memory through `/proc/PID/mem` and walk the
//! arenas, bins, tcaches and mmap'd chunks themselves: nothing runs in the
//! process, so they work where a debugger cannot call a function in it, and
//! whatever state the program is in. They start from the main arena and
//! `mp_`, exported under glibc's names, and from statics that are not
//! exported: the list of threads with a tcache (`tls::registry`) and the
//! record of mmap'd chunks (`mmapped::registry`). This module exports one
//! symbol for all of them, `malloc_rs_debug`: a read-only table of their
//! addresses (one export rather than one per static, so the library's
//! symbols stay glibc's but for a few).
//!
//! The layouts the tools need (every offset and size they read) are written
//! once, in `scripts/heaplib/layout.txt`; `tests_layout` checks each entry
//! against the crate's structs. The table carries the descriptor's format
//! version and a hash of that file's entries: a tool from another source
//! tree, whose layouts may differ, sees the mismatch and says so instead of
//! misreading the heap.
//!
//! `magic`, `version` and `layout_hash` stay the first three fields in every
//! version; a change of the table's fields raises `VERSION`.

use core::ffi::c_void;

/// The descriptor's format version (`version` in layout.txt).
pub const VERSION: u32 = 1;

/// "ptmrsdbg", read as a little-endian word.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ptmrsdbg");

/// The layout description the scripts read.
pub const LAYOUT: &str = include_str!("../../scripts/heaplib/layout.txt");

/// FNV-1a of the layout description's entries: each line without its
/// comment (from `#`), its runs of blanks made one space, trimmed, and
/// followed by a newline; empty lines are left out. So comments and
/// alignment can change without making the scripts refuse the library.
/// (scripts/heaplib computes the same.)
pub const fn layout_hash(text: &str) -> u64 {
    const BASIS: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let b = text.as_bytes();
    let mut h = BASIS;
    let (mut i, mut comment, mut content, mut blank) = (0, false, false, false);
    while i <= b.len() {
        let c = if i < b.len() { b[i] } else { b'\n' };
        if c == b'\n' {
            if content {
                h = (h ^ b'\n' as u64).wrapping_mul(PRIME);
            }
            (comment, content, blank) = (false, false, false);
        } else if c == b'#' {
            comment = true;
        } else if !comment {
            if c == b' ' || c == b'\t' || c == b'\r' {
                blank = content;
            } else {
                if blank {
                    h = (h ^ b' ' as u64).wrapping_mul(PRIME);
                    blank = false;
                }
                h = (h ^ c as u64).wrapping_mul(PRIME);
                content = true;
            }
        }
        i += 1;
    }
    h
}

/// Where a tool finds the allocator's state.
#[repr(C)]
pub struct DebugInfo {
    /// `MAGIC`.
    pub magic: u64,
    /// `VERSION`.
    pub version: u32,
    /// `size_of::<DebugInfo>()`.
    pub size: u32,
    /// `layout_hash(LAYOUT)`.
    pub layout_hash: u64,
    /// The main arena (`Arena`), start of the ring of arenas.
    pub main_arena: *const c_void,
    /// `mp_` (`Params`): sbrk_base and the mmap'd-chunk counts.
    pub mp: *const c_void,
    /// The `AtomicPtr<ThreadState>` heading the list of threads with a tcache.
    pub thread_list_head: *const c_void,
    /// The `Lock` guarding that list.
    pub thread_list_lock: *const c_void,
    /// The record of mmap'd chunks (`mmapped::registry::Shared`).
    pub mmapped_registry: *const c_void,
    /// The profile in force: one byte, 0 glibc, 1 hardened.
    pub profile: *const c_void,
}

// SAFETY: the descriptor holds only addresses, is never written, and the
// library never reads memory through them via this table.
unsafe impl Sync for DebugInfo {}

/// Exported as `malloc_rs_debug` (relocated once at load, then read-only).
#[unsafe(export_name = "malloc_rs_debug")]
pub static DEBUG_INFO: DebugInfo = DebugInfo {
    magic: MAGIC,
    version: VERSION,
    size: size_of::<DebugInfo>() as u32,
    layout_hash: layout_hash(LAYOUT),
    main_arena: (&raw const crate::arena::state::MAIN_ARENA).cast(),
    mp: (&raw const crate::config::tunables::MP).cast(),
    thread_list_head: (&raw const crate::thread::tls::registry::HEAD).cast(),
    thread_list_lock: (&raw const crate::thread::tls::registry::REGISTRY_LOCK).cast(),
    mmapped_registry: (&raw const crate::arena::mmapped::registry::SHARED).cast(),
    profile: (&raw const crate::config::profile::PROFILE).cast(),
};

// glibc's names for the objects debuggers read, as hidden (not exported)
// symbols at ours. The DWARF that `src/report/glibc_types.c` contributes
// describes each name as a static of glibc 2.36's type whose location is the
// symbol of that name (`main_arena` and `mp_` are the exported statics; the
// rest are defined here), so `p main_arena`, `p mp_`, `p global_max_fast`,
// `p __malloc_initialized` and, in any thread, `p *tcache` and
// `p *thread_arena` show this allocator's state typed as glibc's. Hidden,
// these stay out of the dynamic symbol table: no program's symbol of the
// same name can take their place, nor they a program's.
#[cfg(all(target_arch = "x86_64", target_os = "linux", not(test)))]
core::arch::global_asm!(
    ".globl global_max_fast",
    ".hidden global_max_fast",
    ".set global_max_fast, {max_fast}",
    ".globl __malloc_initialized",
    ".hidden __malloc_initialized",
    ".set __malloc_initialized, {initialized}",
    // The thread's state is the front of its initial-exec TLS block
    // (`os::thread`): the cache and the arena are two of its words.
    ".globl tcache",
    ".hidden tcache",
    ".type tcache, @tls_object",
    ".size tcache, 8",
    ".set tcache, ptmalloc_rs_thread_state + {tcache}",
    ".globl thread_arena",
    ".hidden thread_arena",
    ".type thread_arena, @tls_object",
    ".size thread_arena, 8",
    ".set thread_arena, ptmalloc_rs_thread_state + {arena}",
    max_fast = sym crate::config::tunables::GLOBAL_MAX_FAST,
    initialized = sym crate::arena::state::MALLOC_INITIALIZED,
    tcache = const core::mem::offset_of!(crate::thread::tls::ThreadState, tcache),
    arena = const core::mem::offset_of!(crate::thread::tls::ThreadState, arena),
);
