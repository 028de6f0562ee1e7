#!/usr/bin/env bash
# The recording (PTMALLOC_RS_RECORD=FILE, docs/record-format.md) of programs
# written here, read back with scripts/heaplib/record.py:
#   - every call is recorded: between two marker calls, the main thread's
#     call records are exactly the calls the program logged itself (kind,
#     arguments, result), in order, and no record is missing (in this
#     profile, and also in `hardened` when this one is the default);
#   - the records match the heap: a random mix of malloc, free, calloc,
#     realloc, memalign and malloc_trim in four threads, replayed to its end,
#     gives the program's own malloc_rs_dump_chunks chunk for chunk (in this
#     profile, and also in `hardened` when this one is the default);
#   - recording moves nothing: a run with and one without it (address-space
#     randomization off) allocate at the same addresses, thread heaps and
#     mmap'd chunks included;
#   - fork: with %p in FILE the child writes a file of its own, whose
#     header has its pid and whose calls are the child's; without %p the
#     child records nothing and the parent's file has none of its calls;
#   - a detected misuse aborts, and the calls before it are in the file
#     (they fit in one buffer, which only the abort's flush writes out);
#   - thread_churn, dump_interrupted and fork_threads (c_tests/) pass with a
#     recording on: 3000 threads' buffers do not pile up, a signal
#     handler's dump inside a record does not hang, forks in threads work;
#   - a program that makes no call still leaves the header;
#   - a file that cannot be opened is said in one line, and the program
#     runs unrecorded.
scripts=$(cd "$(dirname "$0")/.." && pwd)
. "$(dirname "$0")/common.bash"
rec() { python3 - "$scripts" "$@"; }

cat >calls.c <<'EOF'
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
void malloc_rs_dump_chunks(int fd);
/* The calls between the markers (malloc_trim(12345) .. mallopt(-777, 1)),
   logged as "kind a0 a1 result" and written out after the end marker. */
static char logbuf[1 << 20];
static size_t loglen;
#define LOG(k, a0, a1, r) \
  (loglen += snprintf(logbuf + loglen, sizeof logbuf - loglen, "%d %lu %lu %lu\n", k, \
                      (unsigned long)(a0), (unsigned long)(a1), (unsigned long)(r)))
static void *thread_main(void *arg) {
  void *p[64];
  for (int i = 0; i < 64; i++) p[i] = malloc(16 + 40 * i);
  for (int i = 0; i < 64; i += 2) free(p[i]);
  return arg;
}
int main(int argc, char **argv) {
  const char *mode = argc > 1 ? argv[1] : "calls";
  void *keep[400];
  int n = 0;
  if (strcmp(mode, "abort") == 0) {
    for (int i = 0; i < 100; i++) keep[n++] = malloc(24);
    void *p = malloc(40);
    free(p);
    free(p);               /* a double free the tcache catches */
    return 0;
  }
  malloc_trim(12345);
  for (int i = 0; i < 300; i++) {
    size_t sz = (size_t)(i * 37) % 3000 + (i % 50 == 0 ? 200000 : 0);
    void *p;
    switch (i % 6) {
    case 0: p = malloc(sz); LOG(1, sz, 0, p); break;
    case 1: p = calloc(3, sz / 3 + 1); LOG(3, 3, sz / 3 + 1, p); break;
    case 2: p = memalign(64, sz); LOG(5, 64, sz, p); break;
    case 3: {
      void *q = NULL;
      int r = posix_memalign(&q, 128, sz);
      p = r == 0 ? q : NULL;
      LOG(7, 128, sz, p);
      break;
    }
    default: p = malloc(sz); LOG(1, sz, 0, p); break;
    }
    if (i % 3 == 0 && n > 0) {
      void *q = realloc(keep[n - 1], sz + 100);
      LOG(4, keep[n - 1], sz + 100, q);
      keep[n - 1] = q;
    }
    if (i % 4 == 1) { free(p); LOG(2, p, 0, 0); } else keep[n++] = p;
  }
  for (int i = 0; i < n; i += 2) { free(keep[i]); LOG(2, keep[i], 0, 0); }
  mallopt(-777, 1);
  FILE *f = fopen("calls.log", "w");
  fwrite(logbuf, 1, loglen, f);
  fclose(f);
  if (strcmp(mode, "fork") == 0) {
    pid_t c = fork();
    if (c == 0) {
      for (int i = 0; i < 10; i++) free(malloc(1000 + i));
      printf("child %d\n", (int)getpid());
      exit(0);   /* not _exit: that skips the flush at exit (see the README) */
    }
    waitpid(c, NULL, 0);
  }
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);
  void *big = malloc(300000);
  printf("%p\n", big);
  for (int i = 1; i < n; i += 2) printf("%p\n", keep[i]);
  fflush(stdout);
  malloc_rs_dump_chunks(1);
  return 0;
}
EOF
cat >mix.c <<'EOF'
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
void malloc_rs_dump_chunks(int fd);
static unsigned long long rnd(unsigned long long *s) { *s ^= *s << 13; *s ^= *s >> 7; *s ^= *s << 17; return *s; }
static void *work(void *arg) {
  unsigned long long s = (unsigned long long)(size_t)arg * 2654435761ULL + 1;
  void *p[512] = {0};
  for (int i = 0; i < 20000; i++) {
    int k = rnd(&s) % 512;
    unsigned r = rnd(&s) % 100;
    size_t n = r < 60 ? rnd(&s) % 200 : r < 90 ? rnd(&s) % 5000 : r < 98 ? rnd(&s) % 70000 : rnd(&s) % 300000;
    if (p[k]) {
      if (r % 7 == 0) { void *q = realloc(p[k], n); if (q || n == 0) p[k] = q; }
      else { free(p[k]); p[k] = 0; }
    } else {
      int c = rnd(&s) % 10;
      p[k] = c == 0 ? calloc(1, n) : c == 1 ? memalign(64 << (rnd(&s) % 4), n) : malloc(n);
    }
  }
  for (int k = 0; k < 512; k += 3) free(p[k]);
  if (arg == 0) malloc_trim(0);
  return 0;
}
int main(void) {
  pthread_t t[4];
  for (int i = 1; i < 4; i++) pthread_create(&t[i], 0, work, (void *)(size_t)i);
  work(0);
  for (int i = 1; i < 4; i++) pthread_join(t[i], 0);
  malloc_rs_dump_chunks(2);
  return 0;
}
EOF
# -O0: the abort's double free must stay a double free.
if ! gcc -O0 -pthread -o calls calls.c -L"$(dirname "$LIB")" -l:"$(basename "$LIB")" 2>cc.log ||
   ! gcc -O1 -pthread -o mix mix.c -L"$(dirname "$LIB")" -l:"$(basename "$LIB")" 2>>cc.log; then
  fail "compiling the test programs:"; cat cc.log; finish
fi
# Every run ends within 180 s, saying so (status 124) if it had to be stopped.
run() { timeout 180 env LD_PRELOAD="$LIB" LD_LIBRARY_PATH="$(dirname "$LIB")" "$@"; }

# --- every call recorded, in order, with its arguments and result
every_call() { # profile
if run env PTMALLOC_RS_PROFILE="$1" PTMALLOC_RS_RECORD=calls.rec ./calls calls >calls.out 2>calls.err && [ -s calls.rec ]; then
  pass "PTMALLOC_RS_RECORD=calls.rec ($1): $(wc -c <calls.rec) bytes"
else
  fail "the recorded run"; cat calls.err
fi
rec calls.rec calls.log >calls.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
r = record.read(sys.argv[2])
logged = [tuple(int(x) for x in l.split()) for l in open(sys.argv[3])]
calls = sorted(r.calls, key=lambda c: c.seq)
seqs = [c.seq for c in calls if not c.unfinished]
gaps = [n for n in r.notes if "missing" in n]
start = next(i for i, c in enumerate(calls) if c.kind == 11 and c.a0 == 12345)
tid = calls[start].tid
end = next(i for i, c in enumerate(calls) if i > start and c.kind == 10 and c.a0 == (-777) % (1 << 64))
got = [c for c in calls[start + 1:end] if c.tid == tid]
got = [(c.kind, c.a0, c.a1, c.a2) for c in got]
print("calls logged by the program: %d, recorded between the markers: %d (%d calls in all, no record missing: %s)"
      % (len(logged), len(got), len(seqs), not gaps))
bad = [(i, a, b) for i, (a, b) in enumerate(zip(logged, got)) if a != b]
for i, a, b in bad[:5]:
    print("  call %d: program %s, record %s" % (i, a, b))
sys.exit(0 if not gaps and len(logged) == len(got) and not bad and len(logged) > 300 else 1)
PY
if [ $? = 0 ]; then pass "every call recorded ($1): $(head -n 1 calls.check)"; else fail "every call recorded ($1):"; sed 's/^/  | /' calls.check; fi
}

# --- the replay of a four-thread mix ends in the program's own dump
replays() { # profile
  if ! run env PTMALLOC_RS_PROFILE="$1" PTMALLOC_RS_RECORD=mix.rec ./mix >/dev/null 2>mix.dump; then
    fail "mix ($1): the recorded run"; tail -n 5 mix.dump; return
  fi
  rec mix.rec mix.dump >mix.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
st = record.replay(record.read(sys.argv[2]))
want = [l.split()[:7] for l in open(sys.argv[3]) if l.startswith("chunk ")]
got = [l.split()[:7] for l in st.chunk_lines() if l.startswith("chunk ")]
# by address, sizes and states (flags apart)
w = {int(c[3], 16): (int(c[4]), c[6]) for c in want}
g = {int(c[3], 16): (int(c[4]), c[6]) for c in got}
diff = sorted(a for a in set(w) | set(g) if w.get(a) != g.get(a))
print("%d chunks in the dump, %d in the replay, %d differ" % (len(w), len(g), len(diff)))
for a in diff[:5]:
    print("  %#x: dump %s, replay %s" % (a, w.get(a), g.get(a)))
sys.exit(0 if w and not diff else 1)
PY
  if [ $? = 0 ]; then pass "mix, four threads ($1): $(head -n 1 mix.check)"; else fail "mix ($1):"; sed 's/^/  | /' mix.check; fi
}
# Both in the profile run-tests chose, and in hardened when that is the
# default (run-tests runs these scripts in the default and fast profiles).
profiles=${PTMALLOC_RS_PROFILE:-glibc hardened}
for p in $profiles; do
  every_call "$p"
  replays "$p"
done

# --- recording moves nothing
if command -v setarch >/dev/null 2>&1 && setarch -R true 2>/dev/null; then
  run setarch -R ./calls calls >plain.out 2>&1
  run env PTMALLOC_RS_RECORD=again.rec setarch -R ./calls calls >recorded.out 2>&1
  if [ -s plain.out ] && cmp -s plain.out recorded.out && grep -q '^heap 1 ' plain.out; then
    pass "the same addresses with and without a recording ($(grep -c '^chunk ' plain.out) chunks, a thread heap, an mmap'd chunk)"
  else
    fail "addresses with and without a recording differ:"; diff plain.out recorded.out | head -n 8
  fi
else
  echo "SKIP real:record/addresses: setarch -R (no address-space randomization) is not available here"
fi

# --- fork
run env PTMALLOC_RS_RECORD='fork.%p.rec' ./calls fork >fork.out 2>fork.err
child=$(sed -n 's/^child \([0-9]*\)$/\1/p' fork.out)
rec "$child" fork.*.rec >fork.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
child = int(sys.argv[2])
files = sys.argv[3:]
if len(files) != 2:
    sys.exit("%d files: %s (want the parent's and the child's)" % (len(files), files))
p, c = [record.read(f) for f in sorted(files, key=lambda f: f == "fork.%d.rec" % child)]
mine = [x for x in c.calls if not x.unfinished]
small = [x for x in mine if x.kind == 1 and 1000 <= x.a0 < 1010]
print("child %d: header pid %d, %d calls, %d of its 10 mallocs; the parent's file: %d calls, %d by the child"
      % (child, c.header.pid, len(mine), len(small), len(p.calls), sum(1 for x in p.calls if x.tid == child)))
ok = c.header.pid == child and len(small) == 10 and all(x.tid == child for x in mine)
ok = ok and p.header.pid != child and not any(x.tid == child for x in p.calls)
sys.exit(0 if ok else 1)
PY
if [ $? = 0 ]; then pass "fork with %p: $(head -n 1 fork.check)"; else fail "fork with %p:"; sed 's/^/  | /' fork.check; ls fork.*; fi
run env PTMALLOC_RS_RECORD=one.rec ./calls fork >one.out 2>&1
child=$(sed -n 's/^child \([0-9]*\)$/\1/p' one.out)
rec one.rec "$child" >one.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
r = record.read(sys.argv[2])
child = int(sys.argv[3])
n = sum(1 for x in r.calls if x.tid == child)
print("%d calls in the file, %d by the child %d" % (len(r.calls), n, child))
sys.exit(0 if n == 0 and len(r.calls) > 300 else 1)
PY
if [ $? = 0 ]; then pass "fork without %p: $(head -n 1 one.check)"; else fail "fork without %p:"; sed 's/^/  | /' one.check; fi

# --- an abort keeps the calls before it
run env PTMALLOC_RS_RECORD=abort.rec ./calls abort >abort.out 2>abort.err
st=$?
rec abort.rec >abort.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
r = record.read(sys.argv[2])
n = sum(1 for x in r.calls if x.kind == 1 and x.a0 == 24)
print("%d of the 100 mallocs before the double free are in the file" % n)
sys.exit(0 if n == 100 else 1)
PY
if [ "$st" = 134 ] && grep -q 'double free detected in tcache 2' abort.err && [ $? = 0 ] && grep -q '^100 of' abort.check; then
  pass "abort (status $st, glibc's message): $(head -n 1 abort.check)"
else
  fail "abort: status $st"; cat abort.err abort.check
fi

# --- C tests of threads, signals and forks pass as well with a recording on
# (a thread's exit frees its buffer; a signal handler's dump or malloc in
# the middle of a record never waits for the thread itself)
ctests=$(cd "$scripts/../c_tests" && pwd)
for t in thread_churn dump_interrupted fork_threads; do
  if ! gcc -std=gnu11 -O2 -pthread -o "$t" "$ctests/$t.c" -ldl 2>"$t.cc"; then
    fail "$t: does not compile"; cat "$t.cc"; continue
  fi
  mkdir -p "rec.$t"
  run env PTMALLOC_RS_RECORD="rec.$t/%p.rec" "./$t" >"$t.out" 2>&1
  st=$?
  if [ "$st" = 0 ]; then
    pass "$t with a recording on ($(ls "rec.$t" | wc -l) file(s), $(du -sk "rec.$t" | cut -f1) KiB)"
  else
    fail "$t with a recording on: status $st"; tail -n 5 "$t.out"
  fi
  rm -rf "rec.$t"
done

# --- a program that makes no call of the malloc family still leaves a
# recording: the header alone
run env PTMALLOC_RS_RECORD=none.rec /bin/true
rec none.rec >none.check 2>&1 <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
r = record.read(sys.argv[2])
print("header of pid %d, profile %s, %d calls" % (r.header.pid, r.header.as_dict()["profile_name"], len(r.calls)))
PY
if [ $? = 0 ] && [ "$(wc -c <none.rec)" = 256 ]; then pass "no call: $(cat none.check)"; else fail "no call:"; cat none.check; fi

# --- a file that cannot be opened
run env PTMALLOC_RS_RECORD=/nonexistent/dir/x.rec ./calls calls >bad.out 2>bad.err
st=$?
if [ "$st" = 0 ] && [ "$(grep -c 'ptmalloc-rs: PTMALLOC_RS_RECORD' bad.err)" = 1 ] && grep -q 'cannot open /nonexistent/dir/x.rec' bad.err; then
  pass "an unusable file: one line ($(head -n 1 bad.err)), the program runs on"
else
  fail "an unusable file: status $st"; cat bad.err
fi
finish
