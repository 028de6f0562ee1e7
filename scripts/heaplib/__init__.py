"""heaplib: the heap of a process running under ptmalloc-rs, read from
outside it, for scripts/heap-inspect and scripts/heap-map.

    snap = heaplib.snapshot(pid, chunks=True)      # stops it for a moment
    print(heaplib.format_dump(snap.state, header), end="")
    print("\\n".join(heaplib.chunk_lines(snap.state)))

Nothing runs in the process and no debugger is needed: its threads are
stopped with ptrace (proc.Stopped), its memory is read through
/proc/PID/mem, and the arenas, heaps, bins, tcaches and mmap'd chunks are
walked here (heap.py), from the library's `malloc_rs_debug` descriptor and
the layouts of layout.txt (layout.py), the one description of them that the
Rust test src/tests_layout.rs keeps true.
"""

import signal

from .heap import HEAP_MAX, chunk_lines, format_dump, read_descriptor, read_heap
from .layout import L, layout_hash
from .proc import (LIB_PREFIX, PAGE, Failure, Mapping, Mem, Residency, Stopped, comm_of,
                   find_mapping, glibc_info, library_info, read_maps, stack_pointers, thread_ids)

__all__ = ["HEAP_MAX", "L", "LIB_PREFIX", "PAGE", "Failure", "Mapping", "Snapshot", "chunk_lines",
           "comm_of", "find_mapping", "format_dump", "layout_hash", "read_maps", "snapshot",
           "stopped_for"]


class Snapshot:
    """maps, lib (library_info), comm, state (heap.HeapState, or None when
    the memory could not be read), sps ({tid: stack pointer}), tids, seconds
    (how long the threads were stopped; None if they were not), problem (why
    the memory could not be read), residency (proc.Residency, when asked
    for)."""

    def __init__(self, maps, lib, comm):
        self.maps, self.lib, self.comm = maps, lib, comm
        self.state = None
        self.residency = None
        self.sps, self.tids = {}, []
        self.seconds = None
        self.problem = None


class _Deadline:
    """Raises Failure when the time is up, or on SIGTERM / SIGHUP, so that
    the threads are let go in every case (SIGINT: KeyboardInterrupt)."""

    def __init__(self, seconds, pid):
        self.seconds, self.pid = seconds, pid

    def _alarm(self, *_):
        raise Failure("gave up on process %d after %g s (--timeout); it runs on" % (self.pid, self.seconds), 3)

    def _term(self, signum, _):
        raise Failure("interrupted by signal %d; process %d runs on" % (signum, self.pid), 3)

    def __enter__(self):
        self.old = {s: signal.signal(s, h) for s, h in ((signal.SIGALRM, self._alarm),
                                                         (signal.SIGTERM, self._term),
                                                         (signal.SIGHUP, self._term))}
        if self.seconds and self.seconds > 0:
            signal.setitimer(signal.ITIMER_REAL, self.seconds)
        return self

    def __exit__(self, *exc):
        signal.setitimer(signal.ITIMER_REAL, 0)
        for s, h in self.old.items():
            signal.signal(s, h)
        return False


def stopped_for(snap):
    """How long the snapshot's threads were stopped, in words."""
    n = len(snap.tids)
    return "its %d thread%s stopped (ptrace) for %.3f s" % (n, "" if n == 1 else "s", snap.seconds)


def snapshot(pid, stop=True, chunks=False, timeout=60.0, glibc=False, residency=False):
    """Reads process `pid`: with `stop`, every thread is stopped while the
    maps and the whole heap (and with `chunks`, every chunk; with
    `residency`, which pages are in memory, taken first) are read, so
    they are one consistent picture; without, only what the maps
    annotation needs is read from the running process.  Failure (one line,
    an exit status) when the process does not exist, cannot be read, does
    not run under ptmalloc-rs, or carries no descriptor this heaplib reads."""
    maps = read_maps(pid)
    # glibc's own malloc keeps the same structures (malloc_state,
    # malloc_par) at the addresses libc's debug symbols give; its caches
    # and mappings are not listed anywhere this can read.
    lib = glibc_info(pid, maps) if glibc else library_info(pid, maps)
    if lib is None:
        raise Failure("process %d does not run under ptmalloc-rs: %s.so is not in /proc/%d/maps "
                      "(start it with LD_PRELOAD=.../libptmalloc_rs.so)" % (pid, LIB_PREFIX, pid), 1)
    snap = Snapshot(maps, lib, comm_of(pid))
    try:
        mem = Mem(pid)
    except Failure as f:
        if stop or f.status != 3:
            raise
        snap.problem = f.message
        snap.tids = thread_ids(pid)
        snap.sps = stack_pointers(pid, snap.tids)
        return snap
    try:
        if glibc:
            desc = {"main_arena": lib["symbols"]["main_arena"], "mp": lib["symbols"]["mp_"],
                    "thread_list_head": 0, "thread_list_lock": 0, "mmapped_registry": 0}
        else:
            desc = read_descriptor(mem, pid, lib)
        if not stop:
            snap.state = read_heap(mem, desc, light=True)
            snap.tids = thread_ids(pid)
            snap.sps = stack_pointers(pid, snap.tids)
            return snap
        with _Deadline(timeout, pid):
            stopped = Stopped(pid)
            with stopped:
                mem.forget()
                snap.maps = read_maps(pid)
                snap.lib = lib if glibc else library_info(pid, snap.maps) or lib
                if residency:
                    snap.residency = Residency(pid, snap.maps)
                snap.state = read_heap(mem, desc, chunks=chunks)
                snap.tids = list(stopped.tids)
                snap.sps = stack_pointers(pid, snap.tids)
            snap.seconds = stopped.seconds
        return snap
    finally:
        mem.close()
