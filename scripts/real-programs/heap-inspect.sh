#!/usr/bin/env bash
# scripts/heap-inspect and scripts/heap-map on a live two-thread program under
# the preload.  The program shapes two arenas the same way -- the main arena
# (main thread) and a thread arena (second thread) each get a chunk in a
# large bin, one in a small bin, one in the unsorted bin, fastbin chunks,
# full tcache bins and chunks in use -- allocates one mmap'd chunk, prints
# the addresses, and waits.  Then:
#   heap-inspect --chunks PID must annotate [heap] as the main arena, the
#     thread heap's read-write and reserved parts, the mmap'd chunk and both
#     threads' stacks; its dump must list every one of those free chunks in
#     the right bin of the right arena, both threads' tcaches, the mmap'd
#     chunk; its chunk list must give each chunk its state (the thread's
#     tcache chunks included) -- and the program must go on running;
#   heap-inspect --no-dump, with GDB pointing nowhere, and on a process
#     without the preload must do what they say;
#   heap-map --pid PID and --from FILE must write a well-formed SVG with one
#     chunk box per chunk line (and a PNG when matplotlib is installed).
# gdb is required: without it the test fails and says so (CI installs it).
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, finish

pass() { real_runs=$((real_runs + 1)); echo "ok   $1"; }
fail() { real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "FAIL $1"; }
# has FILE ERE WHAT: FILE has a line matching ERE
has() {
  if grep -Eq -- "$2" "$1"; then pass "$3"; else
    fail "$3: no line of $(basename "$1") matches /$2/"; fi
}
# section FILE FROM_ERE TO_ERE: the lines from the first match of FROM_ERE up
# to (not including) the next line matching TO_ERE
section() { awk -v a="$2" -v b="$3" '$0 ~ a {on = 1; print; next} on && $0 ~ b {exit} on' "$1"; }

if ! command -v gdb >/dev/null 2>&1; then
  echo "FAIL heap-inspect: gdb is not installed; heap-inspect and heap-map need it to call the"
  echo "     dump functions inside the process (apt-get install gdb; .ci/run installs it)"
  exit 1
fi

cat >two.c <<'C'
#define _GNU_SOURCE
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
/* No stdio: its buffer would be allocated too.  Every pointer goes through
 * k() (a volatile array): GCC may delete a malloc/free pair otherwise. */
static void say(const char *fmt, ...) {
  char b[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n > 0 && write(1, b, (size_t)n) < 0) _exit(1);
}
static void *volatile keep[256];
static int nkeep;
static void *k(void *p) { keep[nkeep++] = p; return p; }
#define CH(p) ((unsigned long)(p) - 16)
static void shape(const char *who) {
  char *f[20], *s[17], *large, *d;
  large = k(malloc(3000)); k(malloc(24));
  for (int i = 0; i < 17; i++) { s[i] = k(malloc(500)); k(malloc(24)); }
  d = k(malloc(2000)); k(malloc(24));
  for (int i = 0; i < 20; i++) f[i] = k(malloc(24));
  k(malloc(24));
  unsigned long at_large = CH(large), at_small = CH(s[16]), at_unsorted = CH(d),
                at_fast = CH(f[19]), at_tc512 = CH(s[0]), at_tc32 = CH(f[0]);
  free(large);                                  /* unsorted */
  for (int i = 0; i < 17; i++) free(s[i]);      /* 16 to the tcache, 1 unsorted */
  k(malloc(5000));            /* sorts them: 3008 -> a large bin, 512 -> a small bin */
  free(d);                                      /* unsorted */
  for (int i = 0; i < 20; i++) free(f[i]);      /* 16 to the tcache, 4 to fastbin 0 */
  say("%s large %#lx\n%s small %#lx\n%s unsorted %#lx\n%s fast %#lx\n%s tcache512 %#lx\n"
      "%s tcache32 %#lx\n%s tid %ld\n", who, at_large, who, at_small, who, at_unsorted, who,
      at_fast, who, at_tc512, who, at_tc32, who, (long)syscall(SYS_gettid));
}
static pthread_barrier_t shaped;
static void *thread_main(void *arg) {
  (void)arg;
  shape("thread");
  pthread_barrier_wait(&shaped);
  for (;;) pause();
  return NULL;
}
int main(void) {
  alarm(240);   /* never outlives the test */
  pthread_t t;
  pthread_barrier_init(&shaped, NULL, 2);
  if (pthread_create(&t, NULL, thread_main, NULL)) return 1;
  pthread_barrier_wait(&shaped);
  void *big = k(malloc(1 << 20)); /* before shape(): a large request consolidates fastbins */
  shape("main");
  say("main mmapped %#lx\nready %d\n", CH(big), (int)getpid());
  for (;;) pause();
}
C
if ! gcc -O1 -Wall -pthread -o two two.c; then
  echo "FAIL heap-inspect: the test program does not compile"
  exit 1
fi

prog=""
sleeper=""
cleanup() {
  [ -n "$prog" ] && kill "$prog" 2>/dev/null
  [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

LD_PRELOAD="$LIB" ./two >two.out 2>two.err </dev/null &
prog=$!
for _ in $(seq 100); do
  grep -q '^ready' two.out && break
  kill -0 "$prog" 2>/dev/null || break
  sleep 0.1
done
if ! grep -q '^ready' two.out; then
  echo "FAIL heap-inspect: the test program did not get ready:"
  cat two.out two.err
  exit 1
fi
v() { awk -v w="$1" -v k="$2" '$1 == w && $2 == k {print $3}' two.out; }
pid=$prog

# ------------------------------------------------------------- heap-inspect
timeout 60 "$scripts/heap-inspect" --chunks "$pid" >inspect.txt 2>inspect.err
st=$?
echo "--- heap-inspect --chunks $pid (exit $st):"
cat inspect.txt inspect.err
echo "---"
if [ "$st" = 0 ]; then pass "heap-inspect exits 0"; else fail "heap-inspect exits $st"; fi
if [ -s inspect.err ]; then fail "heap-inspect wrote to stderr"; else pass "heap-inspect: nothing on stderr"; fi

hex() { printf '%x' "$1"; }
tchunk=$(v thread large)
tbase=$(hex $(( tchunk & ~(64 * 1024 * 1024 - 1) )))
tend=$(hex $(( 16#$tbase + 64 * 1024 * 1024 )))
mm=$(v main mmapped)
has inspect.txt '\[heap\] +<- main arena \[heap\] \(arena 0 at 0x' "maps: [heap] is the main arena"
has inspect.txt "^$tbase-[0-9a-f]+ rw-p .*<- thread arena 1 heap 0 \(read-write part\)" \
  "maps: the thread heap at 0x$tbase, read-write part"
has inspect.txt "^[0-9a-f]+-$tend ---p .*<- thread arena 1 heap 0 \(reserved, PROT_NONE\)" \
  "maps: the thread heap's reserved part, up to 0x$tend"
has inspect.txt "^${mm#0x}-[0-9a-f]+ rw-p .*<- mmap'd chunk \(1052672 bytes\)" "maps: the mmap'd chunk at $mm"
has inspect.txt "<- thread stack \(TID $(v thread tid)\)" "maps: the second thread's stack"
has inspect.txt "<- guard page of thread $(v thread tid)'s stack" "maps: its guard page"
has inspect.txt "\[stack\] +<- main thread stack \(TID $pid\)" "maps: the main thread's stack"

section inspect.txt '^arena 0 \(main arena\)' '^arena 1 ' >arena0.txt
section inspect.txt '^arena 1 at' '^(arena 2|tcache of)' >arena1.txt
for a in 0 1; do
  who=main; [ "$a" = 1 ] && who=thread
  has arena$a.txt "^  fastbin 0 \(chunk size 32\):.* $(v $who fast) \(32 PA?\)" "dump: arena $a fastbin 0 holds $(v $who fast)"
  has arena$a.txt "^  unsorted bin:.* $(v $who unsorted) \(2016 PA?\)" "dump: arena $a unsorted bin holds $(v $who unsorted)"
  has arena$a.txt "^  small bin 32 \(chunk size 512\):.* $(v $who small) \(512 PA?\)" "dump: arena $a small bin 32 holds $(v $who small)"
  has arena$a.txt "^  large bin [0-9]+ \(from [0-9]+\):.* $(v $who large) \(3008 PA?\)" "dump: arena $a large bin holds $(v $who large)"
done
has arena1.txt "^  heap 0 0x$tbase-0x[0-9a-f]+: size 0x[0-9a-f]+, read-write 0x[0-9a-f]+, reserved 0x4000000" "dump: arena 1's heap"
has inspect.txt "^tcache of thread $pid \(this thread\) at 0x" "dump: the main thread's tcache"
has inspect.txt "^  bin 0 \(chunk size 32\): 16 chunk\(s\):.* $(v main tcache32)" "dump: main tcache bin 0 holds $(v main tcache32)"
has inspect.txt "^tcache of thread $(v thread tid) \(a snapshot: it runs on\) at 0x" "dump: the second thread's tcache"
has inspect.txt "^  bin 30 \(chunk size 512\): 16 chunk\(s\):.* $(v thread tcache512)" "dump: thread tcache bin 30 holds $(v thread tcache512)"
has inspect.txt "^mmap'd chunks: 1 \(1052672 bytes\)" "dump: one mmap'd chunk"
has inspect.txt "^  mmap'd chunk 0x${mm#0x} \(1052672 M\), mapping 0x${mm#0x}-" "dump: the mmap'd chunk listed at $mm"
has arena0.txt "^  threads with a tcache here: $pid$" "dump: the main thread on arena 0"
has arena1.txt "^  threads with a tcache here: $(v thread tid)$" "dump: the second thread on arena 1"

for a in 0 1; do
  who=main; fl=P; [ "$a" = 1 ] && { who=thread; fl=PA; }
  has inspect.txt "^chunk $a 0x[0-9a-f]+ $(v $who unsorted) 2016 P unsorted$" "chunks: arena $a unsorted"
  has inspect.txt "^chunk $a 0x[0-9a-f]+ $(v $who small) 512 P small$" "chunks: arena $a small"
  has inspect.txt "^chunk $a 0x[0-9a-f]+ $(v $who large) 3008 P large$" "chunks: arena $a large"
  has inspect.txt "^chunk $a 0x[0-9a-f]+ $(v $who fast) 32 $fl fast$" "chunks: arena $a fast"
  has inspect.txt "^chunk $a 0x[0-9a-f]+ $(v $who tcache512) 512 $fl tcache$" "chunks: arena $a tcache (from the $([ "$a" = 0 ] && echo main || echo second) thread's cache)"
done
has inspect.txt "^chunk 1 0x$tbase 0x[0-9a-f]+ [0-9]+ P top$" "chunks: arena 1 top"
nchunks=$(grep -c '^chunk ' inspect.txt)
ntop=$(grep -c '^chunk .* top$' inspect.txt)
if [ "$ntop" = 2 ]; then pass "chunks: two top chunks"; else fail "chunks: $ntop top chunks, expected 2"; fi

for _ in $(seq 20); do   # back in pause() soon after gdb detached
  state=$(awk '/^State:/ {print $2}' "/proc/$pid/status" 2>/dev/null)
  [ "$state" = S ] && break
  sleep 0.1
done
if [ "$state" = S ]; then pass "the program runs on after gdb detached (state S)"; else
  fail "the program is in state '${state:-gone}' after heap-inspect, expected S (sleeping in pause)"; fi
fds=$(ls "/proc/$pid/fd" | wc -l)
timeout 60 "$scripts/heap-inspect" --chunks "$pid" >inspect2.txt 2>&1
if diff <(sed -n '/^malloc_rs_dump,/,$p' inspect.txt) <(sed -n '/^malloc_rs_dump,/,$p' inspect2.txt) >/dev/null; then
  pass "a second heap-inspect sees the same heap (inspecting changes nothing)"
else
  fail "a second heap-inspect sees another heap:"; diff <(sed -n '/^malloc_rs_dump,/,$p' inspect.txt) <(sed -n '/^malloc_rs_dump,/,$p' inspect2.txt) | head -20
fi
if [ "$(ls "/proc/$pid/fd" | wc -l)" = "$fds" ]; then pass "no file descriptor left open in the program"; else
  fail "the program has $(ls "/proc/$pid/fd" | wc -l) descriptors after heap-inspect, $fds before"; fi

timeout 60 "$scripts/heap-inspect" --no-dump "$pid" >nodump.txt 2>&1
st=$?
if [ "$st" = 0 ] && ! grep -q '^malloc_rs_dump' nodump.txt; then pass "--no-dump: exit 0, no dump"; else
  fail "--no-dump: exit $st"; cat nodump.txt; fi
has nodump.txt "<- thread arena 1 heap 0 \(read-write part\)" "--no-dump: the thread heap from memory"
has nodump.txt "<- mmap'd chunk \(1052672 bytes\)" "--no-dump: the mmap'd chunk from memory"

GDB=/nonexistent/gdb timeout 60 "$scripts/heap-inspect" "$pid" >nogdb.txt 2>&1
st=$?
if [ "$st" = 3 ]; then pass "without gdb: exit 3"; else fail "without gdb: exit $st, expected 3"; fi
has nogdb.txt "gdb is not installed" "without gdb: says so"
has nogdb.txt "<- main arena \[heap\]" "without gdb: the annotated maps all the same"

sleep 60 &
sleeper=$!
timeout 60 "$scripts/heap-inspect" "$sleeper" >plain.txt 2>&1
st=$?
if [ "$st" = 1 ]; then pass "a process without the preload: exit 1"; else fail "a process without the preload: exit $st, expected 1"; fi
has plain.txt "does not run under ptmalloc-rs" "a process without the preload: says so"
kill "$sleeper" 2>/dev/null; sleeper=""

# ------------------------------------------------------------------ heap-map
# check_svg FILE WHAT: well-formed, an <svg>, one chunk box per chunk line,
# and as many boxes of each state as chunks in that state
check_svg() {
  if python3 - "$1" inspect.txt <<'PY'; then pass "$2: well-formed SVG, one box per chunk ($nchunks)"; else fail "$2"; fi
import collections, sys, xml.etree.ElementTree as ET
svg, listing = sys.argv[1], sys.argv[2]
try:
    root = ET.parse(svg).getroot()
except Exception as e:
    print("  not well-formed XML: %s" % e); sys.exit(1)
if root.tag != "{http://www.w3.org/2000/svg}svg":
    print("  the root element is %s, not svg" % root.tag); sys.exit(1)
boxes = collections.Counter()
for g in root.iter("{http://www.w3.org/2000/svg}g"):
    cls = g.get("class", "").split()
    if cls[:1] == ["chunk"]:
        if not list(g.iter("{http://www.w3.org/2000/svg}rect")):
            print("  a chunk group without a rect"); sys.exit(1)
        boxes[cls[1]] += 1
want = collections.Counter(l.split()[6] for l in open(listing) if l.startswith("chunk ") and len(l.split()) == 7)
if boxes != want:
    print("  chunk boxes by state %s, chunk lines by state %s" % (dict(boxes), dict(want))); sys.exit(1)
PY
}
timeout 90 "$scripts/heap-map" --pid "$pid" -o map.svg >map.log 2>&1
st=$?
cat map.log
if [ "$st" = 0 ] && [ -s map.svg ]; then pass "heap-map --pid writes map.svg"; else fail "heap-map --pid: exit $st"; fi
[ -s map.svg ] && check_svg map.svg "heap-map --pid"

grep -E '^(heap|chunk|#) ' inspect.txt >chunks.txt
timeout 60 "$scripts/heap-map" --from chunks.txt -o from.svg >from.log 2>&1
st=$?
if [ "$st" = 0 ] && [ -s from.svg ]; then pass "heap-map --from writes from.svg"; else fail "heap-map --from: exit $st"; cat from.log; fi
[ -s from.svg ] && check_svg from.svg "heap-map --from"

HEAP_MAP_NO_INSTALL=1 timeout 120 "$scripts/heap-map" --from chunks.txt -o pic.png >png.log 2>&1
st=$?
if python3 -c 'import matplotlib' 2>/dev/null; then
  if [ "$st" = 0 ] && python3 - pic.png <<'PY'; then pass "heap-map -o pic.png: a PNG"; else fail "heap-map -o pic.png (exit $st)"; cat png.log; fi
import struct, sys
data = open(sys.argv[1], "rb").read()
ok = data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
w, h = struct.unpack(">II", data[16:24]) if ok else (0, 0)
print("  pic.png: %d x %d" % (w, h))
sys.exit(0 if ok and w > 500 and h > 200 else 1)
PY
else
  # no matplotlib (and no pip install here): the SVG instead, with a message
  if [ "$st" = 0 ] && [ ! -e pic.png ] && grep -q "instead of the PNG" png.log && [ -s pic.svg ]; then
    pass "heap-map -o pic.png without matplotlib: says so and writes pic.svg"
    check_svg pic.svg "heap-map -o pic.png without matplotlib"
  else
    fail "heap-map -o pic.png without matplotlib (exit $st)"; cat png.log
  fi
fi

finish
