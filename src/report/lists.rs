//! What the dump and its "where is my memory" section both read: every
//! thread's tcache, walked through the kernel (`sys::read_checked`) since
//! other threads change their caches under the dump without any lock; a
//! fixed set of chunk addresses, to tell cached and fastbin chunks from
//! chunks in use during a heap walk, without allocating; who holds an arena
//! that the dump skips; and the floors of the large bins.

use core::fmt::Write;

use crate::chunk::Chunk;
use crate::chunk::bins::largebin_index;
use crate::chunk::safelink::protect;
use crate::os::sys;
use crate::thread::tls;

/// Says who holds the lock of arena `a` that the dump could not take.
pub(super) fn locked_by(out: &mut impl Write, a: *mut crate::arena::state::Arena) {
    // SAFETY: arenas live for the whole process; the mutex is atomic.
    match unsafe { crate::arena::state::mutex(a) }.holder() {
        Some(tid) if tid == crate::os::lock::MARKED => {
            let _ = writeln!(
                out,
                "in use by this thread, the one dumping (interrupted inside the allocator), skipped"
            );
        }
        Some(tid) if tid == crate::os::thread::tid() => {
            let _ = writeln!(
                out,
                "locked by thread {tid}, the one dumping (interrupted inside the allocator), skipped"
            );
        }
        Some(tid) => {
            let _ = writeln!(out, "locked by thread {tid}, skipped");
        }
        None => {
            let _ = writeln!(out, "busy (its lock changed hands throughout), skipped");
        }
    }
}

/// What `walk_tcache` reports, in order: for each non-empty bin, `Bin`,
/// then its chunks, then `BinEnd` (after `Broken` if the chain broke).
pub(super) enum TcEvent {
    Bin { idx: usize, count: usize },
    Chunk(usize),
    Broken,
    BinEnd,
}

/// Most entries the dump follows in one tcache bin.
pub(crate) const TCACHE_WALK_LIMIT: usize = 1000;

/// Walks the tcache at `tc`, reading everything with `read_checked` (a
/// chain whose entry was taken meanwhile ends in `Broken`). False if the
/// cache itself cannot be read.
pub(super) fn walk_tcache(tc: usize, mut f: impl FnMut(TcEvent)) -> bool {
    use crate::arena::tcache::Tcache;
    use crate::chunk::bins::TCACHE_MAX_BINS;
    let mut raw = [0u8; size_of::<Tcache>()];
    if !sys::read_checked(tc, &mut raw) {
        return false;
    }
    let counts_at = core::mem::offset_of!(Tcache, counts);
    let entries_at = core::mem::offset_of!(Tcache, entries);
    for idx in 0..TCACHE_MAX_BINS {
        let c = counts_at + 2 * idx;
        let count = u16::from_ne_bytes([raw[c], raw[c + 1]]) as usize;
        if count == 0 {
            continue;
        }
        f(TcEvent::Bin { idx, count });
        let w = entries_at + 8 * idx;
        let mut e = usize::from_ne_bytes(raw[w..w + 8].try_into().unwrap_or([0; 8]));
        for _ in 0..count.min(TCACHE_WALK_LIMIT) {
            if e == 0 || !crate::chunk::is_aligned(e) {
                f(TcEvent::Broken);
                break;
            }
            f(TcEvent::Chunk(Chunk::from_mem(e as *mut u8).addr()));
            match sys::read_word_checked(e) {
                Some(next) => e = protect(e, next),
                None => {
                    f(TcEvent::Broken);
                    break;
                }
            }
        }
        f(TcEvent::BinEnd);
    }
    true
}

/// Calls `f` with every chunk in every registered thread's tcache (none
/// when the thread list is busy).
pub(super) fn for_each_cached(mut f: impl FnMut(usize)) {
    tls::registry::for_each(|t| {
        // SAFETY: a registered state is alive while listed.
        let tc = unsafe { (*t).tcache };
        if !tc.is_null() {
            walk_tcache(tc as usize, |ev| {
                if let TcEvent::Chunk(c) = ev {
                    f(c);
                }
            });
        }
    });
}

/// The chunks in every registered thread's tcache, counted first (a
/// chunk cached between the count and the fill is left out).
pub(super) fn cached_chunks() -> MappedSet {
    let mut count = 0;
    for_each_cached(|_| count += 1);
    let mut set = MappedSet::new(count);
    for_each_cached(|c| set.add(c));
    set.seal();
    set
}

/// The smallest chunk size of large bin `i`.
pub(super) fn large_bin_floor(i: usize) -> usize {
    let mut size = 1024;
    while largebin_index(size) < i {
        size += 16;
    }
    size
}

/// A sorted set of chunk addresses in a private mapping of its own, sized
/// for `cap` entries counted beforehand: "where is my memory" must tell
/// every fastbin and cached chunk from the chunks in use, and a program can
/// have hundreds of thousands. A mapping, not malloc: the dump allocates
/// nothing from the heaps it reads. Unmapped when dropped; a mapping that
/// cannot be made gives an empty set (`mapped` false).
pub(super) struct MappedSet {
    addrs: *mut usize,
    bytes: usize,
    cap: usize,
    len: usize,
    /// The entries asked for, and whether there is room for them.
    pub(super) asked: usize,
    pub(super) mapped: bool,
}

impl MappedSet {
    pub(super) fn new(cap: usize) -> Self {
        let page = sys::page_size();
        let bytes = cap
            .checked_mul(size_of::<usize>())
            .and_then(|b| b.checked_add(page - 1))
            .map_or(0, |b| b & !(page - 1));
        let addrs = if bytes == 0 { None } else { sys::map_rw(bytes) };
        MappedSet {
            addrs: addrs.map_or(core::ptr::null_mut(), |p| p.cast()),
            bytes,
            cap: if addrs.is_some() { cap } else { 0 },
            len: 0,
            asked: cap,
            mapped: addrs.is_some() || cap == 0,
        }
    }

    fn slice(&self) -> &[usize] {
        if self.addrs.is_null() {
            return &[];
        }
        // SAFETY: the mapping holds `cap` words, of which the first `len`
        // (<= cap) were written by `add`; it lives until `drop`.
        unsafe { core::slice::from_raw_parts(self.addrs, self.len) }
    }

    pub(super) fn add(&mut self, a: usize) {
        if self.len < self.cap {
            // SAFETY: `len < cap`: inside the mapping.
            unsafe { self.addrs.add(self.len).write(a) };
            self.len += 1;
        }
    }

    pub(super) fn seal(&mut self) {
        if self.addrs.is_null() {
            return;
        }
        // SAFETY: as in `slice`; this is the only reference to the words.
        crate::report::sort::sort(unsafe { core::slice::from_raw_parts_mut(self.addrs, self.len) });
    }

    pub(super) fn contains(&self, a: usize) -> bool {
        self.slice().binary_search(&a).is_ok()
    }
}

impl Drop for MappedSet {
    fn drop(&mut self) {
        if !self.addrs.is_null() {
            // SAFETY: our own mapping, of `bytes` bytes; nothing uses it now.
            unsafe { sys::unmap(self.addrs.cast(), self.bytes) };
        }
    }
}
