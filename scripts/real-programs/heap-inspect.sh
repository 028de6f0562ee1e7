#!/usr/bin/env bash
# Not under the fast profile: it checks glibc's layout of a known sequence.
# scripts/heap-inspect and scripts/heap-map on live programs under the
# preload, with no gdb anywhere on the PATH: they stop the program with
# ptrace and read its heap through /proc/PID/mem, running nothing in it.
#
# two.c shapes two arenas the same way -- the main arena (main thread) and a
# thread arena (second thread) each get a chunk in a large bin, one in a
# small bin, one in the unsorted bin, fastbin chunks, full tcache bins and
# chunks in use --, allocates one mmap'd chunk, prints the addresses, and
# then obeys one-letter commands on stdin (a fifo): `s` sleeps a few
# seconds, timing itself, and says whether it slept the full time; `d`
# calls malloc_rs_dump(3) and malloc_rs_dump_chunks(4) in the program
# itself.  Then:
#   heap-inspect --chunks PID runs while the program sleeps: the sleep must
#     not be cut short, and the program must run on;
#   its dump and chunk listing must be the program's own malloc_rs_dump (up
#     to its totals: the "where is my memory" section after them is
#     heap-explain's) and malloc_rs_dump_chunks text, taken afterwards in
#     the same process with the heap unchanged, line for line (apart from
#     the first line, which
#     says who wrote it, and the dump's words for the tcaches of the thread
#     that dumps and of the others, which name no heap fact);
#   the maps must be annotated ([heap] as the main arena, the thread heap's
#     read-write and reserved parts, the mmap'd chunk, both threads'
#     stacks), and the facts checked one by one too (each free chunk in the
#     right bin of the right arena, both tcaches, the mmap'd chunk, each
#     chunk's state);
#   locked.c keeps a thread inside the allocator, holding its arena's lock
#     (its trace output blocks on a full pipe): heap-inspect must report
#     that arena as the program's own dump does, "locked by thread TID,
#     skipped", and a single-threaded one as in use by its only thread;
#   heap-inspect --no-dump, and on a process without the preload, on one
#     whose library lacks the malloc_rs_debug descriptor or has another
#     version of it, on a process traced already, and as another user,
#     must do what they say, the failures in one line;
#   heap-map --pid PID and --from FILE must write a well-formed SVG with one
#     chunk box per chunk line (and a PNG when matplotlib is installed).
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, pass, fail, has, wait_for, finish

# section FILE FROM_ERE TO_ERE: the lines from the first match of FROM_ERE up
# to (not including) the next line matching TO_ERE
section() { awk -v a="$2" -v b="$3" '$0 ~ a {on = 1; print; next} on && $0 ~ b {exit} on' "$1"; }
# mapped PID: until the process has the library mapped (it is loaded)
mapped() { wait_for "/proc/$1/maps" 'libptmalloc_rs' 100; }
# one_line FILE_OUT FILE_ERR ERE WHAT: nothing on stdout, exactly one line on
# stderr, matching ERE
one_line() {
  if [ ! -s "$1" ] && [ "$(wc -l <"$2")" = 1 ] && grep -Eq -- "$3" "$2"; then pass "$4"; else
    fail "$4: expected one line on stderr matching /$3/, got:"; cat "$1" "$2"; fi
}

# No gdb: the scripts run with a PATH that has python3 and nothing else.
nogdb=$WORK/nogdb-bin
mkdir -p "$nogdb"
ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$nogdb/python3"   # not a shim
# run CMD ARGS...: CMD (looked up here) with that PATH
run() { local cmd; cmd=$(command -v "$1"); shift; env PATH="$nogdb" GDB=/bin/false "$cmd" "$@"; }
if run sh -c 'command -v gdb' >/dev/null 2>&1 || [ -e "$nogdb/gdb" ]; then
  fail "the scripts' PATH still finds gdb"; else pass "the scripts run with no gdb on their PATH"; fi

cat >two.c <<'C'
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
/* No stdio: its buffer would be allocated too.  Every pointer goes through
 * k() (a volatile array): GCC may delete a malloc/free pair otherwise. */
void malloc_rs_dump(int fd) __attribute__((weak));
void malloc_rs_dump_chunks(int fd) __attribute__((weak));
#define SLEEP_S 3
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
  for (int i = 0; i < 17; i++) free(s[i]);      /* 7 to the tcache, 10 unsorted */
  k(malloc(5000));            /* sorts them: 3008 -> a large bin, the 512s -> a small bin */
  free(d);                                      /* unsorted */
  for (int i = 0; i < 20; i++) free(f[i]);      /* 7 to the tcache, 13 to fastbin 0 */
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
/* Sleeps SLEEP_S seconds, timed on CLOCK_MONOTONIC: a sleep that a stop cut
 * short returns the seconds left, or ends early. */
static void timed_sleep(void) {
  struct timespec a, b;
  clock_gettime(CLOCK_MONOTONIC, &a);
  say("sleeping\n");
  unsigned left = sleep(SLEEP_S);
  clock_gettime(CLOCK_MONOTONIC, &b);
  long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
  if (left == 0 && ms >= SLEEP_S * 1000)
    say("slept the full time\n");
  else
    say("sleep cut short: %u s left, %ld ms slept\n", left, ms);
}
int main(void) {
  alarm(240);   /* never outlives the test */
  if (!malloc_rs_dump || !malloc_rs_dump_chunks) { say("not under ptmalloc-rs\n"); return 1; }
  pthread_t t;
  pthread_barrier_init(&shaped, NULL, 2);
  if (pthread_create(&t, NULL, thread_main, NULL)) return 1;
  pthread_barrier_wait(&shaped);
  void *big = k(malloc(1 << 20)); /* before shape(): a large request consolidates fastbins */
  shape("main");
  say("main mmapped %#lx\nready %d\n", CH(big), (int)getpid());
  for (;;) {
    char cmd[16];
    ssize_t n = read(0, cmd, sizeof cmd);
    if (n == 0) return 0;
    if (n < 0) { say("read failed: errno %d\n", errno); continue; }
    for (ssize_t i = 0; i < n; i++) {
      if (cmd[i] == 's') timed_sleep();
      if (cmd[i] == 'd') { malloc_rs_dump(3); malloc_rs_dump_chunks(4); say("dumped\n"); }
    }
  }
}
C
cat >locked.c <<'C'
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <unistd.h>
/* Run with PTMALLOC_RS_TRACE=1 and stderr on a pipe nobody reads: fill()
 * allocates until a trace line of a heap growth finds the pipe full, and
 * blocks there, inside the allocator, holding its arena's lock (or, with
 * one thread, the arena marked in use).  `locked thread`: a second thread
 * fills, the main thread obeys `d` on stdin; `locked single`: the main
 * thread fills. */
void malloc_rs_dump(int fd) __attribute__((weak));
void malloc_rs_dump_chunks(int fd) __attribute__((weak));
static void say(const char *fmt, ...) {
  char b[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(b, sizeof b, fmt, ap);
  va_end(ap);
  if (n > 0 && write(1, b, (size_t)n) < 0) _exit(1);
}
static void *volatile sink;
static void *fill(void *arg) {
  (void)arg;
  say("filler %ld\n", (long)syscall(SYS_gettid));
  for (;;) sink = malloc(3000);
  return NULL;
}
int main(int argc, char **argv) {
  alarm(240);
  if (argc < 2 || !malloc_rs_dump) return 2;
  if (fcntl(2, F_SETPIPE_SZ, 4096) < 0) { say("F_SETPIPE_SZ failed\n"); return 1; }
  say("ready %d\n", (int)getpid());
  if (argv[1][0] == 's') fill(NULL);
  pthread_t t;
  if (pthread_create(&t, NULL, fill, NULL)) return 1;
  char c;
  while (read(0, &c, 1) == 1)
    if (c == 'd') { malloc_rs_dump(3); malloc_rs_dump_chunks(4); say("dumped\n"); }
  return 0;
}
C
for p in two locked; do
  if ! gcc -O1 -Wall -pthread -Wl,-z,now -o $p $p.c; then
    echo "FAIL heap-inspect: $p.c does not compile"
    exit 1
  fi
done


mkfifo ctl
LD_PRELOAD="$LIB" ./two <ctl >two.out 2>two.err 3>self-dump.txt 4>self-chunks.txt &
prog=$!
pids+=("$prog")
exec 5>ctl          # the program's commands
if ! wait_for two.out '^ready' 100; then
  echo "FAIL heap-inspect: the test program did not get ready:"
  cat two.out two.err
  exit 1
fi
v() { awk -v w="$1" -v k="$2" '$1 == w && $2 == k {print $3}' two.out; }
pid=$prog

# ------------------------------------------------- heap-inspect, mid-sleep
printf s >&5
wait_for two.out '^sleeping' 100 || fail "the program does not start its sleep"
run timeout 60 "$scripts/heap-inspect" --chunks "$pid" >inspect.txt 2>inspect.err
st=$?
if grep -Eq '^(slept|sleep cut)' two.out; then
  fail "heap-inspect ended after the program's sleep: the sleep was not tested"
else
  pass "heap-inspect stopped and read the program while it slept"
fi
echo "--- heap-inspect --chunks $pid (exit $st):"
cat inspect.txt inspect.err
echo "---"
if [ "$st" = 0 ]; then pass "heap-inspect exits 0"; else fail "heap-inspect exits $st"; fi
if [ -s inspect.err ]; then fail "heap-inspect wrote to stderr"; else pass "heap-inspect: nothing on stderr"; fi
has inspect.txt "^its 2 threads stopped \(ptrace\) for [0-9.]+ s" "heap-inspect stopped both threads"
wait_for two.out '^(slept|sleep cut)' 150 || fail "the program's sleep does not end"
has two.out '^slept the full time$' "the program's sleep was not cut short by the stop"
if grep -q '^read failed' two.out; then fail "the program's read was interrupted: $(grep '^read failed' two.out)"; else
  pass "the program's blocking read was not interrupted"; fi

# ------------------------------- the program's own dump, same heap, compared
printf d >&5
if wait_for two.out '^dumped' 100; then pass "the program dumped its own heap"; else fail "the program did not dump"; fi
sed -n '/^ptmalloc-rs heap dump, pid /,/^totals /p' inspect.txt >outside-dump.txt
has outside-dump.txt "^ptmalloc-rs heap dump, pid $pid, read from outside by heap-inspect \(its 2 threads stopped, nothing run in it\)$" \
  "the dump's first line says who read it"
# The program's dump names its own thread's tcache "(this thread)" and the
# others' "(a snapshot: it runs on)"; read from outside, all are stopped.
# The dump's "where is my memory" section, after its totals, is
# heap-explain's to compare (real-programs/heap-explain.sh).
sed -n '1,/^totals /p' self-dump.txt |
  sed -E '1d; s/^(tcache of thread [0-9]+) \((this thread|a snapshot: it runs on)\)/\1/' >inside.txt
sed 1d outside-dump.txt >outside.txt
if [ -s inside.txt ] && grep -q '^arena 1 ' inside.txt && diff outside.txt inside.txt >dump.diff; then
  pass "heap-inspect's dump is the program's own malloc_rs_dump, line for line ($(wc -l <inside.txt) lines)"
else
  fail "heap-inspect's dump differs from the program's own malloc_rs_dump:"; head -40 dump.diff
fi
grep -E '^(heap|chunk|#) ' inspect.txt | grep -v '^# chunks of' >outside-chunks.txt
if [ -s self-chunks.txt ] && diff outside-chunks.txt self-chunks.txt >chunks.diff; then
  pass "heap-inspect's chunk list is the program's own malloc_rs_dump_chunks ($(wc -l <self-chunks.txt) lines)"
else
  fail "heap-inspect's chunk list differs from the program's own malloc_rs_dump_chunks:"; head -40 chunks.diff
fi

# ------------------------------------------------------ the facts, one by one
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
has inspect.txt "^tcache of thread $pid at 0x" "dump: the main thread's tcache"
has inspect.txt "^  bin 0 \(chunk size 32\): 7 chunk\(s\):.* $(v main tcache32)" "dump: main tcache bin 0 holds $(v main tcache32)"
has inspect.txt "^tcache of thread $(v thread tid) at 0x" "dump: the second thread's tcache"
has inspect.txt "^  bin 30 \(chunk size 512\): 7 chunk\(s\):.* $(v thread tcache512)" "dump: thread tcache bin 30 holds $(v thread tcache512)"
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

states=""
for t in /proc/"$pid"/task/*; do states+=$(awk '{print $3}' "$t/stat" 2>/dev/null); done
if [ "$states" = SS ]; then pass "both threads run on, sleeping in read and pause (states $states)"; else
  fail "the program's threads are in states '${states:-gone}' after heap-inspect, expected SS"; fi
run timeout 60 "$scripts/heap-inspect" --chunks "$pid" >inspect2.txt 2>&1
if diff <(sed -n '/^ptmalloc-rs heap dump,/,$p' inspect.txt) <(sed -n '/^ptmalloc-rs heap dump,/,$p' inspect2.txt) >/dev/null; then
  pass "a second heap-inspect sees the same heap (inspecting changes nothing)"
else
  fail "a second heap-inspect sees another heap:"; diff <(sed -n '/^ptmalloc-rs heap dump,/,$p' inspect.txt) <(sed -n '/^ptmalloc-rs heap dump,/,$p' inspect2.txt) | head -20
fi

run timeout 60 "$scripts/heap-inspect" --no-dump "$pid" >nodump.txt 2>&1
st=$?
if [ "$st" = 0 ] && ! grep -q '^ptmalloc-rs heap dump' nodump.txt && ! grep -q 'stopped (ptrace)' nodump.txt; then
  pass "--no-dump: exit 0, no dump, the process not stopped"; else fail "--no-dump: exit $st"; cat nodump.txt; fi
has nodump.txt "<- thread arena 1 heap 0 \(read-write part\)" "--no-dump: the thread heap from memory"
has nodump.txt "<- mmap'd chunk \(1052672 bytes\)" "--no-dump: the mmap'd chunk from memory"

# -------------------------------------------------------------- locked arenas
# locked thread: the filler thread blocks inside the allocator with its
# arena's lock held (it waits for the trace pipe, which nobody reads).
mkfifo trace1.fifo trace2.fifo
exec 7<>trace1.fifo 8<>trace2.fifo   # readers that never read: the fillers' writes block
mkfifo lctl
PTMALLOC_RS_TRACE=1 LD_PRELOAD="$LIB" ./locked thread <lctl >locked.out 2>trace1.fifo 3>lself-dump.txt 4>lself-chunks.txt &
lpid=$!
pids+=("$lpid")
exec 6>lctl
# blocked: its state S and the same system call line 0.3 s apart
blocked() {
  local f="/proc/$1/task/$2" a b i
  for ((i = 0; i < 100; i++)); do
    a=$(cat "$f/syscall" 2>/dev/null)
    if [ "$(awk '{print $3}' "$f/stat" 2>/dev/null)" = S ]; then
      sleep 0.3
      b=$(cat "$f/syscall" 2>/dev/null)
      [ -n "$a" ] && [ "$a" = "$b" ] && [ "$(awk '{print $3}' "$f/stat")" = S ] && return 0
    fi
    sleep 0.1
  done
  return 1
}
if wait_for locked.out '^filler' 100 && filler=$(awk '$1 == "filler" {print $2}' locked.out) &&
   blocked "$lpid" "$filler"; then
  pass "locked: thread $filler is blocked inside the allocator"
  run timeout 60 "$scripts/heap-inspect" --chunks "$lpid" >linspect.txt 2>&1
  has linspect.txt "^arena 1 at 0x[0-9a-f]+: locked by thread $filler, skipped$" "locked: the dump says arena 1 is locked by thread $filler"
  has linspect.txt "^# arena 1 locked by thread $filler, skipped$" "locked: so does the chunk list"
  printf d >&6
  if wait_for locked.out '^dumped' 100; then
    sed -n '/^ptmalloc-rs heap dump, pid /,/^totals /p' linspect.txt | sed 1d >loutside.txt
    sed -n '1,/^totals /p' lself-dump.txt |
      sed -E '1d; s/^(tcache of thread [0-9]+) \((this thread|a snapshot: it runs on)\)/\1/' >linside.txt
    if grep -q "locked by thread $filler, skipped" linside.txt && diff loutside.txt linside.txt >ldump.diff; then
      pass "locked: heap-inspect's dump is the program's own, the locked arena included"
    else
      fail "locked: heap-inspect's dump differs from the program's own:"; head -20 ldump.diff
    fi
    grep -E '^(heap|chunk|#) ' linspect.txt | grep -v '^# chunks of' >loutside-chunks.txt
    if diff loutside-chunks.txt lself-chunks.txt >lchunks.diff; then
      pass "locked: heap-inspect's chunk list is the program's own"
    else
      fail "locked: heap-inspect's chunk list differs from the program's own:"; head -20 lchunks.diff
    fi
  else
    fail "locked: the program did not dump"
  fi
else
  fail "locked: the filler thread does not block inside the allocator"; cat locked.out
fi
kill "$lpid" 2>/dev/null
wait_exit "$lpid" 60
exec 6>&-

# locked single: the only thread blocks inside: its arena is marked in use
PTMALLOC_RS_TRACE=1 LD_PRELOAD="$LIB" ./locked single </dev/null >single.out 2>trace2.fifo &
spid=$!
pids+=("$spid")
if wait_for single.out '^filler' 100 && blocked "$spid" "$spid"; then
  run timeout 60 "$scripts/heap-inspect" --chunks "$spid" >sinspect.txt 2>&1
  has sinspect.txt "^arena 0 at 0x[0-9a-f]+: in use by thread $spid, the only one \(stopped inside the allocator\), skipped$" \
    "single-threaded: arena 0 in use by its only thread, skipped"
  has sinspect.txt "^# arena 0 in use by thread $spid, the only one \(stopped inside the allocator\), skipped$" \
    "single-threaded: so says the chunk list"
else
  fail "single-threaded: the program does not block inside the allocator"; cat single.out
fi
kill "$spid" 2>/dev/null
wait_exit "$spid" 60
exec 7>&- 8>&-

# ------------------------------------------------------ one-line failures
sleep 60 &
sleeper=$!
pids+=("$sleeper")
wait_for "/proc/$sleeper/comm" '^sleep$' 100   # sleep itself, not the shell forked for it
run timeout 60 "$scripts/heap-inspect" "$sleeper" >plain.out 2>plain.err
st=$?
if [ "$st" = 1 ]; then pass "a process without the preload: exit 1"; else fail "a process without the preload: exit $st, expected 1"; fi
one_line plain.out plain.err "^heap-inspect: process $sleeper does not run under ptmalloc-rs" "a process without the preload: one line says so"
kill "$sleeper" 2>/dev/null

# A library without the descriptor (its dynamic symbol renamed in a copy),
# and one whose descriptor has another version (patched in another copy).
mkdir -p old other
python3 - "$LIB" old/libptmalloc_rs.so other/libptmalloc_rs.so <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read()
old = data.replace(b"\0malloc_rs_debug\0", b"\0malloc_rs_debuX\0")
assert old != data, "no malloc_rs_debug in .dynstr"
open(sys.argv[2], "wb").write(old)
at = data.find(b"ptmrsdbg")
assert at > 0 and data.find(b"ptmrsdbg", at + 1) < 0, "the descriptor's magic, once"
version = struct.unpack_from("<I", data, at + 8)[0]
open(sys.argv[3], "wb").write(data[:at + 8] + struct.pack("<I", version + 100) + data[at + 12:])
PY
for kind in old other; do
  LD_PRELOAD="$WORK/$kind/libptmalloc_rs.so" sleep 60 &
  p=$!
  pids+=("$p")
  mapped "$p" || fail "library $kind: not loaded"
  run timeout 60 "$scripts/heap-inspect" "$p" >$kind.out 2>$kind.err
  st=$?
  if [ "$kind" = old ]; then
    want="^heap-inspect: process $p's libptmalloc_rs.so is too old \(no malloc_rs_debug descriptor\)"
  else
    want="^heap-inspect: process $p's libptmalloc_rs.so is too old or too new for this heap-inspect \(its malloc_rs_debug descriptor: version [0-9]+"
  fi
  if [ "$st" = 1 ]; then pass "library $kind: exit 1"; else fail "library $kind: exit $st, expected 1"; fi
  one_line $kind.out $kind.err "$want" "library $kind: one line says so"
  kill "$p" 2>/dev/null
done

# A process traced already (by a stand-in debugger): ptrace refuses.
LD_PRELOAD="$LIB" sleep 60 &
traced=$!
pids+=("$traced")
mapped "$traced" || fail "a traced process: the library is not loaded"
python3 - "$traced" >tracer.out <<'PY' &
import ctypes, sys, time
libc = ctypes.CDLL(None, use_errno=True)
libc.ptrace.argtypes = [ctypes.c_long, ctypes.c_int, ctypes.c_void_p, ctypes.c_void_p]
if libc.ptrace(0x4206, int(sys.argv[1]), None, None) != 0:   # PTRACE_SEIZE
    print("seize failed: errno %d" % ctypes.get_errno(), flush=True)
    sys.exit(1)
print("tracing", flush=True)
time.sleep(100)
PY
tracer=$!
pids+=("$tracer")
if wait_for tracer.out '^tracing' 100; then
  run timeout 60 "$scripts/heap-inspect" "$traced" >traced.out 2>traced.err
  st=$?
  if [ "$st" = 3 ]; then pass "a traced process: exit 3"; else fail "a traced process: exit $st, expected 3"; fi
  one_line traced.out traced.err "^heap-inspect: cannot stop process $traced: ptrace refused \(.*\): it is traced already \(by process $tracer\)" \
    "a traced process: one line says ptrace was refused"
  if [ "$(awk '{print $3}' /proc/$traced/stat)" = S ]; then pass "a traced process: left sleeping"; else
    fail "a traced process: in state $(awk '{print $3}' /proc/$traced/stat) after heap-inspect"; fi
else
  fail "the stand-in debugger could not trace: $(cat tracer.out)"
fi
kill "$tracer" "$traced" 2>/dev/null

# Another user's process: /proc/PID/maps cannot be read.  heap-inspect runs
# as uid 65534 with a python3 that this user can run, alone on its PATH.
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
userbin=$WORK/user-bin
userpy=""
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null && as_nobody test -r "$scripts/heap-inspect"; then
  chmod o+x "$WORK"
  mkdir -p "$userbin"
  chmod 755 "$userbin"
  for py in "$(readlink "$nogdb/python3")" /usr/bin/python3; do
    ln -sf "$py" "$userbin/python3"
    if env PATH="$userbin" "$(command -v setpriv)" --reuid=65534 --regid=65534 --clear-groups \
         /usr/bin/env python3 -c 'import ctypes' 2>/dev/null; then userpy=$py; break; fi
  done
fi
if [ -n "$userpy" ]; then
  env PATH="$userbin" GDB=/bin/false "$(command -v setpriv)" --reuid=65534 --regid=65534 --clear-groups \
    "$(command -v timeout)" 60 "$scripts/heap-inspect" "$pid" >user.out 2>user.err
  st=$?
  if [ "$st" = 3 ]; then pass "another user's process: exit 3"; else fail "another user's process: exit $st, expected 3"; fi
  one_line user.out user.err "^heap-inspect: cannot read process $pid \(/proc/$pid/maps: Permission denied" \
    "another user's process: one line says it cannot be read"
else
  echo "SKIP real:heap-inspect/another-users-process: needs root, setpriv, and heap-inspect and a python3 that uid 65534 can run"
fi

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
run timeout 90 "$scripts/heap-map" --pid "$pid" -o map.svg >map.log 2>&1
st=$?
cat map.log
if [ "$st" = 0 ] && [ -s map.svg ]; then pass "heap-map --pid writes map.svg"; else fail "heap-map --pid: exit $st"; fi
[ -s map.svg ] && check_svg map.svg "heap-map --pid"

grep -E '^(heap|chunk|#) ' inspect.txt >chunks.txt
run timeout 60 "$scripts/heap-map" --from chunks.txt -o from.svg >from.log 2>&1
st=$?
if [ "$st" = 0 ] && [ -s from.svg ]; then pass "heap-map --from writes from.svg"; else fail "heap-map --from: exit $st"; cat from.log; fi
[ -s from.svg ] && check_svg from.svg "heap-map --from"

timeout 120 "$scripts/heap-map" --from chunks.txt -o pic.png >png.log 2>&1
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
  # no matplotlib (and no pip install): one line naming the package, nothing written
  if [ "$st" = 1 ] && [ ! -e pic.png ] && [ "$(wc -l <png.log)" = 1 ] && grep -q "apt-get install python3-matplotlib" png.log; then
    pass "heap-map -o pic.png without matplotlib: one line naming the package"
  else
    fail "heap-map -o pic.png without matplotlib (exit $st)"; cat png.log
  fi
fi

exec 5>&-           # end of the commands: the program exits
finish
