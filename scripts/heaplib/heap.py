"""The heap of a ptmalloc-rs process, read from its memory (read_heap) and
written out as the library's own dumps would write it: format_dump gives
malloc_rs_dump's text, chunk_lines malloc_rs_dump_chunks' (src/report/inspect.rs
makes those inside the process; what is a fact about the heap is written
the same way here, line for line).

Everything starts from the library's `malloc_rs_debug` descriptor (the
addresses of the main arena, mp_, the list of threads with a tcache and the
record of mmap'd chunks) and follows the layouts of layout.txt.  The process
is stopped while this reads it (heaplib.snapshot), so each lock word tells
whether a structure is consistent: an arena whose lock a thread holds is
reported as locked by that thread and skipped, as the dump does.
"""

import struct

from .layout import L
from .proc import PAGE, Failure

_unpack_word = struct.Struct("<Q").unpack_from
PAGE_MASK = PAGE - 1

WORD = L.c["SIZE_SZ"]
HDR = L.c["CHUNK_HDR_SZ"]
ALIGN_MASK = L.c["MALLOC_ALIGNMENT"] - 1
SIZE_BITS = L.c["PREV_INUSE"] | L.c["IS_MMAPPED"] | L.c["NON_MAIN_ARENA"]
HEAP_MAX = L.c["HEAP_MAX_SIZE"]
WAITERS = L.c["LOCK_WAITERS"]
MARKED = L.c["LOCK_MARKED"]
LIST_LIMIT = L.c["DUMP_LIST_LIMIT"]
FLAG_NAMES = ["", "P", "M", "PM", "A", "PA", "MA", "PMA"]   # glibc's letters, by flag bits


def flags(head):
    return FLAG_NAMES[head & SIZE_BITS]


def reveal(slot, link):
    """A safe-linked link stored at address `slot` (PROTECT_PTR undone)."""
    return (slot >> 12) ^ link


def first_chunk_at(addr):
    """The first chunk at or after addr whose user memory is aligned."""
    return ((addr + HDR + ALIGN_MASK) & ~ALIGN_MASK) - HDR


def largebin_index(size):
    if size >> 6 <= 48:
        return 48 + (size >> 6)
    if size >> 9 <= 20:
        return 91 + (size >> 9)
    if size >> 12 <= 10:
        return 110 + (size >> 12)
    if size >> 15 <= 4:
        return 119 + (size >> 15)
    if size >> 18 <= 2:
        return 124 + (size >> 18)
    return 126


_floors = {}


def large_bin_floor(i):
    """The smallest chunk size of large bin i."""
    if i not in _floors:
        size = L.c["MIN_LARGE_SIZE"]
        while largebin_index(size) < i:
            size += 16
        _floors[i] = size
    return _floors[i]


class Unreadable(Exception):
    pass


class Reader:
    """Words of the process; an unreadable one raises Unreadable."""

    def __init__(self, mem):
        self.mem = mem

    def word(self, addr):
        w = self.mem.word(addr)
        if w is None:
            raise Unreadable("%#x" % addr)
        return w

    def block(self, addr, n):
        data = self.mem.read(addr, n)
        if data is None:
            raise Unreadable("%#x" % addr)
        return data


# --------------------------------------------------------------- descriptor

def read_descriptor(mem, pid, lib):
    """The malloc_rs_debug descriptor of the library, as a dict of its fields;
    Failure if the library has none or one this heaplib cannot read."""
    where = lib["symbols"].get("malloc_rs_debug")
    if where is None:
        raise Failure("process %d's libptmalloc_rs.so is too old (no malloc_rs_debug descriptor): "
                      "heap-inspect reads the heap through it; rebuild the library "
                      "(cargo build --release) and restart the program" % pid, 1)
    head = mem.read(where, 24)
    if head is None:
        raise Failure("cannot read process %d's memory (its malloc_rs_debug descriptor at %#x)"
                      % (pid, where), 3)
    magic = L.get(head, "DebugInfo.magic")
    version = L.get(head, "DebugInfo.version")
    lhash = L.get(head, "DebugInfo.layout_hash")
    if magic != L.c["DEBUG_MAGIC"]:
        raise Failure("process %d's libptmalloc_rs.so has a malloc_rs_debug symbol that is not a "
                      "ptmalloc-rs descriptor (magic %#x)" % (pid, magic), 1)
    if version != L.version or lhash != L.hash:
        raise Failure("process %d's libptmalloc_rs.so is too old or too new for this heap-inspect "
                      "(its malloc_rs_debug descriptor: version %d, layout %#x; heap-inspect reads "
                      "version %d, layout %#x): use the scripts of the source tree it was built from"
                      % (pid, version, lhash, L.version, L.hash), 1)
    data = mem.read(where, L.sizeof["DebugInfo"])
    if data is None or L.get(data, "DebugInfo.size") != L.sizeof["DebugInfo"]:
        raise Failure("cannot read process %d's malloc_rs_debug descriptor at %#x" % (pid, where), 3)
    names = ("main_arena", "mp", "thread_list_head", "thread_list_lock", "mmapped_registry", "profile")
    return dict((n, L.get(data, "DebugInfo." + n)) for n in names)


# ------------------------------------------------------------------ reading

class Thread:
    __slots__ = ("addr", "tcache", "arena", "tid")


class Arena:
    """One arena as read: the header fields; unless locked, its bins in list
    order ([(kind, index, chunk, size word)]), its census (the totals'
    input) and, when asked for, its chunks."""

    def __init__(self, num, addr, main):
        self.num, self.addr, self.main = num, addr, main
        self.holder = None          # the lock word's thread id, if held
        self.error = None           # what could not be read
        self.flags = self.top = self.top_size = self.last_remainder = 0
        self.system = self.max_system = self.attached = 0
        self.heaps = []             # thread arena: (start, size, read-write size, prev), newest first
        self.bins = []
        self.fast_bytes = self.bin_bytes = 0
        self.chunks = None          # [("heap", start, end) | ("chunk", heap, addr, size word, state)]


# The profile byte (src/config/profile.rs).
PROFILES = {0: "glibc", 1: "hardened", 2: "fast"}


class HeapState:
    """Everything the dumps print, read at one moment."""

    def __init__(self):
        self.profile = None         # ptmalloc-rs's profile; None for glibc's own malloc
        self.large_caches = {}      # the fast profile's: tcache -> (bytes, chunks)
        self.arenas = []
        self.threads = []           # the list of threads with a tcache, newest first
        self.threads_busy = False   # its lock was held
        self.tcaches = {}           # tcache address -> [(index, count, [chunk or None for "?"])] or None
        self.mp = {}
        self.mmapped = []           # (mapping start, length, chunk, size word)
        self.mmapped_busy = False


def read_heap(mem, desc, chunks=False, light=False):
    """Reads the heap through the descriptor.  light: only what the maps
    annotation needs (arena headers and heaps, the mmap'd chunks), for a
    process that is not stopped."""
    r = Reader(mem)
    st = HeapState()
    mp = desc["mp"]
    for name in ("n_mmaps", "max_n_mmaps", "no_dyn_threshold"):
        st.mp[name] = mem.i32(mp + L.off["Params." + name]) or 0
    for name in ("mmapped_mem", "max_mmapped_mem", "sbrk_base", "trim_threshold", "top_pad",
                 "mmap_threshold", "arena_max"):
        st.mp[name] = mem.word(mp + L.off["Params." + name]) or 0
    if desc.get("profile"):
        byte = mem.read(desc["profile"], 1)
        st.profile = PROFILES.get(byte[0], "unknown") if byte else "unknown"

    read_threads(r, desc, st)
    main = desc["main_arena"]
    a, seen = main, set()
    while len(st.arenas) < 100000:
        seen.add(a)
        ar = Arena(len(st.arenas), a, a == main)
        st.arenas.append(ar)
        try:
            nxt = read_arena(r, ar, st, light)
        except Unreadable as e:
            ar.error = "memory at %s cannot be read" % e
            break
        a = main if nxt == 0 else nxt
        if a in seen:
            break
    if not light:
        for t in st.threads:
            if t.tcache and t.tcache not in st.tcaches:
                st.tcaches[t.tcache] = read_tcache(mem, t.tcache)
                if st.profile == "fast":
                    st.large_caches[t.tcache] = read_large_cache(mem, t.tcache)
        if chunks:
            cached = set(c for bins in st.tcaches.values() if bins for _, _, cs in bins for c in cs if c)
            for ar in st.arenas:
                if ar.holder is None and ar.error is None:
                    try:
                        read_chunks(r, ar, st, cached)
                    except Unreadable as e:
                        ar.chunks.append(("unreadable", str(e)))
    read_mmapped(mem, desc, st)
    return st


def lock_holder(word):
    if word == MARKED:
        return MARKED
    tid = word & ~WAITERS & 0xFFFFFFFF
    return tid or None


def read_threads(r, desc, st):
    mem = r.mem
    if not desc["thread_list_head"]:
        return  # glibc's malloc: its caches are in its own TLS, not listed
    lock = mem.u32(desc["thread_list_lock"])
    st.threads_busy = lock is None or lock != 0
    t = mem.word(desc["thread_list_head"]) or 0
    seen = set()
    while t and t not in seen and len(st.threads) < L.c["THREAD_LIST_LIMIT"]:
        seen.add(t)
        data = mem.read(t, L.sizeof["ThreadState"])
        if data is None:
            break
        th = Thread()
        th.addr = t
        th.tcache = L.get(data, "ThreadState.tcache")
        th.arena = L.get(data, "ThreadState.arena")
        th.tid = L.get(data, "ThreadState.tid")
        st.threads.append(th)
        t = L.get(data, "ThreadState.next")


def read_arena(r, ar, st, light):
    """Reads arena `ar`; returns its `next`."""
    data = r.block(ar.addr, L.sizeof["Arena"])
    ar.holder = lock_holder(L.get(data, "Arena.mutex"))
    ar.flags = L.get(data, "Arena.flags")
    ar.top = L.get(data, "Arena.top")
    ar.last_remainder = L.get(data, "Arena.last_remainder")
    ar.system = L.get(data, "Arena.system_mem")
    ar.max_system = L.get(data, "Arena.max_system_mem")
    ar.attached = L.get(data, "Arena.attached_threads")
    nxt = L.get(data, "Arena.next")
    # Top and the heaps are read even when the arena is locked: the maps
    # annotation wants them, and a read cannot go wrong.
    top_head = r.mem.word(ar.top + WORD) if ar.top else None
    ar.top_size = (top_head or 0) & ~SIZE_BITS
    if not ar.main and ar.top:
        h = ar.top & ~(HEAP_MAX - 1)
        while h and len(ar.heaps) < 100000:
            hi = r.mem.read(h, L.sizeof["HeapInfo"])
            if hi is None:
                break
            prev = L.get(hi, "HeapInfo.prev")
            ar.heaps.append((h, L.get(hi, "HeapInfo.size"), L.get(hi, "HeapInfo.mprotect_size"), prev))
            h = prev
    if ar.holder is not None or light:
        return nxt
    if top_head is None:
        raise Unreadable("%#x (top)" % (ar.top + WORD))
    walk_bins(r, ar, data)
    return nxt


def walk_bins(r, ar, data):
    """Every chunk of every fastbin and bin, in list order (a list stops at a
    misaligned link or after DUMP_LIST_LIMIT chunks, as the dump's), and the
    census of the totals (fastbins: count times the first chunk's size;
    bins: every chunk's size, however long the list)."""
    for idx in range(L.c["NFASTBINS"]):
        p = L.item(data, "Arena.fastbins", idx, L.c["FASTBIN_SIZE"])
        n, first = 0, None
        while p and not p & ALIGN_MASK and n < 100 * LIST_LIMIT:
            head = r.mem.word(p + WORD)
            link = r.mem.word(p + HDR)
            if head is None or link is None:
                break
            if first is None:
                first = head & ~SIZE_BITS
            if n < LIST_LIMIT:
                ar.bins.append(("fast", idx, p, head))
            p = reveal(p + HDR, link)
            n += 1
        if first is not None:
            ar.fast_bytes += n * first
    bins = ar.addr + L.off["Arena.bins"]
    for i in range(1, L.c["NBINS"]):
        bin_chunk = bins + (i - 1) * L.c["BIN_SIZE"] - HDR   # the bin as a fake chunk: fd, bk
        kind = "unsorted" if i == 1 else "small" if i < L.c["NSMALLBINS"] else "large"
        p = L.item(data, "Arena.bins", 2 * (i - 1), WORD)      # bins[2i-2]: fd
        n, listed = 0, True
        while p != bin_chunk and n < 100 * LIST_LIMIT:
            head = r.mem.word(p + WORD)
            fd = r.mem.word(p + HDR)
            if head is None or fd is None:
                break
            listed = listed and not p & ALIGN_MASK and n < LIST_LIMIT
            if listed:
                ar.bins.append((kind, i, p, head))
            ar.bin_bytes += head & ~SIZE_BITS
            p = fd
            n += 1


def read_large_cache(mem, tc):
    """The totals of the fast profile's large cache after tcache `tc`:
    (bytes, chunks), or None if it cannot be read."""
    data = mem.read(tc + L.sizeof["Tcache"], L.sizeof["LargeCache"])
    if data is None:
        return None
    return L.get(data, "LargeCache.bytes"), L.get(data, "LargeCache.chunks")


def read_tcache(mem, tc):
    """A tcache's non-empty bins: [(index, count, [chunk, ..., None for a
    link that cannot be followed])], or None if it cannot be read."""
    data = mem.read(tc, L.sizeof["Tcache"])
    if data is None:
        return None
    cw = L.c["TCACHE_COUNT_SIZE"]
    bins = []
    for idx in range(L.c["TCACHE_MAX_BINS"]):
        count = L.item(data, "Tcache.counts", idx, cw)
        if count == 0:
            continue
        e = L.item(data, "Tcache.entries", idx, WORD)
        chunks = []
        for _ in range(min(count, L.c["TCACHE_WALK_LIMIT"])):
            if e == 0 or e & ALIGN_MASK:
                chunks.append(None)
                break
            chunks.append(e - HDR)
            link = mem.word(e + L.off["Entry.next"])
            if link is None:
                chunks.append(None)
                break
            e = reveal(e, link)
        bins.append((idx, count, chunks))
    return bins


class Window:
    """Words of one heap read a MiB at a time (a walk over many chunks reads
    each header word once, from a window, not through the page cache)."""

    SIZE = 1 << 20

    def __init__(self, r, end):
        self.r, self.end = r, end
        self.base, self.data = 0, b""

    def word(self, addr):
        off = addr - self.base
        if 0 <= off <= len(self.data) - WORD:
            return _unpack_word(self.data, off)[0]
        base = addr & ~(PAGE_MASK)
        self.base, self.data = base, self.r.mem.span(base, max(min(self.SIZE, self.end - base), WORD))
        off = addr - base
        if off <= len(self.data) - WORD:
            return _unpack_word(self.data, off)[0]
        return self.r.word(addr)    # not readable: Unreadable


def read_chunks(r, ar, st, cached):
    """Every chunk of the arena's heaps in address order, oldest heap first,
    with its state (malloc_rs_dump_chunks' walk)."""
    ar.chunks = out = []
    fast = set(c for kind, _, c, _ in ar.bins if kind == "fast")
    unsorted = set(c for kind, _, c, _ in ar.bins if kind == "unsorted")
    top, top_end = ar.top, ar.top + ar.top_size
    small_limit = L.c["MIN_LARGE_SIZE"]
    prev_inuse = L.c["PREV_INUSE"]

    def walk(heap, start, end):
        word = Window(r, end).word
        p = start
        head = word(p + WORD) if p + HDR <= end else 0
        while p + HDR <= end:
            size = head & ~SIZE_BITS
            if p == top:
                out.append(("chunk", heap, p, head, "top"))
                return
            if size < HDR or p + size > end:
                return              # a fencepost at the end, or corruption
            nxt = p + size
            if nxt + HDR <= end:
                next_head = word(nxt + WORD)
                free = not next_head & prev_inuse
            else:
                next_head, free = 0, False
            if free:
                state = "unsorted" if p in unsorted else "small" if size < small_limit else "large"
            else:
                state = "fast" if p in fast else "tcache" if p in cached else "inuse"
            out.append(("chunk", heap, p, head, state))
            p, head = nxt, next_head

    if ar.main:
        base = st.mp["sbrk_base"]
        if ar.flags & L.c["NONCONTIGUOUS_BIT"] or not base or top < base:
            return
        first = first_chunk_at(base)
        out.append(("heap", first, top_end))
        walk(first, first, top_end)
        return
    top_heap = top & ~(HEAP_MAX - 1)
    for h, size, _, prev in reversed(ar.heaps):
        first = first_chunk_at(ar.addr + L.sizeof["Arena"]) if not prev else h + L.sizeof["HeapInfo"]
        end = top_end if h == top_heap else h + size
        out.append(("heap", h, end))
        walk(h, first, end)


def read_mmapped(mem, desc, st):
    """The record of mmap'd chunks: each mapping and the chunk at its start
    (after any gap that memalign left, held in its prev_size)."""
    reg = desc["mmapped_registry"]
    if not reg:
        return  # glibc's malloc records no mapping
    lock = mem.u32(reg + L.off["Shared.lock"])
    st.mmapped_busy = lock is None or lock != 0
    table = reg + L.off["Shared.table"]
    slots, cap = mem.word(table + L.off["Table.slots"]), mem.word(table + L.off["Table.cap"])
    if not slots or not cap or cap > 1 << 26:
        return
    slot = L.sizeof["Slot"]
    data = mem.read(slots, cap * slot)
    if data is None:
        return
    for i in range(cap):
        start = L.get(data, "Slot.start", i * slot)
        if start in (L.c["MMAPPED_EMPTY"], L.c["MMAPPED_GONE"]):
            continue
        length = L.get(data, "Slot.len", i * slot)
        gap = mem.word(start) or 0
        head = mem.word(start + gap + WORD) or 0
        st.mmapped.append((start, length, start + gap, head))


# ----------------------------------------------------------------- writing

def lock_text(ar, only_thread):
    """Why an arena is skipped: who holds its lock."""
    if ar.holder == MARKED:
        who = "thread %d, the only one" % only_thread if only_thread else "the only thread"
        return "in use by %s (stopped inside the allocator), skipped" % who
    return "locked by thread %d, skipped" % ar.holder


def bin_name(kind, idx, size):
    if kind == "fast":
        return "fastbin %d (chunk size %d)" % (idx, size)
    if kind == "unsorted":
        return "unsorted bin"
    if kind == "small":
        return "small bin %d (chunk size %d)" % (idx, size)
    return "large bin %d (from %d)" % (idx, size)


def format_dump(st, header, only_thread=None):
    """malloc_rs_dump's text (header: its first line)."""
    M = (1 << 64) - 1
    out = [header]
    if st.profile is not None:
        out.append("profile: %s" % st.profile)
    tot_arena = tot_used = tot_free = tot_fast = 0
    for ar in st.arenas:
        if ar.error:
            out.append("arena %d at %#x: %s, skipped" % (ar.num, ar.addr, ar.error))
            continue
        if ar.holder is not None:
            out.append("arena %d at %#x: %s" % (ar.num, ar.addr, lock_text(ar, only_thread)))
            continue
        out.append("arena %d%s at %#x: system %d bytes (max %d), %d thread(s) attached" % (
            ar.num, " (main arena)" if ar.main else "", ar.addr, ar.system, ar.max_system, ar.attached))
        tids = "".join(" %d" % t.tid for t in st.threads if t.arena == ar.addr)
        out.append("  threads with a tcache here:" + (
            " (thread list busy)" if st.threads_busy else tids or " none"))
        if ar.main:
            base = st.mp["sbrk_base"]
            if not ar.flags & L.c["NONCONTIGUOUS_BIT"] and base:
                out.append("  heap [heap] %#x-%#x (brk)" % (base, (ar.top + ar.top_size) & M))
            elif base:
                out.append("  heap [heap] from %#x, plus mmap'd regions (non-contiguous)" % base)
        for h, (start, size, rw, _) in enumerate(ar.heaps):
            out.append("  heap %d %#x-%#x: size %#x, read-write %#x, reserved %#x" % (
                h, start, (start + size) & M, size, rw, HEAP_MAX))
        out.append("  top %#x, size %#x" % (ar.top, ar.top_size))
        out.append("  last remainder %#x" % ar.last_remainder if ar.last_remainder
                   else "  last remainder: none")
        current, line, count, total = None, None, 0, 0
        for kind, idx, c, head in ar.bins:
            size = head & ~SIZE_BITS
            if current != (kind, idx):
                if line is not None:
                    out.append(line)
                label = large_bin_floor(idx) if kind == "large" else size
                line = "  " + bin_name(kind, idx, label) + ":"
                current = (kind, idx)
            line += " %#x (%d %s)" % (c, size, flags(head))
            count += 1
            total += size
        if line is not None:
            out.append(line)
        out.append("  free: %d chunk(s), %d bytes in bins, %d in top" % (count, total & M, ar.top_size))
        avail = ar.fast_bytes + ar.top_size + ar.bin_bytes
        tot_arena += ar.system
        tot_free += avail
        tot_used += ar.system - avail
        tot_fast += ar.fast_bytes

    if st.threads_busy:
        out.append("tcaches: the thread list is busy, not shown")
    else:
        for t in st.threads:
            if not t.tcache:
                continue
            out.append("tcache of thread %d at %#x:" % (t.tid, t.tcache))
            bins = st.tcaches.get(t.tcache)
            if bins is None:
                out.append("  (unreadable)")
                continue
            for idx, count, chunks in bins:
                out.append("  bin %d (chunk size %d): %d chunk(s):" % (
                    idx, idx * L.c["MALLOC_ALIGNMENT"] + L.c["MINSIZE"], count)
                    + "".join(" ?" if c is None else " %#x" % c for c in chunks))
            if st.profile == "fast":
                lc = st.large_caches.get(t.tcache)
                out.append("  large cache: (unreadable)" if lc is None else
                           "  large cache: %d chunk(s), %d bytes (in use to its arenas)" % (lc[1], lc[0]))
    out.append("mmap'd chunks: %d (%d bytes); at most %d (%d bytes) so far" % (
        st.mp["n_mmaps"], st.mp["mmapped_mem"], st.mp["max_n_mmaps"], st.mp["max_mmapped_mem"]))
    if st.mmapped_busy:
        out.append("  (the list of mmap'd chunks is busy: not shown)")
    else:
        for start, length, chunk, head in st.mmapped:
            out.append("  mmap'd chunk %#x (%d %s), mapping %#x-%#x" % (
                chunk & M, head & ~SIZE_BITS, flags(head), start, (start + length) & M))
    out.append("totals (arenas shown): %d bytes from the system, %d in use, %d free (%d in fastbins)" % (
        tot_arena & M, tot_used & M, tot_free & M, tot_fast & M))
    return "\n".join(out) + "\n"


def chunk_lines(st, only_thread=None):
    """malloc_rs_dump_chunks' lines: `heap ARENA 0xSTART 0xEND` and `chunk
    ARENA 0xHEAP 0xADDR SIZE FLAGS STATE`; a skipped arena is a `#` line."""
    out = []
    if st.threads_busy:
        out.append("# the list of threads is busy: chunks in a tcache show as inuse")
    for ar in st.arenas:
        if ar.error:
            out.append("# arena %d: %s, skipped" % (ar.num, ar.error))
            continue
        if ar.holder is not None:
            out.append("# arena %d %s" % (ar.num, lock_text(ar, only_thread)))
            continue
        if ar.main and ar.flags & L.c["NONCONTIGUOUS_BIT"]:
            out.append("# arena 0 is non-contiguous (brk could not grow): its chunks are not listed")
        for ev in ar.chunks or []:
            if ev[0] == "heap":
                out.append("heap %d %#x %#x" % (ar.num, ev[1], ev[2]))
            elif ev[0] == "chunk":
                _, heap, addr, head, state = ev
                out.append("chunk %d %#x %#x %d %s %s" % (
                    ar.num, heap, addr, head & ~SIZE_BITS, flags(head) or "-", state))
            else:
                out.append("# arena %d: the walk stopped, memory at %s cannot be read" % (ar.num, ev[1]))
    return out
