//! The recording (`PTMALLOC_RS_RECORD=FILE`): every call of the malloc
//! family and what it did to the heap, as fixed-size binary records in a
//! file (docs/record-format.md), for `scripts/heap-timeline`.
//!
//! This module is the writer only: it knows records, buffers and the file,
//! not what the records mean. The layers above say what happened: `report`
//! opens and closes each call (`begin_call`, `end_call`), the arena code
//! notes how a request was served and which chunks changed state, and a
//! trace line (`trace::trace`) becomes a system-call record.
//!
//! Each thread fills a buffer of its own (mapped on its first record, found
//! through a table keyed by the kernel thread id) and appends it to the
//! file in one `write` when it is full, when the thread exits, before
//! `fork`, at exit and before an abort. Nothing here allocates: buffers
//! and the table are anonymous mappings, the file is opened with `open(2)`.
//! Unset, the layers above pay one relaxed load per call (`watching`).

use super::lock::Lock;
use super::sys;
use core::cell::UnsafeCell;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use core::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU8, AtomicU32, AtomicU64};

/// Bits of `WATCH`: what runs around every call of the malloc family.
pub const WATCH_CHECK: u8 = 1;
pub const WATCH_RECORD: u8 = 2;
/// Whether anything watches the calls: the heap checker
/// (PTMALLOC_RS_CHECK_HEAP) and/or the recording. Zero: nothing does.
pub static WATCH: AtomicU8 = AtomicU8::new(0);

/// Record types (docs/record-format.md).
pub const CALL: u8 = 1;
pub const CHUNK: u8 = 2;
pub const HEAP: u8 = 3;
pub const SYSCALL: u8 = 4;

/// The call kind of a thread's exit (its tcache going back to the arenas).
pub const THREAD_EXIT: u8 = 13;

/// `how` values: what served an allocation.
pub mod how {
    pub const TCACHE: u16 = 1;
    pub const FASTBIN: u16 = 2;
    pub const SMALLBIN: u16 = 3;
    pub const UNSORTED_EXACT: u16 = 4;
    pub const LAST_REMAINDER: u16 = 5;
    pub const LARGE_BEST_FIT: u16 = 6;
    pub const BINMAP: u16 = 7;
    pub const TOP: u16 = 8;
    pub const MMAP: u16 = 9;
    pub const MREMAP: u16 = 10;
    pub const IN_PLACE: u16 = 11;
    pub const COPIED: u16 = 12;
    pub const LARGE_CACHE: u16 = 13;
    pub const MMAP_CACHE: u16 = 14;
}

/// Bits of a call record's `a5`: what the call did.
pub mod did {
    pub const FREED_TCACHE: u64 = 1 << 0;
    pub const FREED_FASTBIN: u64 = 1 << 1;
    pub const FREED_UNSORTED: u64 = 1 << 2;
    pub const MERGED_PREV: u64 = 1 << 3;
    pub const MERGED_NEXT: u64 = 1 << 4;
    pub const INTO_TOP: u64 = 1 << 5;
    pub const TRIMMED: u64 = 1 << 6;
    pub const UNMAPPED: u64 = 1 << 7;
    pub const HANDED_OVER: u64 = 1 << 8;
    pub const CONSOLIDATED: u64 = 1 << 9;
    pub const SORTED: u64 = 1 << 10;
    pub const GREW: u64 = 1 << 11;
    pub const STASHED: u64 = 1 << 12;
    pub const LARGE_CACHE: u64 = 1 << 13;
    pub const FAILED: u64 = 1 << 14;
}

/// Chunk states of a chunk record's `kind`.
/// (8, an mmap'd chunk, is the state of a chunk a call returns: its call
/// record says so, no chunk record is sent.)
pub mod state {
    /// In use by the allocator itself (a thread's tcache), or handed out.
    pub const INUSE: u8 = 1;
    pub const TCACHE: u8 = 2;
    pub const FAST: u8 = 3;
    pub const UNSORTED: u8 = 4;
    pub const SMALL: u8 = 5;
    pub const LARGE: u8 = 6;
    pub const TOP: u8 = 7;
    pub const GONE: u8 = 9;
    pub const LARGE_CACHE: u8 = 10;
}

pub const HEADER_BYTES: usize = 256;
pub const RECORD_BYTES: usize = 64;
const MAGIC: &[u8; 8] = b"PTMRREC1";
const VERSION: u32 = 1;

/// One record, as it goes into the file.
#[repr(C)]
#[derive(Clone, Copy)]
pub struct Record {
    pub seq: u64,
    pub tid: u32,
    pub kind_type: u8,
    pub kind: u8,
    pub how: u16,
    pub a: [u64; 6],
}

const _: () = assert!(size_of::<Record>() == RECORD_BYTES);

/// What the header says besides the constants: filled in by the layers
/// above (`set_header`) before the first record is written.
#[derive(Clone, Copy)]
pub struct HeaderInfo {
    pub main_arena: u64,
    pub heap_max: u64,
    pub profile: u32,
    pub tcache_count: u32,
    pub minsize: u64,
    pub sbrk_base: u64,
}

/// A static the first recording thread fills and every later one reads.
struct Shared<T>(UnsafeCell<T>);
// SAFETY: each use below says who writes it and when: the pattern once at
// start-up and in a fork's child (one thread), the header under FILE_LOCK.
unsafe impl<T> Sync for Shared<T> {}

/// FILE's pattern as given (`%p` expanded when the file is opened).
static PATTERN: Shared<[u8; 512]> = Shared(UnsafeCell::new([0; 512]));
static PATTERN_LEN: AtomicU32 = AtomicU32::new(0);
static FD: AtomicI32 = AtomicI32::new(-1);
/// Guards the file: the header and each buffer go out whole, in turn.
static FILE_LOCK: Lock = Lock::new();
static HEADER: Shared<HeaderInfo> = Shared(UnsafeCell::new(HeaderInfo {
    main_arena: 0,
    heap_max: 0,
    profile: 0,
    tcache_count: 0,
    minsize: 0,
    sbrk_base: 0,
}));
static HEADER_SET: AtomicBool = AtomicBool::new(false);
static HEADER_WRITTEN: AtomicBool = AtomicBool::new(false);
/// The last sequence number given out: every record has its own, in the
/// order they were written (a chunk record under its arena's lock), so
/// records of different threads replay in the order things happened.
static SEQ: AtomicU64 = AtomicU64::new(0);

/// Records a thread's buffer holds before it goes to the file.
const BUF_RECORDS: usize = 1023;

/// A slot's `buf` once its thread has exited: records that come after the
/// thread's exit (other destructors' frees) go straight to the file rather
/// than into a buffer that nobody would unmap.
const EXITED: *mut Buf = core::ptr::dangling_mut();

/// A thread's buffer, with the call it is inside.
#[repr(C)]
struct Buf {
    len: usize,
    /// The calls being recorded (more than one: a signal handler's call
    /// inside another), how the innermost was served and what it did.
    depth: u64,
    how: u16,
    did: u64,
    /// Where the call's records start in `records` (0 after a flush).
    start: usize,
    /// The top this thread last recorded (address and size), to send a top
    /// record only when it changed.
    top: (u64, u64),
    records: [Record; BUF_RECORDS],
}

const BUF_BYTES: usize = size_of::<Buf>();

/// One slot of the table: a thread id and its buffer. Slots are claimed
/// for good (a reused thread id finds its old slot); a thread's exit
/// flushes and unmaps its buffer.
#[repr(C)]
struct Slot {
    tid: AtomicU32,
    /// The tid of the thread writing into or flushing the buffer, 0 when
    /// none.
    busy: AtomicU32,
    buf: AtomicPtr<Buf>,
}

const SLOTS: usize = 16384;
static TABLE: AtomicPtr<Slot> = AtomicPtr::new(core::ptr::null_mut());

/// Whether recording is on: `WATCH_RECORD` of `WATCH`, in a flag of its
/// own, which the arena code tests (one compare with memory) before each
/// note.
static RECORDING: AtomicBool = AtomicBool::new(false);

#[inline(always)]
pub fn on() -> bool {
    RECORDING.load(Relaxed)
}

fn set_recording(yes: bool) {
    RECORDING.store(yes, Relaxed);
    if yes {
        WATCH.fetch_or(WATCH_RECORD, Relaxed);
    } else {
        WATCH.fetch_and(!WATCH_RECORD, Relaxed);
    }
}

/// Starts recording into the file named by `pattern` (`%p`: the process
/// id). Called once, while the environment is read; an empty name is as
/// if unset; a name too long or a file that cannot be opened is said once
/// on stderr and nothing is recorded.
pub fn start(pattern: &[u8]) {
    // SAFETY: start-up, before any record: no other reader or writer.
    let buf = unsafe { &mut *PATTERN.0.get() };
    if pattern.is_empty() {
        return; // as if unset
    }
    if pattern.len() >= buf.len() {
        super::text::warn(format_args!(
            "PTMALLOC_RS_RECORD: a file name of at most {} bytes is needed; not recording",
            buf.len() - 1
        ));
        return;
    }
    if let Some(dst) = buf.get_mut(..pattern.len()) {
        dst.copy_from_slice(pattern);
    }
    PATTERN_LEN.store(pattern.len() as u32, Relaxed);
    if open_file() {
        set_recording(true);
    }
}

/// Opens the file the pattern names for this process (truncating it).
fn open_file() -> bool {
    let mut path = [0u8; 600];
    let n = expand_pattern(&mut path);
    if n == 0 {
        return false;
    }
    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND | libc::O_CLOEXEC;
    // SAFETY: `path` is NUL-terminated (expand_pattern leaves room).
    let fd = unsafe { libc::open(path.as_ptr().cast(), flags, 0o644) };
    if fd < 0 {
        let name = core::str::from_utf8(path.get(..n).unwrap_or_default()).unwrap_or("?");
        super::text::warn(format_args!(
            "PTMALLOC_RS_RECORD: cannot open {name} (errno {}); not recording",
            sys::errno()
        ));
        return false;
    }
    FD.store(fd, Relaxed);
    HEADER_WRITTEN.store(false, Relaxed);
    true
}

/// Writes the pattern with `%p` replaced by the process id into `out`,
/// NUL-terminated; returns its length (0 if it does not fit).
fn expand_pattern(out: &mut [u8]) -> usize {
    let mut digits = [0u8; 12];
    let pid = decimal(sys::getpid() as u64, &mut digits);
    let mut n = 0;
    let mut rest = pattern();
    while let Some((&c, tail)) = rest.split_first() {
        let piece: &[u8] = if c == b'%' && tail.first() == Some(&b'p') {
            rest = tail.get(1..).unwrap_or_default();
            pid
        } else {
            rest = tail;
            core::slice::from_ref(&c)
        };
        let Some(dst) = out.get_mut(n..n + piece.len()) else {
            return 0;
        };
        dst.copy_from_slice(piece);
        n += piece.len();
    }
    match out.get_mut(n) {
        Some(end) => *end = 0,
        None => return 0,
    }
    n
}

/// The pattern as given.
fn pattern() -> &'static [u8] {
    // SAFETY: written once at start-up, before recording is on; only read
    // afterwards.
    let pat = unsafe { &*PATTERN.0.get() };
    pat.get(..PATTERN_LEN.load(Relaxed) as usize)
        .unwrap_or_default()
}

fn decimal(mut v: u64, out: &mut [u8; 12]) -> &[u8] {
    let mut i = out.len();
    for slot in out.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        i -= 1;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    out.get(i..).unwrap_or_default()
}

/// Whether the pattern names a file per process (`%p`).
fn per_process() -> bool {
    pattern().windows(2).any(|w| w == b"%p")
}

/// Whether the header still needs its facts (`set_header`).
#[inline]
pub fn header_missing() -> bool {
    !HEADER_SET.load(Acquire)
}

/// The facts of the header, from the layers that know them.
pub fn set_header(info: HeaderInfo) {
    FILE_LOCK.lock();
    if !HEADER_SET.load(Relaxed) {
        // SAFETY: FILE_LOCK is held; readers take it too.
        unsafe { *HEADER.0.get() = info };
        HEADER_SET.store(true, Release);
    }
    FILE_LOCK.unlock();
}

/// The header's bytes. Called with FILE_LOCK held.
fn header_bytes() -> [u8; HEADER_BYTES] {
    // SAFETY: FILE_LOCK is held.
    let h = unsafe { *HEADER.0.get() };
    let mut b = [0u8; HEADER_BYTES];
    b[0..8].copy_from_slice(MAGIC);
    b[8..12].copy_from_slice(&VERSION.to_le_bytes());
    b[12..16].copy_from_slice(&(RECORD_BYTES as u32).to_le_bytes());
    b[16..20].copy_from_slice(&(sys::getpid() as u32).to_le_bytes());
    b[20..24].copy_from_slice(&(sys::page_size() as u32).to_le_bytes());
    b[24..32].copy_from_slice(&h.main_arena.to_le_bytes());
    b[32..40].copy_from_slice(&h.heap_max.to_le_bytes());
    b[40..44].copy_from_slice(&h.profile.to_le_bytes());
    b[44..48].copy_from_slice(&h.tcache_count.to_le_bytes());
    b[48..56].copy_from_slice(&h.minsize.to_le_bytes());
    b[56..64].copy_from_slice(&h.sbrk_base.to_le_bytes());
    let commit = option_env!("PTMALLOC_RS_COMMIT").unwrap_or("");
    let mut text = super::text::Line::<64>::new();
    let _ = core::fmt::Write::write_fmt(
        &mut text,
        format_args!("ptmalloc-rs {} {commit}", env!("CARGO_PKG_VERSION")),
    );
    let build = text.bytes();
    let n = build.len().min(63);
    b[64..64 + n].copy_from_slice(&build[..n]);
    b
}

/// Appends `bytes` (whole records) to the file, after the header if it has
/// not gone out yet.
/// (Empty `bytes`: the header alone, if it has not gone out yet.)
fn write_out(bytes: &[u8]) {
    let fd = FD.load(Relaxed);
    if fd < 0 || (bytes.is_empty() && HEADER_WRITTEN.load(Relaxed)) {
        return;
    }
    if FILE_LOCK.holder() == Some(super::thread::tid()) {
        return; // a signal handler's record while this thread writes: lost
    }
    let _errno = sys::KeepErrno::new();
    FILE_LOCK.lock();
    if !HEADER_WRITTEN.swap(true, Relaxed) {
        sys::write_all(fd, &header_bytes());
    }
    sys::write_all(fd, bytes);
    FILE_LOCK.unlock();
}

/// Where the recording's own mappings go: far below where the kernel puts
/// mappings of its own choosing (top-down from just under the stack) and
/// above where the program and its brk heap lie, so that recording moves
/// no thread heap, mmap'd chunk or library: a recorded run has the
/// addresses of an unrecorded one. The table comes first, then a fixed
/// place per slot's buffer.
const ASIDE: usize = 0x1000_0000_0000;
const ASIDE_BUFS: usize = ASIDE + (1 << 24);

/// A read-write mapping of `size` bytes at `at`, or, if that range is
/// taken, wherever the kernel puts it.
fn map_aside(at: usize, size: usize) -> Option<*mut u8> {
    let rw = libc::PROT_READ | libc::PROT_WRITE;
    if let Some(p) = sys::map_anonymous_near(at, size, rw, libc::MAP_FIXED_NOREPLACE) {
        return Some(p);
    }
    sys::map_rw(size)
}

/// The table, mapped on first use.
fn table() -> Option<&'static [Slot]> {
    let mut t = TABLE.load(Acquire);
    if t.is_null() {
        let fresh = map_aside(ASIDE, SLOTS * size_of::<Slot>())?.cast::<Slot>();
        t = match TABLE.compare_exchange(core::ptr::null_mut(), fresh, Release, Acquire) {
            Ok(_) => fresh,
            Err(other) => {
                // SAFETY: the mapping just made, unused.
                unsafe { sys::unmap(fresh.cast(), SLOTS * size_of::<Slot>()) };
                other
            }
        };
    }
    // SAFETY: SLOTS zeroed slots (all-zero is a free slot), never unmapped
    // while recording is on.
    Some(unsafe { core::slice::from_raw_parts(t, SLOTS) })
}

/// The calling thread's slot and its index, claimed on first use; None
/// when the table is full or cannot be mapped.
fn my_slot(tid: u32) -> Option<(&'static Slot, usize)> {
    let table = table()?;
    let start = (tid as usize).wrapping_mul(0x9E37_79B9) % SLOTS;
    for k in 0..SLOTS {
        let i = (start + k) % SLOTS;
        let s = table.get(i)?;
        let t = s.tid.load(Acquire);
        if t == tid {
            return Some((s, i));
        }
        if t == 0 && s.tid.compare_exchange(0, tid, AcqRel, Acquire).is_ok() {
            return Some((s, i));
        }
        if s.tid.load(Acquire) == tid {
            return Some((s, i));
        }
    }
    None
}

/// Runs `f` on the calling thread's buffer, if it has or can get one and is
/// not inside `with_buf` already (a signal handler that interrupted it):
/// then `f` gets None and the record goes straight to the file.
fn with_buf<R>(f: impl FnOnce(Option<&mut Buf>) -> R) -> R {
    let tid = super::thread::tid();
    let Some((slot, index)) = my_slot(tid) else {
        return f(None);
    };
    if slot
        .busy
        .compare_exchange(0, tid, Acquire, Relaxed)
        .is_err()
    {
        if slot.busy.load(Relaxed) == tid {
            return f(None);
        }
        // A flush from another thread (exit, fork): it is short.
        while slot
            .busy
            .compare_exchange(0, tid, Acquire, Relaxed)
            .is_err()
        {
            core::hint::spin_loop();
        }
    }
    let mut b = slot.buf.load(Relaxed);
    if b == EXITED {
        slot.busy.store(0, Release);
        return f(None);
    }
    if b.is_null() {
        let at = ASIDE_BUFS + index * BUF_BYTES.next_multiple_of(1 << 16);
        b = map_aside(at, BUF_BYTES).map_or(core::ptr::null_mut(), |p| p.cast::<Buf>());
        slot.buf.store(b, Relaxed);
    }
    // SAFETY: `busy` is ours: no one else touches the buffer; a fresh
    // mapping is zeroed, which is an empty buffer.
    let r = f(unsafe { b.as_mut() });
    slot.busy.store(0, Release);
    r
}

/// Writes out the records of `b` and empties it.
fn flush_buf(b: &mut Buf) {
    let n = b.len;
    b.len = 0;
    b.start = 0;
    let recs = b.records.get(..n).unwrap_or_default();
    // SAFETY: `Record` is plain data of RECORD_BYTES bytes.
    let bytes =
        unsafe { core::slice::from_raw_parts(recs.as_ptr().cast::<u8>(), n * RECORD_BYTES) };
    write_out(bytes);
}

/// Appends one record (type, kind, how, a) of the call in progress.
fn push(kind_type: u8, kind: u8, how: u16, a: [u64; 6]) {
    with_buf(|b| push_into(b, kind_type, kind, how, a));
}

/// `push` into buffer `b` (None: straight to the file).
fn push_into(b: Option<&mut Buf>, kind_type: u8, kind: u8, how: u16, a: [u64; 6]) {
    let r = Record {
        seq: SEQ.fetch_add(1, Relaxed) + 1,
        tid: super::thread::tid(),
        kind_type,
        kind,
        how,
        a,
    };
    match b {
        Some(b) => {
            if let Some(slot) = b.records.get_mut(b.len) {
                *slot = r;
                b.len += 1;
            }
            if b.len >= BUF_RECORDS {
                flush_buf(b);
            }
        }
        None => {
            // SAFETY: plain data.
            let bytes =
                unsafe { core::slice::from_raw_parts((&raw const r).cast::<u8>(), RECORD_BYTES) };
            write_out(bytes);
        }
    }
}

/// What a call in progress carried before a nested one began (a signal
/// handler's malloc): restored by `end_call`.
#[derive(Clone, Copy)]
pub struct Outer {
    depth: u64,
    how: u16,
    did: u64,
}

/// Opens a call.
pub fn begin_call() -> Outer {
    with_buf(|b| match b {
        Some(b) => {
            let outer = Outer {
                depth: b.depth,
                how: b.how,
                did: b.did,
            };
            b.depth += 1;
            b.how = 0;
            b.did = 0;
            b.start = b.len;
            outer
        }
        None => Outer {
            depth: 0,
            how: 0,
            did: 0,
        },
    })
}

/// Closes the call `begin_call` opened: its record, and the outer call's
/// state back. `finish` gets how the call was served and what it did, as
/// noted below, and returns the record's `how` and `a2`..`a5` (result,
/// chunk size, arena, what it did). What the chunk records of the call
/// show is added to what it did: where a freed chunk (`freed`, its header
/// and size; 0 if none) went, whether it merged with its neighbours,
/// whether chunks were sorted or stashed.
pub fn end_call(
    kind: u8,
    args: [u64; 2],
    freed: (u64, u64),
    outer: Outer,
    finish: impl FnOnce(u16, u64) -> (u16, [u64; 4]),
) {
    with_buf(|b| match b {
        Some(b) => {
            let (how, mut rest) = finish(b.how, b.did);
            let records = b.records.get(b.start..b.len).unwrap_or_default();
            rest[3] |= shown_by(records, freed);
            let a = [args[0], args[1], rest[0], rest[1], rest[2], rest[3]];
            b.depth = outer.depth;
            b.how = outer.how;
            b.did = outer.did;
            push_into(Some(b), CALL, kind, how, a);
        }
        None => {
            let (how, rest) = finish(0, 0);
            let a = [args[0], args[1], rest[0], rest[1], rest[2], rest[3]];
            push_into(None, CALL, kind, how, a);
        }
    });
}

/// What a call's chunk records show it did (`did` bits), for a freed chunk
/// at `at` of `size` bytes (0, 0: none).
fn shown_by(records: &[Record], (at, size): (u64, u64)) -> u64 {
    let mut bits = 0;
    for r in records.iter().filter(|r| r.kind_type == CHUNK) {
        let (lo, hi) = (r.a[0], r.a[0] + r.a[1]);
        let holds_freed = at != 0 && lo <= at && at < hi;
        bits |= match r.kind {
            state::SMALL | state::LARGE => did::SORTED,
            state::TCACHE if lo == at => did::FREED_TCACHE,
            state::TCACHE => did::STASHED,
            state::FAST if lo == at => did::FREED_FASTBIN,
            state::UNSORTED | state::TOP if holds_freed => {
                let into = if r.kind == state::TOP {
                    did::INTO_TOP
                } else {
                    did::FREED_UNSORTED
                };
                let prev = if lo < at { did::MERGED_PREV } else { 0 };
                let next = if r.kind == state::UNSORTED && hi > at + size {
                    did::MERGED_NEXT
                } else {
                    0
                };
                into | prev | next
            }
            _ => 0,
        };
    }
    bits
}

/// Notes what served the allocation in progress (the last note wins).
#[inline(always)]
pub fn served(how: u16) {
    if on() {
        note(how, 0);
    }
}

/// Notes something the call in progress did.
#[inline(always)]
pub fn did(bits: u64) {
    if on() {
        note(0, bits);
    }
}

#[cold]
#[inline(never)]
fn note(how: u16, bits: u64) {
    with_buf(|b| {
        if let Some(b) = b {
            if how != 0 {
                b.how = how;
            }
            b.did |= bits;
        }
    });
}

/// A chunk at `addr` of `size` bytes is now in `state` (arena `arena`).
#[inline(always)]
pub fn chunk(state: u8, addr: usize, size: usize, arena: usize) {
    if on() {
        push_cold(CHUNK, state, addr, size, arena);
    }
}

/// A heap from `lo` to `hi` (read-write end) of arena `arena` (kind 1), or
/// the heap at `lo` gone (kind 2).
#[inline(always)]
pub fn heap(kind: u8, lo: usize, hi: usize, arena: usize) {
    if on() {
        push_cold(HEAP, kind, lo, hi, arena);
    }
}

#[cold]
#[inline(never)]
fn push_cold(kind_type: u8, kind: u8, a0: usize, a1: usize, a2: usize) {
    push(
        kind_type,
        kind,
        0,
        [a0 as u64, a1 as u64, a2 as u64, 0, 0, 0],
    );
}

/// The top of an arena as its lock goes, during a call: a top record
/// unless it is the one this thread recorded last; whether it was new.
/// (Outside a call, a report reading the arenas, nothing is recorded.)
pub fn top(addr: usize, size: usize, arena: usize) -> bool {
    let changed = with_buf(|b| match b {
        Some(b) if b.depth == 0 || b.top == (addr as u64, size as u64) => false,
        Some(b) => {
            b.top = (addr as u64, size as u64);
            true
        }
        None => false,
    });
    if changed {
        push(
            CHUNK,
            state::TOP,
            0,
            [addr as u64, size as u64, arena as u64, 0, 0, 0],
        );
    }
    changed
}

/// A trace line (a system call and its reason) as records of 48 bytes of
/// text each.
pub fn text(line: &[u8]) {
    let pieces = line.len().div_ceil(48).max(1);
    for (i, piece) in line
        .chunks(48)
        .chain(core::iter::once(&[][..]))
        .take(pieces)
        .enumerate()
    {
        let mut words = [0u64; 6];
        for (j, &c) in piece.iter().enumerate() {
            words[j / 8] |= u64::from(c) << (8 * (j % 8));
        }
        let last = u8::from(i + 1 == pieces);
        push(SYSCALL, last, i as u16, words);
    }
}

/// Writes out the calling thread's records (before an abort).
pub fn flush_self() {
    if on() {
        with_buf(|b| {
            if let Some(b) = b {
                flush_buf(b);
            }
        });
    }
}

/// The calling thread exits: its records go out and its buffer goes.
pub fn thread_exit() {
    if !on() {
        return;
    }
    let tid = super::thread::tid();
    let Some((slot, _)) = my_slot(tid) else {
        return;
    };
    with_buf(|b| {
        if let Some(b) = b {
            flush_buf(b);
        }
    });
    if slot.busy.compare_exchange(0, tid, Acquire, Relaxed).is_ok() {
        let b = slot.buf.swap(EXITED, Relaxed);
        if !b.is_null() && b != EXITED {
            // SAFETY: the buffer is ours (`busy`) and empty; no one else
            // holds a reference.
            unsafe { sys::unmap(b.cast(), BUF_BYTES) };
        }
        slot.busy.store(0, Release);
    }
}

/// A thread starts (it joins the registry of threads with a tcache): if
/// its id is one an exited thread had, its records are buffered again.
pub fn thread_start() {
    if !on() {
        return;
    }
    if let Some((slot, _)) = my_slot(super::thread::tid()) {
        let _ = slot
            .buf
            .compare_exchange(EXITED, core::ptr::null_mut(), Relaxed, Relaxed);
    }
}

/// Writes out every thread's records (at exit, before fork).
pub fn flush_all() {
    if !on() {
        return;
    }
    let Some(table) = table() else { return };
    let me = super::thread::tid();
    for s in table {
        let b = s.buf.load(Relaxed);
        if s.tid.load(Acquire) == 0 || b.is_null() || b == EXITED {
            continue;
        }
        if s.busy.load(Relaxed) == me {
            continue; // interrupted inside with_buf: leave it be
        }
        while s.busy.compare_exchange(0, me, Acquire, Relaxed).is_err() {
            core::hint::spin_loop();
        }
        let b = s.buf.load(Relaxed);
        if b != EXITED {
            // SAFETY: `busy` is ours; `b` is null or a live buffer (only its
            // own thread's exit swaps it, under `busy`).
            if let Some(b) = unsafe { b.as_mut() } {
                flush_buf(b);
            }
        }
        s.busy.store(0, Release);
    }
}

/// In the child of `fork`: with `%p` in the pattern the child records into
/// a file of its own (the parent's threads' buffers, flushed before the
/// fork, are dropped); without it the child records nothing.
pub fn after_fork_child() {
    if !on() {
        return;
    }
    FILE_LOCK.reset();
    let old = FD.swap(-1, Relaxed);
    if old >= 0 {
        // SAFETY: the child's copy of the descriptor; the parent keeps its own.
        unsafe { libc::close(old) };
    }
    if let Some(table) = table() {
        for s in table {
            let b = s.buf.swap(core::ptr::null_mut(), Relaxed);
            if !b.is_null() && b != EXITED {
                // SAFETY: the child has one thread; no buffer is in use.
                unsafe { sys::unmap(b.cast(), BUF_BYTES) };
            }
            s.busy.store(0, Relaxed);
            s.tid.store(0, Relaxed);
        }
    }
    if !per_process() || !open_file() {
        set_recording(false);
    }
}

/// Flushes every buffer at exit (an `atexit` handler).
extern "C" fn at_exit() {
    flush_all();
    // A process that made no call of its own still leaves a recording.
    write_out(&[]);
}

/// From the library's constructor: the flush at exit.
pub fn install_exit_flush() {
    if on() {
        // SAFETY: a handler that never unwinds.
        unsafe { libc::atexit(at_exit) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_are_64_bytes_and_numbers_print_in_decimal() {
        assert_eq!(size_of::<Record>(), 64);
        let mut out = [0u8; 12];
        assert_eq!(decimal(0, &mut out), b"0");
        assert_eq!(decimal(40213, &mut out), b"40213");
    }
}
