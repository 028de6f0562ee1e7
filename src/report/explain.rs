//! Where is my memory: the heap dump's last section. Per arena, the bytes
//! the kernel gave it and how many of them are in memory; what the program
//! holds; what is free and where (the tcaches, fastbins, the unsorted,
//! small and large bins, by size class); top; the allocator's own headers;
//! the free pages still in memory; the largest free chunk and the in-use
//! chunks that keep it from top; the free bytes pinned below in-use chunks,
//! which trimming top cannot reach; and what `malloc_trim(0)` and trimming
//! top would give back. Then the mmap'd chunks and the totals.
//!
//! `scripts/heap-explain` counts the same from outside the process
//! (`scripts/heaplib/explain.py`, whose module doc defines each figure) and
//! prints these lines word for word, with advice after them. Only
//! "resident" is measured differently: by `mincore(2)` here, where a page
//! that maps the kernel's zero page (read, never written) counts; by smaps
//! and pagemap there, where it does not. scripts/real-programs/heap-explain.sh
//! compares the two in one process.
//!
//! "Returnable by malloc_trim(0)" follows `Locked::trim` (src/arena/trim.rs):
//! consolidation merges each run of free and fastbin chunks (into top when
//! the run touches it), then the whole pages past each free chunk's first 48
//! bytes go, and the main arena's top down to a pad of 0; only pages in
//! memory count. "Returnable by trimming top" is what `systrim` or
//! `heap_trim` gives back once top reaches the trim threshold.
//!
//! Written without malloc, like the rest of the dump: the tallies live on
//! the stack, and the chunks in fastbins and tcaches, which must be told
//! from chunks in use during the heap walk, are collected into sorted sets
//! in private mappings made for the count (`MappedSet`; should a mapping
//! fail, a line says those chunks count as in use). An arena that another
//! thread holds is skipped, as in the dump.

use core::fmt::Write;
use core::sync::atomic::Ordering::Relaxed;

use super::lists::{MappedSet, cached_chunks, large_bin_floor, locked_by};
use crate::arena::{locked::Locked, state::main_arena, walk::Bin, walk::HeapEvent};
use crate::chunk::bins::{
    NBINS, NFASTBINS, NSMALLBINS, SMALLBIN_WIDTH, TCACHE_MAX_BINS, csize2tidx, tidx2csize,
};
use crate::chunk::{MALLOC_ALIGNMENT, MINSIZE, SIZE_BITS, SIZE_SZ, align_down, align_up};
use crate::config::tunables::MP;
use crate::os::sys;
use crate::thread::arenas;

/// What malloc_trim leaves of a free chunk before its first whole page:
/// the header and the four links.
const TRIM_KEEP: usize = 6 * SIZE_SZ;

/// Size classes named per kind of list (the largest by bytes).
const CLASSES_SHOWN: usize = 6;

/// Chunks and their bytes.
#[derive(Clone, Copy, Default)]
struct Tally {
    n: usize,
    bytes: usize,
}

impl Tally {
    const ZERO: Tally = Tally { n: 0, bytes: 0 };

    fn add(&mut self, size: usize) {
        self.n += 1;
        self.bytes += size;
    }
}

fn add_at(tallies: &mut [Tally], i: usize, size: usize) {
    if let Some(t) = tallies.get_mut(i) {
        t.add(size);
    }
}

fn sum(tallies: &[Tally]) -> Tally {
    tallies.iter().fold(Tally::ZERO, |a, t| Tally {
        n: a.n + t.n,
        bytes: a.bytes + t.bytes,
    })
}

/// The kinds of free lists, in the order they are printed.
#[derive(Clone, Copy)]
enum Kind {
    Tcache,
    Fast,
    Unsorted,
    Small,
    Large,
}

/// One arena's figures (see scripts/heaplib/explain.py).
struct Figures {
    mapped: usize,
    resident: usize,
    in_use: Tally,
    /// Indexed by tcache bin, fastbin, small bin and (large) bin.
    tcache: [Tally; TCACHE_MAX_BINS],
    fast: [Tally; NFASTBINS],
    unsorted: Tally,
    small: [Tally; NSMALLBINS],
    large: [Tally; NBINS],
    top: usize,
    free_resident: usize,
    /// Size and address.
    largest: Option<(usize, usize)>,
    above_largest: Tally,
    pinned: Tally,
    pinned_resident: usize,
    trim_inner: usize,
    trim_top: usize,
    top_trim: usize,
    top_trim_resident: usize,
    /// Fastbin chunks that could not be told from chunks in use (no
    /// memory for their set).
    untold: usize,
}

impl Figures {
    fn new(mapped: usize, top: usize) -> Self {
        Figures {
            mapped,
            resident: 0,
            in_use: Tally::ZERO,
            tcache: [Tally::ZERO; TCACHE_MAX_BINS],
            fast: [Tally::ZERO; NFASTBINS],
            unsorted: Tally::ZERO,
            small: [Tally::ZERO; NSMALLBINS],
            large: [Tally::ZERO; NBINS],
            top,
            free_resident: 0,
            largest: None,
            above_largest: Tally::ZERO,
            pinned: Tally::ZERO,
            pinned_resident: 0,
            trim_inner: 0,
            trim_top: 0,
            top_trim: 0,
            top_trim_resident: 0,
            untold: 0,
        }
    }

    fn list(&self, kind: Kind) -> &[Tally] {
        match kind {
            Kind::Tcache => &self.tcache,
            Kind::Fast => &self.fast,
            Kind::Unsorted => core::slice::from_ref(&self.unsorted),
            Kind::Small => &self.small,
            Kind::Large => &self.large,
        }
    }

    fn free(&self) -> Tally {
        [
            Kind::Tcache,
            Kind::Fast,
            Kind::Unsorted,
            Kind::Small,
            Kind::Large,
        ]
        .iter()
        .map(|&k| sum(self.list(k)))
        .fold(Tally::ZERO, |a, t| Tally {
            n: a.n + t.n,
            bytes: a.bytes + t.bytes,
        })
    }

    fn returnable(&self) -> usize {
        self.trim_inner + self.trim_top
    }
}

/// The resident bytes of the whole pages malloc_trim discards inside a
/// free chunk at `p` of `size` bytes: past its first 48 bytes, before its
/// end.
fn resident_inside(p: usize, size: usize) -> usize {
    let page = sys::page_size();
    let first = align_up(p.saturating_add(TRIM_KEEP), page);
    let end = align_down(p.saturating_add(size), page);
    if end > first {
        sys::resident_bytes(first, end)
    } else {
        0
    }
}

/// The walk's state within one heap.
#[derive(Default)]
struct HeapWalk {
    free: Tally,
    free_resident: usize,
    /// The free figures below the last in-use chunk seen.
    pinned: (Tally, usize),
    /// The run of free and fastbin chunks that consolidation would merge.
    run_start: usize,
    run_bytes: usize,
    past_largest: bool,
}

impl HeapWalk {
    /// Ends the run: malloc_trim discards the pages inside the merged chunk.
    fn end_run(&mut self, f: &mut Figures) {
        if self.run_bytes != 0 {
            f.trim_inner += resident_inside(self.run_start, self.run_bytes);
            self.run_bytes = 0;
        }
    }

    fn end(&mut self, f: &mut Figures) {
        self.end_run(f);
        f.pinned.n += self.pinned.0.n;
        f.pinned.bytes += self.pinned.0.bytes;
        f.pinned_resident += self.pinned.1;
    }
}

/// Counts one arena, under its lock.
fn figures(av: &Locked, main: bool, cached: &MappedSet) -> Figures {
    let (_, top, top_size, _, system, _, _, _) = av.header();
    let page = sys::page_size();
    let top_end = top.addr() + top_size;
    let mut f = Figures::new(system, top_size);
    if main {
        let base = MP.sbrk_base.load(Relaxed);
        if base != 0 {
            f.resident = sys::resident_bytes(align_down(base, page), align_up(top_end, page));
        }
    } else {
        av.walk_heaps(&mut |start, _, rw| f.resident += sys::resident_bytes(start, start + rw));
    }

    av.walk_bins(&mut |bin, c, head| {
        let size = head & !SIZE_BITS;
        match bin {
            Bin::Fast(i) => add_at(&mut f.fast, i, size),
            Bin::Unsorted => f.unsorted.add(size),
            Bin::Small(i) => add_at(&mut f.small, i, size),
            Bin::Large(i) => add_at(&mut f.large, i, size),
        }
        let larger = match f.largest {
            Some((s, a)) => size > s || (size == s && c.addr() < a),
            None => true,
        };
        if larger {
            f.largest = Some((size, c.addr()));
        }
    });
    let mut fast = MappedSet::new(sum(&f.fast).n);
    if !fast.mapped {
        f.untold = sum(&f.fast).n;
    }
    av.walk_bins(&mut |bin, c, _| {
        if let Bin::Fast(_) = bin {
            fast.add(c.addr());
        }
    });
    fast.seal();

    let mut top_after = top_size;
    let mut heap: Option<HeapWalk> = None;
    av.walk_heap_chunks(&mut |event| match event {
        HeapEvent::Heap { .. } => {
            if let Some(h) = heap.as_mut() {
                h.end(&mut f);
            }
            heap = Some(HeapWalk::default());
        }
        HeapEvent::Chunk {
            chunk,
            head,
            free,
            top: is_top,
        } => {
            let Some(h) = heap.as_mut() else {
                return;
            };
            let (p, size) = (chunk.addr(), head & !SIZE_BITS);
            if is_top {
                top_after += h.run_bytes;
                h.run_bytes = 0;
                return;
            }
            let in_fastbin = !free && fast.contains(p);
            let in_tcache = !free && !in_fastbin && cached.contains(p);
            if in_tcache {
                add_at(&mut f.tcache, csize2tidx(size), size);
            }
            if !free && !in_fastbin && !in_tcache {
                f.in_use.add(size);
                h.pinned = (h.free, h.free_resident);
                if h.past_largest {
                    f.above_largest.add(size);
                }
            } else {
                let r = resident_inside(p, size);
                f.free_resident += r;
                h.free.add(size);
                h.free_resident += r;
            }
            if free || in_fastbin {
                if h.run_bytes == 0 {
                    h.run_start = p;
                }
                h.run_bytes += size;
            } else {
                h.end_run(&mut f);
            }
            if f.largest.is_some_and(|(_, a)| a == p) {
                h.past_largest = true;
            }
        }
    });
    if let Some(h) = heap.as_mut() {
        h.end(&mut f);
    }

    f.free_resident += resident_inside(top.addr(), top_size);
    if main && top_after > MINSIZE + 1 {
        let extra = align_down(top_after - (MINSIZE + 1), page);
        if extra != 0 {
            f.trim_top = sys::resident_bytes(top_end.saturating_sub(extra), top_end);
        }
    }
    let pad = MP.top_pad.load(Relaxed);
    if top_size > MINSIZE + 1 + pad {
        f.top_trim = align_down(top_size - (MINSIZE + 1) - pad, page);
        if f.top_trim != 0 {
            f.top_trim_resident = sys::resident_bytes(top_end - f.top_trim, top_end);
        }
    }
    f
}

/// One size class: `N x SIZE`, or for a large bin `N x FROM-TO (BYTES)`.
fn write_class(out: &mut impl Write, kind: Kind, i: usize, t: Tally) {
    let _ = match kind {
        Kind::Tcache => write!(out, "{} x {}", t.n, tidx2csize(i)),
        Kind::Fast => write!(out, "{} x {}", t.n, (i + 2) * MALLOC_ALIGNMENT),
        Kind::Small => write!(out, "{} x {}", t.n, i * SMALLBIN_WIDTH),
        Kind::Large if i + 1 < NBINS - 1 => write!(
            out,
            "{} x {}-{} ({})",
            t.n,
            large_bin_floor(i),
            large_bin_floor(i + 1) - MALLOC_ALIGNMENT,
            t.bytes
        ),
        Kind::Large => write!(out, "{} x {}+ ({})", t.n, large_bin_floor(i), t.bytes),
        Kind::Unsorted => Ok(()),
    };
}

/// `free in WHERE: ...` with the largest size classes by bytes (ties: the
/// smaller class first), at most CLASSES_SHOWN, then how many more.
fn write_free(out: &mut impl Write, kind: Kind, words: &str, tallies: &[Tally]) {
    let t = sum(tallies);
    if t.n == 0 {
        let _ = writeln!(out, "    free in {words}: none");
        return;
    }
    let _ = write!(
        out,
        "    free in {words}: {} chunk(s), {} bytes",
        t.n, t.bytes
    );
    if !matches!(kind, Kind::Unsorted) {
        let classes = tallies.iter().filter(|t| t.n != 0).count();
        let mut taken = [false; NBINS];
        for k in 0..classes.min(CLASSES_SHOWN) {
            let mut best: Option<(usize, Tally)> = None;
            for (i, t) in tallies.iter().enumerate() {
                if t.n == 0 || taken.get(i).copied().unwrap_or(true) {
                    continue;
                }
                if best.is_none_or(|(_, b)| t.bytes > b.bytes) {
                    best = Some((i, *t));
                }
            }
            let Some((i, t)) = best else {
                break;
            };
            if let Some(x) = taken.get_mut(i) {
                *x = true;
            }
            let _ = out.write_str(if k == 0 { ": " } else { ", " });
            write_class(out, kind, i, t);
        }
        if classes > CLASSES_SHOWN {
            let _ = write!(out, ", +{} more", classes - CLASSES_SHOWN);
        }
    }
    let _ = writeln!(out);
}

fn write_arena(out: &mut impl Write, n: usize, main: bool, addr: usize, f: &Figures) {
    let _ = writeln!(
        out,
        "  arena {n}{} at {addr:#x}: mapped {} bytes, resident {}",
        if main { " (main arena)" } else { "" },
        f.mapped,
        f.resident
    );
    let _ = writeln!(
        out,
        "    in use: {} chunk(s), {} bytes",
        f.in_use.n, f.in_use.bytes
    );
    for (kind, words) in [
        (Kind::Tcache, "tcache"),
        (Kind::Fast, "fastbins"),
        (Kind::Unsorted, "the unsorted bin"),
        (Kind::Small, "small bins"),
        (Kind::Large, "large bins"),
    ] {
        write_free(out, kind, words, f.list(kind));
    }
    // Negative only in an inconsistent arena; a sign and a magnitude, since
    // formatting an i128 compiles a panic in.
    let used = f.in_use.bytes + f.free().bytes + f.top;
    let (sign, own) = if f.mapped >= used {
        ("", f.mapped - used)
    } else {
        ("-", used - f.mapped)
    };
    let _ = writeln!(out, "    top: {} bytes", f.top);
    let _ = writeln!(
        out,
        "    the allocator's own: {sign}{own} bytes (arena and heap headers, fenceposts, alignment)"
    );
    let _ = writeln!(
        out,
        "    free in whole resident pages: {} bytes (inside free chunks and top)",
        f.free_resident
    );
    match f.largest {
        Some((size, at)) => {
            let _ = writeln!(
                out,
                "    largest free chunk: {size} bytes at {at:#x}, below {} in-use chunk(s) of {} bytes",
                f.above_largest.n, f.above_largest.bytes
            );
        }
        None => {
            let _ = writeln!(out, "    largest free chunk: none (top aside)");
        }
    }
    if f.untold != 0 {
        let _ = writeln!(
            out,
            "    (no memory to tell the {} fastbin chunks from chunks in use: they count as in use)",
            f.untold
        );
    }
    let _ = writeln!(
        out,
        "    pinned below in-use chunks: {} bytes in {} free chunk(s), {} in whole resident pages",
        f.pinned.bytes, f.pinned.n, f.pinned_resident
    );
    let _ = writeln!(
        out,
        "    returnable by malloc_trim(0) now: {} bytes resident ({} inside free chunks, {} of top)",
        f.returnable(),
        f.trim_inner,
        f.trim_top
    );
    let _ = writeln!(
        out,
        "    returnable by trimming top: {} bytes, {} resident (top beyond the top pad of {}; \
         free() trims once top reaches {})",
        f.top_trim,
        f.top_trim_resident,
        MP.top_pad.load(Relaxed),
        MP.trim_threshold.load(Relaxed)
    );
}

/// The section: a header line, every arena, the mmap'd chunks, the totals.
pub fn write_section(out: &mut impl Write) {
    let _errno = sys::KeepErrno::new();
    let _ = writeln!(
        out,
        "where is my memory (as scripts/heap-explain counts it; resident: pages in memory, by mincore):"
    );
    let cached = cached_chunks();
    if !cached.mapped {
        let _ = writeln!(
            out,
            "  (no memory to tell the {} cached chunks from chunks in use: they count as in use)",
            cached.asked
        );
    }
    let mut totals = [0usize; 6];
    let mut n = 0;
    arenas::for_each_arena(|a| {
        let main = a == main_arena();
        // SAFETY: arenas live for the whole process.
        let Some(av) = (unsafe { Locked::try_lock(a) }) else {
            let _ = write!(out, "  arena {n} at {a:p}: ");
            locked_by(out, a);
            n += 1;
            return;
        };
        let (addr, _, _, _, system, _, _, contiguous) = av.header();
        if main && !contiguous {
            drop(av);
            let _ = writeln!(
                out,
                "  arena {n} (main arena) at {addr:#x}: mapped {system} bytes; non-contiguous \
                 (brk could not grow): its chunks are not walked, no figures"
            );
            n += 1;
            return;
        }
        let f = figures(&av, main, &cached);
        drop(av);
        write_arena(out, n, main, addr, &f);
        for (t, v) in totals.iter_mut().zip([
            f.mapped,
            f.resident,
            f.in_use.bytes,
            f.free().bytes,
            f.top,
            f.returnable(),
        ]) {
            *t += v;
        }
        n += 1;
    });
    let (mut count, mut bytes, mut resident) = (0usize, 0usize, 0usize);
    let listed = crate::arena::mmapped::registry::for_each(|start, len| {
        count += 1;
        bytes += len;
        resident += sys::resident_bytes(start, start + len);
    });
    if listed {
        let _ = writeln!(
            out,
            "  mmap'd chunks: {count}, {bytes} bytes, resident {resident}"
        );
    } else {
        let _ = writeln!(out, "  mmap'd chunks: the list is busy, not shown");
    }
    let [mapped, res, in_use, free, top, returnable] = totals;
    let _ = writeln!(
        out,
        "  all arenas shown: mapped {mapped}, resident {res}, in use {in_use}, free {free}, \
         top {top}, returnable by malloc_trim(0) now {returnable}"
    );
}
