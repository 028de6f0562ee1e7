//! Layer 7, `api`: the C ABI, the functions a program (through LD_PRELOAD)
//! calls instead of glibc's, with glibc 2.36's conventions, and nothing
//! else. Each function checks its arguments, forwards to `thread::alloc`
//! (or to `report`), and turns a failure into NULL plus errno (or an error
//! code, for posix_memalign).
//!
//! glibc behaviours kept on purpose:
//! - `malloc(0)` returns a unique minimum-size chunk;
//! - `realloc(p, 0)` frees `p` and returns NULL; `realloc(NULL, n)` is malloc;
//! - `free` keeps errno;
//! - `aligned_alloc` is memalign (2.36 checks nothing more);
//! - `pvalloc` rounds with `& -(pagesize - 1)`, as 2.36 does;
//! - requests above PTRDIFF_MAX and n×size overflows fail with ENOMEM.
//!
//! Each call of the malloc family, `mallopt` and `malloc_trim` runs inside
//! `observe::call`: with PTMALLOC_RS_CHECK_HEAP=1 it ends with a check of
//! every arena (`verify`), which aborts with a message on the first
//! inconsistency, and with PTMALLOC_RS_RECORD=FILE it is recorded; with
//! neither, that costs one relaxed load per call.
//!
//! In unit tests the names stay mangled, so the test harness keeps glibc's
//! malloc and a bug here fails a test instead of crashing the harness.

use crate::os::sys;
use crate::report::observe::{self, Call};
use crate::report::stats;
use crate::thread::alloc;
use core::ffi::c_void;
use core::ptr::{NonNull, null_mut};

#[inline]
fn to_c(r: Result<NonNull<u8>, alloc::Errno>) -> *mut c_void {
    match r {
        Ok(p) => p.as_ptr().cast(),
        Err(e) => {
            sys::set_errno(e);
            null_mut()
        }
    }
}

/// `malloc` past the tcache.
#[inline(never)]
fn malloc_uncached(n: usize) -> *mut c_void {
    to_c(alloc::malloc_uncached(n))
}

/// Generates exported C functions.
macro_rules! export {
    ($(
        $(#[$m:meta])*
        fn $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty $body:block
    )*) => {$(
        $(#[$m])*
        ///
        /// # Safety
        /// Pointer arguments must be null or come from this allocator, as in C.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $name($($arg: $ty),*) -> $ret $body
    )*};
}

/// Generates the second names glibc also exports (`__libc_malloc`, …),
/// which some programs call directly.
macro_rules! alias {
    ($($alias:ident => $name:ident ($($arg:ident: $ty:ty),*) -> $ret:ty;)*) => {$(
        #[doc = concat!("glibc's alias of `", stringify!($name), "`.")]
        ///
        /// # Safety
        /// As for the function it aliases.
        #[cfg_attr(not(test), unsafe(no_mangle))]
        pub unsafe extern "C" fn $alias($($arg: $ty),*) -> $ret {
            // SAFETY: same contract as the aliased function.
            unsafe { $name($($arg),*) }
        }
    )*};
}

export! {
    /// Sets a malloc parameter (M_MXFAST, M_TRIM_THRESHOLD, …): 1 if taken.
    fn mallopt(param: i32, value: i32) -> i32 {
        observe::call(Call::Mallopt, param as usize, value as usize, move || stats::mallopt(param, value))
    }

    /// Gives free memory back to the kernel; 1 if any was released.
    fn malloc_trim(pad: usize) -> i32 {
        observe::call(Call::MallocTrim, pad, 0, move || stats::malloc_trim(pad))
    }

    /// Allocation statistics as `size_t`s.
    fn mallinfo2() -> stats::Mallinfo2 {
        stats::mallinfo2()
    }

    /// Allocation statistics as `int`s (they wrap past 2 GiB, as in glibc).
    fn mallinfo() -> stats::Mallinfo {
        stats::mallinfo()
    }

    /// Per-arena and total figures on stderr.
    fn malloc_stats() -> () {
        stats::malloc_stats()
    }

    /// The heap dump (arenas, heaps, bins, tcache, totals) as text on `fd`.
    fn malloc_rs_dump(fd: i32) -> () {
        crate::report::inspect::dump(fd)
    }

    /// Every chunk of every arena heap, one line each, on `fd` (the input
    /// of scripts/heap-map).
    fn malloc_rs_dump_chunks(fd: i32) -> () {
        crate::report::inspect::dump_chunks(fd)
    }

    /// The allocator's state as XML on `fp`; `options` must be 0.
    fn malloc_info(options: i32, fp: *mut libc::FILE) -> i32 {
        stats::malloc_info(options, fp)
    }
}

alias! {
    __libc_mallopt => mallopt(param: i32, value: i32) -> i32;
    __libc_mallinfo => mallinfo() -> stats::Mallinfo;
    __libc_malloc => malloc(n: usize) -> *mut c_void;
    __libc_free => free(p: *mut c_void) -> ();
    __libc_calloc => calloc(n: usize, size: usize) -> *mut c_void;
    __libc_realloc => realloc(p: *mut c_void, n: usize) -> *mut c_void;
    __libc_memalign => memalign(alignment: usize, n: usize) -> *mut c_void;
    __posix_memalign => posix_memalign(out: *mut *mut c_void, alignment: usize, n: usize) -> i32;
    __libc_valloc => valloc(n: usize) -> *mut c_void;
    __libc_pvalloc => pvalloc(n: usize) -> *mut c_void;
}

export! {
    /// Allocates `n` bytes.
    fn malloc (n: usize) -> *mut c_void {
        observe::call(Call::Malloc, n, 0, move || {
            // The tcache's path returns here; the rest is one jump away.
            if let Some(p) = alloc::malloc_cached(n) {
                return p.as_ptr().cast();
            }
            malloc_uncached(n)
        })
    }

    /// Frees `p` (NULL is a no-op); errno is preserved.
    fn free (p: *mut c_void) -> () {
        // SAFETY: the caller passes NULL or a live pointer from us.
        observe::call(Call::Free, p as usize, 0, move || unsafe { alloc::free(p.cast()) })
    }

    /// Allocates `n * size` zeroed bytes.
    fn calloc (n: usize, size: usize) -> *mut c_void {
        observe::call(Call::Calloc, n, size, move || to_c(alloc::calloc(n, size)))
    }

    /// Resizes `p` to `n` bytes, keeping its contents.
    fn realloc (p: *mut c_void, n: usize) -> *mut c_void {
        observe::call(Call::Realloc, p as usize, n, move || {
            if p.is_null() {
                to_c(alloc::malloc(n))
            } else if n == 0 {
                // SAFETY: the caller passes a live pointer from us.
                unsafe { alloc::free(p.cast()) };
                null_mut()
            } else {
                // SAFETY: the caller passes a live pointer from us.
                to_c(unsafe { alloc::realloc(p.cast(), n) })
            }
        })
    }

    /// realloc of `n * size` bytes, failing with ENOMEM on overflow.
    fn reallocarray (p: *mut c_void, n: usize, size: usize) -> *mut c_void {
        match n.checked_mul(size) {
            // SAFETY: forwarded from the caller.
            Some(bytes) => unsafe { realloc(p, bytes) },
            None => to_c(Err(libc::ENOMEM)),
        }
    }

    /// `n` bytes aligned to `alignment` (rounded up to a power of two).
    fn memalign (alignment: usize, n: usize) -> *mut c_void {
        observe::call(Call::Memalign, alignment, n, move || to_c(alloc::memalign(alignment, n)))
    }

    /// The same as memalign in glibc 2.36.
    fn aligned_alloc (alignment: usize, n: usize) -> *mut c_void {
        observe::call(Call::AlignedAlloc, alignment, n, move || to_c(alloc::memalign(alignment, n)))
    }

    /// Stores in `*out` a block of `n` bytes aligned to `alignment`, a power
    /// of two multiple of `sizeof(void *)`; returns 0, EINVAL or ENOMEM.
    fn posix_memalign (out: *mut *mut c_void, alignment: usize, n: usize) -> i32 {
        let word = core::mem::size_of::<usize>();
        let (p, code) = observe::call(Call::PosixMemalign, alignment, n, move || {
            if alignment == 0 || !alignment.is_multiple_of(word) || !(alignment / word).is_power_of_two() {
                return (null_mut(), libc::EINVAL);
            }
            let p = to_c(alloc::memalign(alignment, n));
            (p, if p.is_null() { libc::ENOMEM } else { 0 })
        });
        if !p.is_null() {
            // SAFETY: the caller passes a valid `void **`.
            unsafe { *out = p };
        }
        code
    }

    /// `n` bytes aligned to the page size.
    fn valloc (n: usize) -> *mut c_void {
        observe::call(Call::Valloc, n, 0, move || to_c(alloc::memalign(sys::page_size(), n)))
    }

    /// Whole pages, page-aligned.
    fn pvalloc (n: usize) -> *mut c_void {
        let page = sys::page_size();
        observe::call(Call::Pvalloc, n, 0, move || match n.checked_add(page - 1) {
            Some(rounded) => to_c(alloc::memalign(page, rounded & (page - 1).wrapping_neg())),
            None => to_c(Err(libc::ENOMEM)),
        })
    }

    /// How many bytes of `p` the program may use (0 for NULL).
    fn malloc_usable_size (p: *mut c_void) -> usize {
        // SAFETY: the caller passes NULL or a live pointer from us.
        unsafe { alloc::usable_size(p.cast()) }
    }
}
