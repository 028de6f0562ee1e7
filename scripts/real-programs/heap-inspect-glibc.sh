#!/usr/bin/env bash
# Not under the fast profile: it checks glibc's layout of a known sequence.
# heap-inspect --glibc beside heap-inspect: one program (malloc and free of
# blocks of many sizes, ten frees of one size, a shrinking realloc), run with address-space
# randomization off (setarch -R) once on glibc's own malloc and once under
# the preload, stopped in the same place and read from outside.  The main
# arena's part of the two dumps (its heap, top, last remainder, every bin,
# the free totals) must be the same, address for address: glibc's heap and
# ours, side by side.  glibc's tcaches are not read (they are in its TLS), so
# those lines are left out of the comparison.
scripts=$(cd "$(dirname "$0")/.." && pwd)   # before common.bash changes directory
. "$(dirname "$0")/common.bash"

cat >prog.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
int main(void) {
  void *keep[60];
  for (int i = 0; i < 60; i++) keep[i] = malloc(24 + (size_t)i * 70);
  for (int i = 0; i < 60; i += 3) free(keep[i]);
  free(keep[31]);
  /* ten of one size: seven fill its tcache bin, three go to a fastbin */
  void *ten[10];
  for (int i = 0; i < 10; i++) ten[i] = malloc(100);
  for (int i = 0; i < 10; i++) free(ten[i]);
  /* a shrinking realloc: the tail goes where glibc puts it */
  void *r = realloc(malloc(1400), 700);
  void *big = malloc(5000);
  void *small = calloc(3, 40);
  printf("ready %p %p %p\n", big, small, r);
  fflush(stdout);
  char c;
  return read(0, &c, 1) < 0;
}
C
gcc -O1 -o prog prog.c || { echo "FAIL cannot compile the program"; exit 1; }
if ! setarch -R true 2>/dev/null; then
  echo "SKIP real:heap-inspect-glibc/side-by-side: setarch -R (no address randomization) is not allowed here"
  finish
fi
if ! ls /usr/lib/debug/.build-id >/dev/null 2>&1; then
  echo "SKIP real:heap-inspect-glibc/side-by-side: libc6-dbg is not installed (apt-get install libc6-dbg)"
  finish
fi

# Runs prog (with the given env) until it is ready, reads it with
# heap-inspect ARGS, lets it go; the dump in $out.
inspect() { # out env... -- heap-inspect args...
  local out=$1; shift
  local envs=()
  while [ "$1" != "--" ]; do envs+=("$1"); shift; done
  shift
  mkfifo in.fifo
  (timeout 60 setarch -R env "${envs[@]}" ./prog <in.fifo >ready.txt) &
  local runner=$!
  exec 7>in.fifo
  for _ in $(seq 100); do grep -q ready ready.txt 2>/dev/null && break; sleep 0.1; done
  grep -q ready ready.txt 2>/dev/null || {
    echo "FAIL the program did not get ready in 10 s"
    real_failures=$((real_failures + 1))
  }
  local pid
  pid=$(pgrep -n -x prog)
  timeout 60 "$scripts/heap-inspect" "$@" "$pid" >"$out" 2>"$out.err"
  echo "$?" >"$out.status"
  echo x >&7
  exec 7>&-
  wait_exit "$runner" 60
  rm -f in.fifo ready.txt
}

inspect glibc.txt -- --glibc
inspect preload.txt LD_PRELOAD="$LIB" -- 
real_runs=$((real_runs + 1))
if [ "$(cat glibc.txt.status)" = 0 ] && [ "$(cat preload.txt.status)" = 0 ]; then
  echo "ok   heap-inspect --glibc and heap-inspect read the two processes"
else
  echo "FAIL heap-inspect exit status: glibc $(cat glibc.txt.status), preload $(cat preload.txt.status)"
  cat glibc.txt.err preload.txt.err
  real_failures=$((real_failures + 1))
fi
# The main arena's lines: its heap, top, last remainder, bins, free totals
# (the header line names the arena's own address, which differs: glibc's is
# in libc, ours in the library; the thread lines differ as said above).
main_arena() {
  sed -n '/^arena 0 (main arena)/,/^  free: /p' "$1" | grep -v '^arena 0 \|^  threads with a tcache'
  grep '^totals ' "$1"
}
main_arena glibc.txt >glibc-main.txt
main_arena preload.txt >preload-main.txt
if [ "$(wc -l <glibc-main.txt)" -lt 8 ]; then
  echo "FAIL the glibc dump has no main arena listing:"; cat glibc.txt
  real_failures=$((real_failures + 1))
fi
same_file glibc-main.txt preload-main.txt "the main arena under glibc and under the preload (heap, top, bins, totals)"
sed 's/^/  glibc:   /' glibc-main.txt | head -n 12
finish
