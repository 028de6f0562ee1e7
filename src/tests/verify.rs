//! The heap checker (`report::verify`) on arenas of its own (as in `crate::tests`), in good
//! shape and corrupted on purpose: each corruption must be reported.

use crate::arena;
use crate::arena::heap::{self, HeapInfo};
use crate::arena::locked::Locked;
use crate::arena::state::Arena;
use crate::chunk::bins::*;
use crate::chunk::safelink::store_fd;
use crate::chunk::*;
use crate::report::verify::fault::{Check, fault};
use crate::report::verify::{Stats, check_all, check_arena};
use crate::thread::tls;

/// A fresh thread arena in a heap of its own (never freed).
fn test_arena() -> *mut Arena {
    let room = size_of::<HeapInfo>() + size_of::<Arena>() + MALLOC_ALIGNMENT;
    let h = heap::new_heap(room, 128 * 1024).expect("cannot map a heap");
    // SAFETY: a fresh heap sized for the arena.
    unsafe { arena::locked::create_in_heap(h) }
}

fn locked(av: *mut Arena) -> Locked {
    // SAFETY: test arenas are leaked.
    unsafe { arena::locked::lock(av) }
}

/// The chunks of a scene with every kind of list in use.
struct Scene {
    av: *mut Arena,
    /// In use.
    used: Chunk,
    /// In the fastbin of 48-byte chunks.
    fast: Chunk,
    /// In the small bin of 208-byte chunks.
    small: Chunk,
    /// In large bin 64, with `large2` (bigger) before it.
    large: Chunk,
    large2: Chunk,
    /// In the unsorted bin (large).
    unsorted: Chunk,
}

/// Builds the scene: every free chunk is kept apart from the others by
/// an in-use guard, so none merge.
fn scene() -> Scene {
    let av = test_arena();
    let g = locked(av);
    let guard = || g.malloc(48, core::ptr::null_mut());
    let used = g.malloc(request2size(100), core::ptr::null_mut());
    guard();
    let fast = g.malloc(48, core::ptr::null_mut());
    guard();
    let small = g.malloc(208, core::ptr::null_mut());
    guard();
    let large = g.malloc(1040, core::ptr::null_mut());
    guard();
    let large2 = g.malloc(1072, core::ptr::null_mut());
    guard();
    let unsorted = g.malloc(4000, core::ptr::null_mut());
    guard();
    for p in [small, large, large2] {
        g.free_chunk(Chunk::from_mem(p));
    }
    // A request nothing fits sorts the unsorted bin into the bins (and
    // would consolidate the fastbins: the fast chunk is freed after).
    g.malloc(8000, core::ptr::null_mut());
    g.free_chunk(Chunk::from_mem(unsorted));
    g.free_chunk(Chunk::from_mem(fast));
    drop(g);
    Scene {
        av,
        used: Chunk::from_mem(used),
        fast: Chunk::from_mem(fast),
        small: Chunk::from_mem(small),
        large: Chunk::from_mem(large),
        large2: Chunk::from_mem(large2),
        unsorted: Chunk::from_mem(unsorted),
    }
}

fn check(av: *mut Arena) -> Check<Stats> {
    check_arena(&locked(av))
}

#[track_caller]
fn assert_fault(av: *mut Arena, what: &str, addr: Chunk) {
    match check(av) {
        Ok(_) => panic!("corruption not found (expected: {what})"),
        Err(f) => {
            assert_eq!(f.what, what, "at {:#x}", f.addr);
            if !addr.is_null() {
                assert_eq!(f.addr, addr.addr(), "{what}");
            }
        }
    }
}

#[test]
fn a_healthy_arena_passes_and_is_counted() {
    let s = scene();
    let st = check(s.av).expect("healthy arena");
    assert!(st.walked);
    assert_eq!(st.heaps, 1);
    assert_eq!((st.fast_chunks, st.fast_bytes), (1, 48));
    assert_eq!(st.free_chunks, 4);
    assert_eq!(st.free_bytes, 208 + 1040 + 1072 + 4000);
    // SAFETY: the arena is idle.
    unsafe {
        assert_eq!(s.large.size(), 1040);
        assert_eq!(s.unsorted.size(), 4000);
        assert_eq!((*s.av).top.size(), st.top_size);
    }
    let g = locked(s.av);
    let c = g.census();
    assert_eq!(c.fast(), (1, 48));
    assert_eq!(c.rest(false), (5, st.free_bytes + st.top_size));
}

#[test]
fn a_size_that_is_not_a_multiple_of_16_is_found() {
    let s = scene();
    // SAFETY: the test owns the arena; `used` is an in-use chunk.
    unsafe { s.used.set_head(s.used.head() + 8) };
    assert_fault(s.av, "chunk size is not a multiple of 16", s.used);
}

#[test]
fn a_size_that_runs_past_top_is_found() {
    let s = scene();
    // SAFETY: as above.
    unsafe { s.used.set_size_keep_flags(1 << 20) };
    assert_fault(s.av, "chunk overlaps top", s.used);
    let s = scene();
    // SAFETY: the header of a free chunk: a size near the address
    // space's end must not overflow anything.
    unsafe { s.small.set_size_keep_flags(usize::MAX & !ALIGN_MASK) };
    assert_fault(s.av, "binned chunk runs past the end of its heap", s.small);
}

#[test]
fn a_missing_or_stray_flag_is_found() {
    let s = scene();
    // SAFETY: as above.
    unsafe { s.used.set_head(s.used.head() & !NON_MAIN_ARENA) };
    assert_fault(
        s.av,
        "in-use chunk of a thread arena lacks NON_MAIN_ARENA",
        s.used,
    );
    let s = scene();
    // SAFETY: as above.
    unsafe { s.used.set_head(s.used.head() | IS_MMAPPED) };
    assert_fault(s.av, "heap chunk has IS_MMAPPED set", s.used);
}

#[test]
fn a_wrong_prev_size_after_a_free_chunk_is_found() {
    let s = scene();
    // SAFETY: the footer of the free small chunk.
    unsafe { s.small.next().set_prev_size(224) };
    assert_fault(
        s.av,
        "prev_size of the chunk after a free chunk disagrees with its size",
        s.small,
    );
}

#[test]
fn a_free_chunk_marked_in_use_is_found() {
    let s = scene();
    // SAFETY: the next chunk's header (an in-use guard).
    unsafe { s.small.set_prev_inuse_at(208) };
    assert_fault(
        s.av,
        "binned chunk is marked in use (PREV_INUSE of the next chunk is set)",
        s.small,
    );
}

#[test]
fn an_in_use_chunk_marked_free_is_found() {
    let s = scene();
    // SAFETY: the headers of `used` and of the guard after it.
    unsafe {
        let size = s.used.size();
        s.used.clear_prev_inuse_at(size);
        s.used.set_foot(size);
    }
    assert_fault(
        s.av,
        "free chunk (PREV_INUSE of the next chunk is clear) is in no bin",
        s.used,
    );
}

#[test]
fn broken_bin_links_are_found() {
    let s = scene();
    // SAFETY: the links of free chunks.
    unsafe { s.small.set_bk(s.small) };
    assert_fault(
        s.av,
        "bin list is broken: bk does not point to the previous chunk",
        s.small,
    );
    let s = scene();
    // SAFETY: as above.
    unsafe { s.small.set_fd(Chunk::from_ptr(0x10000 as *mut u8)) };
    assert_fault(s.av, "bin link points outside the arena's heaps", s.small);
    let s = scene();
    // SAFETY: as above.
    unsafe { s.unsorted.set_fd_nextsize(s.unsorted) };
    assert_fault(
        s.av,
        "large chunk in the unsorted bin has fd_nextsize set",
        s.unsorted,
    );
}

#[test]
fn broken_large_bin_order_and_nextsize_links_are_found() {
    let s = scene();
    // SAFETY: the nextsize links of the two large-bin chunks.
    unsafe { s.large.set_bk_nextsize(s.large) };
    assert_fault(s.av, "large bin's nextsize links are broken", s.large);
    let s = scene();
    // Swap the two chunks' places in the list (links only): smaller first.
    let g = locked(s.av);
    let bin = g.bin_at(largebin_index(1040));
    // SAFETY: the bin and its two chunks.
    unsafe {
        assert_eq!((bin.fd(), bin.bk()), (s.large2, s.large));
        bin.set_fd(s.large);
        bin.set_bk(s.large2);
        s.large.set_fd(s.large2);
        s.large.set_bk(bin);
        s.large2.set_fd(bin);
        s.large2.set_bk(s.large);
    }
    drop(g);
    assert_fault(
        s.av,
        "large bin is not sorted by size, largest first",
        s.large2,
    );
}

#[test]
fn a_chunk_in_the_wrong_bin_or_off_the_binmap_is_found() {
    let s = scene();
    let g = locked(s.av);
    let (from, to) = (g.bin_at(smallbin_index(208)), g.bin_at(smallbin_index(240)));
    // SAFETY: move the small chunk (alone in its bin) to another small bin.
    unsafe {
        from.set_fd(from);
        from.set_bk(from);
        to.set_fd(s.small);
        to.set_bk(s.small);
        s.small.set_fd(to);
        s.small.set_bk(to);
        let i = smallbin_index(240);
        (*s.av).binmap[idx2block(i)] |= idx2bit(i);
    }
    drop(g);
    assert_fault(s.av, "chunk in a small bin of another size", s.small);
    let s = scene();
    let i = smallbin_index(208);
    // SAFETY: the test owns the arena.
    unsafe { (*s.av).binmap[idx2block(i)] &= !idx2bit(i) };
    assert_fault(s.av, "binmap bit is clear for a non-empty bin", s.small);
}

#[test]
fn fastbin_corruption_is_found() {
    let s = scene();
    // SAFETY: the fastbin chunk's size word.
    unsafe { s.fast.set_size_keep_flags(64) };
    assert_fault(s.av, "fastbin chunk of the wrong size", s.fast);
    let s = scene();
    // SAFETY: its link: a cycle onto itself.
    unsafe { store_fd(s.fast, s.fast) };
    assert_fault(s.av, "chunk is in the fastbins twice", s.fast);
    let s = scene();
    // SAFETY: the test owns the arena.
    unsafe {
        (*s.av)
            .have_fastchunks
            .store(0, core::sync::atomic::Ordering::Relaxed)
    };
    assert_fault(
        s.av,
        "fastbins hold chunks but have_fastchunks is clear",
        Chunk::NULL,
    );
}

#[test]
fn a_listed_chunk_that_is_not_a_chunk_of_the_heap_is_found() {
    let s = scene();
    let g = locked(s.av);
    let big = Chunk::from_mem(g.malloc(512, core::ptr::null_mut()));
    // A well-formed fake free chunk of 64 bytes inside `big`'s user
    // data, alone in its small bin: only the walk can tell.
    let fake = big.plus(64);
    let bin = g.bin_at(smallbin_index(64));
    // SAFETY: everything written lies inside `big`, or is the bin.
    unsafe {
        fake.set_head(64 | PREV_INUSE);
        fake.plus(64).set_prev_size(64);
        fake.plus(64).set_head(64 | PREV_INUSE | NON_MAIN_ARENA);
        fake.clear_prev_inuse_at(64);
        fake.set_fd(bin);
        fake.set_bk(bin);
        bin.set_fd(fake);
        bin.set_bk(fake);
        let i = smallbin_index(64);
        (*s.av).binmap[idx2block(i)] |= idx2bit(i);
    }
    drop(g);
    assert_fault(
        s.av,
        "listed chunk is not a chunk of the arena's heaps",
        fake,
    );
}

#[test]
fn a_top_that_does_not_reach_the_end_of_its_heap_is_found() {
    let s = scene();
    // SAFETY: the test owns the arena.
    unsafe {
        let top = (*s.av).top;
        top.set_size_keep_flags(top.size() - 16);
    }
    assert_fault(s.av, "top does not end where its heap ends", Chunk::NULL);
    let s = scene();
    // SAFETY: as above.
    unsafe {
        (*s.av).system_mem += 4096;
        (*s.av).max_system_mem += 4096;
    }
    assert_fault(
        s.av,
        "system_mem disagrees with the sizes of the arena's heaps",
        Chunk::NULL,
    );
}

#[test]
fn chained_heaps_and_their_fenceposts_pass() {
    let av = test_arena();
    let g = locked(av);
    let nb = request2size(120 * 1024);
    let mut blocks = std::vec::Vec::new();
    let first = heap::heap_for_ptr(av as usize);
    loop {
        let p = g.malloc(nb, core::ptr::null_mut());
        assert!(!p.is_null());
        blocks.push(p);
        if heap::heap_for_ptr(p as usize) != first {
            break;
        }
    }
    drop(g);
    let st = check(av).expect("two heaps");
    assert_eq!(st.heaps, 2);
    // Free every other block: free chunks in both heaps.
    let g = locked(av);
    for p in blocks.iter().step_by(2) {
        g.free_chunk(Chunk::from_mem(*p));
    }
    drop(g);
    check(av).expect("two heaps with free chunks");
}

#[test]
fn the_calling_threads_tcache_is_checked() {
    // A thread of its own: its arena and cache, made through the API.
    // Its arena is one of the process's, which other tests check at the
    // same time: only the thread's own cache may be corrupted.
    std::thread::spawn(|| {
        // SAFETY: plain C API calls on blocks of our own.
        unsafe {
            let p = crate::api::malloc(40).cast::<u8>();
            let q = crate::api::malloc(40).cast::<u8>();
            crate::api::free(p.cast());
            let t = check_all().expect("healthy");
            assert!(t.tcache_chunks >= 1);
            let c = Chunk::from_mem(p);
            let key = c.bk();
            c.set_bk(Chunk::NULL);
            assert_eq!(
                check_all().map(|_| ()),
                fault("tcache entry lost the cache key", c.addr())
            );
            c.set_bk(key);
            // Move the cache's list of 48-byte chunks to the bin of
            // 64-byte ones. (Only the cache is changed: other tests
            // check this thread's arena meanwhile, never its cache.)
            let tc = (*tls::thread_state()).tcache;
            let (from, to) = (csize2tidx(48), csize2tidx(64));
            assert_eq!((*tc).counts[to], 0);
            (*tc).entries.swap(from, to);
            (*tc).counts.swap(from, to);
            assert_eq!(
                check_all().map(|_| ()),
                fault("tcache entry of the wrong size", c.addr())
            );
            (*tc).entries.swap(from, to);
            (*tc).counts.swap(from, to);
            check_all().expect("repaired");
            crate::api::free(q.cast());
        }
    })
    .join()
    .expect("tcache checks");
}
