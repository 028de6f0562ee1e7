//! What watches the calls of the malloc family: the heap checker
//! (`PTMALLOC_RS_CHECK_HEAP=1`, `verify`) after each call, and the recording
//! (`PTMALLOC_RS_RECORD=FILE`, `os::record`) around it.
//!
//! Every exported call runs through `call`, which costs one relaxed load
//! when nothing watches (the same load the heap checker always cost), also
//! on the tcache's path. When something does, `watched` opens the call's
//! record, runs it, and closes the record with the arguments, the result,
//! the chunk's size and arena, and how the call was served: what the
//! arena code noted on the way (`os::record::served`, `did`), and for the
//! tcache's own paths, which note nothing, what the cache shows before and
//! after (the chunk a malloc will get is its bin's first entry; a chunk
//! freed into the cache is its bin's first entry afterwards). (The arena's
//! top is recorded as its lock goes, by the arena code.)

use super::verify;
use crate::arena::heap::{HEAP_MAX_SIZE, heap_for_ptr, in_our_heap};
use crate::arena::state::main_arena;
use crate::arena::tcache::TcBin;
use crate::chunk::{
    Chunk, IS_MMAPPED, MINSIZE, NON_MAIN_ARENA, SIZE_BITS, SIZE_SZ, checked_request2size,
};
use crate::config::profile;
use crate::config::tunables::MP;
use crate::os::record::{self, HeaderInfo, WATCH, WATCH_CHECK, WATCH_RECORD, did, how};
use crate::os::sys;
use crate::thread::tls;
use core::sync::atomic::Ordering::Relaxed;

/// The calls a recording names (record kinds, docs/record-format.md).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Call {
    Malloc = 1,
    Free = 2,
    Calloc = 3,
    Realloc = 4,
    Memalign = 5,
    AlignedAlloc = 6,
    PosixMemalign = 7,
    Valloc = 8,
    Pvalloc = 9,
    Mallopt = 10,
    MallocTrim = 11,
}

impl Call {
    fn name(self) -> &'static str {
        match self {
            Call::Malloc => "malloc",
            Call::Free => "free",
            Call::Calloc => "calloc",
            Call::Realloc => "realloc",
            Call::Memalign => "memalign",
            Call::AlignedAlloc => "aligned_alloc",
            Call::PosixMemalign => "posix_memalign",
            Call::Valloc => "valloc",
            Call::Pvalloc => "pvalloc",
            Call::Mallopt => "mallopt",
            Call::MallocTrim => "malloc_trim",
        }
    }
}

/// A call's result as the word a record keeps.
pub trait Outcome {
    fn word(&self) -> usize;
}

impl<T> Outcome for *mut T {
    fn word(&self) -> usize {
        *self as usize
    }
}

impl Outcome for i32 {
    fn word(&self) -> usize {
        *self as isize as usize
    }
}

impl Outcome for () {
    fn word(&self) -> usize {
        0
    }
}

/// posix_memalign: the pointer stored, and the return code.
impl<T> Outcome for (*mut T, i32) {
    fn word(&self) -> usize {
        self.0 as usize
    }
}

/// Runs exported call `call(a0, a1)` as `body`, watched if anything
/// watches.
#[inline(always)]
pub fn call<R: Outcome>(call: Call, a0: usize, a1: usize, body: impl FnOnce() -> R) -> R {
    if WATCH.load(Relaxed) == 0 {
        return body();
    }
    watched(call, a0, a1, body)
}

#[cold]
#[inline(never)]
fn watched<R: Outcome>(call: Call, a0: usize, a1: usize, body: impl FnOnce() -> R) -> R {
    let watch = WATCH.load(Relaxed);
    let r = if watch & WATCH_RECORD != 0 {
        recorded(call, a0, a1, body)
    } else {
        body()
    };
    if watch & WATCH_CHECK != 0 {
        verify::after(call.name());
    }
    r
}

/// The size word of the chunk of user pointer `mem`, read so that a bad
/// pointer cannot fault (the call itself will say what is wrong with it):
/// directly when it lies in the brk heap or a thread heap of ours, else
/// through the kernel.
fn head_of(mem: usize) -> Option<usize> {
    if mem == 0 {
        return None;
    }
    let hdr = Chunk::from_mem(mem as *mut u8).addr();
    let brk_lo = MP.sbrk_base.load(Relaxed);
    let in_brk_heap = brk_lo != 0
        && hdr >= brk_lo
        && sys::sbrk_by(0).is_some_and(|end| mem.saturating_add(8) <= end as usize);
    if mem.is_multiple_of(16) && (in_brk_heap || in_our_heap(hdr, 16)) {
        return Some(read_head(mem));
    }
    let _errno = sys::KeepErrno::new();
    sys::read_word_checked(hdr + SIZE_SZ)
}

/// The size word of the chunk of user pointer `mem`, which the call just
/// returned (so it is ours and readable).
fn read_head(mem: usize) -> usize {
    // SAFETY: `mem` came back from an allocation just now (or lies in a
    // heap of ours, `head_of`): its header is mapped.
    unsafe { Chunk::from_mem(mem as *mut u8).head() }
}

/// The arena of a heap chunk with size word `head` at user pointer `mem`;
/// 0 for an mmap'd chunk or one whose heap header cannot be read.
fn arena_of(mem: usize, head: usize) -> usize {
    if head & IS_MMAPPED != 0 {
        0
    } else if head & NON_MAIN_ARENA == 0 {
        main_arena() as usize
    } else {
        let _errno = sys::KeepErrno::new();
        sys::read_word_checked(heap_for_ptr(mem) as usize).unwrap_or(0)
    }
}

/// The first entry of the calling thread's tcache bin for chunk size `nb`.
fn tcache_first(nb: usize) -> usize {
    // SAFETY: the thread's own state and cache.
    unsafe {
        let tc = (*tls::thread_state()).tcache;
        match TcBin::of_size(nb) {
            Some(b) if !tc.is_null() && (*tc).count(b) > 0 => (*tc).first(b) as usize,
            _ => 0,
        }
    }
}

fn recorded<R: Outcome>(call: Call, a0: usize, a1: usize, body: impl FnOnce() -> R) -> R {
    if record::header_missing() {
        record::set_header(HeaderInfo {
            main_arena: main_arena() as u64,
            heap_max: HEAP_MAX_SIZE as u64,
            // The format's numbers are the profile's own (glibc 0, ...).
            profile: profile::current() as u32,
            tcache_count: MP.tcache_count.load(Relaxed) as u32,
            minsize: MINSIZE as u64,
            sbrk_base: MP.sbrk_base.load(Relaxed) as u64,
        });
    }
    // What the tcache shows before the call.
    let (freed_head, tcache_next) = match call {
        Call::Free => (head_of(a0), 0),
        Call::Realloc if a0 == 0 => (None, checked_request2size(a1).map_or(0, tcache_first)),
        Call::Realloc => (head_of(a0), 0),
        Call::Malloc => (None, checked_request2size(a0).map_or(0, tcache_first)),
        _ => (None, 0),
    };
    let outer = record::begin_call();
    let _errno = sys::KeepErrno::new();
    let r = body();
    let errno = sys::errno();
    drop(_errno);
    let result = r.word();
    let frees = call == Call::Free || (call == Call::Realloc && a1 == 0 && a0 != 0);
    // The chunk the call freed or returned: its size word, size and arena.
    let (h, at) = match call {
        _ if frees => (freed_head, a0),
        Call::Mallopt | Call::MallocTrim => (None, 0),
        _ if result == 0 => (None, 0),
        _ => (Some(read_head(result)), result),
    };
    let head = h.unwrap_or(0);
    let (size, arena) = match h {
        Some(h) => (h & !SIZE_BITS, arena_of(at, h)),
        None => (0, 0),
    };
    let into_tcache = frees && h.is_some() && head & IS_MMAPPED == 0 && tcache_first(size) == a0;
    let failed = !frees && !matches!(call, Call::Mallopt | Call::MallocTrim) && result == 0;
    let freed = match (call, freed_head) {
        (Call::Free | Call::Realloc, Some(h)) if h & IS_MMAPPED == 0 => (
            Chunk::from_mem(a0 as *mut u8).addr() as u64,
            (h & !SIZE_BITS) as u64,
        ),
        _ => (0, 0),
    };
    record::end_call(
        call as u8,
        [a0 as u64, a1 as u64],
        freed,
        outer,
        |noted, mut done| {
            let mut served = noted;
            if frees {
                if done == 0 && into_tcache {
                    done |= did::FREED_TCACHE;
                }
            } else if failed {
                done |= did::FAILED | ((errno as u32 as u64) << 32);
            } else if at != 0 {
                if call == Call::Realloc && a0 != 0 {
                    if served != how::MREMAP {
                        served = if result == a0 {
                            how::IN_PLACE
                        } else {
                            how::COPIED
                        };
                    }
                } else if head & IS_MMAPPED != 0 {
                    if served != how::MMAP_CACHE {
                        served = how::MMAP;
                    }
                } else if result == tcache_next && served == 0 {
                    served = how::TCACHE;
                }
            }
            (served, [result as u64, size as u64, arena as u64, done])
        },
    );
    r
}
