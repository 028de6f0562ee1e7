//! The allocation entry points behind the C API (glibc's `__libc_malloc`,
//! `__libc_free` & co): pick the arena, take its lock, deal with mmap'd
//! chunks, which belong to no arena. The C conventions (errno, NULL,
//! `realloc(p, 0)`) are `api`'s business; here a failure is `None` or an
//! errno value.

use crate::arena::largecache::{self, LargeCache};
use crate::arena::mmapped;
use crate::arena::tcache::{TcBin, Tcache};
use crate::arena::{self, locked::Locked};
use crate::chunk::*;
use crate::config::profile;
use crate::os::printerr::{assertion_failed, misuse};
use crate::os::record;
use crate::os::sys;
use crate::thread::arenas;
use crate::thread::tls::{self, TORN_DOWN, ThreadState};
use core::ptr::{NonNull, null_mut};

/// Why an allocation failed: the errno value C callers see.
pub type Errno = i32;

#[inline]
fn non_null(p: *mut u8) -> Result<NonNull<u8>, Errno> {
    NonNull::new(p).ok_or(libc::ENOMEM)
}

/// malloc: `malloc_cached`, else `malloc_uncached`.
#[inline]
pub fn malloc(n: usize) -> Result<NonNull<u8>, Errno> {
    match malloc_cached(n) {
        Some(p) => Ok(p),
        None => malloc_uncached(n),
    }
}

/// The fast path: a chunk of exactly the right size from the thread's
/// tcache, with no lock; `None` for everything else. It returns in a
/// register (a `Result` would come back through the stack).
#[inline(always)]
pub fn malloc_cached(n: usize) -> Option<NonNull<u8>> {
    let nb = checked_request2size(n)?;
    // SAFETY: the thread's own state and cache, touched by no other thread.
    unsafe {
        let tc = (*tls::thread_state()).tcache;
        if !tc.is_null()
            && let Some(idx) = TcBin::of_size(nb)
            && (*tc).count(idx) > 0
        {
            return Some(NonNull::new_unchecked((*tc).get(idx)));
        }
    }
    None
}

/// malloc past `malloc_cached`.
#[inline(always)]
pub fn malloc_uncached(n: usize) -> Result<NonNull<u8>, Errno> {
    let nb = checked_request2size(n).ok_or(libc::ENOMEM)?;
    // SAFETY: the thread's own state and cache, touched by no other thread.
    unsafe {
        let ts = tls::thread_state();
        let tc = (*ts).tcache;
        if !tc.is_null() && (profile::fast() || arena::remote::ever_handed_over()) {
            return past_tcache(tc, (*ts).arena, nb);
        }
    }
    malloc_from_arena_inline(nb)
}

/// malloc past the tcache for a thread with one: the fast profile's large
/// cache, or the frees other threads handed over to the thread's arena
/// (in any profile: they fill the tcache without the arena's lock), else
/// the arena. Out of line, so that the tcache's path above stays short.
///
/// # Safety
/// `tc` is the calling thread's cache and `own` its arena (null before its
/// first request, `TORN_DOWN` after its exit).
#[inline(never)]
unsafe fn past_tcache(
    tc: *mut Tcache,
    own: *mut arena::state::Arena,
    nb: usize,
) -> Result<NonNull<u8>, Errno> {
    // SAFETY: forwarded from the caller.
    unsafe {
        if profile::fast() && largecache::takes(nb) {
            return from_large_cache(tc, nb);
        }
        if let Some(idx) = TcBin::of_size(nb)
            && !own.is_null()
            && own != TORN_DOWN
            && arena::remote::pending(own)
        {
            return from_remote_frees(tc, own, idx, nb);
        }
    }
    malloc_from_arena(nb)
}

/// A tcache miss while other threads have handed frees over to the
/// thread's arena (`arena::remote`): takes them all into the tcache, where
/// they fit, without the arena's lock or any bin work (they are in-use
/// chunks, as the tcache's are); the rest go back on the list, for the
/// arena's next lock holder. Then serves the request. (The frees come from
/// other threads, so this changes nothing in a single-threaded program.)
///
/// # Safety
/// `tc` is the calling thread's cache; `own` is its arena.
#[inline(never)]
unsafe fn from_remote_frees(
    tc: *mut Tcache,
    own: *mut arena::state::Arena,
    idx: TcBin,
    nb: usize,
) -> Result<NonNull<u8>, Errno> {
    // SAFETY: forwarded from the caller; every chunk on the list is an
    // in-use chunk of `own` given up by its user (its size was checked when
    // it was freed).
    unsafe {
        let mut rest = arena::remote::Batch::new();
        let mut cur = arena::remote::take_all(own);
        while !cur.is_null() {
            let next = arena::remote::next_taken(cur);
            let p = Chunk::from_mem(cur);
            match TcBin::of_size(p.size()) {
                Some(i) if (*tc).has_room(i) => (*tc).stash(p, i, own as usize),
                _ => rest.add_taken(own, p),
            }
            cur = next;
        }
        rest.hand_over();
        if (*tc).count(idx) > 0 {
            return Ok(NonNull::new_unchecked((*tc).get(idx)));
        }
    }
    malloc_from_arena(nb)
}

/// malloc from the fast profile's large cache, else from the arena.
///
/// # Safety
/// `tc` is the calling thread's cache, made under the fast profile, and
/// `nb` satisfies `largecache::takes`.
#[inline(never)]
unsafe fn from_large_cache(tc: *mut Tcache, nb: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: forwarded from the caller.
    let mem = unsafe { (*largecache::of(tc)).get(nb) };
    match NonNull::new(mem) {
        Some(m) => {
            record::served(record::how::LARGE_CACHE);
            Ok(m)
        }
        None => malloc_from_arena(nb),
    }
}

/// malloc without the tcache (made on the thread's first call).
#[inline(never)]
fn malloc_from_arena(nb: usize) -> Result<NonNull<u8>, Errno> {
    malloc_from_arena_inline(nb)
}

/// `malloc_from_arena`, inlined into `malloc_uncached`: a call level less
/// on the way to the bins (callgrind, default profile: medium 200000 1000
/// 214.7 -> 212.3 M, random 2000000 5000 1 553.6 -> 551.9 M).
#[inline(always)]
fn malloc_from_arena_inline(nb: usize) -> Result<NonNull<u8>, Errno> {
    let tc = cache_made();
    match in_arena(
        tc,
        Retry::WithThreads,
        |av, tc| assert_served_by(av, av.malloc(nb, tc), Served::Malloc),
        |p| p.is_null(),
    ) {
        Some(p) => non_null(p),
        None => around_fork(nb, 0),
    }
}

/// The calls whose arena glibc asserts after it served them.
#[derive(Clone, Copy)]
enum Served {
    Malloc,
    Calloc,
    Realloc,
    Memalign,
}

/// glibc's assertion once an arena has served a request (in `__libc_malloc`,
/// `__libc_calloc`, `__libc_realloc`, `_mid_memalign`): the chunk it handed
/// out names that arena, as `arena_for_chunk` reads it (NON_MAIN_ARENA, then
/// the header of the chunk's heap). Only a size word overwritten while the
/// chunk sat in a bin breaks that; glibc then stops with the assertion's
/// line, or faults reading a heap header that is not mapped, where this
/// stops with the line too.
#[inline(always)]
fn assert_served_by(av: &Locked, mem: *mut u8, call: Served) -> *mut u8 {
    if mem.is_null() {
        return mem;
    }
    let p = Chunk::from_mem(mem);
    // SAFETY: the arena has just handed this chunk out: its header is ours.
    let head = unsafe { p.head() };
    let main = core::ptr::eq(av.arena(), arena::state::main_arena());
    let named = if head & IS_MMAPPED != 0 {
        true
    } else if head & NON_MAIN_ARENA == 0 {
        main
    } else {
        !main && names_thread_arena(av, p)
    };
    if !named {
        served_by_failed(av, call);
    }
    mem
}

/// Whether the heap holding NON_MAIN_ARENA chunk `p` belongs to `av`.
#[inline(never)]
fn names_thread_arena(av: &Locked, p: Chunk) -> bool {
    let h = arena::heap::heap_for_ptr(p.addr());
    let owner = if arena::heap::in_our_heap(p.addr(), MINSIZE) {
        // SAFETY: the chunk lies in one of our heaps, whose header is
        // mapped read-write for the heap's whole life.
        unsafe { (*h).ar_ptr }
    } else {
        let ar_ptr = h as usize + core::mem::offset_of!(arena::heap::HeapInfo, ar_ptr);
        sys::read_word_checked(ar_ptr).unwrap_or(0) as *mut arena::state::Arena
    };
    core::ptr::eq(owner, av.arena())
}

/// glibc's line for the failed assertion: its text names the variable of
/// the call, and malloc's and memalign's single-threaded path names the
/// main arena.
#[cold]
fn served_by_failed(av: &Locked, call: Served) -> ! {
    let single = sys::single_threaded() && core::ptr::eq(av.arena(), arena::state::main_arena());
    let (function, expression) = match (call, single) {
        (Served::Malloc, true) => (
            "__libc_malloc",
            "!victim || chunk_is_mmapped (mem2chunk (victim)) || &main_arena == arena_for_chunk (mem2chunk (victim))",
        ),
        (Served::Malloc, false) => (
            "__libc_malloc",
            "!victim || chunk_is_mmapped (mem2chunk (victim)) || ar_ptr == arena_for_chunk (mem2chunk (victim))",
        ),
        (Served::Memalign, true) => (
            "_mid_memalign",
            "!p || chunk_is_mmapped (mem2chunk (p)) || &main_arena == arena_for_chunk (mem2chunk (p))",
        ),
        (Served::Memalign, false) => (
            "_mid_memalign",
            "!p || chunk_is_mmapped (mem2chunk (p)) || ar_ptr == arena_for_chunk (mem2chunk (p))",
        ),
        (Served::Calloc, _) => (
            "__libc_calloc",
            "!mem || chunk_is_mmapped (mem2chunk (mem)) || av == arena_for_chunk (mem2chunk (mem))",
        ),
        (Served::Realloc, _) => (
            "__libc_realloc",
            "!newp || chunk_is_mmapped (mem2chunk (newp)) || ar_ptr == arena_for_chunk (mem2chunk (newp))",
        ),
    };
    assertion_failed(function, expression)
}

/// Which arena a request starts in, and whether, finding no memory there,
/// it tries another (glibc's `arena_get_retry`). glibc's malloc, memalign
/// and calloc take the main arena in a process that has only ever had one
/// thread, the thread's arena otherwise; malloc and memalign retry only in
/// a process with threads, calloc always. The tcache's creation takes the
/// thread's arena and retries always.
#[derive(Clone, Copy)]
enum Retry {
    WithThreads,
    Always,
    CacheInit,
}

/// Runs `f` in the thread's arena and, if it found no memory there
/// (`missed`), once more in another arena (as `retry` says); `None` when another thread's
/// fork holds the arena to use (the caller goes around it: see the `lock`
/// module). `f` gets the thread's cache `tc` to stash chunks into.
#[inline(always)]
fn in_arena<T>(
    tc: *mut Tcache,
    retry: Retry,
    f: impl Fn(&Locked, *mut Tcache) -> T,
    missed: impl Fn(&T) -> bool,
) -> Option<T> {
    let got = in_arena_once(tc, retry, &f, &missed)?;
    if missed(&got) && profile::fast() {
        return again_after_flush(tc, retry, &f, &missed, got);
    }
    Some(got)
}

/// The fast profile's kept mappings count against the address-space
/// limit: `in_arena` gives them back and tries once more before saying
/// there is no memory (`got`, what the first try got).
#[cold]
#[inline(never)]
fn again_after_flush<T>(
    tc: *mut Tcache,
    retry: Retry,
    f: &impl Fn(&Locked, *mut Tcache) -> T,
    missed: &impl Fn(&T) -> bool,
    got: T,
) -> Option<T> {
    if mmapped::cache::flush() {
        return in_arena_once(tc, retry, f, missed);
    }
    Some(got)
}

#[inline(always)]
fn in_arena_once<T>(
    tc: *mut Tcache,
    retry: Retry,
    f: &impl Fn(&Locked, *mut Tcache) -> T,
    missed: &impl Fn(&T) -> bool,
) -> Option<T> {
    let av = match retry {
        Retry::CacheInit => arenas::arena_get()?,
        _ => arenas::arena_for_request()?,
    };
    let got = f(&av, tc);
    if !missed(&got) || matches!(retry, Retry::WithThreads) && sys::single_threaded() {
        return Some(got);
    }
    arenas::arena_get_retry(av).map(|av| f(&av, tc))
}

/// The calling thread's tcache (null before its first malloc and after its
/// exit), which an arena's `malloc` fills as it finds chunks of the
/// requested size (glibc's tcache stashing).
#[inline]
fn thread_cache() -> *mut Tcache {
    // SAFETY: the thread's own state.
    unsafe { (*tls::thread_state()).tcache }
}

/// A chunk of `nb` bytes (user pointer `align`-aligned) for a thread that
/// met a fork holding the arena locks it needed: a mapping of its own, made
/// without waiting for any lock (see the `lock` module). If none can be
/// made or recorded (the side table is full), the thread waits for the
/// fork after all and takes the chunk from its arena; that one is not
/// zeroed, a fresh mapping is.
#[cold]
fn around_fork(nb: usize, align: usize) -> Result<NonNull<u8>, Errno> {
    loop {
        if let Some(p) = mmapped::map_chunk_unlocked(nb, align) {
            return non_null(p.mem());
        }
        arenas::wait_for_fork();
        let from_arena = |av: &Locked, tc| {
            if align > MALLOC_ALIGNMENT {
                av.memalign(align, nb, tc)
            } else {
                av.malloc(nb, tc)
            }
        };
        if let Some(p) = in_arena(thread_cache(), Retry::WithThreads, from_arena, |p| {
            p.is_null()
        }) {
            return non_null(p);
        }
    }
}

/// glibc's MAYBE_INIT_TCACHE, which its malloc, calloc and free (of a heap
/// chunk) begin with: reads the environment on the process's first call
/// and gives the thread its cache on its first; returns the cache (null for
/// a thread past its exit destructor, or when a fork is in the way). The
/// cache is the first chunk of the thread's arena, so the order matters to
/// every address after it.
#[inline]
fn cache_made() -> *mut Tcache {
    crate::config::tunables::read_environment();
    let ts = tls::thread_state();
    // SAFETY: the thread's own state.
    let tc = unsafe { (*ts).tcache };
    // SAFETY: as above.
    if tc.is_null() && unsafe { (*ts).arena != TORN_DOWN } {
        init_tcache(ts);
        return thread_cache();
    }
    tc
}

/// Gives the thread its tcache: a chunk of its arena, zeroed.
#[cold]
fn init_tcache(ts: *mut ThreadState) {
    crate::chunk::safelink::init_key();
    // Under the fast profile the large cache and the batch of remote frees
    // follow the tcache.
    let bytes = if profile::fast() {
        size_of::<Tcache>() + size_of::<LargeCache>() + size_of::<arena::remote::Batch>()
    } else {
        size_of::<Tcache>()
    };
    let nb = request2size(bytes);
    // A fork under way: no cache for now, the next call makes it.
    let Some(p) = in_arena(
        null_mut(),
        Retry::CacheInit,
        |av, tc| av.malloc(nb, tc),
        |p| p.is_null(),
    ) else {
        return;
    };
    if !p.is_null() {
        // SAFETY: a fresh chunk big enough for the cache; the thread's state
        // is its own.
        unsafe {
            core::ptr::write_bytes(p, 0, bytes);
            (*ts).tcache = p.cast();
            let c = Chunk::from_mem(p);
            if record::on() {
                let av = arenas::arena_for_chunk(c).unwrap_or(null_mut());
                record::chunk(record::state::INUSE, c.addr(), c.size(), av as usize);
            }
        }
        tls::registry::join();
    }
}

/// The chunk behind a user pointer, with the cheap sanity checks glibc makes
/// before trusting its header: aligned, and not wrapping around the
/// address space. `None` (after reporting `what` as a misuse) if they fail.
///
/// # Safety
/// `mem` must be a pointer the program got from this allocator (a bad one is
/// caught where the checks can see it; otherwise behaviour is undefined, as
/// with glibc).
unsafe fn chunk_of(mem: *mut u8, what: &str) -> Option<(Chunk, usize)> {
    let p = Chunk::from_mem(mem);
    if !is_aligned(p.addr()) {
        misuse(what);
        return None;
    }
    // SAFETY: forwarded from the caller.
    let size = unsafe { p.size() };
    if p.addr() > size.wrapping_neg() {
        misuse(what);
        return None;
    }
    Some((p, size))
}

/// Whether heap chunk `p` of `size` bytes passes the checks `free` and
/// `realloc` make before touching it: a sane size, and memory that one of
/// our arenas got from the system (glibc lacks the second: a fake chunk on
/// the stack goes into its tcache). Reports the misuse if not.
///
/// # Safety
/// `p`'s header must be readable.
unsafe fn heap_chunk_ok(p: Chunk, size: usize, bad_size: &str, bad_pointer: &str) -> bool {
    if size < MINSIZE || !is_aligned(size) {
        misuse(bad_size);
        return false;
    }
    // SAFETY: forwarded from the caller.
    if unsafe { !arena::locked::owns_chunk(p, size) } {
        misuse(bad_pointer);
        return false;
    }
    true
}

/// # Safety
/// `mem` is null or a live pointer from this allocator.
pub unsafe fn free(mem: *mut u8) {
    if mem.is_null() {
        return;
    }
    // SAFETY: forwarded from the caller.
    let Some((p, size)) = (unsafe { chunk_of(mem, "free(): invalid pointer") }) else {
        return;
    };
    // SAFETY: the header was readable above.
    if unsafe { p.is_mmapped() } {
        // SAFETY: an mmap'd chunk given up by the caller (checked against
        // the registry of our mappings before it is unmapped).
        unsafe { free_mmapped(p) };
        return;
    }
    // SAFETY: the header was readable above.
    if unsafe { !heap_chunk_ok(p, size, "free(): invalid size", "free(): invalid pointer") } {
        return;
    }
    // The fast path: into the thread's tcache, with no lock.
    // SAFETY: the thread's own state and cache; `mem` is a heap chunk of
    // `size` bytes given up by the caller.
    unsafe {
        let ts = tls::thread_state();
        let mut tc = (*ts).tcache;
        if tc.is_null() {
            tc = cache_made();
        }
        if !tc.is_null()
            && let Some(idx) = TcBin::of_size(size)
        {
            if Tcache::has_key(mem)
                && let Some(msg) = (*tc).find_double_free(mem, idx)
            {
                misuse(msg);
                return;
            }
            if (*tc).has_room(idx) {
                (*tc).put(p, idx);
                return;
            }
        }
        if profile::fast() && !tc.is_null() && largecache::takes(size) {
            into_large_cache(tc, (*ts).arena, p, size);
            return;
        }
        arenas::free_or_defer(p);
    }
}

/// # Safety
/// `p` is a live mmap'd chunk given up by its user.
#[cold]
unsafe fn free_mmapped(p: Chunk) {
    let _errno = sys::KeepErrno::new();
    // SAFETY: forwarded from the caller; the chunk is checked against the
    // registry of our mappings before it is unmapped.
    unsafe { arenas::free_or_defer(p) };
}

/// free into the fast profile's large cache, else into the arena.
///
/// # Safety
/// `tc` is the calling thread's cache, made under the fast profile, and
/// `mine` its arena; `p` is a heap chunk of `size` bytes (satisfying
/// `largecache::takes`) given up by its user.
#[inline(never)]
unsafe fn into_large_cache(tc: *mut Tcache, mine: *mut arena::state::Arena, p: Chunk, size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe {
        let lc = largecache::of(tc);
        if (*lc).holds(p.mem(), size) {
            misuse("free(): double free detected in tcache 2");
            return;
        }
        // Only chunks of the thread's own arena are kept: one from another
        // arena (a consumer freeing a producer's blocks, a thread freeing
        // what an exited thread left) would pin that arena's memory where
        // nothing allocates it again. A chunk just below its arena's top
        // goes back too: the arena merges it into the top and may trim.
        let own = arenas::arena_for_chunk(p).filter(|&av| av == mine);
        let keep = own.is_some_and(|av| arena::state::top_hint(av) != p.plus(size).addr());
        if !keep || !(*lc).put(p, size) {
            arenas::free_or_defer(p);
        } else {
            record::chunk(record::state::LARGE_CACHE, p.addr(), size, mine as usize);
            record::did(record::did::LARGE_CACHE);
        }
    }
}

/// `realloc` for a non-null pointer and a non-zero size.
///
/// # Safety
/// `mem` is a live pointer from this allocator.
pub unsafe fn realloc(mem: *mut u8, n: usize) -> Result<NonNull<u8>, Errno> {
    // SAFETY: forwarded from the caller.
    let Some((p, old_size)) = (unsafe { chunk_of(mem, "realloc(): invalid pointer") }) else {
        return Err(libc::EINVAL);
    };
    let nb = checked_request2size(n).ok_or(libc::ENOMEM)?;
    // SAFETY: the header was readable above.
    if unsafe { p.is_mmapped() } {
        // A fork holds the registry's lock: move the block around it.
        let Ok(ours) = mmapped::is_ours(p) else {
            // SAFETY: a live mmap'd chunk, the user part old_size - 16.
            return unsafe { move_around_fork(p, old_size - CHUNK_HDR_SZ, nb, n) };
        };
        if !ours {
            misuse("realloc(): invalid pointer");
            return Err(libc::EINVAL);
        }
        // SAFETY: a live mmap'd chunk.
        match unsafe { mmapped::remap_chunk(p, nb) } {
            Ok(Some(q)) => return non_null(q.mem()),
            Ok(None) => {}
            // SAFETY: as above.
            Err(_) => return unsafe { move_around_fork(p, old_size - CHUNK_HDR_SZ, nb, n) },
        }
        if old_size - SIZE_SZ >= nb {
            return non_null(mem);
        }
        let new = malloc(n)?;
        // SAFETY: the old chunk's user part is old_size - 16 bytes, all
        // smaller than the new block; the blocks are distinct.
        unsafe {
            core::ptr::copy_nonoverlapping(mem, new.as_ptr(), old_size - CHUNK_HDR_SZ);
            if mmapped::unmap_chunk(p).is_err() {
                arenas::free_or_defer(p);
            }
        }
        return Ok(new);
    }
    // Only where the chunk starts is checked here: its arena checks its
    // size as glibc does ("realloc(): invalid old size").
    // SAFETY: the header was readable above.
    if unsafe { !arena::locked::owns_chunk_start(p) } {
        misuse("realloc(): invalid pointer");
        return Err(libc::EINVAL);
    }
    // SAFETY: as above; the chunk lies in one of our heaps.
    let Some(owner) = (unsafe { arenas::arena_for_chunk(p) }) else {
        misuse("realloc(): invalid pointer");
        return Err(libc::EINVAL);
    };
    let nb = if profile::fast() {
        match fast_realloc_size(old_size, nb) {
            Some(grown) => grown,
            None => return non_null(mem),
        }
    } else {
        nb
    };
    // SAFETY: arenas live for the whole process.
    let Some(av) = (unsafe { arena::locked::lock_unless_forking(owner) }) else {
        // SAFETY: a live heap chunk of ours, old_size - 8 usable bytes.
        return unsafe { move_around_fork(p, old_size - SIZE_SZ, nb, n) };
    };
    let q = av.realloc(p, nb, thread_cache());
    let q = assert_served_by(&av, q, Served::Realloc);
    drop(av);
    if !q.is_null() {
        return non_null(q);
    }
    // The owner arena is full: move the block to whichever arena has room.
    let new = malloc(n)?;
    // SAFETY: `p` is still live with old_size - 8 usable bytes, fewer than
    // the new block's; the blocks are distinct.
    unsafe {
        core::ptr::copy_nonoverlapping(mem, new.as_ptr(), old_size - SIZE_SZ);
        arenas::free_or_defer(p);
    }
    Ok(new)
}

/// The fast profile's realloc of a heap chunk of `old_size` bytes to chunk
/// size `nb`: `None` to leave the block where and as it is (it holds `nb`
/// bytes, with at most a quarter of its size spare: no split, no lock);
/// else the chunk size to ask the arena for, a quarter more than the old
/// one at least when growing, so that a block grown a little at a time
/// (a string appended to) moves a logarithmic number of times, not at every
/// step. Below the mmap threshold only, where the arena serves it.
fn fast_realloc_size(old_size: usize, nb: usize) -> Option<usize> {
    if nb <= old_size {
        return (old_size - nb > old_size / 4).then_some(nb);
    }
    let roomy = align_up(old_size + old_size / 4, MALLOC_ALIGNMENT);
    Some(
        if nb < roomy && roomy < crate::config::tunables::mmap_threshold() {
            roomy
        } else {
            nb
        },
    )
}

/// `realloc` of a chunk whose lock a fork holds: a new block made around
/// the fork, the contents copied, the old chunk freed once the fork is over.
///
/// # Safety
/// `p` is a live chunk of ours with `usable` bytes for its user, who gives
/// it up for a block of `n` bytes (chunk size `nb`).
#[cold]
unsafe fn move_around_fork(
    p: Chunk,
    usable: usize,
    nb: usize,
    n: usize,
) -> Result<NonNull<u8>, Errno> {
    let new = around_fork(nb, 0)?;
    // SAFETY: both blocks are live and distinct; at most the smaller size.
    unsafe {
        core::ptr::copy_nonoverlapping(p.mem(), new.as_ptr(), usable.min(n));
        arenas::free_or_defer(p);
    }
    Ok(new)
}

pub fn calloc(n: usize, size: usize) -> Result<NonNull<u8>, Errno> {
    let bytes = n.checked_mul(size).ok_or(libc::ENOMEM)?;
    let nb = checked_request2size(bytes).ok_or(libc::ENOMEM)?;
    let Some((mem, dirty)) = in_arena(
        cache_made(),
        Retry::Always,
        |av, tc| {
            let (mem, dirty) = av.calloc(nb, tc);
            (assert_served_by(av, mem, Served::Calloc), dirty)
        },
        |(p, _)| p.is_null(),
    ) else {
        return calloc_around_fork(nb);
    };
    let mem = non_null(mem)?;
    // SAFETY: the chunk is ours and has at least `dirty` usable bytes.
    unsafe { core::ptr::write_bytes(mem.as_ptr(), 0, dirty) };
    Ok(mem)
}

/// `around_fork` for calloc: a fresh mapping is zeroed already; a chunk
/// from the arena (the side table was full) is zeroed here.
#[cold]
fn calloc_around_fork(nb: usize) -> Result<NonNull<u8>, Errno> {
    let mem = around_fork(nb, 0)?;
    let p = Chunk::from_mem(mem.as_ptr());
    // SAFETY: a chunk just handed out to us, header readable; a heap
    // chunk's user part is its size less the 8-byte header.
    unsafe {
        if !p.is_mmapped() {
            core::ptr::write_bytes(mem.as_ptr(), 0, p.size() - SIZE_SZ);
        }
    }
    Ok(mem)
}

/// glibc's memalign rules: alignments up to 16 are plain malloc, others are
/// raised to at least MINSIZE and to a power of two; more than half the
/// address space is EINVAL.
pub fn memalign(alignment: usize, n: usize) -> Result<NonNull<u8>, Errno> {
    if alignment <= MALLOC_ALIGNMENT {
        return malloc(n);
    }
    if alignment > usize::MAX / 2 + 1 {
        return Err(libc::EINVAL);
    }
    let alignment = alignment.max(MINSIZE).next_power_of_two();
    let nb = checked_request2size(n).ok_or(libc::ENOMEM)?;
    match in_arena(
        thread_cache(),
        Retry::WithThreads,
        |av, tc| assert_served_by(av, av.memalign(alignment, nb, tc), Served::Memalign),
        |p| p.is_null(),
    ) {
        Some(p) => non_null(p),
        None => around_fork(nb, alignment),
    }
}

/// # Safety
/// `mem` is null or a live pointer from this allocator.
pub unsafe fn usable_size(mem: *mut u8) -> usize {
    if mem.is_null() {
        return 0;
    }
    let p = Chunk::from_mem(mem);
    // SAFETY: forwarded from the caller.
    unsafe {
        if p.is_mmapped() {
            p.size() - CHUNK_HDR_SZ
        } else if p.inuse() {
            p.size() - SIZE_SZ
        } else {
            0
        }
    }
}
