"""Where is my memory: per arena, what the kernel gave it and where each
byte of it is now, from a snapshot (heaplib.snapshot with chunks and
residency), for scripts/heap-explain.

    ex = explain.figures(snap.state, snap.residency)
    print("\\n".join(explain.lines(ex)))
    print("\\n".join(explain.advice(ex)))

The figures, per arena (src/report/explain.rs counts the same inside the
process, and malloc_rs_dump prints its lines, word for word, after the
dump's totals; only "resident" is measured differently there, by mincore,
which counts zero pages):

  mapped      the arena's system_mem; resident: smaps' Rss of its heap
              mappings ([heap] for the main arena; a part of a mapping the
              kernel merged with a neighbour is counted page by page)
  in use      the chunks the program holds (headers included): not top,
              not in a bin, a fastbin or any thread's tcache
  free        by where: tcache (any thread's cache, counted in the arena
              the chunk belongs to), fastbins, the unsorted bin, small bins,
              large bins; count and bytes, and the largest size classes
  top         the top chunk
  own         mapped - in use - free - top: the arena's and heaps'
              headers, fenceposts, alignment
  free in whole resident pages   the resident whole pages inside free
              chunks (past their first 48 bytes, as malloc_trim counts) and
              top
  largest free chunk  the largest in a bin or fastbin (top aside), and
              the in-use chunks above it in its heap: what keeps it from
              becoming top
  pinned      free bytes (bins, fastbins, tcaches) below the highest
              in-use chunk of their heap: trimming top cannot reach them
  returnable by malloc_trim(0) now   what this library's malloc_trim
              would give back (src/arena/trim.rs): it consolidates the
              fastbins (runs of free and fastbin chunks merge, into top if
              they touch it), then discards the whole pages inside every
              free chunk past its first 48 bytes, and trims the main
              arena's top to a pad of 0 (a thread arena's top stays):
              counted in resident pages only
  returnable by trimming top   what free() gives back once top reaches
              the trim threshold: top beyond MINSIZE + 1 + the top pad,
              whole pages (glibc's systrim and heap_trim)
"""

from .heap import SIZE_BITS, WORD, large_bin_floor, lock_text
from .layout import L
from .proc import PAGE

MINSIZE = L.c["MINSIZE"]
TRIM_KEEP = 6 * WORD        # malloc_trim keeps a free chunk's header and links
CLASSES_SHOWN = 6           # size classes named per kind of list
KINDS = (("tcache", "tcache"), ("fast", "fastbins"), ("unsorted", "the unsorted bin"),
         ("small", "small bins"), ("large", "large bins"))


def align_up(x, a):
    return (x + a - 1) & ~(a - 1)


def align_down(x, a):
    return x & ~(a - 1)


def inner_pages(p, size):
    """The whole pages malloc_trim discards inside a free chunk at p of
    `size` bytes: past its first 48 bytes, before its end (or None)."""
    first = align_up(p + TRIM_KEEP, PAGE)
    end = align_down(p + size, PAGE)
    return (first, end) if end > first else None


class Figures:
    """One arena's figures (see the module doc)."""

    def __init__(self, ar):
        self.ar = ar
        self.skipped = None         # why the arena is not counted
        self.noncontiguous = False
        self.mapped = self.resident = 0
        self.inuse_n = self.inuse_b = 0
        self.classes = dict((k, {}) for k, _ in KINDS)   # kind -> {class: [count, bytes]}
        self.top = self.top_addr = self.top_end = 0
        self.free_resident = 0
        self.largest = None         # (size, address)
        self.above_n = self.above_b = 0
        self.pinned_n = self.pinned_b = self.pinned_resident = 0
        self.trim_inner = self.trim_top = 0
        self.toptrim_b = self.toptrim_resident = 0
        self.top_pad = self.trim_threshold = 0

    def free(self, kind=None):
        """(count, bytes) free in one kind of list, or in all."""
        kinds = [kind] if kind else [k for k, _ in KINDS]
        n = sum(c[0] for k in kinds for c in self.classes[k].values())
        b = sum(c[1] for k in kinds for c in self.classes[k].values())
        return n, b

    @property
    def own(self):
        return self.mapped - self.inuse_b - self.free()[1] - self.top

    @property
    def returnable(self):
        return self.trim_inner + self.trim_top


def _add(classes, key, size):
    c = classes.setdefault(key, [0, 0])
    c[0] += 1
    c[1] += size


def arena_figures(ar, st, res, only_thread=None):
    f = Figures(ar)
    if ar.error:
        f.skipped = "arena %d at %#x: %s, skipped" % (ar.num, ar.addr, ar.error)
        return f
    if ar.holder is not None:
        f.skipped = "arena %d at %#x: %s" % (ar.num, ar.addr, lock_text(ar, only_thread))
        return f
    f.mapped = ar.system
    f.top, f.top_addr = ar.top_size, ar.top
    f.top_end = ar.top + ar.top_size
    f.top_pad, f.trim_threshold = st.mp["top_pad"], st.mp["trim_threshold"]
    if ar.main:
        base = st.mp["sbrk_base"]
        if ar.flags & L.c["NONCONTIGUOUS_BIT"]:
            f.noncontiguous = True
            return f
        if base:
            f.resident = res.mapping_resident(align_down(base, PAGE), align_up(f.top_end, PAGE))
    else:
        f.resident = sum(res.mapping_resident(h, h + rw) for h, _, rw, _ in ar.heaps)

    for kind, idx, c, head in ar.bins:
        size = head & ~SIZE_BITS
        _add(f.classes[kind], idx if kind == "large" else None if kind == "unsorted" else size, size)
        if f.largest is None or (size, -c) > (f.largest[0], -f.largest[1]):
            f.largest = (size, c)

    def resident_inside(p, size):
        r = inner_pages(p, size)
        return res.resident(*r) if r else 0

    # One pass over the heaps: in use, the tcache, pinned bytes, what lies
    # above the largest free chunk, and the runs that malloc_trim's
    # consolidation would merge.
    top_after = f.top
    heap = None
    for ev in ar.chunks or []:
        if ev[0] != "chunk":
            if heap is not None:
                _end_heap(f, heap, resident_inside)
            heap = _Heap() if ev[0] == "heap" else None
            continue
        if heap is None:
            continue
        _, _, p, head, state = ev
        size = head & ~SIZE_BITS
        if state == "top":
            top_after += heap.run_b
            heap.run_b = 0
            continue
        free = state in ("unsorted", "small", "large")
        if state == "tcache":
            _add(f.classes["tcache"], size, size)
        if state == "inuse":
            f.inuse_n += 1
            f.inuse_b += size
            heap.pinned = (heap.free_n, heap.free_b, heap.free_r)
            if heap.past_largest:
                f.above_n += 1
                f.above_b += size
        else:
            r = resident_inside(p, size)
            f.free_resident += r
            heap.free_n += 1
            heap.free_b += size
            heap.free_r += r
        if free or state == "fast":
            if not heap.run_b:
                heap.run_p = p
            heap.run_b += size
        elif heap.run_b:
            f.trim_inner += resident_inside(heap.run_p, heap.run_b)
            heap.run_b = 0
        if f.largest and p == f.largest[1]:
            heap.past_largest = True
    if heap is not None:
        _end_heap(f, heap, resident_inside)

    f.free_resident += resident_inside(f.top_addr, f.top)
    if ar.main and top_after > MINSIZE + 1:
        extra = align_down(top_after - (MINSIZE + 1), PAGE)
        f.trim_top = res.resident(f.top_end - extra, f.top_end) if extra else 0
    if f.top > MINSIZE + 1 + f.top_pad:
        f.toptrim_b = align_down(f.top - (MINSIZE + 1) - f.top_pad, PAGE)
        if f.toptrim_b:
            f.toptrim_resident = res.resident(f.top_end - f.toptrim_b, f.top_end)
    return f


class _Heap:
    """The walk's state within one heap."""

    def __init__(self):
        self.free_n = self.free_b = self.free_r = 0
        self.pinned = (0, 0, 0)     # the free figures below the last in-use chunk seen
        self.run_p = self.run_b = 0
        self.past_largest = False


def _end_heap(f, heap, resident_inside):
    if heap.run_b:
        f.trim_inner += resident_inside(heap.run_p, heap.run_b)
        heap.run_b = 0
    f.pinned_n += heap.pinned[0]
    f.pinned_b += heap.pinned[1]
    f.pinned_resident += heap.pinned[2]


class Explained:
    """Every arena's figures, the mmap'd chunks and the totals."""

    def __init__(self, st, res, only_thread=None):
        self.arenas = [arena_figures(ar, st, res, only_thread) for ar in st.arenas]
        self.mmapped_busy = st.mmapped_busy
        self.mmapped = [(start, length, res.mapping_resident(start, start + length))
                        for start, length, _, _ in st.mmapped]
        self.profile = st.profile
        self.arena_max = st.mp.get("arena_max", 0)
        self.fixed_thresholds = bool(st.mp.get("no_dyn_threshold"))
        self.vm_rss = res.vm_rss


def figures(st, res, only_thread=None):
    """The figures of a snapshot's state and residency (only_thread: the
    process's one thread, named when an arena is skipped)."""
    return Explained(st, res, only_thread)


def class_text(kind, classes):
    """The largest size classes of one kind of list, by bytes."""
    if kind == "unsorted":
        return ""
    items = sorted(classes.items(), key=lambda kv: (-kv[1][1], kv[0]))
    parts = []
    for key, (n, b) in items[:CLASSES_SHOWN]:
        if kind == "large":
            lo = large_bin_floor(key)
            hi = "%d" % (large_bin_floor(key + 1) - L.c["MALLOC_ALIGNMENT"]) if key + 1 < L.c["NBINS"] - 1 else ""
            parts.append("%d x %d-%s (%d)" % (n, lo, hi, b) if hi else "%d x %d+ (%d)" % (n, lo, b))
        else:
            parts.append("%d x %d" % (n, key))
    if len(items) > CLASSES_SHOWN:
        parts.append("+%d more" % (len(items) - CLASSES_SHOWN))
    return ": " + ", ".join(parts)


def arena_lines(f):
    ar = f.ar
    if f.skipped:
        return [f.skipped]
    name = "arena %d%s at %#x" % (ar.num, " (main arena)" if ar.main else "", ar.addr)
    if f.noncontiguous:
        return ["%s: mapped %d bytes; non-contiguous (brk could not grow): its chunks are not "
                "walked, no figures" % (name, f.mapped)]
    out = ["%s: mapped %d bytes, resident %d" % (name, f.mapped, f.resident),
           "  in use: %d chunk(s), %d bytes" % (f.inuse_n, f.inuse_b)]
    for kind, words in KINDS:
        n, b = f.free(kind)
        if n:
            out.append("  free in %s: %d chunk(s), %d bytes%s" % (words, n, b, class_text(kind, f.classes[kind])))
        else:
            out.append("  free in %s: none" % words)
    out.append("  top: %d bytes" % f.top)
    out.append("  the allocator's own: %d bytes (arena and heap headers, fenceposts, alignment)" % f.own)
    out.append("  free in whole resident pages: %d bytes (inside free chunks and top)" % f.free_resident)
    if f.largest:
        out.append("  largest free chunk: %d bytes at %#x, below %d in-use chunk(s) of %d bytes"
                   % (f.largest[0], f.largest[1], f.above_n, f.above_b))
    else:
        out.append("  largest free chunk: none (top aside)")
    out.append("  pinned below in-use chunks: %d bytes in %d free chunk(s), %d in whole resident pages"
               % (f.pinned_b, f.pinned_n, f.pinned_resident))
    out.append("  returnable by malloc_trim(0) now: %d bytes resident (%d inside free chunks, %d of top)"
               % (f.returnable, f.trim_inner, f.trim_top))
    out.append("  returnable by trimming top: %d bytes, %d resident (top beyond the top pad of %d; "
               "free() trims once top reaches %d)" % (f.toptrim_b, f.toptrim_resident, f.top_pad,
                                                       f.trim_threshold))
    return out


def counted(ex):
    return [f for f in ex.arenas if not f.skipped and not f.noncontiguous]


def lines(ex):
    """The figures as malloc_rs_dump's "where is my memory" section writes
    them (after its header line), indented by two spaces there: a grep for
    the dump's own "arena N" lines does not find them."""
    out = []
    for f in ex.arenas:
        out.extend("  " + line for line in arena_lines(f))
    if ex.mmapped_busy:
        out.append("  mmap'd chunks: the list is busy, not shown")
    else:
        out.append("  mmap'd chunks: %d, %d bytes, resident %d" % (
            len(ex.mmapped), sum(m[1] for m in ex.mmapped), sum(m[2] for m in ex.mmapped)))
    fs = counted(ex)
    out.append("  all arenas shown: mapped %d, resident %d, in use %d, free %d, top %d, "
               "returnable by malloc_trim(0) now %d" % (
                   sum(f.mapped for f in fs), sum(f.resident for f in fs), sum(f.inuse_b for f in fs),
                   sum(f.free()[1] for f in fs), sum(f.top for f in fs), sum(f.returnable for f in fs)))
    return out


# ------------------------------------------------------------------ advice

BIG = 1 << 20               # below this, no advice is worth a change


def mib(n):
    return "%.1f MiB" % (n / 1048576.0)


def advice(ex):
    """Plain advice, each item only where its figures call for it, with
    them; or one line saying that nothing does."""
    fs = counted(ex)
    out = []
    threads = [f for f in fs if not f.ar.main]
    thread_free = sum(f.free_resident for f in threads)
    thread_res = sum(f.resident for f in threads)
    if threads and thread_free >= BIG and thread_free * 4 >= thread_res:
        n = len(ex.arenas)
        k = 1 if n == 2 else 2
        setting = ("MALLOC_ARENA_MAX is %d" % ex.arena_max if ex.arena_max
                   else "no limit set: up to 8 per CPU")
        out.append(
            "- %d arenas (%s): the %d thread arena(s) keep %d bytes (%s) free and resident, %d%% of "
            "their %d resident bytes. Memory free in one arena never serves the threads of another, "
            "so each arena holds its own reserve. Fewer arenas share it: MALLOC_ARENA_MAX=%d (or "
            "GLIBC_TUNABLES=glibc.malloc.arena_max=%d, or mallopt(M_ARENA_MAX, %d) before the threads "
            "start), at the price of threads waiting for each other's arena lock."
            % (n, setting, len(threads), thread_free, mib(thread_free), 100 * thread_free // max(thread_res, 1),
               thread_res, k, k, k))
    ret = sum(f.returnable for f in fs)
    if ret >= BIG:
        inner = sum(f.trim_inner for f in fs)
        top = sum(f.trim_top for f in fs)
        out.append(
            "- malloc_trim(0) would give %d bytes (%s) back to the kernel now: %d in whole pages "
            "inside free chunks, %d of the main arena's top. free() only ever trims top; call "
            "malloc_trim(0) after the program has freed a lot (at the end of a phase), or from a "
            "timer." % (ret, mib(ret), inner, top))
    suggested = 128 * 1024     # glibc's default
    for f in fs:
        if f.toptrim_resident >= BIG and f.top < f.trim_threshold:
            out.append(
                "- arena %d's top holds %d bytes, %d of them resident beyond the top pad (%d), but "
                "free() trims top only once it reaches the trim threshold (%d)%s. A lower threshold "
                "lets free() give it back: MALLOC_TRIM_THRESHOLD_=%d (or "
                "GLIBC_TUNABLES=glibc.malloc.trim_threshold=%d, or mallopt(M_TRIM_THRESHOLD, %d)); "
                "a smaller MALLOC_TOP_PAD_ keeps less after each trim.%s"
                % (f.ar.num, f.top, f.toptrim_resident, f.top_pad, f.trim_threshold,
                   ", and malloc_trim(0) trims the main arena's top only" if not f.ar.main else "",
                   suggested, suggested, suggested,
                   "" if ex.fixed_thresholds else
                   " (Nobody set the threshold: it rose to twice the size of a big mmap'd block "
                   "freed earlier, as glibc's dynamic mmap threshold does; setting either turns "
                   "that off.)"))
    for f in fs:
        if f.pinned_resident >= BIG:
            text = ("- arena %d: %d bytes free and resident lie below in-use chunks (%d free bytes "
                    "in %d chunk(s) in all): fragmentation. free() gives memory back only from "
                    "top, and top cannot shrink past the highest chunk in use; malloc_trim(0) "
                    "returns the whole pages inside free chunks (%d bytes here now)."
                    % (f.ar.num, f.pinned_resident, f.pinned_b, f.pinned_n, f.trim_inner))
            if f.largest and f.above_n <= 8 and f.largest[0] >= BIG // 4:
                text += (" The largest free chunk, %d bytes at %#x, is held below top by only %d "
                         "in-use chunk(s) of %d bytes, typically long-lived blocks allocated after "
                         "short-lived ones. Allocating long-lived blocks first (or freeing these) "
                         "lets top trimming take the space back."
                         % (f.largest[0], f.largest[1], f.above_n, f.above_b))
            out.append(text)
    if not out:
        out.append("- none: nothing here is worth a change (each piece of advice needs at least "
                   "%s at stake)" % mib(BIG))
    return out
