#!/usr/bin/env bash
# Not under the fast profile: it chooses its profiles itself (--profile).
# make install, into a temporary PREFIX, and the installed tree used as a
# user would: PATH=PREFIX/bin:/usr/bin:/bin, from another directory (/),
# with no LIB, PTMALLOC_RS_LIB or LD_PRELOAD in the environment.
#   make install-files PREFIX=... LIB=$LIB (make install without its cargo
#     build) puts the library, bin/ptmalloc-rs and the inspection scripts in
#     place (copies of the repository's), and make -n install builds first;
#   ptmalloc-rs --help, --version (the installed library, its sha256);
#     PROG runs with the installed library mapped (cat /proc/self/maps),
#     put in front of an LD_PRELOAD already set; stdin, stdout, exit status
#     and a killing signal are PROG's (it is exec'd: the same pid);
#     --profile fast / hardened / default show in the heap dump that
#     --dump-at-exit prints; --trace prints the allocator's lines;
#     --record passes its FILE (%p untouched) in PTMALLOC_RS_RECORD;
#     --lib and PTMALLOC_RS_LIB choose another library; a bad profile, a
#     bad option, a missing library and a missing program each fail in
#     one or two lines with their status;
#   the installed heap-inspect, heap-map and strace-malloc (and heap-explain
#     and heap-timeline when scripts/ has them) answer --help; strace-malloc
#     preloads the installed library; heap-inspect and heap-map read a live
#     process started with ptmalloc-rs;
#   DESTDIR=STAGE puts everything under STAGE/PREFIX and nothing at PREFIX,
#     the staged tree works where it is, and make uninstall empties it.
set -u
repo=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, finish

pass() { real_runs=$((real_runs + 1)); echo "ok   $1"; }
fail() { real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "FAIL $1"; }
# show FILE...: the first lines of each, indented (after a FAIL)
show() { local f; for f in "$@"; do head -n 8 "$f" | sed "s#^#  $(basename "$f")| #"; done; }
# has FILE ERE WHAT: FILE has a line matching ERE
has() {
  if grep -Eq -- "$2" "$1"; then pass "$3"; else
    fail "$3: no line of $(basename "$1") matches /$2/"; show "$1"; fi
}
# status_is GOT WANT WHAT
status_is() {
  if [ "$1" = "$2" ]; then pass "$3"; else fail "$3: status $1, expected $2"; fi
}

if ! command -v make >/dev/null 2>&1; then
  echo "SKIP real:install: make is not installed"
  exit 77
fi

prefix=$WORK/prefix
inst_lib=$prefix/lib/libptmalloc_rs.so
tools=(heap-inspect heap-map strace-malloc)
for t in heap-explain heap-timeline; do
  [ -f "$repo/scripts/$t" ] && tools+=("$t")
done

# The user's PATH: the installed bin, then the system's.  heap-inspect and
# heap-map are `#!/usr/bin/env python3`: if the system has no python3 there,
# the python3 of this PATH is added (its real executable, not a shim).
upath=$prefix/bin:/usr/bin:/bin
if ! [ -x /usr/bin/python3 ] && ! [ -x /bin/python3 ] && command -v python3 >/dev/null 2>&1; then
  mkdir -p "$WORK/py"
  ln -s "$(python3 -c 'import sys; print(sys.executable)')" "$WORK/py/python3"
  upath=$upath:$WORK/py
fi
# u CMD ARGS...: CMD as a user runs it, from /, with the installed tools first
u() { (cd / && env -u LIB -u PTMALLOC_RS_LIB -u LD_PRELOAD -u PTMALLOC_RS_PROFILE \
  -u PTMALLOC_RS_TRACE -u PTMALLOC_RS_RECORD -u PTMALLOC_RS_DUMP_AT_EXIT PATH="$upath" "$@"); }

# mk ARGS...: make in the repository, without what a make test above us
# passes down (MAKEFLAGS may hold its command line's DESTDIR=..., say)
mk() { env -u MAKEFLAGS -u MFLAGS -u MAKELEVEL make --no-print-directory -C "$repo" "$@"; }

# --- make install
if mk install-files PREFIX="$prefix" DESTDIR= LIB="$LIB" >make.out 2>&1; then
  pass "make install-files PREFIX=\$tmp LIB=\$LIB"
else
  fail "make install-files PREFIX=\$tmp LIB=\$LIB failed:"; show make.out
fi
same_file "$LIB" "$inst_lib" "the installed library and \$LIB"
same_file "$repo/scripts/ptmalloc-rs" "$prefix/bin/ptmalloc-rs" "bin/ptmalloc-rs and scripts/ptmalloc-rs"
for t in "${tools[@]}"; do
  if [ -x "$prefix/bin/$t" ]; then pass "bin/$t installed"; else fail "bin/$t: not installed"; fi
  same_file "$repo/scripts/$t" "$prefix/lib/ptmalloc-rs/$t" "lib/ptmalloc-rs/$t and scripts/$t"
done
for f in "$repo"/scripts/heaplib/*.py "$repo"/scripts/heaplib/layout.txt; do
  same_file "$f" "$prefix/lib/ptmalloc-rs/heaplib/$(basename "$f")" "heaplib/$(basename "$f") installed"
done
# make install builds first; install-files is the same without the build.
mk -n install PREFIX="$prefix" DESTDIR= >make-n.out 2>&1
if awk '/cargo build --release/ { b = NR } /install-files/ && b { ok = 1 } END { exit !ok }' make-n.out; then
  pass "make install runs cargo build, then install-files"
else
  fail "make -n install: no cargo build before install-files"; show make-n.out
fi

# --- ptmalloc-rs
u ptmalloc-rs --help >help.out 2>help.err
status_is $? 0 "ptmalloc-rs --help"
has help.out '^usage: ptmalloc-rs .*PROG' "ptmalloc-rs --help prints the usage"

u ptmalloc-rs --version >version.out 2>&1
status_is $? 0 "ptmalloc-rs --version"
has version.out "^library: $inst_lib\$" "ptmalloc-rs --version names the installed library"
sum=$(sha256sum "$LIB" | cut -c1-16)
has version.out "sha256 $sum" "ptmalloc-rs --version gives the library's sha256 prefix"

inst_real=$(readlink -f "$inst_lib")
u ptmalloc-rs cat /proc/self/maps >maps.out 2>maps.err
status_is $? 0 "ptmalloc-rs cat /proc/self/maps"
has maps.out " $inst_real\$" "the installed library is mapped in the program"
if grep -qF "$LIB_REAL" maps.out; then fail "\$LIB itself is mapped too"; fi

u env LD_PRELOAD=libm.so.6 "$prefix/bin/ptmalloc-rs" sh -c 'printf "%s\n" "$LD_PRELOAD"' >preload.out 2>preload.err
if [ "$(cat preload.out)" = "$inst_lib libm.so.6" ] && [ ! -s preload.err ]; then
  pass "the library goes in front of an LD_PRELOAD already set"
else
  fail "LD_PRELOAD=libm.so.6 ptmalloc-rs: LD_PRELOAD became '$(cat preload.out)'"; show preload.err
fi

u ptmalloc-rs sh -c 'exit 7'
status_is $? 7 "ptmalloc-rs sh -c 'exit 7': the program's status"
st=$(u ptmalloc-rs sh -c 'kill -TERM $$' 2>/dev/null; echo $?)   # (no "Terminated" from bash)
status_is "$st" 143 "ptmalloc-rs sh -c 'kill -TERM \$\$': the program's signal"
out=$(printf 'line one\nline two\n' | u ptmalloc-rs sort -r)
if [ "$out" = $'line two\nline one' ]; then pass "stdin and stdout are the program's"; else
  fail "printf ... | ptmalloc-rs sort -r printed '$out'"; fi
# A shell prints its pid and execs the wrapper, which runs sh printing its
# own: the same pid only if the wrapper exec'd sh.
u bash -c 'echo "$$"; exec ptmalloc-rs sh -c "echo \$\$"' >pid.out 2>&1
if [ "$(wc -l <pid.out)" = 2 ] && [ "$(sed -n 1p pid.out)" = "$(sed -n 2p pid.out)" ]; then
  pass "the program replaces the wrapper (exec): the same pid"
else
  fail "the program does not run in the wrapper's process:"; show pid.out
fi

if command -v python3 >/dev/null 2>&1; then
  # A program that allocates and exits through exit(3), stderr still open
  # (coreutils close stderr in their atexit handler: no dump there).
  prog=(python3 -c 'x = [bytes(i) for i in range(1000)]')
  for p in fast hardened; do
    u ptmalloc-rs --profile "$p" --dump-at-exit "${prog[@]}" >dump.out 2>dump-$p.err
    status_is $? 0 "ptmalloc-rs --profile $p --dump-at-exit python3"
    if [ "$(sed -n 2p dump-$p.err)" = "profile: $p" ] && head -n 1 dump-$p.err | grep -q '^ptmalloc-rs heap dump'; then
      pass "--profile $p --dump-at-exit: the dump says profile: $p"
    else
      fail "--profile $p --dump-at-exit: the dump does not start with profile: $p"; show dump-$p.err
    fi
  done
  u ptmalloc-rs --dump-at-exit "${prog[@]}" >dump.out 2>dump-default.err
  has dump-default.err '^profile: glibc$' "no --profile: the dump says profile: glibc"
  u ptmalloc-rs "${prog[@]}" >nodump.out 2>nodump.err
  if [ -s nodump.err ]; then fail "without --dump-at-exit or --trace, stderr is not empty"; show nodump.err; else
    pass "without --dump-at-exit or --trace, the allocator prints nothing"; fi
else
  echo "SKIP real:install/dump-at-exit: python3 is not installed"
fi

u ptmalloc-rs --trace sh -c 'echo traced' >trace.out 2>trace.err
status_is $? 0 "ptmalloc-rs --trace sh"
has trace.err '^ptmalloc-rs: (brk|mmap) ' "--trace prints the allocator's system calls"
has trace.out '^traced$' "--trace leaves stdout to the program"

u ptmalloc-rs --record "$WORK/rec.%p" printenv PTMALLOC_RS_RECORD >record.out 2>&1
if [ "$(cat record.out)" = "$WORK/rec.%p" ]; then pass "--record FILE: PTMALLOC_RS_RECORD=FILE, %p untouched"; else
  fail "--record: PTMALLOC_RS_RECORD was '$(cat record.out)'"; fi
u ptmalloc-rs --profile=hardened --trace --dump-at-exit printenv >env.out 2>/dev/null
if grep -qx 'PTMALLOC_RS_PROFILE=hardened' env.out && grep -qx 'PTMALLOC_RS_TRACE=1' env.out &&
   grep -qx 'PTMALLOC_RS_DUMP_AT_EXIT=1' env.out && ! grep -q '^PTMALLOC_RS_RECORD=' env.out; then
  pass "--profile=P --trace --dump-at-exit set their variables, and only those"
else
  fail "the program's environment:"; grep '^PTMALLOC_RS_' env.out | sed 's/^/  | /'
fi

u ptmalloc-rs --lib "$LIB" cat /proc/self/maps >lib.out 2>&1
has lib.out " $LIB_REAL\$" "--lib PATH preloads PATH"
u env PTMALLOC_RS_LIB="$LIB" "$prefix/bin/ptmalloc-rs" cat /proc/self/maps >envlib.out 2>&1
has envlib.out " $LIB_REAL\$" "PTMALLOC_RS_LIB=PATH preloads PATH"

# one_fail STATUS WANT OUT ERR LINES ERE WHAT: status WANT, nothing on
# stdout, LINES lines on stderr, one of them matching ERE
one_fail() {
  if [ "$1" = "$2" ] && [ ! -s "$3" ] && [ "$(wc -l <"$4")" = "$5" ] && grep -Eq -- "$6" "$4"; then
    pass "$7"
  else
    fail "$7: status $1 (expected $2), stderr:"; show "$3" "$4"
  fi
}
u ptmalloc-rs --profile bogus true >bad.out 2>bad.err
one_fail $? 2 bad.out bad.err 1 "^ptmalloc-rs: .*bogus.*glibc, hardened or fast" "--profile bogus: one line, status 2"
u ptmalloc-rs --frobnicate true >bad.out 2>bad.err
one_fail $? 2 bad.out bad.err 2 "try --help" "an unknown option: what is wrong, the usage line and try --help, status 2"
u ptmalloc-rs >bad.out 2>bad.err
one_fail $? 2 bad.out bad.err 2 "try --help" "no program: the usage line, status 2"
u ptmalloc-rs --lib "$WORK/none.so" true >bad.out 2>bad.err
one_fail $? 1 bad.out bad.err 1 "none\.so.*build" "--lib of a missing file: one line, status 1"
mkdir -p "$WORK/lonely/bin"
cp "$prefix/bin/ptmalloc-rs" "$WORK/lonely/bin/"
u "$WORK/lonely/bin/ptmalloc-rs" true >bad.out 2>bad.err
one_fail $? 1 bad.out bad.err 1 "lonely/lib/libptmalloc_rs\.so is missing.*make install" \
  "an installed wrapper without its library: one line saying how to install it, status 1"
u ptmalloc-rs no-such-program-here >bad.out 2>bad.err
one_fail $? 127 bad.out bad.err 1 "no-such-program-here: command not found" "a missing program: one line, status 127"
if [ -f "$repo/target/release/libptmalloc_rs.so" ]; then
  u "$repo/scripts/ptmalloc-rs" --version >repo.out 2>&1
  has repo.out "^library: $repo/target/release/libptmalloc_rs.so\$" "scripts/ptmalloc-rs in the repository finds target/release"
else
  echo "SKIP real:install/repository-library: $repo/target/release/libptmalloc_rs.so is not built"
fi

# --- the installed inspection scripts
for t in "${tools[@]}"; do
  u "$t" --help >tool.out 2>&1
  st=$?
  if [ "$st" = 0 ] && grep -q "$t" tool.out && ! grep -Eq 'Traceback|No such file|not found' tool.out; then
    pass "installed $t --help (status $st)"
  else
    fail "installed $t --help: status $st"; show tool.out
  fi
done

if command -v strace >/dev/null 2>&1; then
  u strace-malloc true >strace.out 2>strace.err
  status_is $? 0 "installed strace-malloc true"
  has strace.err "LD_PRELOAD=$inst_lib( |\$)" "installed strace-malloc preloads the installed library"
else
  echo "SKIP real:install/strace-malloc: strace is not installed"
fi

if command -v python3 >/dev/null 2>&1; then
  mkfifo go
  u ptmalloc-rs python3 -c '
import os, sys
x = [bytes(i) for i in range(2000)]
print("ready", os.getpid(), flush=True)
sys.stdin.read()
' <go >live.out 2>live.err &
  job=$!
  exec 7>go   # the program's stdin, open until closed below
  for ((i = 0; i < 100; i++)); do grep -q '^ready ' live.out 2>/dev/null && break; sleep 0.1; done
  live=$(sed -n 's/^ready //p' live.out)
  if [ -n "$live" ]; then pass "a program started by ptmalloc-rs runs (pid $live)"; else
    fail "python3 under ptmalloc-rs did not start"; show live.out live.err; live=0; fi
  u heap-inspect "$live" >inspect.out 2>inspect.err
  status_is $? 0 "installed heap-inspect PID (a program started by ptmalloc-rs)"
  has inspect.out "^process $live .* runs under ptmalloc-rs: $inst_real\$" "heap-inspect: the process runs the installed library"
  has inspect.out '\[heap\] +<- main arena \[heap\]' "heap-inspect: the maps show the main arena's [heap]"
  has inspect.out '^arena 0 \(main arena\) at 0x' "heap-inspect: the dump shows the main arena"
  u heap-map --pid "$live" -o "$WORK/heap.svg" >map.out 2>&1
  status_is $? 0 "installed heap-map --pid PID"
  if grep -q '<svg' "$WORK/heap.svg" 2>/dev/null && grep -q 'class="chunk ' "$WORK/heap.svg"; then
    pass "heap-map: an SVG with chunks"; else fail "heap-map wrote no SVG with chunks"; show map.out; fi
  exec 7>&-
  wait_exit "$job" 60
  status_is $? 0 "the inspected program ran on and ended"
else
  echo "SKIP real:install/heap-inspect: python3 is not installed"
fi

# --- DESTDIR staging, then make uninstall
stage=$WORK/stage
staged_prefix=/opt/ptmalloc-rs-install-test-$$
if mk install-files PREFIX="$staged_prefix" DESTDIR="$stage" LIB="$LIB" >make-stage.out 2>&1; then
  pass "make install-files DESTDIR=\$stage PREFIX=/opt/..."
else
  fail "make install-files with DESTDIR failed:"; show make-stage.out
fi
missing=""
for f in lib/libptmalloc_rs.so bin/ptmalloc-rs lib/ptmalloc-rs/heaplib/layout.txt "${tools[@]/#/bin/}"; do
  [ -e "$stage$staged_prefix/$f" ] || missing="$missing $f"
done
if [ -z "$missing" ]; then pass "DESTDIR: every file under \$stage/PREFIX"; else fail "DESTDIR: missing under \$stage/PREFIX:$missing"; fi
if [ -e "$staged_prefix" ]; then fail "DESTDIR: something was installed at $staged_prefix itself"; else
  pass "DESTDIR: nothing at PREFIX itself"; fi
u "$stage$staged_prefix/bin/ptmalloc-rs" --version >stage.out 2>&1
has stage.out "^library: $stage$staged_prefix/lib/libptmalloc_rs.so\$" "the staged wrapper finds the staged library (relative to itself)"
mk uninstall PREFIX="$staged_prefix" DESTDIR="$stage" >uninstall.out 2>&1
left=$(find "$stage" -type f -o -type l)
if [ -z "$left" ]; then pass "make uninstall removes every installed file"; else
  fail "make uninstall left:"; printf '%s\n' "$left" | head -n 8 | sed 's/^/  | /'; fi

finish
