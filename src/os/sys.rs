//! The kernel, and nothing else: every system call the allocator makes goes
//! through this module.
//!
//! Contract of each function: sizes are whole pages where a mapping is made or
//! changed (callers round), failure is reported as `None`/`false` and never
//! as a panic, and nothing here allocates. `errno` is left as the kernel set it;
//! the API layer decides what the caller sees.
//!
//! Choices worth knowing:
//! - The main arena grows with libc's `sbrk`, not a raw `brk` syscall: libc
//!   caches the break (`__curbrk`), and any other `sbrk` user in the process
//!   relies on that cache being right. `sbrk(0)` answers from the cache, so it
//!   costs no system call; strace shows exactly one `brk` per growth.
//! - Pages are given back with `MADV_DONTNEED`, not `MADV_FREE`: RSS drops at
//!   once, which is what people watching `/proc/PID/status` expect, and what
//!   glibc does.

use core::sync::atomic::{AtomicU32, AtomicUsize, Ordering};

/// Page size, read once from the auxiliary vector (no allocation, valid
/// before libc's constructors have run).
pub fn page_size() -> usize {
    static PAGE: AtomicUsize = AtomicUsize::new(0);
    let cached = PAGE.load(Ordering::Relaxed);
    if cached != 0 {
        return cached;
    }
    // SAFETY: getauxval only reads the auxiliary vector the kernel gave us.
    let from_auxv = unsafe { libc::getauxval(libc::AT_PAGESZ) } as usize;
    let page = if from_auxv.is_power_of_two() {
        from_auxv
    } else {
        4096
    };
    PAGE.store(page, Ordering::Relaxed);
    page
}

/// Moves the program break by `increment` bytes and returns the old break,
/// or `None` when the kernel refuses (something is mapped in the way, or
/// RLIMIT_DATA). `sbrk_by(0)` returns the current break.
pub fn sbrk_by(increment: isize) -> Option<*mut u8> {
    // SAFETY: sbrk only changes the break; memory between the old and new
    // break belongs to us, and libc keeps its cached break consistent.
    let old = unsafe { libc::sbrk(increment as libc::intptr_t) };
    if old as isize == -1 {
        None
    } else {
        Some(old.cast())
    }
}

/// A fresh private anonymous mapping of `size` bytes (zero-filled), or `None`.
pub fn map_anonymous(size: usize, prot: i32, extra_flags: i32) -> Option<*mut u8> {
    map_anonymous_near(0, size, prot, extra_flags)
}

/// As `map_anonymous`, at `hint` if that range is free (the kernel picks
/// another place if not: without MAP_FIXED nothing is clobbered).
pub fn map_anonymous_near(
    hint: usize,
    size: usize,
    prot: i32,
    extra_flags: i32,
) -> Option<*mut u8> {
    // SAFETY: an anonymous mapping without MAP_FIXED, at an address of the
    // kernel's choice, cannot overlap anything we or the program already use.
    let p = unsafe {
        libc::mmap(
            hint as *mut libc::c_void,
            size,
            prot,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | extra_flags,
            -1,
            0,
        )
    };
    if p == libc::MAP_FAILED {
        None
    } else {
        Some(p.cast())
    }
}

/// A read-write anonymous mapping.
pub fn map_rw(size: usize) -> Option<*mut u8> {
    map_anonymous(size, libc::PROT_READ | libc::PROT_WRITE, 0)
}

/// Unmaps `[addr, addr + size)`.
///
/// # Safety
/// The range must be a mapping (or part of one) that the allocator owns and
/// that no live allocation still uses.
pub unsafe fn unmap(addr: *mut u8, size: usize) -> bool {
    // SAFETY: the caller gives up the range (see the function's contract).
    unsafe { libc::munmap(addr.cast(), size) == 0 }
}

/// Resizes the mapping at `addr`, possibly moving it; `None` when it cannot.
///
/// # Safety
/// `[addr, addr + old_size)` must be a whole mapping the allocator owns.
pub unsafe fn remap(addr: *mut u8, old_size: usize, new_size: usize) -> Option<*mut u8> {
    // SAFETY: the caller owns the whole mapping; MREMAP_MAYMOVE lets the
    // kernel pick a new place and copy the page tables, never the data.
    let p = unsafe { libc::mremap(addr.cast(), old_size, new_size, libc::MREMAP_MAYMOVE) };
    if p == libc::MAP_FAILED {
        None
    } else {
        Some(p.cast())
    }
}

/// Writes all of `bytes` to file descriptor `fd`, retrying on short writes.
/// Through `syscall` rather than libc's `write`, which is a cancellation
/// point: no function of the malloc family may be one.
pub fn write_all(fd: i32, mut bytes: &[u8]) {
    while !bytes.is_empty() {
        // SAFETY: the slice is valid for reads of its length.
        let n = unsafe { libc::syscall(libc::SYS_write, fd, bytes.as_ptr(), bytes.len()) };
        if n <= 0 {
            if n < 0 && errno() == libc::EINTR {
                continue;
            }
            return;
        }
        bytes = bytes.get(n as usize..).unwrap_or_default();
    }
}

/// Keeps the calling thread from being cancelled while it lives: the
/// reports write to a `FILE`, and libio's writes are cancellation points,
/// which no function of the malloc family may be (glibc's `malloc_stats`
/// likewise prints everything with a cancellation pending).
pub struct NoCancel(i32);

unsafe extern "C" {
    fn pthread_setcancelstate(state: i32, old: *mut i32) -> i32;
}
const PTHREAD_CANCEL_DISABLE: i32 = 1;

impl NoCancel {
    pub fn new() -> Self {
        let mut old = 0;
        // SAFETY: a valid out-pointer; changes only this thread's state.
        unsafe { pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &mut old) };
        NoCancel(old)
    }
}

impl Drop for NoCancel {
    fn drop(&mut self) {
        // SAFETY: restores the state `new` saved; a pending request stays
        // pending for the caller's next cancellation point.
        unsafe { pthread_setcancelstate(self.0, core::ptr::null_mut()) };
    }
}

/// Ends the process with SIGABRT, as glibc does after a corruption report.
pub fn abort() -> ! {
    // SAFETY: abort never returns and does not allocate.
    unsafe { libc::abort() }
}

/// The calling thread's errno.
pub fn errno() -> i32 {
    // SAFETY: __errno_location always returns the thread's valid errno slot.
    unsafe { *libc::__errno_location() }
}

/// Sets the calling thread's errno.
pub fn set_errno(value: i32) {
    // SAFETY: as in `errno`.
    unsafe { *libc::__errno_location() = value }
}

unsafe extern "C" {
    /// glibc (2.32+) keeps this true while the process has never had a second
    /// thread; it is cleared before `pthread_create` starts one.
    static __libc_single_threaded: u8;
}

/// True while the process has only ever had one thread, so arena locks can
/// be skipped (as glibc's own malloc does).
#[inline]
pub fn single_threaded() -> bool {
    // SAFETY: a byte that libc writes only from the single thread that
    // exists while it is true; reading a stale `false` only costs a lock.
    unsafe { core::ptr::read_volatile(&raw const __libc_single_threaded) != 0 }
}

fn timespec(ns: u64) -> libc::timespec {
    libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    }
}

/// Sleeps while `*word == expected` (FUTEX_WAIT_PRIVATE), for at most `ns`
/// nanoseconds (`None`: no limit); spurious wake-ups are the caller's to
/// handle.
pub fn futex_wait(word: &AtomicU32, expected: u32, ns: Option<u64>) {
    let limit = ns.map(timespec);
    let limit_ptr = match &limit {
        Some(t) => t as *const libc::timespec,
        None => core::ptr::null(),
    };
    // SAFETY: the futex word is a live, aligned u32 for the whole call; the
    // timeout, if any, lives on this stack frame across the call.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAIT | libc::FUTEX_PRIVATE_FLAG,
            expected,
            limit_ptr,
        );
    }
}

/// Wakes one thread sleeping on `word`.
pub fn futex_wake_one(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            1,
        );
    }
}

/// Sleeps `ns` nanoseconds, through the system call: libc's `nanosleep` is
/// a cancellation point.
pub fn sleep_ns(ns: u64) {
    let t = timespec(ns);
    // SAFETY: a valid timespec and no remainder to write.
    unsafe {
        libc::syscall(
            libc::SYS_nanosleep,
            &t,
            core::ptr::null_mut::<libc::timespec>(),
        )
    };
}

/// Wakes every thread sleeping on `word`.
pub fn futex_wake_all(word: &AtomicU32) {
    // SAFETY: as in `futex_wait`.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            word.as_ptr(),
            libc::FUTEX_WAKE | libc::FUTEX_PRIVATE_FLAG,
            i32::MAX,
        );
    }
}

/// Keeps the caller's errno across system calls that may clobber it
/// (munmap, sbrk on the free path: `free` must preserve errno).
pub struct KeepErrno(i32);

impl KeepErrno {
    #[inline]
    pub fn new() -> Self {
        KeepErrno(errno())
    }
}

impl Drop for KeepErrno {
    #[inline]
    fn drop(&mut self) {
        set_errno(self.0);
    }
}

/// Changes the protection of `[addr, addr + size)`.
///
/// # Safety
/// The range must be part of a mapping the allocator owns, and nothing may
/// live in it if access is being removed.
pub unsafe fn protect(addr: *mut u8, size: usize, prot: i32) -> bool {
    // SAFETY: forwarded from the caller.
    unsafe { libc::mprotect(addr.cast(), size, prot) == 0 }
}

/// Gives the pages of `[addr, addr + size)` back to the kernel; they read
/// as zero afterwards.
///
/// # Safety
/// The range must be owned by the allocator and hold nothing live.
pub unsafe fn discard(addr: *mut u8, size: usize) {
    // SAFETY: forwarded from the caller.
    unsafe { libc::madvise(addr.cast(), size, libc::MADV_DONTNEED) };
}

/// How many bytes of the pages of `[start, end)` (page-aligned) are in
/// memory, by `mincore(2)` into a stack vector, 512 pages a call; a piece
/// that is not mapped counts as not resident. A page that maps the
/// kernel's shared zero page (read, never written) counts as resident,
/// though smaps' Rss leaves it out. For the heap dump.
pub fn resident_bytes(start: usize, end: usize) -> usize {
    let page = page_size();
    let mut vec = [0u8; 512];
    let (mut at, mut total) = (start, 0);
    while at < end {
        let pages = ((end - at) / page).min(vec.len());
        if pages == 0 {
            break;
        }
        // SAFETY: mincore only reads the page tables of the range and
        // writes one byte per page into `vec`, which holds `pages` bytes.
        let r = unsafe { libc::mincore(at as *mut libc::c_void, pages * page, vec.as_mut_ptr()) };
        if r == 0 {
            let present = vec.iter().take(pages).filter(|&&b| b & 1 != 0).count();
            total += present * page;
        }
        at += pages * page;
    }
    total
}

/// Whether the kernel keeps strict overcommit accounting
/// (`/proc/sys/vm/overcommit_memory` is 2), read once: then memory given
/// back must also stop counting against the commit limit, so a heap's tail
/// is mapped afresh without access; otherwise `MADV_DONTNEED` is enough
/// (glibc's `check_may_shrink_heap`). Read with raw system calls into a
/// stack buffer: no allocation, no cancellation point.
pub fn overcommit_strict() -> bool {
    use core::sync::atomic::{AtomicU8, Ordering::Relaxed};
    // 0: not read yet; 1: not strict; 2: strict.
    static STATE: AtomicU8 = AtomicU8::new(0);
    match STATE.load(Relaxed) {
        1 => return false,
        2 => return true,
        _ => {}
    }
    let _errno = KeepErrno::new();
    let path = b"/proc/sys/vm/overcommit_memory\0";
    // SAFETY: a NUL-terminated path; the descriptor is closed below.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat,
            libc::AT_FDCWD,
            path.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    };
    let mut strict = false;
    if fd >= 0 {
        let mut c = [0u8; 1];
        // SAFETY: reads at most one byte into `c`.
        let n = unsafe { libc::syscall(libc::SYS_read, fd, c.as_mut_ptr(), 1) };
        strict = n == 1 && c[0] == b'2';
        // SAFETY: our own descriptor.
        unsafe { libc::syscall(libc::SYS_close, fd) };
    }
    STATE.store(if strict { 2 } else { 1 }, Relaxed);
    strict
}

/// Maps `[addr, addr + size)` afresh, without access, over what was there
/// (MAP_FIXED): its pages stop counting against the commit limit.
///
/// # Safety
/// The range must be owned by the allocator and hold nothing live.
pub unsafe fn remap_inaccessible(addr: *mut u8, size: usize) -> bool {
    // SAFETY: forwarded from the caller: the range is ours to replace.
    let p = unsafe {
        libc::mmap(
            addr.cast(),
            size,
            libc::PROT_NONE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_FIXED | libc::MAP_NORESERVE,
            -1,
            0,
        )
    };
    p != libc::MAP_FAILED
}

/// Number of online CPUs, as glibc counts them for the arena limit
/// (`get_nprocs` reads sysfs into a stack buffer: no allocation); 2 when
/// it cannot tell.
pub fn cpus_online() -> usize {
    unsafe extern "C" {
        fn get_nprocs() -> i32;
    }
    // SAFETY: no arguments; returns a count.
    let n = unsafe { get_nprocs() };
    if n >= 1 { n as usize } else { 2 }
}

/// The calling thread's kernel id.
pub fn gettid() -> u32 {
    // SAFETY: gettid has no arguments and cannot fail.
    unsafe { libc::syscall(libc::SYS_gettid) as u32 }
}

/// Copies `dst.len()` bytes from address `src` of this process, through the
/// kernel (`process_vm_readv`), so that an address that is not mapped any
/// more gives `false` instead of a fault. For the heap dump, which reads
/// other threads' caches while they run.
pub fn read_checked(src: usize, dst: &mut [u8]) -> bool {
    let local = libc::iovec {
        iov_base: dst.as_mut_ptr().cast(),
        iov_len: dst.len(),
    };
    let remote = libc::iovec {
        iov_base: src as *mut libc::c_void,
        iov_len: dst.len(),
    };
    // SAFETY: one local iovec over `dst`, which we own; the kernel checks
    // the remote range and fails instead of faulting.
    let n = unsafe { libc::process_vm_readv(libc::getpid(), &local, 1, &remote, 1, 0) };
    n == dst.len() as isize
}

/// Reads one word with `read_checked`.
pub fn read_word_checked(src: usize) -> Option<usize> {
    let mut b = [0u8; 8];
    read_checked(src, &mut b).then(|| usize::from_ne_bytes(b))
}

/// A word of random bytes from the kernel (getrandom, without blocking), or
/// `None` if it has none to give yet.
pub fn random_word() -> Option<usize> {
    let mut k: usize = 0;
    // SAFETY: getrandom writes at most 8 bytes into `k`.
    let got = unsafe {
        libc::syscall(
            libc::SYS_getrandom,
            &raw mut k,
            core::mem::size_of::<usize>(),
            libc::GRND_NONBLOCK,
        )
    };
    (got == core::mem::size_of::<usize>() as libc::c_long).then_some(k)
}

/// Nanoseconds of the monotonic clock (its low bits, for mixing).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out-pointer.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(ts.tv_nsec as u64)
}

/// The process id.
pub fn getpid() -> i32 {
    // SAFETY: getpid never fails.
    unsafe { libc::getpid() }
}

/// Runs `handler` on signal `sig` (SA_RESTART: interrupted calls go on).
pub fn on_signal(sig: i32, handler: extern "C" fn(i32)) {
    // SAFETY: a zeroed sigaction with a plain handler is valid.
    unsafe {
        let mut sa: libc::sigaction = core::mem::zeroed();
        sa.sa_sigaction = handler as *const () as usize;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigaction(sig, &sa, core::ptr::null_mut());
    }
}
