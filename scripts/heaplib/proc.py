"""A process seen from outside: its maps, where ptmalloc-rs is loaded and
its exported symbols, its memory (/proc/PID/mem), and stopping all of its
threads for a moment with ptrace.

Stopping: every thread (/proc/PID/task) is attached with PTRACE_SEIZE, which
by itself stops nothing and sends no signal, then halted with
PTRACE_INTERRUPT and waited for (waitpid with __WALL); after the reading,
PTRACE_DETACH lets each go on.  No SIGSTOP is involved, so a shell does not
see its job stop, and a thread interrupted in a system call (sleep, read,
pause, a futex wait) goes back into it for the time that was left: the
kernel restarts the call.  A signal that arrived meanwhile is handed back at
the detach.  Should this script die, the kernel detaches the threads itself.
Every ptrace call is made from this one Python thread, as ptrace requires.
"""

import bisect
import ctypes
import errno
import os
import struct
import time

LIB_PREFIX = "libptmalloc_rs"
PAGE = os.sysconf("SC_PAGE_SIZE")


class Failure(Exception):
    """Why a process cannot be inspected: one line, and an exit status."""

    def __init__(self, message, status):
        Exception.__init__(self, message)
        self.message, self.status = message, status


# --------------------------------------------------------------------- maps

class Mapping:
    __slots__ = ("start", "end", "perms", "offset", "path", "line")

    def __init__(self, line):
        parts = line.split(None, 5)
        a, b = parts[0].split("-")
        self.start, self.end = int(a, 16), int(b, 16)
        self.perms = parts[1]
        self.offset = int(parts[2], 16)
        self.path = parts[5].strip() if len(parts) > 5 else ""
        self.line = line.rstrip()

    @property
    def anonymous(self):
        return self.path == ""

    @property
    def size(self):
        return self.end - self.start


def proc_dir(pid):
    """Where the process's maps and memory are read: /proc/PID, or, while
    its main thread is a zombie (it ended with pthread_exit and the others
    run on: its own maps are empty), /proc/PID/task/TID of a live thread."""
    if thread_state(pid, pid) == "Z":
        try:
            for tid in sorted(int(t) for t in os.listdir("/proc/%d/task" % pid)):
                if tid != pid and thread_state(pid, tid) not in (None, "Z", "X"):
                    return "/proc/%d/task/%d" % (pid, tid)
        except OSError:
            pass
    return "/proc/%d" % pid


def read_maps(pid):
    """/proc/PID/maps as Mappings; Failure if there is no such process or it
    cannot be read."""
    path = proc_dir(pid) + "/maps"
    try:
        with open(path) as f:
            return [Mapping(line) for line in f if line.strip()]
    except FileNotFoundError:
        raise Failure("no process %d" % pid, 1)
    except OSError as e:
        raise Failure(cannot_read(pid, path, e), 3)


def cannot_read(pid, what, e):
    why = e.strerror or str(e)
    if e.errno in (errno.EACCES, errno.EPERM):
        why += ": reading another user's process takes root (or CAP_SYS_PTRACE)"
    return "cannot read process %d (%s: %s)" % (pid, what, why)


def find_mapping(maps, addr):
    for m in maps:
        if m.start <= addr < m.end:
            return m
    return None


def comm_of(pid):
    try:
        with open("/proc/%d/comm" % pid) as f:
            return f.read().strip()
    except OSError:
        return "?"


# ------------------------------------------------------------ ELF, symbols

def elf_info(path, wanted, symtab=False):
    """(symbols, first PT_LOAD (vaddr, offset)) of a 64-bit ELF file: the
    values of the wanted dynamic symbols that it defines (with `symtab`,
    of its full symbol table too: a debug file's local symbols)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return {}, (0, 0)
    e = "<" if data[5] == 1 else ">"
    phoff, shoff = struct.unpack_from(e + "QQ", data, 0x20)
    phentsize, phnum, shentsize, shnum = struct.unpack_from(e + "HHHH", data, 0x36)
    first_load = (0, 0)
    for i in range(phnum):
        p_type, _, p_offset, p_vaddr = struct.unpack_from(e + "IIQQ", data, phoff + i * phentsize)
        if p_type == 1:  # PT_LOAD
            first_load = (p_vaddr, p_offset)
            break
    sections = [struct.unpack_from(e + "IIQQQQIIQQ", data, shoff + i * shentsize) for i in range(shnum)]
    symbols = {}
    for sec in sections:
        if sec[1] != 11 and not (symtab and sec[1] == 2):  # SHT_DYNSYM, SHT_SYMTAB
            continue
        str_off = sections[sec[6]][4]
        for off in range(sec[4], sec[4] + sec[5], 24):
            st_name, _, _, st_shndx, st_value, _ = struct.unpack_from(e + "IBBHQQ", data, off)
            if st_shndx == 0:
                continue
            end = data.index(b"\0", str_off + st_name)
            name = data[str_off + st_name:end].decode("latin-1")
            if name in wanted:
                symbols[name] = st_value
    return symbols, first_load


def library_info(pid, maps):
    """Where ptmalloc-rs is mapped: {path, base, symbols} (the symbols'
    run-time addresses), or None if it is not."""
    lib = [m for m in maps if os.path.basename(m.path).startswith(LIB_PREFIX)]
    if not lib:
        return None
    first = min(lib, key=lambda m: (m.offset, m.start))
    info = {"path": first.path, "base": first.start, "symbols": {}}
    for path in ("/proc/%d/map_files/%x-%x" % (pid, first.start, first.end),
                 first.path.replace(" (deleted)", "")):
        try:
            symbols, (vaddr, offset) = elf_info(path, {"main_arena", "mp_", "malloc_rs_debug"})
        except (OSError, struct.error, ValueError):
            continue
        bias = first.start - (vaddr - (offset - first.offset))
        info["symbols"] = {k: bias + v for k, v in symbols.items()}
        break
    return info


def build_id(path):
    """The GNU build id of an ELF file, as hex, or None."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:4] != b"\x7fELF" or data[4] != 2:
        return None
    e = "<" if data[5] == 1 else ">"
    phoff = struct.unpack_from(e + "Q", data, 0x20)[0]
    phentsize, phnum = struct.unpack_from(e + "HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(e + "IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from(e + "III", data, off)
            name_end = off + 12 + ((namesz + 3) & ~3)
            if ntype == 3 and data[off + 12:off + 12 + namesz] == b"GNU\0":  # NT_GNU_BUILD_ID
                return data[name_end:name_end + descsz].hex()
            off = name_end + ((descsz + 3) & ~3)
    return None


def glibc_info(pid, maps):
    """Where glibc's own malloc keeps its state in process `pid`: {path,
    base, symbols: main_arena, mp_} from libc.so.6's detached debug symbols
    (Debian's libc6-dbg, found by build id). Failure when libc is not mapped
    or its debug file is missing."""
    lib = [m for m in maps if os.path.basename(m.path).startswith("libc.so.6")]
    if not lib:
        raise Failure("process %d has no libc.so.6 mapped" % pid, 1)
    first = min(lib, key=lambda m: (m.offset, m.start))
    path = first.path.replace(" (deleted)", "")
    for candidate in ("/proc/%d/map_files/%x-%x" % (pid, first.start, first.end), path):
        try:
            bid = build_id(candidate)
            _, (vaddr, offset) = elf_info(candidate, set())
            break
        except (OSError, struct.error, ValueError):
            bid = None
    if not bid:
        raise Failure("cannot read the build id of process %d's %s" % (pid, path), 3)
    debug = "/usr/lib/debug/.build-id/%s/%s.debug" % (bid[:2], bid[2:])
    try:
        symbols, _ = elf_info(debug, {"main_arena", "mp_"}, symtab=True)
    except OSError:
        raise Failure("glibc's malloc state is found through libc's debug symbols, and %s is "
                      "missing: install libc6-dbg (apt-get install libc6-dbg)" % debug, 1)
    if "main_arena" not in symbols or "mp_" not in symbols:
        raise Failure("%s has no main_arena or mp_ symbol" % debug, 1)
    bias = first.start - (vaddr - (offset - first.offset))
    return {"path": path, "base": first.start, "symbols": dict((k, bias + v) for k, v in symbols.items())}


# ------------------------------------------------------------------ memory

class Mem:
    """The process's memory through /proc/PID/mem, a page cache in front
    (a miss reads READAHEAD bytes; past CACHE_PAGES pages, the oldest
    quarter goes).  A read of memory that is not mapped or not readable
    gives None: nothing the process does can fault the reader."""

    READAHEAD = 16 * PAGE
    CACHE_PAGES = (256 << 20) // PAGE

    def __init__(self, pid):
        path = proc_dir(pid) + "/mem"
        try:
            self.fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            raise Failure("no process %d" % pid, 1)
        except OSError as e:
            raise Failure(cannot_read(pid, path, e), 3)
        self.pid = pid
        self.pages = {}

    def close(self):
        os.close(self.fd)

    def forget(self):
        """Drops the cache (the process ran meanwhile)."""
        self.pages = {}

    def _page(self, n):
        page = self.pages.get(n, False)
        if page is not False:
            return page
        if len(self.pages) > self.CACHE_PAGES:
            old = list(self.pages)[:self.CACHE_PAGES // 4]
            for k in old:
                del self.pages[k]
        try:
            data = os.pread(self.fd, self.READAHEAD, n * PAGE)
        except (OSError, OverflowError, ValueError):
            data = b""
        full = len(data) // PAGE
        if full == 0:
            self.pages[n] = None
            return None
        for i in range(full):
            self.pages.setdefault(n + i, data[i * PAGE:(i + 1) * PAGE])
        return self.pages[n]

    def read(self, addr, n):
        if addr < 0 or n < 0 or addr + n > 1 << 64:
            return None
        p, off = divmod(addr, PAGE)
        if off + n <= PAGE:
            page = self._page(p)
            return None if page is None else page[off:off + n]
        parts = []
        while n > 0:
            page = self._page(p)
            if page is None:
                return None
            take = min(n, PAGE - off)
            parts.append(page[off:off + take])
            n -= take
            p, off = p + 1, 0
        return b"".join(parts)

    def span(self, addr, n):
        """Up to n bytes from addr, read at once and not cached: the
        readable part up to the first page that is not (maybe b"")."""
        try:
            return os.pread(self.fd, n, addr)
        except (OSError, OverflowError, ValueError):
            return b""

    def word(self, addr):
        data = self.read(addr, 8)
        return None if data is None else int.from_bytes(data, "little")

    def u32(self, addr):
        data = self.read(addr, 4)
        return None if data is None else int.from_bytes(data, "little")

    def i32(self, addr):
        data = self.read(addr, 4)
        return None if data is None else int.from_bytes(data, "little", signed=True)

    def readable(self, maps):
        """Whether the first ordinary readable mapping can be read."""
        for m in maps:
            if m.perms.startswith("r") and m.path not in ("[vvar]", "[vvar_vclock]", "[vsyscall]"):
                return self.read(m.start, 8) is not None
        return False


# ------------------------------------------------------------------ ptrace

PTRACE_DETACH = 17
PTRACE_SEIZE = 0x4206
PTRACE_INTERRUPT = 0x4207
PTRACE_EVENT_STOP = 128
WALL = 0x40000000

_libc = None


def _ptrace(request, tid, data=0):
    global _libc
    if _libc is None:
        _libc = ctypes.CDLL(None, use_errno=True)
        _libc.ptrace.restype = ctypes.c_long
        _libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
    ctypes.set_errno(0)
    if _libc.ptrace(request, tid, None, data or None) == -1 and ctypes.get_errno():
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))


def thread_ids(pid):
    try:
        return sorted(int(t) for t in os.listdir("/proc/%d/task" % pid))
    except FileNotFoundError:
        raise Failure("no process %d" % pid, 1)
    except OSError as e:
        raise Failure(cannot_read(pid, "/proc/%d/task" % pid, e), 3)


def thread_state(pid, tid):
    """The state letter of a thread (R, S, D, T, t, Z, ...), or None."""
    try:
        with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
            return f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return None


class Stopped:
    """`with Stopped(pid) as s:` every thread of the process is stopped
    inside the block (s.tids), and runs on after it, whatever happens."""

    def __init__(self, pid):
        self.pid = pid
        self.seized = set()
        self.signals = {}    # tid -> signal to hand back at the detach (0: none)
        self.tids = []
        self.seconds = None

    def __enter__(self):
        self.t0 = time.monotonic()
        try:
            self._stop_all()
        except BaseException:
            self.resume()
            raise
        return self

    def __exit__(self, *exc):
        self.resume()
        return False

    def _stop_all(self):
        # Threads made by a thread not stopped yet show up in the next round.
        skipped = set()
        for _ in range(1000):
            new = [t for t in thread_ids(self.pid) if t not in self.seized and t not in skipped]
            if not new:
                break
            for tid in new:
                try:
                    _ptrace(PTRACE_SEIZE, tid)
                except OSError as e:
                    if e.errno == errno.ESRCH or thread_state(self.pid, tid) in (None, "Z", "X"):
                        skipped.add(tid)    # gone meanwhile, or a zombie (an ended main thread)
                        continue
                    hint = ""
                    if e.errno == errno.EPERM:
                        tracer = self._tracer(tid)
                        hint = (": it is traced already (by process %d)" % tracer if tracer
                                else ": stopping another user's process takes root (or CAP_SYS_PTRACE); "
                                     "under Yama, kernel.yama.ptrace_scope=0")
                    raise Failure("cannot stop process %d: ptrace refused (%s)%s"
                                  % (self.pid, e.strerror, hint), 3)
                self.seized.add(tid)
                try:
                    _ptrace(PTRACE_INTERRUPT, tid)
                except OSError:
                    pass                # gone: the wait says so
            for tid in new:
                if tid in self.seized:
                    self._wait(tid)
        else:
            raise Failure("cannot stop process %d: it keeps making threads" % self.pid, 3)
        self.tids = sorted(self.signals)
        if not self.tids:
            raise Failure("no process %d (no thread left to stop)" % self.pid, 1)

    def _tracer(self, tid):
        try:
            with open("/proc/%d/task/%d/status" % (self.pid, tid)) as f:
                for line in f:
                    if line.startswith("TracerPid:"):
                        return int(line.split()[1])
        except (OSError, ValueError, IndexError):
            pass
        return 0

    def _wait(self, tid):
        """Waits for a seized, interrupted thread to stop (or go)."""
        try:
            _, status = os.waitpid(tid, WALL)
        except ChildProcessError:
            self.seized.discard(tid)
            return
        if os.WIFSTOPPED(status):
            # The interrupt's stop, or a group stop (the process was stopped
            # already): nothing to hand back.  Otherwise a signal arrived
            # first and is held for the tracer: it goes on at the detach.
            self.signals[tid] = 0 if status >> 16 == PTRACE_EVENT_STOP else os.WSTOPSIG(status)
        else:
            self.seized.discard(tid)    # it exited

    def resume(self):
        for tid in sorted(self.seized):
            if tid not in self.signals:
                try:                    # seized, never seen stopped
                    _ptrace(PTRACE_INTERRUPT, tid)
                    self._wait(tid)
                except OSError:
                    pass
            try:
                _ptrace(PTRACE_DETACH, tid, self.signals.get(tid, 0))
            except OSError:
                pass
        self.seized.clear()
        self.signals.clear()
        if self.seconds is None:
            self.seconds = time.monotonic() - self.t0


def stack_pointers(pid, tids):
    """{tid: stack pointer} from /proc/PID/task/TID/syscall (known for a
    thread that is blocked or stopped)."""
    sps = {}
    for tid in tids:
        try:
            with open("/proc/%d/task/%d/syscall" % (pid, tid)) as f:
                fields = f.read().split()
            if len(fields) >= 3:
                sps[tid] = int(fields[-2], 16)
        except (OSError, ValueError):
            pass
    return sps


# --------------------------------------------------------------- residency

# /proc/PID/pagemap: one 64-bit entry per page; /proc/kpageflags: one per
# physical page (root only).
PM_PRESENT = 1 << 63
PM_SWAPPED = 1 << 62
PM_PFN = (1 << 55) - 1
KPF_ZERO_PAGE = 1 << 24


class Residency:
    """Which pages of a process are in memory, taken in one go while its
    threads are stopped and before anything of its heap is read: reading a
    page that was never touched through /proc/PID/mem maps the kernel's
    shared zero page there, which /proc/PID/pagemap then shows as present
    (smaps' Rss does not count it, and neither does `resident` below when
    /proc/kpageflags can be read, i.e. as root).

    Holds smaps' Rss of every mapping, the pagemap entries of the
    read-write anonymous mappings and [heap] (everything an arena or an
    mmap'd chunk can be in), and the process's VmRSS."""

    def __init__(self, pid, maps):
        self.vmas = []              # (start, end, Rss bytes, perms, path)
        self.entries = {}           # start of a mapping -> its pagemap entries (bytes)
        self.vm_rss = None
        base = proc_dir(pid)
        try:
            with open(base + "/smaps") as f:
                cur = None
                for line in f:
                    first = line.split(None, 1)[0]
                    if "-" in first and not first.endswith(":"):
                        m = Mapping(line)
                        cur = [m.start, m.end, 0, m.perms, m.path]
                        self.vmas.append(cur)
                    elif first == "Rss:" and cur is not None:
                        cur[2] = int(line.split()[1]) * 1024
        except OSError as e:
            raise Failure(cannot_read(pid, base + "/smaps", e), 3)
        try:
            with open(base + "/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        self.vm_rss = int(line.split()[1]) * 1024
        except (OSError, ValueError):
            pass
        try:
            fd = os.open(base + "/pagemap", os.O_RDONLY | os.O_CLOEXEC)
        except OSError as e:
            raise Failure(cannot_read(pid, base + "/pagemap", e), 3)
        try:
            for start, end, _, perms, path in self.vmas:
                if perms.startswith("rw") and (path == "" or path == "[heap]"):
                    want = (end - start) // PAGE * 8
                    data = os.pread(fd, want, start // PAGE * 8)
                    self.entries[start] = data
        except OSError as e:
            raise Failure(cannot_read(pid, base + "/pagemap", e), 3)
        finally:
            os.close(fd)
        self._starts = sorted(self.entries)
        self._counts = {}           # start of a mapping -> prefix counts of resident pages
        self._zero = None

    def _zero_pfns(self):
        """The physical pages that are the kernel's zero pages (from
        /proc/kpageflags; an empty set when it cannot be read)."""
        if self._zero is not None:
            return self._zero
        self._zero = set()
        pfns = set()
        for data in self.entries.values():
            for (e,) in struct.iter_unpack("<Q", data):
                if e & PM_PRESENT and e & PM_PFN:
                    pfns.add(e & PM_PFN)
        if not pfns:
            return self._zero
        try:
            fd = os.open("/proc/kpageflags", os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return self._zero
        try:
            per_block = PAGE // 8
            for block in sorted(set(p // per_block for p in pfns)):
                data = os.pread(fd, PAGE, block * PAGE)
                for i, (flags,) in enumerate(struct.iter_unpack("<Q", data[:len(data) // 8 * 8])):
                    if flags & KPF_ZERO_PAGE:
                        self._zero.add(block * per_block + i)
        except OSError:
            pass
        finally:
            os.close(fd)
        return self._zero

    def _prefix(self, start):
        counts = self._counts.get(start)
        if counts is None:
            zero = self._zero_pfns()
            counts = [0]
            n = 0
            for (e,) in struct.iter_unpack("<Q", self.entries[start]):
                if e & PM_PRESENT and (e & PM_PFN) not in zero:
                    n += 1
                counts.append(n)
            self._counts[start] = counts
        return counts

    def resident(self, start, end):
        """Bytes of the pages of [start, end) (page-aligned) that are in
        memory, by pagemap (zero pages left out when they can be told)."""
        total = 0
        i = max(bisect.bisect_right(self._starts, start) - 1, 0)
        while i < len(self._starts) and self._starts[i] < end:
            vstart = self._starts[i]
            vend = vstart + len(self.entries[vstart]) // 8 * PAGE
            a, b = max(start, vstart), min(end, vend)
            if a < b:
                counts = self._prefix(vstart)
                total += (counts[(b - vstart) // PAGE] - counts[(a - vstart) // PAGE]) * PAGE
            i += 1
        return total

    def mapping_resident(self, start, end):
        """The resident bytes of [start, end): smaps' Rss of each mapping
        that lies inside it, pagemap for a part of a mapping (one the
        kernel merged with a neighbour)."""
        total = 0
        for vstart, vend, rss, _, _ in self.vmas:
            if vstart >= end or vend <= start:
                continue
            if start <= vstart and vend <= end:
                total += rss
            else:
                total += self.resident(max(start, vstart), min(end, vend))
        return total
