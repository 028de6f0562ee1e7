//! Arena logic over plain buffers: a thread-style arena whose only memory is
//! a test buffer, driven directly (no exported symbols: the test harness
//! keeps glibc's malloc), with a heap walker that checks the layout
//! invariants after each step and a shadow model of the live blocks.

use std::collections::BTreeMap;
use std::vec::Vec;

use crate::arena::heap::{self, HeapInfo};
use crate::arena::{self, locked::Locked, state::Arena};
use crate::chunk::bins::*;
use crate::chunk::safelink::reveal_fd;
use crate::chunk::*;

/// A fresh thread arena in a heap of its own (arenas are never freed).
/// Returns the arena and the address of its first chunk.
fn test_arena() -> (*mut Arena, usize) {
    let room = size_of::<HeapInfo>() + size_of::<Arena>() + MALLOC_ALIGNMENT;
    let h = heap::new_heap(room, 128 * 1024).expect("cannot map a heap");
    // SAFETY: a fresh heap sized for the arena.
    let av = unsafe { arena::locked::create_in_heap(h) };
    // SAFETY: the arena is new and idle.
    let first = unsafe { (*av).top.addr() };
    (av, first)
}

/// The end of the heap that holds the arena's top.
fn heap_end(av: *mut Arena) -> usize {
    // SAFETY: the arena is idle; its top lies in one of its heaps.
    unsafe { heap::heap_end(heap::heap_for_ptr((*av).top.addr())) }
}

fn locked(av: *mut Arena) -> Locked {
    // SAFETY: test arenas are leaked.
    unsafe { arena::locked::lock(av) }
}

/// Every free chunk the arena's bins hold, with the bin it is in.
fn binned_chunks(av: *mut Arena) -> BTreeMap<usize, (usize, usize)> {
    let mut out = BTreeMap::new();
    // SAFETY: the arena is locked by the caller's `Locked` or idle; bins
    // point into the test buffer or at themselves.
    unsafe {
        for (idx, head) in (*av).fastbins.iter().enumerate() {
            let mut p = head.load();
            while !p.is_null() {
                assert_eq!(
                    fastbin_index(p.size()),
                    idx,
                    "fastbin {idx} holds size {}",
                    p.size()
                );
                assert!(
                    out.insert(p.addr(), (p.size(), 1000 + idx)).is_none(),
                    "chunk twice in bins"
                );
                p = reveal_fd(p);
            }
        }
        for i in 1..NBINS {
            let bin = Chunk::from_ptr(
                (av as *mut u8).add(core::mem::offset_of!(Arena, bins) + (i - 1) * 16 - 16),
            );
            let mut p = bin.fd();
            let mut prev = bin;
            while p != bin {
                assert_eq!(p.bk(), prev, "bin {i}: broken bk link");
                let size = p.size();
                if i >= 2 {
                    assert_eq!(bin_index(size), i, "bin {i} holds size {size}");
                    let block = (*av).binmap[idx2block(i)];
                    assert!(
                        block & idx2bit(i) != 0,
                        "bin {i} non-empty but binmap bit clear"
                    );
                }
                assert!(
                    out.insert(p.addr(), (size, i)).is_none(),
                    "chunk twice in bins"
                );
                prev = p;
                p = p.fd();
            }
            if i >= 64 {
                // Large bins: sorted by size, largest first.
                let mut q = bin.fd();
                while q != bin && q.fd() != bin {
                    assert!(q.size() >= q.fd().size(), "large bin {i} not sorted");
                    q = q.fd();
                }
            }
        }
    }
    out
}

/// Walks the arena's first heap from its first chunk to top and checks: sizes aligned and
/// inside the heap; a chunk is free iff it is in a bin; P bits say whether
/// the previous chunk is in use (fastbin chunks count as in use); no two
/// non-fastbin free chunks touch; free chunks have footers; top ends the heap.
/// Runs `verify::check_arena` too.
fn check_heap(av: *mut Arena, start: usize) -> usize {
    // The library's own checker first (all heaps, every list, the census).
    if let Err(f) = crate::report::verify::check_arena(&locked(av)) {
        panic!("heap check: {} at {:#x}", f.what, f.addr);
    }
    let end = heap_end(av);
    let binned = binned_chunks(av);
    // SAFETY: every header visited lies in the test buffer (checked as we go).
    unsafe {
        let top = (*av).top;
        let mut p = Chunk::from_ptr(start as *mut u8);
        let mut prev_free = false;
        let mut first = true;
        let mut seen = 0;
        while p != top {
            assert!(
                p.addr() >= start && p.addr() < end,
                "walk left the heap at {:#x}",
                p.addr()
            );
            let size = p.size();
            assert!(
                size >= MINSIZE && is_aligned(size),
                "bad size {size} at {:#x}",
                p.addr()
            );
            assert!(!p.is_mmapped(), "heap chunk marked mmapped");
            assert_eq!(
                p.prev_inuse(),
                first || !prev_free,
                "P bit wrong at {:#x}",
                p.addr()
            );
            let in_bin = binned.get(&p.addr());
            let free_non_fast = matches!(in_bin, Some(&(_, b)) if b < 1000);
            if free_non_fast {
                assert!(!prev_free, "two free chunks touch at {:#x}", p.addr());
                assert_eq!(
                    p.next().prev_size(),
                    size,
                    "footer wrong at {:#x}",
                    p.addr()
                );
                seen += 1;
            } else if in_bin.is_some() {
                seen += 1;
            }
            prev_free = free_non_fast;
            first = false;
            p = p.next();
        }
        assert_eq!(top.addr() + top.size(), end, "top does not end the heap");
        assert!(top.prev_inuse() || prev_free, "top P bit");
        assert!(!prev_free, "a free chunk touches top");
        assert_eq!(seen, binned.len(), "bins hold chunks outside the heap walk");
        binned.len()
    }
}

#[test]
fn chunks_are_aligned_and_sized_as_glibc_sizes_them() {
    let (av, start) = test_arena();
    let g = locked(av);
    let mut last = start;
    for n in [0usize, 1, 24, 25, 100, 1000, 1024, 5000] {
        let nb = request2size(n);
        let mem = g.malloc(nb, core::ptr::null_mut());
        assert!(!mem.is_null());
        assert!(is_aligned(mem as usize));
        let c = Chunk::from_mem(mem);
        // SAFETY: the chunk was just handed out from the test buffer.
        unsafe {
            assert_eq!(c.size(), nb);
            assert!(c.non_main_arena());
            assert!(c.inuse());
        }
        assert_eq!(
            c.addr(),
            last,
            "consecutive requests come from top in order"
        );
        last += nb;
    }
    drop(g);
    check_heap(av, start);
}

#[test]
fn free_of_top_neighbour_merges_into_top() {
    let (av, start) = test_arena();
    let g = locked(av);
    let a = g.malloc(1008, core::ptr::null_mut());
    let b = g.malloc(2000 & !15, core::ptr::null_mut());
    g.free_chunk(Chunk::from_mem(b));
    // SAFETY: arena locked; top lies in the test buffer.
    unsafe {
        assert_eq!((*av).top, Chunk::from_mem(b));
        assert_eq!((*av).top.size(), heap_end(av) - Chunk::from_mem(b).addr());
    }
    g.free_chunk(Chunk::from_mem(a));
    // SAFETY: as above.
    unsafe { assert_eq!((*av).top.addr(), start) };
    drop(g);
    assert_eq!(check_heap(av, start), 0);
}

#[test]
fn free_coalesces_with_both_neighbours_into_one_unsorted_chunk() {
    let (av, start) = test_arena();
    let g = locked(av);
    let a = g.malloc(512, core::ptr::null_mut());
    let b = g.malloc(512, core::ptr::null_mut());
    let c = g.malloc(512, core::ptr::null_mut());
    let _guard = g.malloc(512, core::ptr::null_mut());
    g.free_chunk(Chunk::from_mem(a));
    g.free_chunk(Chunk::from_mem(c));
    g.free_chunk(Chunk::from_mem(b));
    drop(g);
    let binned = binned_chunks(av);
    assert_eq!(binned.len(), 1, "a, b, c merged: {binned:?}");
    assert_eq!(binned.get(&start), Some(&(1536, UNSORTED)));
    check_heap(av, start);
}

#[test]
fn fastbin_chunks_are_reused_last_in_first_out_and_not_coalesced() {
    let (av, start) = test_arena();
    let g = locked(av);
    let a = g.malloc(48, core::ptr::null_mut());
    let b = g.malloc(48, core::ptr::null_mut());
    let _guard = g.malloc(48, core::ptr::null_mut());
    g.free_chunk(Chunk::from_mem(a));
    g.free_chunk(Chunk::from_mem(b));
    drop(g);
    assert_eq!(
        binned_chunks(av).len(),
        2,
        "adjacent fastbin chunks stay apart"
    );
    check_heap(av, start);
    let g = locked(av);
    assert_eq!(g.malloc(48, core::ptr::null_mut()), b);
    assert_eq!(g.malloc(48, core::ptr::null_mut()), a);
}

#[test]
fn large_request_takes_the_best_fit_from_a_sorted_large_bin() {
    let (av, start) = test_arena();
    let g = locked(av);
    let mut blocks = Vec::new();
    for size in [4096usize, 2048, 3072, 2560, 8192] {
        blocks.push(g.malloc(size, core::ptr::null_mut()));
        g.malloc(32, core::ptr::null_mut()); // keeps them apart
    }
    for &b in &blocks {
        g.free_chunk(Chunk::from_mem(b));
    }
    // Sorting happens on the next request; this one needs 2400 bytes.
    let got = g.malloc(2400, core::ptr::null_mut());
    assert_eq!(got, blocks[3], "2560 is the best fit for 2400");
    drop(g);
    check_heap(av, start);
}

#[test]
fn realloc_grows_in_place_into_top_and_into_a_free_neighbour() {
    let (av, start) = test_arena();
    let g = locked(av);
    let a = g.malloc(64 + 32, core::ptr::null_mut());
    // SAFETY: `a` has 88 usable bytes.
    unsafe { core::ptr::write_bytes(a, 0x5a, 88) };
    let a2 = g.realloc(Chunk::from_mem(a), 4096, core::ptr::null_mut());
    assert_eq!(a2, a, "grew into top");
    let b = g.malloc(2048, core::ptr::null_mut());
    let c = g.malloc(2048, core::ptr::null_mut());
    let _guard = g.malloc(64, core::ptr::null_mut());
    g.free_chunk(Chunk::from_mem(c));
    let b2 = g.realloc(Chunk::from_mem(b), 4000, core::ptr::null_mut());
    assert_eq!(b2, b, "grew into the free next chunk");
    // SAFETY: the first 88 bytes of `a` were written above.
    unsafe {
        assert!(
            core::slice::from_raw_parts(a2, 88)
                .iter()
                .all(|&x| x == 0x5a)
        )
    };
    drop(g);
    check_heap(av, start);
}

#[test]
fn memalign_returns_aligned_chunks_and_frees_the_rest() {
    let (av, start) = test_arena();
    let g = locked(av);
    for align in [32usize, 64, 256, 4096, 65536] {
        let p = g.memalign(align, request2size(100), core::ptr::null_mut());
        assert!(!p.is_null());
        assert_eq!(p as usize % align, 0);
        // SAFETY: the chunk was handed out from the test buffer.
        unsafe { assert!(Chunk::from_mem(p).size() >= request2size(100)) };
    }
    drop(g);
    check_heap(av, start);
}

#[test]
fn a_full_heap_chains_a_new_one_and_an_emptied_heap_goes_away() {
    let (av, start) = test_arena();
    let g = locked(av);
    let first_heap = heap::heap_for_ptr(start);
    // 120 KiB blocks (below the mmap threshold) until the heap is full.
    let mut blocks = Vec::new();
    let nb = request2size(120 * 1024);
    loop {
        let p = g.malloc(nb, core::ptr::null_mut());
        assert!(!p.is_null());
        blocks.push(p);
        if heap::heap_for_ptr(p as usize) != first_heap {
            break;
        }
    }
    let second = heap::heap_for_ptr(*blocks.last().unwrap() as usize);
    // SAFETY: the new heap's header was written by grow_thread_heap.
    unsafe {
        assert_eq!((*second).ar_ptr, av);
        assert_eq!((*second).prev, first_heap);
        assert_eq!(
            Chunk::from_mem(*blocks.last().unwrap()).addr(),
            second as usize + 48
        );
    }
    // Free the last blocks of the first heap, so that folding the second heap
    // back would leave a top bigger than the top pad (otherwise the heap is
    // kept, as glibc keeps it); then the only block of the second heap: the
    // heap goes back to the kernel.
    let in_second = blocks.pop().unwrap();
    for _ in 0..3 {
        g.free_chunk(Chunk::from_mem(blocks.pop().unwrap()));
    }
    // SAFETY: the arena is locked; top is in one of its heaps.
    unsafe { assert_eq!(heap::heap_for_ptr((*av).top.addr()), second) };
    g.free_chunk(Chunk::from_mem(in_second));
    // SAFETY: the arena is locked; top is in one of its heaps.
    unsafe {
        assert_eq!(
            heap::heap_for_ptr((*av).top.addr()),
            first_heap,
            "top moved back"
        );
        // The reservation is gone: mapping exactly there again works.
        let probe = libc::mmap(
            second.cast(),
            4096,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED_NOREPLACE,
            -1,
            0,
        );
        assert_eq!(probe, second.cast(), "the empty heap was not unmapped");
        libc::munmap(probe, 4096);
    }
    for p in blocks {
        g.free_chunk(Chunk::from_mem(p));
    }
    // SAFETY: as above.
    let (size, rw) = unsafe { ((*first_heap).size, (*first_heap).mprotect_size) };
    assert!(
        size < 512 * 1024,
        "the first heap was trimmed: {size:#x} left"
    );
    // As glibc's shrink_heap: the trimmed tail stays read-write (only its
    // pages were dropped), unless the kernel counts commit strictly.
    if crate::os::sys::overcommit_strict() {
        assert_eq!(
            size, rw,
            "under strict overcommit trimmed pages are PROT_NONE again"
        );
    } else {
        assert!(
            rw > size,
            "the trimmed tail stays read-write: size {size:#x}, read-write {rw:#x}"
        );
    }
    drop(g);
    check_heap(av, start);
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Sizes biased to the bin boundaries where off-by-one bugs live.
fn random_size(rng: &mut Rng) -> usize {
    const EDGES: [usize; 10] = [0, 24, 120, 128, 1000, 1008, 1016, 1024, 4096, 65536];
    match rng.below(10) {
        0..=4 => rng.below(1100) as usize,
        5..=6 => EDGES[rng.below(EDGES.len() as u64) as usize] + rng.below(3) as usize,
        7..=8 => rng.below(16 * 1024) as usize,
        // Below the mmap threshold: mmap'd chunks belong to no arena.
        _ => rng.below(120 * 1024) as usize,
    }
}

#[test]
fn random_operations_keep_every_block_intact_and_the_heap_consistent() {
    let (av, start) = test_arena();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    // Stay within the first heap (64 MiB): the walker covers one heap.
    let mut live_bytes = 0usize;
    // mem -> (requested size, fill byte)
    let mut live: BTreeMap<usize, (usize, u8)> = BTreeMap::new();
    let fill = |p: *mut u8, n: usize, b: u8| {
        // SAFETY: `p` has at least `n` usable bytes.
        unsafe { core::ptr::write_bytes(p, b, n) }
    };
    let verify = |p: usize, n: usize, b: u8| {
        // SAFETY: `p` is live with `n` bytes written.
        let s = unsafe { core::slice::from_raw_parts(p as *const u8, n) };
        assert!(
            s.iter().all(|&x| x == b),
            "block {p:#x} ({n} bytes) lost its contents"
        );
    };
    for step in 0..40_000u32 {
        let g = locked(av);
        let op = rng.below(10);
        if (op < 5 && live_bytes < 24 << 20) || live.is_empty() {
            let n = random_size(&mut rng);
            let p = if rng.below(8) == 0 {
                g.memalign(
                    1 << (5 + rng.below(8)),
                    request2size(n),
                    core::ptr::null_mut(),
                )
            } else {
                g.malloc(request2size(n), core::ptr::null_mut())
            };
            assert!(!p.is_null(), "a thread arena can always grow");
            // SAFETY: fresh chunk.
            let usable = unsafe { Chunk::from_mem(p).size() } - SIZE_SZ;
            assert!(usable >= n);
            let b = (step % 251) as u8;
            fill(p, n, b);
            for (&q, &(m, _)) in live.range(..p as usize + n.max(1)).rev().take(1) {
                assert!(q + m <= p as usize || q >= p as usize + n.max(1), "overlap");
            }
            assert!(
                live.insert(p as usize, (n, b)).is_none(),
                "handed out twice"
            );
            live_bytes += n;
        } else {
            let k = rng.below(live.len() as u64) as usize;
            let (&p, &(n, b)) = live.iter().nth(k).unwrap();
            verify(p, n, b);
            live.remove(&p);
            live_bytes -= n;
            if op < 8 {
                g.free_chunk(Chunk::from_mem(p as *mut u8));
            } else {
                let m = random_size(&mut rng);
                let q = g.realloc(
                    Chunk::from_mem(p as *mut u8),
                    request2size(m),
                    core::ptr::null_mut(),
                );
                assert!(!q.is_null(), "a thread arena can always grow");
                verify(q as usize, n.min(m), b);
                fill(q, m, b);
                live.insert(q as usize, (m, b));
                live_bytes += m;
            }
        }
        drop(g);
        if step % 97 == 0 {
            check_heap(av, start);
        }
    }
    for (&p, &(n, b)) in &live {
        verify(p, n, b);
    }
    let g = locked(av);
    for &p in live.keys() {
        g.free_chunk(Chunk::from_mem(p as *mut u8));
    }
    g.consolidate();
    drop(g);
    // Everything merged back: only top is left.
    assert_eq!(check_heap(av, start), 0);
    // SAFETY: the arena is idle.
    unsafe { assert_eq!((*av).top.addr(), start) };
}

mod layout;
mod model;
mod verify;
