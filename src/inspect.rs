//! The heap dump: every arena with its heaps, top, last remainder and every
//! free chunk on every list, the calling thread's tcache, the mmap'd chunks
//! and totals, as text on a file descriptor. Written without allocating
//! (stack buffer, `write(2)`), so it can run from a signal handler or at
//! exit; an arena another thread keeps locked is reported as such and
//! skipped instead of waited for.
//!
//! Reached three ways: `malloc_rs_dump(fd)`; the signal named by
//! `PTMALLOC_RS_DUMP_SIGNAL` (a number, or USR1/USR2); and at exit when
//! `PTMALLOC_RS_DUMP_AT_EXIT` is set (to stderr).

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use crate::arena::{Bin, HeapEvent, Locked, main_arena};
use crate::arenas;
use crate::bins::largebin_index;
use crate::chunk::{Chunk, IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE};
use crate::text::{Out, Sink};
use crate::tls;
use crate::tunables::MP;

/// Writes the size word's flags as glibc's letters: P, M, A.
fn flags(head: usize) -> &'static str {
    const NAMES: [&str; 8] = ["", "P", "M", "PM", "A", "PA", "MA", "PMA"];
    NAMES[head & (PREV_INUSE | IS_MMAPPED | NON_MAIN_ARENA)]
}

fn bin_name(out: &mut impl Write, bin: Bin, size: usize) {
    let _ = match bin {
        Bin::Fast(i) => write!(out, "fastbin {i} (chunk size {size})"),
        Bin::Unsorted => write!(out, "unsorted bin"),
        Bin::Small(i) => write!(out, "small bin {i} (chunk size {size})"),
        Bin::Large(i) => write!(out, "large bin {i} (from {size})"),
    };
}

/// Writes the whole dump to `fd`.
pub fn dump(fd: i32) {
    let mut out = Out::<2048>::new(Sink::Fd(fd));
    // SAFETY: getpid never fails.
    let _ = writeln!(out, "ptmalloc-rs heap dump, pid {}", unsafe {
        libc::getpid()
    });
    let mut n = 0;
    let mut totals = crate::stats::Mallinfo2::default();
    arenas::for_each_arena(|a| {
        let main = a == main_arena();
        // SAFETY: arenas live for the whole process.
        let Some(av) = (unsafe { Locked::try_lock(a) }) else {
            let _ = writeln!(out, "arena {n} at {a:p}: locked by another thread, skipped");
            n += 1;
            return;
        };
        let (addr, top, top_size, last_rem, system, max_system, attached, contiguous) = av.header();
        let _ = writeln!(
            out,
            "arena {n}{} at {addr:#x}: system {system} bytes (max {max_system}), {attached} thread(s) attached",
            if main { " (main arena)" } else { "" }
        );
        if main {
            let base = MP.sbrk_base.load(Relaxed);
            if contiguous && base != 0 {
                let _ = writeln!(
                    out,
                    "  heap [heap] {base:#x}-{:#x} (brk)",
                    top.addr() + top_size
                );
            } else if base != 0 {
                let _ = writeln!(
                    out,
                    "  heap [heap] from {base:#x}, plus mmap'd regions (non-contiguous)"
                );
            }
        }
        let mut h = 0;
        av.walk_heaps(&mut |start, size, rw| {
            let _ = writeln!(
                out,
                "  heap {h} {start:#x}-{:#x}: size {size:#x}, read-write {rw:#x}, reserved {:#x}",
                start + size,
                crate::heap::HEAP_MAX_SIZE
            );
            h += 1;
        });
        let _ = writeln!(out, "  top {:#x}, size {top_size:#x}", top.addr());
        if last_rem.is_null() {
            let _ = writeln!(out, "  last remainder: none");
        } else {
            let _ = writeln!(out, "  last remainder {:#x}", last_rem.addr());
        }
        let mut current: Option<Bin> = None;
        let (mut count, mut bytes) = (0usize, 0usize);
        av.walk_bins(&mut |bin, c: Chunk, head| {
            let size = head & !7;
            if current != Some(bin) {
                if current.is_some() {
                    let _ = writeln!(out);
                }
                let _ = write!(out, "  ");
                let label = match bin {
                    Bin::Large(i) => large_bin_floor(i),
                    _ => size,
                };
                bin_name(&mut out, bin, label);
                let _ = write!(out, ":");
                current = Some(bin);
            }
            let _ = write!(out, " {:#x} ({size} {})", c.addr(), flags(head));
            count += 1;
            bytes += size;
        });
        if current.is_some() {
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "  free: {count} chunk(s), {bytes} bytes in bins, {top_size} in top"
        );
        crate::stats::add_arena(&mut totals, &av.census());
        drop(av);
        n += 1;
    });

    // SAFETY: the calling thread's own state and cache.
    let tc = unsafe { (*tls::thread_state()).tcache };
    if tc.is_null() {
        let _ = writeln!(out, "tcache of this thread: none");
    } else {
        let _ = writeln!(out, "tcache of this thread at {tc:p}:");
        for idx in 0..crate::tcache::TCACHE_MAX_BINS {
            // SAFETY: the thread's own cache; entries are walked through the
            // cache's own reader, at most `counts[idx]` of them.
            unsafe {
                let count = (*tc).counts[idx];
                if count == 0 {
                    continue;
                }
                let _ = write!(
                    out,
                    "  bin {idx} (chunk size {}): {count} chunk(s):",
                    idx * 16 + 32
                );
                for e in (*tc).entries_of(idx) {
                    let _ = write!(out, " {:#x}", Chunk::from_mem(e).addr());
                }
                let _ = writeln!(out);
            }
        }
    }
    let _ = writeln!(
        out,
        "mmap'd chunks: {} ({} bytes); at most {} ({} bytes) so far",
        MP.n_mmaps.load(Relaxed),
        MP.mmapped_mem.load(Relaxed),
        MP.max_n_mmaps.load(Relaxed),
        MP.max_mmapped_mem.load(Relaxed)
    );
    let _ = writeln!(
        out,
        "totals (arenas shown): {} bytes from the system, {} in use, {} free ({} in fastbins)",
        totals.arena, totals.uordblks, totals.fordblks, totals.fsmblks
    );
}

/// Most chunks of one kind (fastbin, unsorted, tcache) whose state the
/// chunk listing can tell; beyond that they show as in use / small / large.
const SET_MAX: usize = 2048;

/// A fixed set of chunk addresses (sorted once filled).
struct AddrSet {
    addrs: [usize; SET_MAX],
    len: usize,
}

impl AddrSet {
    fn new() -> Self {
        AddrSet {
            addrs: [0; SET_MAX],
            len: 0,
        }
    }
    fn add(&mut self, a: usize) {
        if self.len < SET_MAX {
            self.addrs[self.len] = a;
            self.len += 1;
        }
    }
    fn seal(&mut self) {
        self.addrs[..self.len].sort_unstable();
    }
    fn contains(&self, a: usize) -> bool {
        self.addrs[..self.len].binary_search(&a).is_ok()
    }
}

/// One line per chunk of every arena heap, in address order, preceded by
/// a line per heap: `heap ARENA 0xSTART 0xEND` and
/// `chunk ARENA 0xHEAP 0xADDR SIZE FLAGS STATE`, STATE one of inuse,
/// tcache (the calling thread's), fast, unsorted, small, large, top. The
/// input of `scripts/heap-map`.
pub fn dump_chunks(fd: i32) {
    let mut out = Out::<4096>::new(Sink::Fd(fd));
    let mut tcache = AddrSet::new();
    // SAFETY: the calling thread's own state and cache.
    unsafe {
        let tc = (*tls::thread_state()).tcache;
        if !tc.is_null() {
            for idx in 0..crate::tcache::TCACHE_MAX_BINS {
                for e in (*tc).entries_of(idx) {
                    tcache.add(Chunk::from_mem(e).addr());
                }
            }
        }
    }
    tcache.seal();
    let mut n = 0;
    arenas::for_each_arena(|a| {
        // SAFETY: arenas live for the whole process.
        let Some(av) = (unsafe { Locked::try_lock(a) }) else {
            let _ = writeln!(out, "# arena {n} locked by another thread, skipped");
            n += 1;
            return;
        };
        let (mut fast, mut unsorted) = (AddrSet::new(), AddrSet::new());
        av.walk_bins(&mut |bin, c, _| match bin {
            Bin::Fast(_) => fast.add(c.addr()),
            Bin::Unsorted => unsorted.add(c.addr()),
            _ => {}
        });
        fast.seal();
        unsorted.seal();
        let mut heap_start = 0;
        av.walk_heap_chunks(&mut |event| match event {
            HeapEvent::Heap { start, end } => {
                heap_start = start;
                let _ = writeln!(out, "heap {n} {start:#x} {end:#x}");
            }
            HeapEvent::Chunk {
                chunk: c,
                head,
                free,
                top,
            } => {
                let size = head & !7;
                let state = if top {
                    "top"
                } else if free {
                    if unsorted.contains(c.addr()) {
                        "unsorted"
                    } else if crate::bins::in_smallbin_range(size) {
                        "small"
                    } else {
                        "large"
                    }
                } else if fast.contains(c.addr()) {
                    "fast"
                } else if tcache.contains(c.addr()) {
                    "tcache"
                } else {
                    "inuse"
                };
                let f = flags(head);
                let _ = writeln!(
                    out,
                    "chunk {n} {heap_start:#x} {:#x} {size} {} {state}",
                    c.addr(),
                    if f.is_empty() { "-" } else { f }
                );
            }
        });
        n += 1;
    });
}

/// The smallest chunk size of large bin `i`.
fn large_bin_floor(i: usize) -> usize {
    let mut size = 1024;
    while largebin_index(size) < i {
        size += 16;
    }
    size
}

extern "C" fn dump_on_signal(_: i32) {
    dump(2);
}

extern "C" fn dump_at_exit() {
    dump(2);
}

/// Reads PTMALLOC_RS_DUMP_SIGNAL and PTMALLOC_RS_DUMP_AT_EXIT (from the
/// constructor: libc is ready, and neither sigaction nor the first atexit
/// registrations allocate).
pub fn install_from_environment() {
    if let Some(v) = crate::tunables::env_value(b"PTMALLOC_RS_DUMP_SIGNAL") {
        let sig = match v {
            b"USR1" | b"SIGUSR1" => libc::SIGUSR1,
            b"USR2" | b"SIGUSR2" => libc::SIGUSR2,
            _ => crate::tunables::parse_decimal(v).unwrap_or(0),
        };
        if sig > 0 && sig < 65 {
            // SAFETY: a zeroed sigaction with a plain handler is valid.
            unsafe {
                let mut sa: libc::sigaction = core::mem::zeroed();
                sa.sa_sigaction = dump_on_signal as *const () as usize;
                sa.sa_flags = libc::SA_RESTART;
                libc::sigaction(sig, &sa, core::ptr::null_mut());
            }
        }
    }
    if crate::tunables::env_value(b"PTMALLOC_RS_DUMP_AT_EXIT")
        .is_some_and(|v| !v.is_empty() && v != b"0")
    {
        // SAFETY: registers a plain function.
        unsafe { libc::atexit(dump_at_exit) };
    }
}
