//! The set of arenas, and which one serves whom.
//!
//! The main arena is a static grown with brk; every other arena lives at the
//! start of its first mmap'd heap (see `heap`). Arenas form a ring through
//! `next` (main → newest → … → main) and are never destroyed.
//!
//! A thread's first malloc attaches it to an arena, kept in a thread-local
//! pointer: first an arena from the free list (arenas whose threads all
//! exited), else a new one while fewer than the limit exist (`arena_max`, or
//! 8 × CPUs once more than `arena_test` arenas exist), else the first arena
//! of the ring, from a rotating start, whose lock is free — or, when all are
//! busy, the next one in line, waiting for it. When a request fails in an
//! arena, it is retried once in another (the main arena, or from a thread
//! using the main arena, any other) before NULL is returned.
//!
//! A thread's exit runs a pthread key destructor that detaches it; an arena
//! with no thread left joins the free list. Whatever the thread allocates
//! after that (other TLS destructors, libc's own cleanup) is served by the
//! main arena without attaching again.
//!
//! Locks, in the order they may be taken:
//! 0. libio's list-of-streams lock: only the fork handlers take it, before
//!    all of ours (see `before_fork`);
//! 1. `LIST_LOCK`: guards adding an arena to the ring; held across fork;
//! 2. arena mutexes (never two at once, except by the fork handlers, which
//!    take them in ring order);
//! 3. `FREE_LIST_LOCK`: guards `FREE_LIST`, every `next_free` and every
//!    `attached_threads` (taken while holding an arena mutex in
//!    `reused_arena`, never the other way round).

use core::ptr::null_mut;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::{AtomicPtr, AtomicU32, AtomicUsize};

use crate::arena::heap::{self, HeapInfo};
use crate::arena::largecache;
use crate::arena::tcache::TcBin;
use crate::arena::{self, locked::Hold, locked::Locked, state::Arena, state::main_arena};
use crate::chunk::Chunk;
use crate::config::profile;
use crate::config::tunables::MP;
use crate::os::lock::{FORK_HOLDER, Got, Lock};
use crate::os::record;
use crate::os::sys;
use crate::thread::tls::{self, TORN_DOWN};

/// The calling thread's arena (see `tls::ThreadState::arena`).
#[inline]
pub(super) fn thread_arena() -> *mut Arena {
    // SAFETY: the thread's own state, touched by no other thread.
    unsafe { (*tls::thread_state()).arena }
}

#[inline]
fn set_thread_arena(a: *mut Arena) {
    // SAFETY: as above.
    unsafe { (*tls::thread_state()).arena = a }
}

pub(super) static LIST_LOCK: Lock = Lock::new();
pub(super) static FREE_LIST_LOCK: Lock = Lock::new();
/// Arenas with no attached thread, linked through `next_free`.
pub(super) static FREE_LIST: AtomicPtr<Arena> = AtomicPtr::new(null_mut());
/// Arenas in existence, the main arena included.
pub(super) static NARENAS: AtomicUsize = AtomicUsize::new(1);
/// The arena limit once computed; 0 until then (no limit yet).
static NARENAS_LIMIT: AtomicUsize = AtomicUsize::new(0);
/// Where the next search for a reusable arena starts.
static NEXT_TO_USE: AtomicPtr<Arena> = AtomicPtr::new(null_mut());

/// The arena after `a` in the ring (the main arena's link is null until the
/// first thread arena is made: the ring is then just the main arena).
fn ring_next(a: *mut Arena) -> *mut Arena {
    // SAFETY: `next` is only written under LIST_LOCK, with release stores,
    // and read atomically; arenas are never freed.
    let next = unsafe { AtomicPtr::from_ptr(&raw mut (*a).next) }.load(Acquire);
    if next.is_null() { main_arena() } else { next }
}

/// The arena serving the calling thread, locked; `None` when another
/// thread's fork holds it (the caller goes around the arenas: see the
/// `lock` module).
#[inline]
pub fn arena_get() -> Option<Locked> {
    let a = thread_arena();
    if a.is_null() {
        return arena_get2(null_mut());
    }
    let a = if a == TORN_DOWN { main_arena() } else { a };
    // SAFETY: arenas live for the whole process.
    unsafe { arena::locked::lock_unless_forking(a) }
}

/// The arena for a malloc, calloc or memalign, locked: in a process that
/// has only ever had one thread, the main arena, as glibc's single-thread
/// path takes (once the thread is attached to an arena at all: its cache's
/// creation may have attached it to another); else the thread's.
#[inline]
pub fn arena_for_request() -> Option<Locked> {
    if sys::single_threaded() && !thread_arena().is_null() {
        // SAFETY: the main arena is a static.
        return unsafe { arena::locked::lock_unless_forking(main_arena()) };
    }
    arena_get()
}

/// After a request failed in `failed`: another arena, locked (the main
/// arena for a thread arena, else any other); `None` as for `arena_get`.
pub fn arena_get_retry(failed: Locked) -> Option<Locked> {
    let a = failed.arena();
    drop(failed);
    if a != main_arena() {
        // SAFETY: the main arena is a static.
        unsafe { arena::locked::lock_unless_forking(main_arena()) }
    } else {
        arena_get2(a)
    }
}

/// Whether a thread other than the caller is forking, holding every arena
/// lock (between the atfork prepare handler and the parent handler).
fn forking_elsewhere() -> bool {
    let holder = FORK_HOLDER.load(SeqCst);
    holder != 0 && holder != crate::os::thread::tid()
}

/// The arena that owns heap chunk `p`, or `None` when its header names an
/// arena we never made.
///
/// # Safety
/// `p`'s header must be readable.
#[inline]
pub unsafe fn arena_for_chunk(p: Chunk) -> Option<*mut Arena> {
    // SAFETY: forwarded from the caller.
    if unsafe { !p.non_main_arena() } {
        return Some(main_arena());
    }
    let h = heap::heap_for_ptr(p.addr());
    // SAFETY: a NON_MAIN_ARENA chunk lies in a heap whose header starts at
    // the 64 MiB boundary below it.
    let a = unsafe { (*h).ar_ptr };
    if a.is_null() { None } else { Some(a) }
}

/// Picks an arena for a thread that has none (or whose arena failed:
/// `avoid`), attaches the thread to it and returns it locked; `None` as for
/// `arena_get`.
#[cold]
fn arena_get2(avoid: *mut Arena) -> Option<Locked> {
    let forking = FORK_HOLDER.load(SeqCst);
    let forking_here = forking != 0 && forking == crate::os::thread::tid();
    if forking != 0 && !forking_here {
        return None;
    }
    if avoid.is_null() && is_initial_thread() {
        // The process's first thread uses the main arena, as in glibc.
        let main = main_arena();
        FREE_LIST_LOCK.lock();
        remove_from_free_list(main);
        // SAFETY: FREE_LIST_LOCK guards attached_threads.
        unsafe { (*main).attached_threads += 1 };
        FREE_LIST_LOCK.unlock();
        attach(main);
        // SAFETY: the main arena is a static.
        return unsafe { arena::locked::lock_unless_forking(main) };
    }
    if let Some(a) = take_free_arena() {
        // SAFETY: arenas live for the whole process.
        return unsafe { arena::locked::lock_unless_forking(a) };
    }
    if forking_here {
        // An atfork handler allocating in the forking thread, which holds
        // every arena lock (see `before_fork`): it borrows one rather than
        // make an arena the fork handlers never locked.
        return reused_arena(avoid);
    }
    crate::config::tunables::read_environment();
    let limit = arena_limit();
    loop {
        let n = NARENAS.load(Relaxed);
        if limit != 0 && n >= limit {
            return reused_arena(avoid);
        }
        if NARENAS.compare_exchange(n, n + 1, Relaxed, Relaxed).is_ok() {
            break;
        }
    }
    match new_arena() {
        // SAFETY: arenas live for the whole process.
        NewArena::Made(a) => unsafe { arena::locked::lock_unless_forking(a) },
        NewArena::Forking => {
            NARENAS.fetch_sub(1, Relaxed);
            None
        }
        NewArena::Failed => {
            NARENAS.fetch_sub(1, Relaxed);
            reused_arena(avoid)
        }
    }
}

enum NewArena {
    Made(*mut Arena),
    /// Another thread's fork holds the ring's lock: nothing made.
    Forking,
    /// No memory for a heap.
    Failed,
}

/// True for the thread the process started with (or, in a fork child, the
/// thread that forked): its thread id is the process id.
fn is_initial_thread() -> bool {
    // SAFETY: plain system calls without arguments.
    unsafe { libc::syscall(libc::SYS_gettid) == libc::getpid() as libc::c_long }
}

/// The arena limit: `arena_max` if set, else — once more than `arena_test`
/// arenas exist — 8 × the online CPUs (as glibc counts them: not the
/// affinity mask); 0 (none) before that.
fn arena_limit() -> usize {
    let known = NARENAS_LIMIT.load(Relaxed);
    if known != 0 {
        return known;
    }
    let max = MP.arena_max.load(Relaxed);
    let limit = if max != 0 {
        max
    } else if NARENAS.load(Relaxed) > MP.arena_test.load(Relaxed) {
        8 * sys::cpus_online()
    } else {
        return 0;
    };
    NARENAS_LIMIT.store(limit, Relaxed);
    limit
}

/// Makes a thread arena in a new heap, adds it to the ring and attaches
/// the calling thread to it.
fn new_arena() -> NewArena {
    let room = size_of::<HeapInfo>() + size_of::<Arena>() + crate::chunk::MALLOC_ALIGNMENT;
    let Some(h) = heap::new_heap(room, MP.top_pad.load(Relaxed)) else {
        return NewArena::Failed;
    };
    // SAFETY: a fresh heap, sized for the arena header.
    let a = unsafe { arena::locked::create_in_heap(h) };

    if LIST_LOCK.lock_unless_forking() != Got::Taken {
        // A fork holds the ring (this is not the forking thread, which
        // reuses an arena: see `arena_get2`): the arena goes unused.
        // SAFETY: nobody else knows the heap.
        unsafe { heap::delete_heap(h) };
        return NewArena::Forking;
    }
    let main = main_arena();
    // SAFETY: ring links are written only here, under LIST_LOCK; the new
    // arena is linked in before it becomes reachable.
    unsafe {
        (*a).next = ring_next(main);
        AtomicPtr::from_ptr(&raw mut (*main).next).store(a, Release);
    }
    LIST_LOCK.unlock();

    FREE_LIST_LOCK.lock();
    detach(thread_arena());
    FREE_LIST_LOCK.unlock();
    attach(a);
    NewArena::Made(a)
}

/// Pops an arena off the free list and attaches the thread to it.
fn take_free_arena() -> Option<*mut Arena> {
    if FREE_LIST.load(Relaxed).is_null() {
        return None;
    }
    FREE_LIST_LOCK.lock();
    let a = FREE_LIST.load(Relaxed);
    if !a.is_null() {
        // SAFETY: FREE_LIST_LOCK guards next_free and attached_threads.
        unsafe {
            FREE_LIST.store((*a).next_free, Relaxed);
            (*a).attached_threads = 1;
        }
        detach(thread_arena());
    }
    FREE_LIST_LOCK.unlock();
    if a.is_null() {
        return None;
    }
    attach(a);
    Some(a)
}

/// At the arena limit: the first arena of the ring (from a rotating start)
/// whose lock is free, or else the next in line, waited for; `None` as for
/// `arena_get`.
fn reused_arena(avoid: *mut Arena) -> Option<Locked> {
    let start = {
        let s = NEXT_TO_USE.load(Relaxed);
        if s.is_null() { main_arena() } else { s }
    };
    let mut a = start;
    let mut got = false;
    loop {
        // SAFETY: arenas live for the whole process.
        if unsafe { arena::state::mutex(a) }.try_lock() {
            got = true;
            break;
        }
        a = ring_next(a);
        if a == start {
            break;
        }
    }
    let mut hold = Hold::Locked;
    if !got {
        if a == avoid {
            a = ring_next(a);
        }
        // SAFETY: as above.
        match unsafe { arena::state::mutex(a) }.lock_unless_forking() {
            Got::Taken => {}
            Got::Borrowed => hold = Hold::Borrowed,
            Got::Forking => return None,
        }
    }

    FREE_LIST_LOCK.lock();
    detach(thread_arena());
    remove_from_free_list(a);
    // SAFETY: FREE_LIST_LOCK guards attached_threads.
    unsafe { (*a).attached_threads += 1 };
    FREE_LIST_LOCK.unlock();

    attach(a);
    NEXT_TO_USE.store(ring_next(a), Relaxed);
    // SAFETY: we hold `a`'s lock (taken or borrowed above).
    Some(unsafe { arena::locked::held(a, hold) })
}

/// Takes `a` off the free list if it is there. Needs FREE_LIST_LOCK.
fn remove_from_free_list(a: *mut Arena) {
    let mut link: *mut *mut Arena = FREE_LIST.as_ptr();
    // SAFETY: the caller holds FREE_LIST_LOCK, which guards the list.
    unsafe {
        while !(*link).is_null() {
            if *link == a {
                *link = (*a).next_free;
                return;
            }
            link = &raw mut (**link).next_free;
        }
    }
}

/// Drops the calling thread's claim on its previous arena. Needs
/// FREE_LIST_LOCK.
fn detach(a: *mut Arena) {
    if !a.is_null() && a != TORN_DOWN {
        // SAFETY: the caller holds FREE_LIST_LOCK.
        unsafe { (*a).attached_threads -= 1 };
    }
}

/// Records `a` as the calling thread's arena and makes sure the thread's
/// exit will detach it.
fn attach(a: *mut Arena) {
    set_thread_arena(a);
    let key = exit_key();
    // SAFETY: a key from pthread_key_create; keys below 32 use the thread's
    // static slots, so this does not allocate.
    unsafe { libc::pthread_setspecific(key, a.cast()) };
}

/// The pthread key whose destructor detaches an exiting thread.
pub(crate) fn exit_key() -> libc::pthread_key_t {
    const UNSET: u32 = u32::MAX;
    static KEY: AtomicU32 = AtomicU32::new(UNSET);
    static KEY_LOCK: Lock = Lock::new();
    let k = KEY.load(Acquire);
    if k != UNSET {
        return k;
    }
    KEY_LOCK.lock();
    let mut k = KEY.load(Acquire);
    if k == UNSET {
        let mut new: libc::pthread_key_t = 0;
        // SAFETY: a valid out-pointer and a destructor that never unwinds.
        if unsafe { libc::pthread_key_create(&mut new, Some(thread_exit)) } == 0 {
            k = new;
            KEY.store(k, Release);
        }
    }
    KEY_LOCK.unlock();
    k
}

/// Runs as the thread exits: empty the thread's tcache back into the
/// arenas, detach from the arena, and put the arena on the free list if no
/// thread is left on it.
extern "C" fn thread_exit(_: *mut libc::c_void) {
    if record::on() {
        // Recorded as a call of its own: the tcache's chunks go back.
        let outer = record::begin_call();
        flush_tcache();
        record::end_call(record::THREAD_EXIT, [0, 0], (0, 0), outer, |_, did| {
            (0, [0, 0, 0, did])
        });
        record::thread_exit();
    } else {
        flush_tcache();
    }
    let a = thread_arena();
    set_thread_arena(TORN_DOWN);
    if a.is_null() || a == TORN_DOWN {
        return;
    }
    FREE_LIST_LOCK.lock();
    // SAFETY: FREE_LIST_LOCK guards attached_threads, next_free, FREE_LIST.
    unsafe {
        (*a).attached_threads -= 1;
        if (*a).attached_threads == 0 {
            (*a).next_free = FREE_LIST.load(Relaxed);
            FREE_LIST.store(a, Relaxed);
        }
    }
    FREE_LIST_LOCK.unlock();
}

/// Empties the calling thread's large cache (the fast profile's) into the
/// arenas, hands over its batch of remote frees and unmaps the mappings
/// the cache of freed mappings keeps, before `malloc_trim`.
pub fn flush_fast_caches() {
    if !profile::fast() {
        return;
    }
    let _ = crate::arena::mmapped::cache::flush();
    // SAFETY: the thread's own state.
    let tc = unsafe { (*tls::thread_state()).tcache };
    if !tc.is_null() {
        // SAFETY: the thread's own cache, made under the fast profile.
        unsafe { empty_fast_caches(tc) };
    }
}

/// Empties the large cache and hands over the batch of remote frees of
/// thread cache `tc`.
///
/// # Safety
/// `tc` is the calling thread's own cache, made under the fast profile.
unsafe fn empty_fast_caches(tc: *mut arena::tcache::Tcache) {
    // SAFETY: forwarded from the caller; every cached or batched chunk is
    // an in-use heap chunk given up by its user (the large cache holds none
    // that would be batched).
    unsafe {
        (*largecache::of(tc)).drain(|p| free_or_defer(p));
        (*largecache::batch_of(tc)).hand_over();
    }
}

/// Gives every chunk of the thread's tcache, and the cache itself, back to
/// the arenas they came from; the thread gets no cache again.
fn flush_tcache() {
    let ts = tls::thread_state();
    // SAFETY: the thread's own state and cache; every cached chunk is an
    // in-use heap chunk of some arena (the cache holds no mmap'd chunks).
    unsafe {
        let tc = (*ts).tcache;
        if tc.is_null() {
            return;
        }
        if profile::fast() {
            empty_fast_caches(tc);
        }
        // Off the registry before the cache goes: a dump must not read it.
        tls::registry::leave();
        (*ts).tcache = null_mut();
        for idx in TcBin::all() {
            while (*tc).count(idx) > 0 {
                if !crate::chunk::is_aligned((*tc).first(idx) as usize) {
                    crate::os::printerr::malloc_printerr(
                        "tcache_thread_shutdown(): unaligned tcache chunk detected",
                    );
                }
                free_or_defer(Chunk::from_mem((*tc).get(idx)));
            }
        }
        // The cache itself was malloc'd: mmap'd when the threshold is tiny.
        free_or_defer(Chunk::from_mem(tc.cast()));
    }
}

/// Frees chunk `p` into the arena that owns it (taking its lock if free,
/// else handing it over to the lock's holder: `arena::remote`), or, if
/// mmap'd, back to the kernel; later (`defer_free`) if another thread's
/// fork holds the registry lock that needs.
///
/// # Safety
/// `p` is an in-use chunk given up by its user.
pub unsafe fn free_or_defer(p: Chunk) {
    // SAFETY: forwarded from the caller.
    if unsafe { !free_unless_forking(p) } {
        // SAFETY: as above.
        unsafe { defer_free(p) };
    }
}

/// Frees chunk `p` now or hands it to its arena's next lock holder (true),
/// unless it is mmap'd and another thread's fork holds the registry lock
/// that needs (false: nothing done).
///
/// # Safety
/// As for `free_or_defer`.
#[inline(always)]
unsafe fn free_unless_forking(p: Chunk) -> bool {
    // SAFETY: forwarded from the caller.
    if unsafe { p.is_mmapped() } {
        // SAFETY: as above.
        return unsafe { crate::arena::mmapped::free_chunk(p) }.is_ok();
    }
    // SAFETY: as above.
    let Some(owner) = (unsafe { arena_for_chunk(p) }) else {
        crate::os::printerr::malloc_printerr("free(): invalid pointer");
    };
    // SAFETY: as above; the size was checked by the caller.
    let size = unsafe { p.size() };
    // The fast profile gathers small chunks of other arenas in a batch,
    // handed over in one push (`arena::remote`).
    if profile::fast() && size < largecache::MIN_CHUNK {
        let ts = tls::thread_state();
        // SAFETY: the thread's own state.
        let (tc, mine) = unsafe { ((*ts).tcache, (*ts).arena) };
        if owner != mine && !tc.is_null() && !sys::single_threaded() {
            // SAFETY: the thread's own caches, made under the fast profile;
            // `p` is `owner`'s, in use, given up by its user.
            unsafe { (*largecache::batch_of(tc)).add(owner, p) };
            return true;
        }
    }
    // glibc's fastbin free in a process with threads takes no lock: the
    // chunk is pushed with compare-and-swap (see `lock_free_pushes`).
    // SAFETY: as above; the size was checked by the caller.
    unsafe {
        if size <= crate::config::tunables::max_fast()
            && crate::arena::free::lock_free_pushes()
            && crate::arena::free::free_fast_unlocked(owner, p, size)
        {
            return true;
        }
    }
    if sys::single_threaded() {
        // SAFETY: arenas live for the whole process.
        if let Some(av) = unsafe { arena::locked::lock_unless_forking(owner) } {
            av.free_chunk(p);
            return true;
        }
    }
    // SAFETY: as above; `p` is `owner`'s.
    unsafe { free_or_hand_over(owner, p) };
    true
}

/// With threads: frees `p` into `owner` if its lock is free; if another
/// thread holds it (or a fork), the chunk waits on the arena's list of
/// remote frees, freed by the lock's next taker (`arena::remote`).
///
/// # Safety
/// `owner` is the live arena of in-use chunk `p`, given up by its user.
#[inline(never)]
unsafe fn free_or_hand_over(owner: *mut Arena, p: Chunk) {
    // SAFETY: forwarded from the caller.
    unsafe {
        match arena::locked::try_lock(owner) {
            Some(av) => av.free_chunk(p),
            None => arena::remote::hand_over(owner, p),
        }
    }
}

/// Sleeps until no other thread is forking (see `forking_elsewhere`).
pub fn wait_for_fork() {
    while forking_elsewhere() {
        sys::sleep_ns(100_000);
    }
}

/// Frees that met a fork holding the arena (or registry) lock they needed:
/// a stack of chunks linked through their first user word, pushed without
/// a lock. The fork handlers carry them out once the locks are let go (in
/// the parent and in the child alike).
static PENDING: AtomicPtr<u8> = AtomicPtr::new(null_mut());

/// Frees chunk `p` later (see `PENDING`): now, if the fork has ended
/// meanwhile.
///
/// # Safety
/// `p` is a live chunk given up by its user (heap or mmap'd).
unsafe fn defer_free(p: Chunk) {
    // SAFETY: forwarded from the caller.
    unsafe { push_pending(p) };
    // Either the fork handlers' `drain_pending` comes after the push (the
    // handlers clear FORK_HOLDER first, then drain), or this load sees
    // FORK_HOLDER cleared and drains it here; SeqCst orders the two.
    if FORK_HOLDER.load(SeqCst) == 0 {
        drain_pending();
    }
}

/// # Safety
/// As for `defer_free`.
unsafe fn push_pending(p: Chunk) {
    let mem = p.mem();
    let mut head = PENDING.load(Relaxed);
    loop {
        // SAFETY: the chunk's user part (at least 16 bytes) is ours now.
        unsafe { mem.cast::<*mut u8>().write(head) };
        match PENDING.compare_exchange_weak(head, mem, SeqCst, Relaxed) {
            Ok(_) => return,
            Err(now) => head = now,
        }
    }
}

/// Carries out every pending free (one that meets a fork again waits for
/// that fork's handlers).
pub(super) fn drain_pending() {
    let mut mem = PENDING.swap(null_mut(), SeqCst);
    while !mem.is_null() {
        // SAFETY: each entry was pushed by `push_pending`: a chunk given up
        // by its user, whose first user word links the next.
        unsafe {
            let next = mem.cast::<*mut u8>().read();
            let p = Chunk::from_mem(mem);
            if !free_unless_forking(p) {
                push_pending(p);
            }
            mem = next;
        }
    }
}

/// What is wrong with the set of arenas, if anything: the ring must hold
/// at most `NARENAS` arenas (one being made is counted first), each once;
/// every arena on the free list must be in the ring, be there once and
/// have no thread attached (the calling thread's own arena is never
/// there); the calling thread's arena must be in the ring.
/// For the heap checker (`verify`); returns the message and the arena's
/// address. Takes FREE_LIST_LOCK, so it must not be called with it held.
pub fn check_lists() -> Result<(), (&'static str, usize)> {
    const MAX: usize = 4096;
    // Walked only once the ring is known to come back to the main arena.
    let in_ring = |x: *mut Arena| {
        let mut found = false;
        for_each_arena(|a| found |= a == x);
        found
    };
    let mut n = 0;
    let mut looped = false;
    let main = main_arena();
    let mut a = main;
    loop {
        n += 1;
        a = ring_next(a);
        if a == main {
            break;
        }
        if n > MAX {
            looped = true;
            break;
        }
    }
    if looped {
        return Err((
            "the arena ring does not come back to the main arena",
            main as usize,
        ));
    }
    // A thread making an arena counts it before it links it in.
    if n > NARENAS.load(Relaxed) {
        return Err((
            "the arena ring holds more arenas than were counted",
            main as usize,
        ));
    }
    let mine = thread_arena();
    if !mine.is_null() && mine != TORN_DOWN && !in_ring(mine) {
        return Err(("the thread's arena is not in the arena ring", mine as usize));
    }
    FREE_LIST_LOCK.lock();
    let mut result = Ok(());
    let mut f = FREE_LIST.load(Relaxed);
    let mut seen = 0;
    while !f.is_null() {
        seen += 1;
        if seen > n || !in_ring(f) {
            result = Err((
                "the arena free list holds an arena twice, or one not in the ring",
                f as usize,
            ));
            break;
        }
        // SAFETY: FREE_LIST_LOCK guards next_free and attached_threads.
        let (attached, next) = unsafe { ((*f).attached_threads, (*f).next_free) };
        if attached != 0 || f == mine {
            result = Err(("an arena on the free list has threads attached", f as usize));
            break;
        }
        f = next;
    }
    FREE_LIST_LOCK.unlock();
    result
}

/// Calls `f` for every arena, main first, in ring order.
pub fn for_each_arena(mut f: impl FnMut(*mut Arena)) {
    let main = main_arena();
    let mut a = main;
    loop {
        f(a);
        a = ring_next(a);
        if a == main {
            break;
        }
    }
}
