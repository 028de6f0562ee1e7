//! The heap dump: every arena with its threads, heaps, top, last remainder
//! and every free chunk on every list, every thread's tcache, the mmap'd
//! chunks and totals, as text on a file descriptor. Written without
//! allocating (stack buffer, `write(2)`), so it can run from a signal
//! handler or at exit. An arena that another thread keeps locked is
//! reported with the id of the thread holding it and skipped instead of
//! waited for; so is one that the dump's own thread was inside when a
//! signal interrupted it.
//!
//! Other threads' caches change under the dump without any lock: they are
//! read through the kernel (`sys::read_checked`), so a pointer that went
//! stale cannot fault, and shown as a snapshot.
//!
//! After the totals comes "where is my memory" (`explain`): per arena,
//! where its bytes are and what would give them back.
//!
//! Reached three ways: `malloc_rs_dump(fd)`; the signal named by
//! `PTMALLOC_RS_DUMP_SIGNAL` (a number, or USR1/USR2); and at exit when
//! `PTMALLOC_RS_DUMP_AT_EXIT` is set (to stderr).
//!
//! `scripts/heap-inspect` writes the same text from outside the process
//! (`scripts/heaplib/heap.py`, from the `malloc_rs_debug` descriptor): a
//! change of the format here wants the same change there, and
//! scripts/real-programs/heap-inspect.sh compares the two line for line.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use super::lists::{MappedSet, TcEvent, cached_chunks, large_bin_floor, locked_by, walk_tcache};
use crate::arena::{locked::Locked, state::main_arena, walk::Bin, walk::HeapEvent};
use crate::chunk::{Chunk, IS_MMAPPED, NON_MAIN_ARENA, PREV_INUSE};
use crate::config::tunables::MP;
use crate::os::sys;
use crate::os::text::{Out, Sink};
use crate::thread::arenas;
use crate::thread::tls;

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
    let _ = writeln!(out, "ptmalloc-rs heap dump, pid {}", sys::getpid());
    let _ = writeln!(out, "profile: {}", crate::config::profile::name());
    let mut n = 0;
    let mut totals = crate::report::stats::Mallinfo2::default();
    arenas::for_each_arena(|a| {
        let main = a == main_arena();
        // SAFETY: arenas live for the whole process.
        let Some(av) = (unsafe { Locked::try_lock(a) }) else {
            let _ = write!(out, "arena {n} at {a:p}: ");
            locked_by(&mut out, a);
            n += 1;
            return;
        };
        let (addr, top, top_size, last_rem, system, max_system, attached, contiguous) = av.header();
        let _ = writeln!(
            out,
            "arena {n}{} at {addr:#x}: system {system} bytes (max {max_system}), {attached} thread(s) attached",
            if main { " (main arena)" } else { "" }
        );
        let _ = write!(out, "  threads with a tcache here:");
        let mut any = false;
        let listed = tls::registry::for_each(|t| {
            // SAFETY: registered states stay alive while listed; the fields
            // read are words another thread may change (a snapshot).
            let (arena, tid) = unsafe { ((*t).arena, (*t).tid) };
            if arena == a {
                let _ = write!(out, " {tid}");
                any = true;
            }
        });
        let _ = writeln!(
            out,
            "{}",
            if !listed {
                " (thread list busy)"
            } else if any {
                ""
            } else {
                " none"
            }
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
                crate::arena::heap::HEAP_MAX_SIZE
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
        crate::report::stats::add_arena(&mut totals, &av.census());
        drop(av);
        n += 1;
    });

    dump_tcaches(&mut out);
    let _ = writeln!(
        out,
        "mmap'd chunks: {} ({} bytes); at most {} ({} bytes) so far",
        MP.n_mmaps.load(Relaxed),
        MP.mmapped_mem.load(Relaxed),
        MP.max_n_mmaps.load(Relaxed),
        MP.max_mmapped_mem.load(Relaxed)
    );
    let listed = crate::arena::mmapped::registry::for_each(|start, len| {
        // The header is read through the kernel: a chunk freed by another
        // thread right now must not fault the dump.
        let gap = sys::read_word_checked(start).unwrap_or(0);
        let head = sys::read_word_checked(start + gap + 8).unwrap_or(0);
        let _ = writeln!(
            out,
            "  mmap'd chunk {:#x} ({} {}), mapping {start:#x}-{:#x}",
            start + gap,
            head & !7,
            flags(head),
            start + len
        );
    });
    if !listed {
        let _ = writeln!(out, "  (the list of mmap'd chunks is busy: not shown)");
    }
    let _ = writeln!(
        out,
        "totals (arenas shown): {} bytes from the system, {} in use, {} free ({} in fastbins)",
        totals.arena, totals.uordblks, totals.fordblks, totals.fsmblks
    );
    super::explain::write_section(&mut out);
}

/// Every registered thread's tcache: the calling thread's read directly,
/// the others' through the kernel.
fn dump_tcaches(out: &mut impl Write) {
    let me = tls::thread_state();
    let listed = tls::registry::for_each(|t| {
        // SAFETY: a registered state is alive while listed.
        let (tc, tid) = unsafe { ((*t).tcache, (*t).tid) };
        if tc.is_null() {
            return;
        }
        let own = core::ptr::eq(t, me);
        let _ = writeln!(
            out,
            "tcache of thread {tid}{} at {tc:p}:",
            if own {
                " (this thread)"
            } else {
                " (a snapshot: it runs on)"
            }
        );
        dump_one_tcache(out, tc as usize);
        if crate::config::profile::fast() {
            // SAFETY: a registered thread's cache stays allocated while it
            // is listed; the totals are atomics.
            let (bytes, chunks) = unsafe { (*crate::arena::largecache::of(tc)).totals() };
            let _ = writeln!(
                out,
                "  large cache: {chunks} chunk(s), {bytes} bytes (in use to its arenas)"
            );
        }
    });
    if !listed {
        let _ = writeln!(out, "tcaches: the thread list is busy, not shown");
    }
}

/// One tcache at `tc`: per non-empty bin, its count and chunk addresses.
fn dump_one_tcache(out: &mut impl Write, tc: usize) {
    let readable = walk_tcache(tc, |ev| {
        let _ = match ev {
            TcEvent::Bin { idx, count } => write!(
                out,
                "  bin {idx} (chunk size {}): {count} chunk(s):",
                crate::chunk::bins::tidx2csize(idx)
            ),
            TcEvent::Chunk(c) => write!(out, " {c:#x}"),
            TcEvent::Broken => write!(out, " ?"),
            TcEvent::BinEnd => writeln!(out),
        };
    });
    if !readable {
        let _ = writeln!(out, "  (unreadable)");
    }
}

/// One line per chunk of every arena heap, in address order, preceded by
/// a line per heap: `heap ARENA 0xSTART 0xEND` and
/// `chunk ARENA 0xHEAP 0xADDR SIZE FLAGS STATE`, STATE one of inuse,
/// tcache (any thread's), fast, unsorted, small, large, top; an arena
/// that is skipped is a `# arena N ...` line saying who holds it. The
/// input of `scripts/heap-map` (scripts/heaplib writes the same from
/// outside the process).
pub fn dump_chunks(fd: i32) {
    let mut out = Out::<4096>::new(Sink::Fd(fd));
    let tcache = cached_chunks();
    let mut n = 0;
    arenas::for_each_arena(|a| {
        // SAFETY: arenas live for the whole process.
        let Some(av) = (unsafe { Locked::try_lock(a) }) else {
            let _ = write!(out, "# arena {n} ");
            locked_by(&mut out, a);
            n += 1;
            return;
        };
        // Counted first: the sets are mappings sized to hold them all.
        let (mut nf, mut nu) = (0, 0);
        av.walk_bins(&mut |bin, _, _| match bin {
            Bin::Fast(_) => nf += 1,
            Bin::Unsorted => nu += 1,
            _ => {}
        });
        let (mut fast, mut unsorted) = (MappedSet::new(nf), MappedSet::new(nu));
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
                    } else if crate::chunk::bins::in_smallbin_range(size) {
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
    if let Some(v) = crate::config::tunables::env_value(b"PTMALLOC_RS_DUMP_SIGNAL") {
        let sig = match v {
            b"USR1" | b"SIGUSR1" => libc::SIGUSR1,
            b"USR2" | b"SIGUSR2" => libc::SIGUSR2,
            _ => crate::config::tunables::parse_decimal(v).unwrap_or(0),
        };
        if sig > 0 && sig < 65 {
            sys::on_signal(sig, dump_on_signal);
        } else {
            crate::os::text::warn(format_args!(
                "PTMALLOC_RS_DUMP_SIGNAL={}: not a signal (USR1, USR2 or a number from 1 to 64); no dump on a signal",
                crate::config::tunables::Shown(v)
            ));
        }
    }
    if crate::config::tunables::switch("PTMALLOC_RS_DUMP_AT_EXIT") {
        // SAFETY: registers a plain function.
        unsafe { libc::atexit(dump_at_exit) };
    }
}
