#!/usr/bin/env bash
# Not under the fast profile: it checks figures computed in advance from
# glibc's layout of a known sequence.
# scripts/heap-explain on a program whose numbers are known in advance.
#
# known.c (trim threshold 16 MiB, so that nothing is trimmed by itself):
#   main arena: ten 512-byte chunks (7 to the tcache, 3 sorted into a small
#     bin by a 1 MiB request, which gets an mmap'd chunk), 32 chunks of
#     20016 bytes of which every other one is freed (15 into a large bin),
#     a 5008-byte chunk freed (unsorted) below a spacer in use, and a
#     100016-byte block freed into top;
#   `known full` adds a thread whose arena holds 8 freed 112-byte chunks
#     (7 in its tcache, one in a fastbin), 12 freed 100016-byte blocks
#     merged into one 1200192-byte free chunk that a single 32-byte chunk
#     pins below top, and 12 freed 120016-byte blocks merged into top;
#   every byte it allocates it writes, so which pages are resident is known
#     too.  It prints the addresses, calls malloc_rs_dump(3) and waits for
#     commands: `t` calls malloc_trim(0).
# Then:
#   heap-explain PID: every figure of both arenas, the mmap'd chunk and the
#     totals is the one computed here from the addresses alone (the page
#     arithmetic of malloc_trim and of top trimming redone in the checker);
#   the program's own dump ends with the same lines;
#   the advice: `known full` calls for MALLOC_ARENA_MAX, malloc_trim(0), a
#     lower trim threshold for the thread arena and explains the
#     fragmentation of its pinned chunk; after `t` the first and the last
#     go away (nothing returnable, nothing pinned in memory) while the
#     other two stay; `known tidy` (no thread, under 1 MiB at stake) gets
#     none;
#   heap-explain without a process, on one without the preload, and with a
#     bad argument fails in one line.
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, pass, fail, has, wait_for, finish

cat >known.c <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
/* No stdio: its buffer would be allocated too.  Every block is written
 * whole (so its pages are resident) and kept in a volatile array (GCC may
 * delete a malloc/free pair otherwise). */
void malloc_rs_dump(int fd) __attribute__((weak));
static void say(const char *fmt, ...) {
  char b[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n > 0 && write(1, b, (size_t)n) < 0) _exit(1);
}
static void *volatile keep[256];
static int nkeep;
static char *get(size_t n) {
  char *p = malloc(n);
  if (!p) { say("malloc(%zu) failed\n", n); _exit(1); }
  memset(p, 0x5a, n);
  keep[nkeep++] = p;
  return p;
}
#define CH(p) ((unsigned long)(p) - 16)
static pthread_barrier_t go, done;
static void *thread_main(void *arg) {
  (void)arg;
  char *b[8], *t[12], *g[12], *pin;
  pthread_barrier_wait(&go);
  for (int i = 0; i < 8; i++) { b[i] = get(100); get(24); }
  for (int i = 0; i < 12; i++) t[i] = get(100000);
  pin = get(24);
  for (int i = 0; i < 12; i++) g[i] = get(120000);
  for (int i = 0; i < 12; i++) free(t[i]);   /* one free chunk, pinned by pin */
  for (int i = 0; i < 12; i++) free(g[i]);   /* all into top */
  for (int i = 0; i < 8; i++) free(b[i]);    /* 7 to the tcache, 1 to a fastbin */
  say("thread t0 %#lx\nthread pin %#lx\nthread g0 %#lx\nthread b7 %#lx\n", CH(t[0]), CH(pin), CH(g[0]),
      CH(b[7]));
  pthread_barrier_wait(&done);
  for (;;) pause();
  return NULL;
}
int main(int argc, char **argv) {
  alarm(240); /* never outlives the test */
  if (argc < 2 || !malloc_rs_dump) { say("not under ptmalloc-rs\n"); return 1; }
  int full = argv[1][0] == 'f';
  mallopt(M_TRIM_THRESHOLD, 16 << 20);
  pthread_t th;
  if (full) {
    pthread_barrier_init(&go, NULL, 2);
    pthread_barrier_init(&done, NULL, 2);
    if (pthread_create(&th, NULL, thread_main, NULL)) return 1;
  }
  char *s[10], *a[32], *d, *spd, *tail, *m;
  s[0] = get(500);
  /* what was in use before: the tcache, the new thread's DTV, ... */
  size_t baseline = mallinfo2().uordblks - 512;
  get(24);
  for (int i = 1; i < 10; i++) { s[i] = get(500); get(24); }
  for (int i = 0; i < 32; i++) a[i] = get(20000);
  d = get(5000);
  spd = get(24);
  tail = get(100000);
  for (int i = 0; i < 10; i++) free(s[i]);       /* 7 to the tcache, 3 unsorted */
  for (int i = 1; i < 30; i += 2) free(a[i]);    /* 15 unsorted */
  m = get(1 << 20); /* mmap'd; sorts the unsorted bin: 3 to a small bin, 15 to a large one */
  free(d);          /* unsorted */
  free(tail);       /* into top */
  say("main baseline %zu\nmain brk %#lx\nmain d %#lx\nmain spd %#lx\nmain tail %#lx\nmain m %#lx\n", baseline,
      (unsigned long)sbrk(0), CH(d), CH(spd), CH(tail), CH(m));
  for (int i = 0; i < 32; i++) say("main a%d %#lx\n", i, CH(a[i]));
  if (full) {
    pthread_barrier_wait(&go);
    pthread_barrier_wait(&done);
  }
  malloc_rs_dump(3);
  say("ready %d\n", (int)getpid());
  for (;;) {
    char cmd[16];
    ssize_t n = read(0, cmd, sizeof cmd);
    if (n == 0) return 0;
    if (n < 0) { say("read failed: errno %d\n", errno); continue; }
    for (ssize_t i = 0; i < n; i++)
      if (cmd[i] == 't') { malloc_trim(0); say("trimmed\n"); }
  }
}
C
if ! gcc -O1 -Wall -pthread -o known known.c; then
  echo "FAIL heap-explain: known.c does not compile"
  exit 1
fi

# The checker: the figures heap-explain must print, from the addresses the
# program printed, /proc/PID/maps and the sizes of layout.txt.
cat >expect.py <<'PY'
import os, sys
out_file, maps_file, layout_file, stage = sys.argv[1:5]
trimmed = stage == "2"      # after malloc_trim(0)
PAGE = os.sysconf("SC_PAGE_SIZE")
v = {}
for line in open(out_file):
    w = line.split()
    if len(w) == 3 and w[0] in ("main", "thread"):
        v[w[0] + " " + w[1]] = int(w[2], 0)
sizes = {}
for line in open(layout_file):
    w = line.split("#")[0].split()
    if len(w) == 3 and w[0] == "struct":
        sizes[w[1]] = int(w[2], 0)
def rng(line):
    a, b = line.split()[0].split("-")
    return int(a, 16), int(b, 16)
maps = [rng(l) + (l.split()[-1],) for l in open(maps_file)]
up = lambda x: (x + PAGE - 1) // PAGE * PAGE
down = lambda x: x // PAGE * PAGE
chunk = lambda n: max(32, (n + 8 + 15) & ~15)
def inner(p, size):
    """the pages malloc_trim discards inside a free chunk: past 48 bytes"""
    return range(up(p + 48), down(p + size), PAGE)
TRIM, PAD = 16 << 20, 128 * 1024


class Arena:
    """One arena of the known program: which pages are in memory (every page
    holding a byte it wrote, less what malloc_trim discarded), its top and
    what the checker expects heap-explain to say."""

    def __init__(self, written, top_addr, top_end):
        self.pages = set(p for a, b in written for p in range(down(a), up(b), PAGE))
        self.top_addr, self.top_end = top_addr, top_end
        self.top = top_end - top_addr

    def discard(self, runs):
        for p, size in runs:
            self.pages -= set(inner(p, size))

    def resident(self, a, b):
        return sum(PAGE for p in range(a, b, PAGE) if p in self.pages)

    def inside(self, p, size):
        return sum(PAGE for q in inner(p, size) if q in self.pages)

    def lines(self, name, mapped, resident, inuse, free, own, frees, runs, largest, above, pinned, main):
        free_b = sum(size for _, size in pinned)
        inner_b = sum(self.inside(p, size) for p, size in runs)
        trim_top = 0
        if main and self.top > 33:
            extra = down(self.top - 33)
            trim_top = self.resident(self.top_end - extra, self.top_end)
        toptrim = down(self.top - 33 - PAD) if self.top > 33 + PAD else 0
        toptrim_res = self.resident(self.top_end - toptrim, self.top_end)
        free_res = sum(self.inside(p, size) for p, size in frees) + self.inside(self.top_addr, self.top)
        self.totals = dict(mapped=mapped, res=resident, inuse=inuse[1], free=free_b, top=self.top,
                           ret=inner_b + trim_top)
        return [
            "%s: mapped %d bytes, resident %d" % (name, mapped, resident),
            "  in use: %s chunk(s), %d bytes" % inuse] + free + [
            "  top: %d bytes" % self.top,
            "  the allocator's own: %d bytes (arena and heap headers, fenceposts, alignment)" % own,
            "  free in whole resident pages: %d bytes (inside free chunks and top)" % free_res,
            "  largest free chunk: %d bytes at %#x, below %d in-use chunk(s) of %d bytes" % (largest + above),
            "  pinned below in-use chunks: %d bytes in %d free chunk(s), %d in whole resident pages"
            % (free_b, len(pinned), sum(self.inside(p, size) for p, size in pinned)),
            "  returnable by malloc_trim(0) now: %d bytes resident (%d inside free chunks, %d of top)"
            % (inner_b + trim_top, inner_b, trim_top),
            "  returnable by trimming top: %d bytes, %d resident (top beyond the top pad of %d; free() "
            "trims once top reaches %d)" % (toptrim, toptrim_res, PAD, TRIM)]


out, arenas = [], []
# The main arena: [heap], from its start to the break.
heap = next((a, b) for a, b, path in maps if path == "[heap]")
brk, tail = heap[1], v["main tail"]
if not trimmed and brk != v["main brk"]:
    print("the break moved: %#x, the program said %#x" % (brk, v["main brk"]))
a = [v["main a%d" % i] for i in range(32)]
odd = [(a[i], chunk(20000)) for i in range(1, 30, 2)]
d = (v["main d"], chunk(5000))
cached = [(0, 512)] * 7          # in the main thread's tcache (no whole page inside)
small = [(0, 512)] * 3
main = Arena([(heap[0], tail + 16 + 100000)], tail, brk)
if trimmed:
    main.discard(odd + [d])
out += main.lines(
    "arena 0 (main arena) at {ADDR}", brk - heap[0], main.resident(heap[0], up(brk)),
    ("{N}", v["main baseline"] + 10 * 32 + 17 * chunk(20000) + 32),
    ["  free in tcache: 7 chunk(s), 3584 bytes: 7 x 512",
     "  free in fastbins: none",
     "  free in the unsorted bin: 1 chunk(s), 5008 bytes",
     "  free in small bins: 3 chunk(s), 1536 bytes: 3 x 512",
     "  free in large bins: 15 chunk(s), 300240 bytes: 15 x 16384-20464 (300240)"],
    0, odd + [d], odd + [d], (chunk(20000), a[1]), (17, 16 * chunk(20000) + 32),
    cached + small + odd + [d], True)
arenas.append(main)

# The thread's arena: its heap's read-write part.
if "thread t0" in v:
    t0, pin, g0, b7 = v["thread t0"], v["thread pin"], v["thread g0"], v["thread b7"]
    h = t0 & ~((64 << 20) - 1)
    rw_end = next(b for a_, b, _ in maps if a_ == h)
    big = 12 * chunk(100000)
    th = Arena([(h, g0 + 12 * chunk(120000))], pin + 32, rw_end)
    if trimmed:
        th.discard([(t0, big)])
    # malloc_trim's consolidation moves the fastbin chunk to the unsorted bin
    fast = "  free in fastbins: none" if trimmed else "  free in fastbins: 1 chunk(s), 112 bytes: 1 x 112"
    unsorted = "  free in the unsorted bin: %d chunk(s), %d bytes" % ((2, big + 112) if trimmed else (1, big))
    out += th.lines(
        "arena 1 at {ADDR}", rw_end - h, th.resident(h, rw_end),
        (10, chunk(sizes["Tcache"]) + 8 * 32 + 32),
        ["  free in tcache: 7 chunk(s), 784 bytes: 7 x 112", fast, unsorted,
         "  free in small bins: none", "  free in large bins: none"],
        ((sizes["HeapInfo"] + sizes["Arena"] + 16 + 15) & ~15) - 16,
        [(t0, big), (b7, 112)], [(t0, big), (b7, 112)], (big, t0), (1, 32),
        [(0, 112)] * 7 + [(b7, 112), (t0, big)], False)
    arenas.append(th)
out.append("mmap'd chunks: 1, 1052672 bytes, resident 1052672")
tot = dict((k, sum(x.totals[k] for x in arenas)) for k in arenas[0].totals)
out.append("all arenas shown: mapped %d, resident %d, in use %d, free %d, top %d, returnable by "
           "malloc_trim(0) now %d" % (tot["mapped"], tot["res"], tot["inuse"], tot["free"], tot["top"], tot["ret"]))
print("\n".join("  " + line for line in out))
PY

# explained FILE: heap-explain's figures (between its "where is my memory:"
# line and its totals)
explained() { sed -n '/^where is my memory:$/,/^  all arenas shown: /p' "$1" | sed 1d; }
# compare EXPECTED GOT WHAT: line by line; {ADDR} and {N} in EXPECTED match
# an address and a count (the arenas' addresses; chunks in use before main)
compare() {
  if python3 - "$1" "$2" <<'PY'; then pass "$3"; else fail "$3"; fi
import re, sys
want = open(sys.argv[1]).read().splitlines()
got = open(sys.argv[2]).read().splitlines()
bad = 0
for i in range(max(len(want), len(got))):
    w = want[i] if i < len(want) else "(nothing)"
    g = got[i] if i < len(got) else "(nothing)"
    pat = "^" + re.escape(w).replace(re.escape("{ADDR}"), "0x[0-9a-f]+").replace(re.escape("{N}"), "[0-9]+") + "$"
    if not re.match(pat, g):
        print("  expected: %s\n  got:      %s" % (w, g))
        bad += 1
sys.exit(1 if bad else 0)
PY
}


# start MODE: runs `known MODE` with commands from the fifo on fd 5
start() {
  rm -f ctl "$1.out"
  mkfifo ctl
  LD_PRELOAD="$LIB" ./known "$1" <ctl >"$1.out" 2>"$1.err" 3>"$1.dump" &
  prog=$!
  pids+=("$prog")
  exec 5>ctl
  if ! wait_for "$1.out" '^ready' 100; then
    echo "FAIL heap-explain: the test program ($1) did not get ready:"
    cat "$1.out" "$1.err"
    exit 1
  fi
}

for mode in full tidy; do
  start $mode
  pid=$prog
  timeout 60 "$scripts/heap-explain" "$pid" >$mode.explain 2>$mode.explain.err
  st=$?
  cp "/proc/$pid/maps" $mode.maps
  echo "--- heap-explain $pid (known $mode; exit $st):"
  cat $mode.explain $mode.explain.err
  echo "---"
  if [ "$st" = 0 ] && [ ! -s $mode.explain.err ]; then pass "$mode: heap-explain exits 0, nothing on stderr"; else
    fail "$mode: heap-explain exits $st"; fi
  has $mode.explain "^its [0-9] threads? stopped \(ptrace\) for [0-9.]+ s" "$mode: heap-explain stopped the program"
  python3 expect.py $mode.out $mode.maps "$scripts/heaplib/layout.txt" 1 >$mode.expected
  explained $mode.explain >$mode.got
  compare $mode.expected $mode.got "$mode: every figure is the one computed in advance ($(wc -l <$mode.expected) lines)"
  sed -n '/^where is my memory (/,/^  all arenas shown: /p' $mode.dump | sed 1d >$mode.self
  if [ -s $mode.self ] && diff $mode.got $mode.self >$mode.diff; then
    pass "$mode: the program's own dump ends with the same figures"
  else
    fail "$mode: the program's own dump differs from heap-explain:"; head -20 $mode.diff
  fi
  main_in_use=$(awk '/^    in use: / {print $3; exit}' $mode.got)
  if [ "${main_in_use:-0}" -gt 28 ]; then pass "$mode: the main arena's chunks in use: the program's 28 and those before"; else
    fail "$mode: the main arena has ${main_in_use:-no} chunks in use, expected more than 28"; fi
  sed -n '/^advice:$/,$p' $mode.explain | tr '\n' ' ' | tr -s ' ' >$mode.advice
  if [ $mode = full ]; then
    has $mode.advice "the 1 thread arena\(s\) keep [0-9]+ bytes .* MALLOC_ARENA_MAX=1 " "full: advice: MALLOC_ARENA_MAX"
    has $mode.advice "malloc_trim\(0\) would give [0-9]+ bytes" "full: advice: malloc_trim(0)"
    has $mode.advice "arena 1's top holds [0-9]+ bytes, [0-9]+ of them resident beyond the top pad \(131072\), but free\(\) trims top only once it reaches the trim threshold \(16777216\).* MALLOC_TRIM_THRESHOLD_=131072 " \
      "full: advice: the thread arena's trim threshold"
    has $mode.advice "arena 1: [0-9]+ bytes free and resident lie below in-use chunks .* held below top by only 1 in-use chunk\(s\) of 32 bytes" \
      "full: advice: fragmentation, one chunk pinning the largest"
    if grep -q "arena 0" $mode.advice; then fail "full: advice about the main arena, where under 1 MiB is at stake"; else
      pass "full: no advice about the main arena"; fi

    # malloc_trim(0) in the program, then again
    printf t >&5
    wait_for $mode.out '^trimmed' 100 || fail "full: the program does not trim"
    timeout 60 "$scripts/heap-explain" "$pid" >trimmed.explain 2>&1
    echo "--- heap-explain $pid after malloc_trim(0):"
    cat trimmed.explain
    echo "---"
    cp "/proc/$pid/maps" trimmed.maps
    python3 expect.py $mode.out trimmed.maps "$scripts/heaplib/layout.txt" 2 >trimmed.expected
    explained trimmed.explain >trimmed.got
    compare trimmed.expected trimmed.got "after malloc_trim(0): every figure is the one computed in advance"
    sed -n '/^advice:$/,$p' trimmed.explain | tr '\n' ' ' | tr -s ' ' >trimmed.advice
    has trimmed.advice "MALLOC_ARENA_MAX=1 " "after malloc_trim(0): advice: MALLOC_ARENA_MAX still (the thread arena's top)"
    has trimmed.advice "arena 1's top holds" "after malloc_trim(0): advice: the thread arena's trim threshold still"
    if grep -q "malloc_trim(0) would give" trimmed.advice; then fail "after malloc_trim(0): it is still advised"; else
      pass "after malloc_trim(0): no more advice to call it"; fi
    if grep -q "fragmentation" trimmed.advice; then fail "after malloc_trim(0): fragmentation still explained"; else
      pass "after malloc_trim(0): no fragmentation left in memory, none explained"; fi
  else
    has $mode.advice "^advice: - none: nothing here is worth a change" "tidy: no advice"
  fi
  exec 5>&-
  wait_exit "$prog" 60
done

# ------------------------------------------------------ one-line failures
sleep 60 &
sleeper=$!
pids+=("$sleeper")
wait_for "/proc/$sleeper/comm" '^sleep$' 100
timeout 60 "$scripts/heap-explain" "$sleeper" >plain.out 2>plain.err
st=$?
if [ "$st" = 1 ] && [ ! -s plain.out ] && [ "$(wc -l <plain.err)" = 1 ] &&
   grep -q "^heap-explain: process $sleeper does not run under ptmalloc-rs" plain.err; then
  pass "a process without the preload: exit 1, one line"
else
  fail "a process without the preload: exit $st"; cat plain.out plain.err
fi
kill "$sleeper" 2>/dev/null
timeout 60 "$scripts/heap-explain" 999999999 >gone.out 2>gone.err
st=$?
if [ "$st" = 1 ] && grep -q '^heap-explain: no process 999999999$' gone.err; then pass "no such process: exit 1, one line"; else
  fail "no such process: exit $st"; cat gone.out gone.err; fi
timeout 60 "$scripts/heap-explain" --bogus >bad.out 2>bad.err
st=$?
if [ "$st" = 2 ]; then pass "a bad argument: exit 2"; else fail "a bad argument: exit $st"; fi

finish
