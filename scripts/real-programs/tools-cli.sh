#!/usr/bin/env bash
# scripts/heap-inspect and scripts/strace-malloc as command-line tools, on
# programs under the preload:
#   - mmap'd chunks in mappings the kernel merged: merged.c maps 1 MiB of its
#     own and then six malloc(200000) in a row (new mappings go right below
#     the last, and the kernel merges neighbouring anonymous ones), and
#     python3 makes three bytearray(300000); in heap-inspect's output every
#     mmap'd chunk its dump lists must be named on the maps line that holds
#     it: "mmap'd chunk (SIZE bytes)" on a line of its own, "mmap'd chunk
#     (SIZE bytes) at ADDR" in a shared one.  At least one line must hold two
#     chunks or more (SKIP when the kernel merged none), and a line holding a
#     chunk and merged.c's own mapping must end "; rest RANGES: other"
#     (SKIP when they were not merged);
#   - heap-inspect with a bad argument: status 2, nothing on stdout, one line
#     on stderr with the usage and "try --help"; --help: the whole help on
#     stdout (up to its "Exit status" paragraph), nothing on stderr, status 0;
#   - strace-malloc (SKIP without strace): with PROG's stdout redirected to
#     a file, that file is byte-identical to PROG's own output run without
#     the tool; PROG's stderr comes first on stderr and the report after it,
#     one block from its "=== strace-malloc:" line to its "=== end" line;
#     with -o FILE the report (header, calls, end line with the status) is
#     in FILE and stderr is PROG's alone; the loader's anonymous mapping of
#     the library's .bss (address and length from readelf's PT_LOAD
#     segments; SKIP without readelf) carries "<- the library's .bss", and
#     no other line does; a bad option: status 2, one line on stderr.
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, finish

skip() { echo "SKIP real:tools-cli/$1: $2"; }

have_cc=1
command -v cc >/dev/null 2>&1 || have_cc=0

# ------------------------------------------------ heap-inspect: merged chunks

# check_chunks NAME FILE MIN [OWN_ADDR OWN_LEN]: FILE is heap-inspect's
# output; its dump must list at least MIN mmap'd chunks, each named on the
# maps line holding it.  With OWN_ADDR, the line holding the program's own
# mapping, if it holds a chunk too, must say what the rest is.
check_chunks() {
  local name=$1 f=$2 min=$3 own=${4:-} ownlen=${5:-0}
  local -a lines chunks
  local -A held=() named=()   # by maps line start: chunks it holds, chunks named on it
  local c a b len line s e label found bad=0 most=0 k busiest=""
  mapfile -t lines < <(grep -E '^[0-9a-f]+-[0-9a-f]+ .* <- ' "$f")
  mapfile -t chunks < <(sed -nE "s/^  mmap'd chunk 0x[0-9a-f]+ \([0-9]+ [^)]*\), mapping 0x([0-9a-f]+)-0x([0-9a-f]+)$/\1 \2/p" "$f")
  if [ "${#lines[@]}" = 0 ]; then
    fail "$name: heap-inspect printed no annotated maps"; sed 's/^/  | /' "$f" | head -n 20; return
  fi
  if [ "${#chunks[@]}" -lt "$min" ]; then
    fail "$name: the dump lists ${#chunks[@]} mmap'd chunks, the program made at least $min"
    grep -E "^mmap'd chunks|^  mmap'd chunk|busy" "$f" | sed 's/^/  | /'
    return
  fi
  for c in "${chunks[@]}"; do
    a=${c% *}; b=${c#* }
    len=$((16#$b - 16#$a))
    found=""
    for line in "${lines[@]}"; do
      s=${line%%-*}; e=${line#*-}; e=${e%% *}
      if [ $((16#$s)) -le $((16#$a)) ] && [ $((16#$a)) -lt $((16#$e)) ]; then found=$line; break; fi
    done
    label=${found#* <- }
    [ -n "$found" ] && held[$s]=$((${held[$s]:-0} + 1))
    if [ -z "$found" ]; then
      echo "  mmap'd chunk at 0x$a: no maps line holds it"; bad=$((bad + 1))
    elif [ "$s" = "$a" ] && [ "$e" = "$b" ] && [[ $label == "mmap'd chunk ($len bytes)"* ]]; then
      named[$s]=$((${named[$s]:-0} + 1))
    elif [[ $label == *"mmap'd chunk ($len bytes) at 0x$a"* ]]; then
      named[$s]=$((${named[$s]:-0} + 1))
    else
      echo "  mmap'd chunk at 0x$a ($len bytes) not named on its line:"; echo "  | $found"
      bad=$((bad + 1))
    fi
  done
  if [ "$bad" = 0 ]; then
    pass "$name: heap-inspect names all ${#chunks[@]} mmap'd chunks on their maps lines"
  else
    fail "$name: $bad of ${#chunks[@]} mmap'd chunks not named on their maps lines"
  fi
  for k in "${!held[@]}"; do [ "${held[$k]}" -gt "$most" ] && most=${held[$k]} && busiest=$k; done
  if [ "$most" -ge 2 ] && [ "${named[$busiest]:-0}" = "$most" ]; then
    pass "$name: a maps line holds $most recorded mmap'd chunks (merged by the kernel), each named"
  elif [ "$most" -ge 2 ]; then
    fail "$name: a maps line holds $most recorded mmap'd chunks (merged by the kernel), ${named[$busiest]:-0} named:"
    grep -E "^$busiest-" "$f" | sed 's/^/  | /'
  else
    skip "$name/merged" "no maps line held two recorded mmap'd chunks (the kernel kept them apart), so merging was not tested"
  fi
  [ -n "$own" ] || return
  found=""
  for line in "${lines[@]}"; do
    s=${line%%-*}; e=${line#*-}; e=${e%% *}
    if [ $((16#$s)) -le $((own)) ] && [ $((own + ownlen)) -le $((16#$e)) ]; then found=$line; break; fi
  done
  if [ -z "$found" ] || [ -z "${held[$s]:-}" ]; then
    skip "$name/rest" "the program's own mapping at $own was not merged with an mmap'd chunk"
  elif [[ ${found#* <- } =~ \;\ rest\ (0x[0-9a-f]+-0x[0-9a-f]+(,\ )?)+:\ other$ ]]; then
    pass "$name: the line holding chunks and the program's own mapping ends \"; rest ...: other\""
  else
    fail "$name: the line holding chunks and the program's own mapping does not say what the rest is:"
    echo "  | $found"
  fi
}

if [ "$have_cc" = 1 ]; then
  cat >merged.c <<'C'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
int main(void) {
  char *own = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  void *p[6];
  if (own == MAP_FAILED) return 1;
  own[0] = 1;
  for (int i = 0; i < 6; i++) {
    if (!(p[i] = malloc(200000))) return 1;
    memset(p[i], i, 200000);
  }
  printf("ready %d %p %d\n", (int)getpid(), (void *)own, 1 << 20);
  fflush(stdout);
  pause();                 /* until the test kills it */
  return 0;
}
C
  if cc -O1 -o merged merged.c; then
    LD_PRELOAD="$LIB" ./merged >merged.out 2>merged.err &
    pid=$!
    pids+=("$pid")
    if wait_for merged.out '^ready' 100; then
      read -r _ _ own ownlen <merged.out
      "$scripts/heap-inspect" "$pid" >merged.hi 2>merged.hi.err
      st=$?
      if [ "$st" = 0 ]; then
        check_chunks "merged.c" merged.hi 6 "$own" "$ownlen"
      else
        fail "heap-inspect on merged.c: status $st: $(head -n 1 merged.hi.err)"
      fi
    else
      fail "merged.c did not get ready: $(cat merged.out merged.err)"
    fi
    kill "$pid" 2>/dev/null
  else
    fail "merged.c does not compile"
  fi
else
  skip "merged.c" "no C compiler (cc)"
fi

if command -v python3 >/dev/null 2>&1; then
  LD_PRELOAD="$LIB" python3 -c '
import os, signal, sys
a = [bytearray(300000) for _ in range(3)]
print("ready", os.getpid(), flush=True)
signal.pause()' >py.out 2>py.err &
  pids+=("$!")
  if wait_for py.out '^ready' 150; then
    read -r _ pypid <py.out
    pids+=("$pypid")       # python3 may be a wrapper that runs the real one
    "$scripts/heap-inspect" "$pypid" >py.hi 2>py.hi.err
    st=$?
    if [ "$st" = 0 ]; then
      check_chunks "python3 bytearray(300000) x3" py.hi 3
    else
      fail "heap-inspect on python3: status $st: $(head -n 1 py.hi.err)"
    fi
  else
    fail "python3 did not get ready: $(cat py.out py.err)"
  fi
else
  skip "python3" "python3 is not installed"
fi

# ------------------------------------------------ heap-inspect: command line

# bad_usage TOOL WHAT ARGS...: status 2, nothing on stdout, exactly one line
# on stderr, naming the usage and --help
bad_usage() {
  local tool=$1 what=$2 st
  shift 2
  "$tool" "$@" >bad.out 2>bad.err
  st=$?
  if [ "$st" = 2 ] && [ ! -s bad.out ] && [ "$(wc -l <bad.err)" = 1 ] \
      && grep -q 'usage: ' bad.err && grep -q 'try --help' bad.err; then
    pass "$what: status 2, one line on stderr: $(cat bad.err)"
  else
    fail "$what: expected status 2, no stdout, one line on stderr with the usage and 'try --help'; got status $st,"
    echo "  stdout ($(wc -l <bad.out) lines):"; head -n 5 bad.out | sed 's/^/  | /'
    echo "  stderr ($(wc -l <bad.err) lines):"; head -n 5 bad.err | sed 's/^/  | /'
  fi
}
hi=$scripts/heap-inspect
bad_usage "$hi" "heap-inspect --bogus 1" --bogus 1
bad_usage "$hi" "heap-inspect (no PID)"
bad_usage "$hi" "heap-inspect --timeout (no value) 1" 1 --timeout
bad_usage "$hi" "heap-inspect 1 2" 1 2
"$hi" --help >help.out 2>help.err
st=$?
if [ "$st" = 0 ] && [ ! -s help.err ] && grep -q '^usage: scripts/heap-inspect' help.out \
    && grep -q -- '--timeout S' help.out && grep -q '^Exit status' help.out; then
  pass "heap-inspect --help: the whole help on stdout ($(wc -l <help.out) lines), status 0"
else
  fail "heap-inspect --help: status $st, $(wc -l <help.out) lines on stdout, $(wc -l <help.err) on stderr"
fi

# ------------------------------------------------------------ strace-malloc

sm=$scripts/strace-malloc
bad_usage "$sm" "strace-malloc --bogus true" --bogus true
bad_usage "$sm" "strace-malloc -o (no file)" -o
if ! command -v strace >/dev/null 2>&1; then
  skip "strace-malloc" "strace is not installed (apt-get install strace; scripts/setup installs it)"
  finish
fi

# A program writing to stdout (lines, and a last one without a newline) and
# to stderr, with one mmap'd chunk: its stdout must be the same with and
# without the tool around it.
if command -v python3 >/dev/null 2>&1; then
  prog=(python3 -c '
import sys
big = bytearray(300000)
for i in range(3000):
    sys.stdout.write("line %d of the program\n" % i)
sys.stderr.write("the program on stderr\n")
sys.stdout.write("no newline at the end")')
else
  prog=(sh -c 'i=0; while [ $i -lt 3000 ]; do echo "line $i of the program"; i=$((i + 1)); done
echo "the program on stderr" >&2; printf "no newline at the end"')
fi
LD_PRELOAD="$LIB" "${prog[@]}" >own.out 2>own.err
LIB="$LIB" "$sm" "${prog[@]}" >sm.out 2>sm.err
st=$?
if [ "$st" = 0 ] && cmp -s own.out sm.out; then
  pass "strace-malloc PROG > FILE: FILE is PROG's own output, byte for byte ($(wc -c <sm.out) bytes)"
else
  fail "strace-malloc PROG > FILE: status $st; FILE differs from PROG's own output: $(cmp own.out sm.out 2>&1 | head -n 1)"
fi
# stderr: PROG's own, then the report as one block, ending the stream
n=$(wc -l <own.err)
first=$(grep -n '^=== strace-malloc: ' sm.err | head -n 1 | cut -d: -f1)
last=$(grep -n '^=== end of strace-malloc report: ' sm.err | tail -n 1 | cut -d: -f1)
if ! head -n "$n" sm.err | cmp -s - own.err || [ "${first:-0}" != $((n + 1)) ] \
    || [ "${last:-0}" != "$(wc -l <sm.err)" ]; then
  fail "strace-malloc: stderr is not PROG's stderr followed by the report (report lines ${first:-none}-${last:-none}, PROG's stderr $n lines):"
  head -n 8 sm.err | sed 's/^/  | /'
elif sed -n "$((n + 2)),$((last - 1))p" sm.err | grep -Eq '^=== strace-malloc: |^[^=0-9]'; then
  fail "strace-malloc: the report on stderr is not one block of calls:"
  sed -n "$((n + 2)),$((last - 1))p" sm.err | grep -E '^=== strace-malloc: |^[^=0-9]' | head -n 5 | sed 's/^/  | /'
else
  pass "strace-malloc: PROG's stderr, then the report as one block (lines $first-$last of stderr)"
fi

: >report.txt
LIB="$LIB" "$sm" -o report.txt "${prog[@]}" >o.out 2>o.err
st=$?
if [ "$st" = 0 ] && cmp -s own.out o.out && cmp -s own.err o.err; then
  pass "strace-malloc -o FILE: stdout and stderr are PROG's alone"
else
  fail "strace-malloc -o FILE: status $st; stdout $(cmp -s own.out o.out && echo same || echo differs), stderr $(cmp -s own.err o.err && echo same || echo differs) from PROG's own"
  head -n 5 o.err | sed 's/^/  | /'
fi
if head -n 1 report.txt | grep -q "^=== strace-malloc: memory system calls of ${prog[0]} under LD_PRELOAD=" \
    && tail -n 1 report.txt | grep -q "^=== end of strace-malloc report: ${prog[0]} exited with status 0$" \
    && grep -Eq '^[0-9]+ +brk\(' report.txt && grep -Eq '^[0-9]+ +mmap\(NULL, [0-9]+, PROT_READ\|PROT_WRITE, MAP_PRIVATE\|MAP_ANONYMOUS, -1, 0\) += 0x' report.txt \
    && grep -Eq '^[0-9]+ +munmap\(' report.txt; then
  pass "strace-malloc -o FILE: FILE has the header, the calls (brk, mmap, munmap; $(grep -Ec '^[0-9]+ ' report.txt) lines) and the end line with the status"
else
  fail "strace-malloc -o FILE: FILE lacks the header, the calls or the end line:"
  { head -n 3 report.txt; echo ...; tail -n 3 report.txt; } | sed 's/^/  | /'
fi

# The library's .bss: the last zero part of its PT_LOAD segments, mapped
# anonymously (MAP_FIXED) by the loader; length = p_vaddr + p_memsz -
# page_up(p_vaddr + p_filesz).
if command -v readelf >/dev/null 2>&1; then
  page=$(getconf PAGESIZE)
  bss_len=""
  while read -r _ _ vaddr _ filesz memsz _; do
    z=$(((vaddr + filesz + page - 1) / page * page))
    [ $((vaddr + memsz)) -gt "$z" ] && bss_len=$((vaddr + memsz - z))
  done < <(readelf -lW "$LIB_REAL" | awk '$1 == "LOAD"')
  if [ -z "$bss_len" ]; then
    skip "strace-malloc/bss" "$(basename "$LIB_REAL") has no .bss past its file pages, so the loader maps none"
  else
    ere="^[0-9]+ +mmap\\(0x[0-9a-f]+, $bss_len, PROT_READ\\|PROT_WRITE, MAP_PRIVATE\\|MAP_FIXED\\|MAP_ANONYMOUS, -1, 0\\) += 0x[0-9a-f]+"
    if grep -Eq "$ere  <- the library's \\.bss \\(.*\\): mapped by the loader, not by malloc$" report.txt; then
      pass "strace-malloc: the loader's mapping of the library's .bss ($bss_len bytes) is explained"
    else
      fail "strace-malloc: the loader's mapping of the library's .bss ($bss_len bytes) is not explained:"
      { grep -E "$ere" report.txt || echo "(no such line)"; } | sed 's/^/  | /'
    fi
    # python3 may be a wrapper that runs the real one: the library is
    # loaded once per program run, each time with its .bss
    explained=$(grep -c ' <- ' report.txt)
    if [ "$explained" -ge 1 ] && [ "$(grep -Ec "$ere  <- the library's \\.bss " report.txt)" = "$explained" ]; then
      pass "strace-malloc: without --all, the library's .bss is the only explained call ($explained line(s))"
    else
      fail "strace-malloc: without --all, $explained explained lines, not all the library's .bss:"
      grep ' <- ' report.txt | grep -Ev "$ere  <- the library's \\.bss " | head -n 5 | sed 's/^/  | /'
    fi
    # --all: the files' mappings too, and every library's .bss explained
    : >all.txt
    LIB="$LIB" "$sm" --all -o all.txt /bin/true >all.out 2>all.err
    if grep -Eq "$ere  <- the library's \\.bss " all.txt && grep -q ' <- the \.bss of libc\.so' all.txt \
        && grep -Eq "^[0-9]+ +mmap\\(.*, [0-9]+<$LIB_REAL>, " all.txt && ! grep -q ' hidden ' all.txt \
        && grep -q '^=== [0-9]* mmap calls* of files hidden' report.txt; then
      pass "strace-malloc --all: the files' mappings listed, libc's .bss explained too; hidden and counted without it"
    else
      fail "strace-malloc --all: the files' mappings or libc's explained .bss missing (or nothing hidden without --all):"
      grep -E ' <- |hidden' all.txt report.txt | head -n 5 | sed 's/^/  | /'
    fi
  fi
else
  skip "strace-malloc/bss" "readelf is not installed (binutils): the .bss's length is not known to the test"
fi

finish
