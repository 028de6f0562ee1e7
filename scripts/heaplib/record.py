"""A recording of PTMALLOC_RS_RECORD=FILE (docs/record-format.md), read and
replayed: for scripts/heap-timeline and the tests.

    rec = record.read("prog.rec")          # header, calls in seq order, notes
    st = record.replay(rec)                # the heaps after the last call
    print("\\n".join(st.chunk_lines()))    # as malloc_rs_dump_chunks writes them
    st = record.replay(rec, upto=120)      # ... after the call numbered 120
    st.bins(), st.tcaches()                # the free lists at that point

The file is a 256-byte header and 64-byte records.  Each thread writes its
records in order, so a thread's chunk, heap and system-call records belong to
that thread's next call record (they carry its seq); calls of different
threads interleave buffer by buffer and are put back in order by seq.  A file
cut short (a crash) is read up to its last whole record: the records a
thread wrote after its last call record are kept as an unfinished call.

The replay keeps, per heap, the chunks by address.  A chunk record replaces
every chunk it overlaps (a merge, a split, a remainder); then the call itself
makes the chunk it returned in use and, for a free into the tcache, puts the
freed chunk into the tcache of the calling thread -- those two have no chunk
record of their own.  A top record also ends its heap at top's end.  The
tcache of a thread is what that thread freed into it or had stashed for it
and has not taken back: each chunk remembers the thread of the call that
last changed it.
"""

import struct
from bisect import bisect_left, bisect_right

from .heap import largebin_index

MAGIC = b"PTMRREC1"
VERSION = 1
HEADER_SIZE = 256
RECORD_SIZE = 64
HDR = 16            # a chunk's header: the pointer a program sees is 16 bytes above
MALLOC_ALIGN = 16

_HEADER = struct.Struct("<8sIIIIQQIIQQ64s")
_RECORD = struct.Struct("<QIBBH6Q")
assert _RECORD.size == RECORD_SIZE and _HEADER.size == 128

CALL, CHUNK, HEAP, SYSCALL = 1, 2, 3, 4

CALLS = {1: "malloc", 2: "free", 3: "calloc", 4: "realloc", 5: "memalign", 6: "aligned_alloc",
         7: "posix_memalign", 8: "valloc", 9: "pvalloc", 10: "mallopt", 11: "malloc_trim",
         12: "reallocarray", 13: "thread exit"}
ALLOCATING = {1, 3, 4, 5, 6, 7, 8, 9, 12}     # calls whose a2 is a pointer they return
REALLOCS = {4, 12}

HOW = {0: "", 1: "tcache", 2: "fastbin", 3: "small bin", 4: "unsorted bin, exact fit",
       5: "the last remainder", 6: "large bin, best fit", 7: "the binmap search (next larger bin)",
       8: "top", 9: "mmap (a chunk of its own)", 10: "mremap", 11: "in place",
       12: "a new chunk, contents copied", 13: "the large cache", 14: "the mmap cache"}
# the same, as the end of "served ..."
HOW_PHRASE = {1: "from the tcache", 2: "from a fastbin", 3: "from a small bin",
              4: "from the unsorted bin (exact fit)", 5: "from the last remainder",
              6: "from a large bin (best fit)",
              7: "from the binmap search (the next larger non-empty bin)", 8: "from top",
              9: "by mmap (a chunk of its own)", 10: "by mremap (an mmap'd chunk moved)",
              11: "in place (the chunk itself, grown or shrunk)",
              12: "by a new chunk, contents copied", 13: "from the large cache (fast profile)",
              14: "from the mmap cache (fast profile)"}
MMAP_HOWS = {9, 10, 14}

BITS = ["freed into the tcache", "freed into a fastbin", "freed into the unsorted bin",
        "merged with the chunk before it", "merged with the chunk after it", "merged into top",
        "top trimmed (memory given back)", "an mmap'd chunk unmapped",
        "handed over to the arena's pending frees (its lock was held)", "fastbins consolidated",
        "unsorted chunks sorted into bins", "top grown", "chunks stashed into the tcache",
        "taken by the large cache", "the call failed"]
BIT_TCACHE, BIT_UNMAPPED, BIT_FAILED = 1 << 0, 1 << 7, 1 << 14

# chunk record kinds (the state a chunk changes to); 0 is used here for "removed"
STATE = {1: "inuse", 2: "tcache", 3: "fast", 4: "unsorted", 5: "small", 6: "large", 7: "top",
         8: "mmapped", 9: "gone", 10: "largecache"}
INUSE, TCACHE, FAST, UNSORTED, SMALL, LARGE, TOP, MMAPPED, GONE, LARGECACHE = range(1, 11)
CODE = {v: k for k, v in STATE.items()}
FREE_IN_BINS = {UNSORTED, SMALL, LARGE}            # the next chunk's P bit is clear
LOOKS_IN_USE = {INUSE, TCACHE, FAST, LARGECACHE, MMAPPED}
# what malloc_rs_dump_chunks calls each state (a large-cache chunk counts as in use there)
DUMP_WORD = {INUSE: "inuse", TCACHE: "tcache", FAST: "fast", UNSORTED: "unsorted", SMALL: "small",
             LARGE: "large", TOP: "top", LARGECACHE: "inuse", MMAPPED: "inuse"}

PROFILES = {0: "glibc", 1: "hardened", 2: "fast"}


class FormatError(Exception):
    pass


# ------------------------------------------------------------------ reading

class Header:
    """The file's header, field by field (docs/record-format.md)."""

    def __init__(self, data):
        (magic, self.version, self.record_size, self.pid, self.page_size, self.main_arena,
         self.heap_max, self.profile, self.tcache_count, self.minsize, self.sbrk_base,
         build) = _HEADER.unpack_from(data)
        if magic != MAGIC:
            raise FormatError("not a ptmalloc-rs recording (it starts with %r, not %r)" % (magic, MAGIC))
        if self.version != VERSION or self.record_size != RECORD_SIZE:
            raise FormatError("recording format version %d with %d-byte records: this reader knows "
                              "version %d with %d-byte records" % (self.version, self.record_size,
                                                                    VERSION, RECORD_SIZE))
        self.build = build.split(b"\0", 1)[0].decode("utf-8", "replace")
        self.profile_name = PROFILES.get(self.profile, "profile %d" % self.profile)

    def as_dict(self):
        return {k: getattr(self, k) for k in (
            "version", "pid", "page_size", "main_arena", "heap_max", "profile", "profile_name",
            "tcache_count", "minsize", "sbrk_base", "build")}


class Call:
    """One call record with what its thread recorded during the call:
    `records`, in order, are (type, kind, how, a0, a1, a2) for chunk and
    heap records and (SYSCALL, text) for a system-call line."""

    __slots__ = ("seq", "tid", "kind", "how", "a0", "a1", "a2", "a3", "a4", "a5", "records",
                 "unfinished")

    def __init__(self, seq, tid, kind, how, a, records, unfinished=False):
        self.seq, self.tid, self.kind, self.how = seq, tid, kind, how
        self.a0, self.a1, self.a2, self.a3, self.a4, self.a5 = a
        self.records = records
        self.unfinished = unfinished

    @property
    def name(self):
        if self.unfinished:
            return "unfinished call"
        return CALLS.get(self.kind, "call %d" % self.kind)

    @property
    def bits(self):
        return self.a5 & 0xFFFFFFFF

    @property
    def errno(self):
        return self.a5 >> 32

    @property
    def failed(self):
        return bool(self.bits & BIT_FAILED)

    def syscalls(self):
        return [r[1] for r in self.records if r[0] == SYSCALL]

    def words(self):
        """The call and its path, in one line."""
        return describe(self)


class Recording:
    """header, calls (in seq order), threads (tids in order of their first
    call), notes (what was odd about the file: truncation, lost seqs)."""

    def __init__(self, header, calls, notes, truncated_bytes):
        self.header, self.calls, self.notes = header, calls, notes
        self.truncated_bytes = truncated_bytes
        seen = {}
        for c in calls:
            seen.setdefault(c.tid, None)
        self.threads = list(seen)

    def index_of(self, seq):
        """The index in calls of the call numbered seq (or of the last one
        before it; -1 if none)."""
        return bisect_right([c.seq for c in self.calls], seq) - 1


def read(path):
    with open(path, "rb") as f:
        data = f.read()
    return parse(data)


def parse(data):
    if len(data) < HEADER_SIZE:
        if data[:8] != MAGIC[:len(data[:8])]:
            raise FormatError("not a ptmalloc-rs recording (it starts with %r)" % bytes(data[:8]))
        raise FormatError("the recording is cut short inside its header (%d of %d bytes)"
                          % (len(data), HEADER_SIZE))
    header = Header(data)
    body = memoryview(data)[HEADER_SIZE:]
    whole = len(body) - len(body) % RECORD_SIZE
    notes = []
    truncated = len(body) - whole
    if truncated:
        notes.append("the recording ends inside a record (%d stray bytes at its end ignored): "
                     "the process probably died while writing" % truncated)
    pending = {}       # tid -> records of the call in progress
    pieces = {}        # tid -> text pieces of a system-call line
    calls = []
    all_seqs = []
    for (seq, tid, typ, kind, how, a0, a1, a2, a3, a4, a5) in _RECORD.iter_unpack(body[:whole]):
        all_seqs.append(seq)
        if typ == CALL:
            calls.append(Call(seq, tid, kind, how, (a0, a1, a2, a3, a4, a5), pending.pop(tid, [])))
        elif typ == CHUNK or typ == HEAP:
            pending.setdefault(tid, []).append((typ, kind, how, a0, a1, a2, seq))
        elif typ == SYSCALL:
            buf = pieces.setdefault(tid, [])
            buf.append(struct.pack("<6Q", a0, a1, a2, a3, a4, a5))
            if kind == 1:
                text = b"".join(buf).split(b"\0", 1)[0].decode("utf-8", "replace").rstrip("\n")
                pending.setdefault(tid, []).append((SYSCALL, text))
                del pieces[tid]
        else:
            notes.append("record of unknown type %d (seq %d, thread %d) ignored" % (typ, seq, tid))
    calls.sort(key=lambda c: c.seq)
    last = calls[-1].seq if calls else 0
    for tid, buf in pieces.items():
        text = b"".join(buf).split(b"\0", 1)[0].decode("utf-8", "replace")
        pending.setdefault(tid, []).append((SYSCALL, text + " ..."))
    for tid, recs in sorted(pending.items()):
        if recs:
            last += 1
            calls.append(Call(last, tid, 0, 0, (0,) * 6, recs, unfinished=True))
            notes.append("thread %d's last %d record(s) have no call record after them (a call "
                         "cut short, or records written at exit): shown as an unfinished call at "
                         "the end" % (tid, len(recs)))
    if all_seqs:
        all_seqs.sort()
        missing = all_seqs[-1] - all_seqs[0] + 1 - len(set(all_seqs))
        if missing > 0:
            notes.append("%d record(s) between seq %d and %d are missing (a thread's unflushed "
                         "buffer was lost)" % (missing, all_seqs[0], all_seqs[-1]))
    return Recording(header, calls, notes, truncated)


# ---------------------------------------------------------------- in words

def describe(c):
    """The call and the path it took, in words."""
    if c.unfinished:
        return ("unfinished: records with no call record after them (a call cut short when "
                "the recording ended, or records written at exit)")
    k, a0, a1, a2 = c.kind, c.a0, c.a1, c.a2
    if k in (1, 8, 9):
        s = "%s(%d)" % (CALLS[k], a0)
    elif k == 2:
        s = "free(%s)" % ("%#x" % a0 if a0 else "NULL")
    elif k == 3:
        s = "calloc(%d, %d)" % (a0, a1)
    elif k in (4, 12):
        s = "%s(%s, %d)" % (CALLS[k], "%#x" % a0 if a0 else "NULL", a1)
    elif k in (5, 6, 7):
        s = "%s(%d, %d)" % (CALLS[k], a0, a1)
    elif k == 10:
        s = "mallopt(%d, %d) = %d" % (_signed(a0), _signed(a1), _signed(a2))
    elif k == 11:
        s = "malloc_trim(%d) = %d" % (a0, _signed(a2))
    elif k == 13:
        s = "thread exit"
    else:
        s = "call %d" % k
    if k in ALLOCATING:
        s += " = %s" % ("%#x" % a2 if a2 else "NULL")
        if a2 and c.a3:
            s += " (chunk %#x, %d bytes)" % (a2 - HDR, c.a3)
    elif k == 2 and c.a3:
        s += " (chunk %#x, %d bytes)" % (a0 - HDR, c.a3)
    parts = []
    if c.how:
        parts.append("served " + HOW_PHRASE.get(c.how, "how %d" % c.how))
    parts += [w for i, w in enumerate(BITS) if c.bits >> i & 1 and i != 14]
    if c.failed:
        parts.append("failed" + (", errno %d" % c.errno if c.errno else ""))
    return s + (": " + "; ".join(parts) if parts else "")


def _signed(v):
    return v - (1 << 64) if v >> 63 else v


# ------------------------------------------------------------------- replay

def first_chunk_at(addr):
    return ((addr + HDR + MALLOC_ALIGN - 1) & ~(MALLOC_ALIGN - 1)) - HDR


class Heap:
    """One heap of one arena: chunks by address.  kind: 'heap' (a heap
    record said so), 'implied' (chunks seen where no heap was announced),
    'mmap' (the pseudo heap holding every mmap'd chunk)."""

    __slots__ = ("index", "arena", "start", "end", "kind", "alive", "addrs", "chunks", "top_end",
                 "born")

    def __init__(self, index, arena, start, end, kind, born):
        self.index, self.arena, self.start, self.end, self.kind = index, arena, start, end, kind
        self.alive = True
        self.addrs = []          # sorted chunk addresses
        self.chunks = {}         # addr -> [size, state, owner tid]
        self.top_end = None
        self.born = born         # order of appearance

    def extent_end(self):
        return max(self.end, self.top_end or 0,
                   (self.addrs[-1] + self.chunks[self.addrs[-1]][0]) if self.addrs else 0)


class State:
    """The heaps after some calls.  apply(call) moves it one call on; with
    `ops` (a list) it also appends what changed, resolved: (heap index,
    addr, size, state code, owner tid) for a chunk put, state 0 for a chunk
    removed; and heap extents to `hops` as (heap index, start, end),
    end 0 for a heap gone."""

    def __init__(self, header):
        self.h = header
        self.heaps = []
        self.arenas = [header.main_arena]     # by first appearance, main first
        self.mmap = None

    # ---- heaps
    def arena_index(self, arena):
        if arena not in self.arenas:
            self.arenas.append(arena)
        return self.arenas.index(arena)

    def _new_heap(self, arena, start, end, kind, hops):
        h = Heap(len(self.heaps), arena, start, end, kind, len(self.heaps))
        self.heaps.append(h)
        if arena is not None:
            self.arena_index(arena)
        if hops is not None:
            hops.append((h.index, start, end))
        return h

    def heap_of(self, addr):
        """The live heap holding addr (the mmap pseudo heap not included):
        a thread heap is its whole aligned reservation; the main arena's
        heap reaches to its current end, inclusive (top grows from there)."""
        hm = self.h.heap_max or (64 << 20)
        for h in self.heaps:
            if not h.alive or h.kind == "mmap":
                continue
            if h.arena != self.h.main_arena and h.start % hm == 0:
                lim = h.start + hm
            else:
                lim = h.extent_end() + 1
            if h.start <= addr < lim:
                return h
        return None

    def _implied_heap(self, addr, size, arena, hops):
        hm = self.h.heap_max or (64 << 20)
        if arena is not None and arena != self.h.main_arena:
            start = addr & ~(hm - 1)
        else:
            start = addr
        return self._new_heap(arena, start, addr + size, "implied", hops)

    def mmap_heap(self, hops):
        if self.mmap is None:
            self.mmap = self._new_heap(None, 0, 0, "mmap", hops)
        return self.mmap

    # ---- chunks
    def _put(self, heap, addr, size, state, owner, ops):
        """Put a chunk (state 0/GONE: only remove what it overlaps)."""
        addrs, chunks = heap.addrs, heap.chunks
        i = bisect_right(addrs, addr) - 1
        if i >= 0 and addrs[i] + chunks[addrs[i]][0] > addr:
            lo = i
        else:
            lo = i + 1
        hi = bisect_left(addrs, addr + max(size, 1), lo)
        removed = addrs[lo:hi]
        keep = state not in (0, GONE)
        for a in removed:
            del chunks[a]
            if ops is not None and not (keep and a == addr):
                ops.append((heap.index, a, 0, 0, 0))
        del addrs[lo:hi]
        if keep:
            addrs.insert(lo, addr)
            chunks[addr] = [size, state, owner]
            if ops is not None:
                ops.append((heap.index, addr, size, state, owner))
        if heap.kind == "implied" and keep and addr + size > heap.end:
            heap.end = addr + size

    def _end_heap_at(self, heap, end, ops):
        heap.top_end = end
        addrs = heap.addrs
        lo = bisect_left(addrs, end)
        for a in addrs[lo:]:
            del heap.chunks[a]
            if ops is not None:
                ops.append((heap.index, a, 0, 0, 0))
        del addrs[lo:]

    def find_chunk(self, addr):
        """(heap, size, state, owner) of the chunk starting at addr, or None."""
        for h in self.heaps:
            if h.alive and addr in h.chunks:
                s = h.chunks[addr]
                return h, s[0], s[1], s[2]
        return None

    def chunk_record(self, tid, state, addr, size, arena, ops, hops):
        if state == MMAPPED:
            self._put(self.mmap_heap(hops), addr, size, MMAPPED, tid, ops)
            return
        if state == GONE:
            if self.mmap is not None:
                self._put(self.mmap, addr, size, GONE, tid, ops)
            h = self.heap_of(addr)
            if h is not None:
                self._put(h, addr, size, GONE, tid, ops)
            return
        h = self.heap_of(addr)
        if h is None:
            h = self._implied_heap(addr, size, arena, hops)
        self._put(h, addr, size, state, tid, ops)
        if state == TOP:
            self._end_heap_at(h, addr + size, ops)
            if h.kind == "implied":
                h.end = addr + size
                if hops is not None:
                    hops.append((h.index, h.start, h.end))

    def heap_record(self, kind, a0, a1, arena, hops, ops):
        if kind == 1:
            for h in self.heaps:
                if h.alive and h.kind != "mmap" and h.start == a0:
                    h.end = a1
                    if h.kind == "implied":
                        h.kind = "heap"
                    h.arena = arena if arena else h.arena
                    if hops is not None:
                        hops.append((h.index, h.start, h.end))
                    return
            # an implied heap that this announcement covers becomes it
            for h in self.heaps:
                if h.alive and h.kind == "implied" and a0 <= h.start < a1 and h.arena in (arena, None):
                    h.start, h.end, h.kind = a0, a1, "heap"
                    if hops is not None:
                        hops.append((h.index, h.start, h.end))
                    return
            self._new_heap(arena, a0, a1, "heap", hops)
        elif kind == 2:
            for h in self.heaps:
                if h.alive and h.kind != "mmap" and h.start == a0:
                    h.alive = False
                    if ops is not None:
                        for a in h.addrs:
                            ops.append((h.index, a, 0, 0, 0))
                    h.addrs, h.chunks = [], {}
                    if hops is not None:
                        hops.append((h.index, h.start, 0))

    def place(self, tid, addr, size, state, ops, hops, mmapped_hint=False):
        """A chunk the call itself implies (returned: in use; freed into
        the tcache)."""
        h = self.heap_of(addr)
        if h is None or mmapped_hint:
            if state == INUSE:
                self._put(self.mmap_heap(hops), addr, size, MMAPPED, tid, ops)
                return
            if h is None:
                h = self._implied_heap(addr, size, None, hops)
        self._put(h, addr, size, state, tid, ops)

    def unmap(self, addr, ops):
        if self.mmap is not None and addr in self.mmap.chunks:
            self._put(self.mmap, addr, 1, GONE, 0, ops)

    def apply_record(self, tid, r, ops=None, hops=None):
        """One chunk or heap record of a call."""
        if r[0] not in (CHUNK, HEAP):
            return
        t, kind, _, a0, a1, a2 = r[:6]
        if t == CHUNK:
            self.chunk_record(tid, kind, a0, a1, a2, ops, hops)
        elif t == HEAP:
            self.heap_record(kind, a0, a1, a2, hops, ops)

    def apply(self, c, ops=None, hops=None, records=True):
        """One call: its records (unless `records` is false: the caller
        applied them in their own order), then what the call itself
        implies. Returns the size of the chunk it freed (0 if none): what a
        search for an address needs."""
        tid = c.tid
        if records:
            for r in c.records:
                self.apply_record(tid, r, ops, hops)
        if c.unfinished:
            return 0
        k, bits = c.kind, c.bits
        freed_size = 0
        old = c.a0 - HDR if c.a0 else None
        if k == 2 or (k in REALLOCS and old is not None and c.a2 != c.a0 and not c.failed):
            if old is not None:
                known = self.find_chunk(old)
                freed_size = c.a3 if k == 2 and c.a3 else (known[1] if known else 0)
                if bits & BIT_TCACHE and freed_size:
                    h = known[0] if known else None
                    if h is not None and h.kind != "mmap":
                        self._put(h, old, freed_size, TCACHE, tid, ops)
                    else:
                        self.place(tid, old, freed_size, TCACHE, ops, hops)
                elif (bits & BIT_UNMAPPED or c.how == 10) and not (k in REALLOCS and c.a2 == c.a0):
                    self.unmap(old, ops)
        if k in ALLOCATING and c.a2 and not c.failed:
            addr = c.a2 - HDR
            size = c.a3
            if not size:
                known = self.find_chunk(addr)
                size = known[1] if known else MALLOC_ALIGN * 2
            self.place(tid, addr, size, INUSE, ops, hops, mmapped_hint=c.how in MMAP_HOWS)
        return freed_size

    # ---- views
    def arena_number(self):
        """malloc_rs_dump_chunks' arena numbers: the main arena 0, then the
        ring from the newest arena to the oldest."""
        others = self.arenas[1:]
        return {a: i for i, a in enumerate([self.arenas[0]] + others[::-1])}

    def live_heaps(self):
        return [h for h in self.heaps if h.alive and h.kind != "mmap"]

    def chunk_lines(self):
        """`heap A 0xSTART 0xEND` and `chunk A 0xHEAP 0xADDR SIZE FLAGS
        STATE` lines, as malloc_rs_dump_chunks writes them."""
        num = self.arena_number()
        out = []
        order = sorted(num, key=lambda a: num[a])
        for arena in order:
            n = num[arena]
            main = arena == self.h.main_arena
            heaps = sorted((h for h in self.live_heaps() if h.arena == arena), key=lambda h: h.born)
            if main:   # the dump lists the brk heap only
                heaps = ([h for h in heaps if h.kind == "heap"] or heaps)[:1]
            for h in heaps:
                start = first_chunk_at(h.start) if main else h.start
                has_top = any(h.chunks[a][1] == TOP for a in h.addrs)
                end = h.top_end if has_top and h.top_end else h.end
                out.append("heap %d %#x %#x" % (n, start, end))
                prev = None
                for a in h.addrs:
                    size, state, _ = h.chunks[a]
                    if a + size > end and state != TOP:
                        break
                    f = ""
                    if prev is None or prev not in FREE_IN_BINS:
                        f += "P"
                    if not main and state in LOOKS_IN_USE:
                        f += "A"
                    out.append("chunk %d %#x %#x %d %s %s" % (n, start, a, size, f or "-",
                                                              DUMP_WORD.get(state, STATE.get(state, "?"))))
                    prev = state
        return out

    def mmapped(self):
        """[(addr, size, owner)] of the mmap'd chunks."""
        if self.mmap is None:
            return []
        return [(a, self.mmap.chunks[a][0], self.mmap.chunks[a][2]) for a in self.mmap.addrs]

    def bins(self):
        """{arena number: [(bin name, [(addr, size)])]} of the free chunks
        in fastbins, the unsorted bin, small and large bins (address order
        within a bin: a recording does not say the list order)."""
        num = self.arena_number()
        out = {}
        for h in self.live_heaps():
            n = num.get(h.arena, -1)
            for a in h.addrs:
                size, state, _ = h.chunks[a]
                if state == FAST:
                    name = "fastbin %d" % ((size >> 4) - 2)
                elif state == UNSORTED:
                    name = "unsorted"
                elif state == SMALL:
                    name = "small bin %d" % (size >> 4)
                elif state == LARGE:
                    name = "large bin %d" % largebin_index(size)
                else:
                    continue
                out.setdefault(n, {}).setdefault(name, []).append((a, size))
        return {n: sorted(d.items(), key=lambda kv: _bin_order(kv[0])) for n, d in out.items()}

    def tcaches(self):
        """{tid: {tcache bin index: [addr, ...]}}: the chunks in the tcache
        state, by the thread that put them there."""
        out = {}
        for h in self.live_heaps():
            for a in h.addrs:
                size, state, owner = h.chunks[a]
                if state == TCACHE:
                    out.setdefault(owner, {}).setdefault(tcache_index(size), []).append(a)
        return out


def _bin_order(name):
    kind, _, num = name.rpartition(" ")
    rank = {"fastbin": 0, "unsorted": 1, "small bin": 2, "large bin": 3}
    if name == "unsorted":
        return (1, 0)
    return (rank.get(kind, 9), int(num))


def tcache_index(size):
    return (size - 32 + MALLOC_ALIGN - 1) // MALLOC_ALIGN


def replay(rec, upto=None):
    """The State after the call numbered `upto` (default: after the last).
    Every record is applied in the order of its own sequence number (the
    order things happened, also across threads: a chunk record is written
    under its arena's lock), a call's own effects at its call record."""
    st = State(rec.header)
    steps = []
    for c in rec.calls:
        if upto is not None and c.seq > upto:
            break
        for r in c.records:
            if r[0] in (CHUNK, HEAP):
                steps.append((r[6], 0, c, r))
        steps.append((c.seq, 1, c, None))
    steps.sort(key=lambda s: (s[0], s[1]))
    for _, is_call, c, r in steps:
        if is_call:
            st.apply(c, records=False)
        else:
            st.apply_record(c.tid, r)
    return st


# ------------------------------------------------------------------ writing

class Writer:
    """Writes a recording record by record (for tests and tools that make
    one): header(...) once, then call/chunk/heap/syscall, in file order."""

    def __init__(self, f):
        self.f = f

    def header(self, pid=1, page_size=4096, main_arena=0, heap_max=64 << 20, profile=0,
               tcache_count=7, sbrk_base=0, build="ptmalloc-rs synthetic"):
        head = _HEADER.pack(MAGIC, VERSION, RECORD_SIZE, pid, page_size, main_arena, heap_max,
                            profile, tcache_count, 32, sbrk_base, build.encode()[:64])
        self.f.write(head + bytes(HEADER_SIZE - len(head)))

    def record(self, seq, tid, typ, kind=0, how=0, a=()):
        a = tuple(a) + (0,) * (6 - len(a))
        self.f.write(_RECORD.pack(seq, tid, typ, kind, how, *[v & (2 ** 64 - 1) for v in a]))

    def call(self, seq, tid, kind, a0=0, a1=0, a2=0, size=0, arena=0, bits=0, errno=0, how=0):
        self.record(seq, tid, CALL, kind, how, (a0, a1, a2, size, arena, bits | errno << 32))

    def chunk(self, seq, tid, state, addr, size, arena):
        self.record(seq, tid, CHUNK, CODE[state] if isinstance(state, str) else state, 0,
                    (addr, size, arena))

    def heap(self, seq, tid, start, end, arena, gone=False):
        self.record(seq, tid, HEAP, 2 if gone else 1, 0, (start, end, arena))

    def syscall(self, seq, tid, text):
        data = text.encode()
        pieces = [data[i:i + 48] for i in range(0, max(len(data), 1), 48)]
        for i, p in enumerate(pieces):
            p = p + bytes(48 - len(p))
            self.record(seq, tid, SYSCALL, 1 if i == len(pieces) - 1 else 0, i,
                        struct.unpack("<6Q", p))
