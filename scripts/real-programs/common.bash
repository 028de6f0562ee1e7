# Shared by the scripts in scripts/real-programs/ (source it; do not run it).
#
# Each script runs a real program twice, with glibc's malloc and with
# LD_PRELOAD=$LIB, and compares what the two runs did.  The test runner
# (scripts/run-tests) runs each script as `LIB=/path/to/libptmalloc_rs.so
# bash script.sh` and counts exit status 0 as a pass.
#
# What a script gets from here:
#   $LIB       the library, as an absolute path (required in the environment)
#   $WORK      a fresh temporary directory (the script's cwd), removed at exit
#   run_both [--name N] [--stdin FILE] [--no-stderr] [--any-status] CMD...
#              runs CMD in the current directory without and with the preload
#              and compares exit status, stdout and (unless --no-stderr)
#              stderr; prints a diff on a mismatch.  Unless --any-status, the
#              glibc run must exit 0 (a test whose command fails under glibc
#              tests nothing).  Returns 1 on a mismatch; the script goes on.
#   same_file A B WHAT
#              one more comparison: files A and B must be byte-identical.
#   pass WHAT, fail WHAT
#              one more check that passed or failed (an "ok" or "FAIL" line).
#   has FILE ERE WHAT
#              one more check: FILE has a line matching ERE.
#   wait_for FILE ERE TRIES
#              waits until FILE has a line matching ERE (0.1 s a try);
#              returns 1 if it never does.
#   finish     prints the summary and exits 1 if any comparison failed.
#   wait_exit PID SECONDS
#              waits for a background process, killing it (and saying so,
#              status 124) after SECONDS.
#   pids       an array: processes started in the background go in it, to
#              be killed at exit (before WORK is removed).
#
# Before anything runs, check_preload makes sure the preload really takes
# effect: a probe (`cat /proc/self/maps`) run with LD_PRELOAD=$LIB must list
# the library, whose file name must be $REAL_PROGRAMS_EXPECT (default
# libptmalloc_rs.so; set it to test these scripts with a stand-in library).
# Every preloaded run's stderr is also checked for ld.so's "cannot be
# preloaded" message.
set -u
export LC_ALL=C TZ=UTC

if [ -z "${LIB:-}" ]; then
  echo "real-programs: set LIB to the library to preload" >&2
  exit 2
fi
if [ ! -f "$LIB" ]; then
  echo "real-programs: LIB=$LIB does not exist" >&2
  exit 2
fi
LIB=$(cd "$(dirname "$LIB")" && pwd)/$(basename "$LIB")
LIB_REAL=$(readlink -f "$LIB")   # the path /proc/PID/maps shows
REAL_PROGRAMS_EXPECT=${REAL_PROGRAMS_EXPECT:-libptmalloc_rs.so}
unset LD_PRELOAD

WORK=$(mktemp -d "${TMPDIR:-/tmp}/real-programs.XXXXXX")
# Processes a script starts in the background go into pids: they are
# killed at exit, before WORK is removed.
pids=()
cleanup() {
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK" || exit 2
mkdir -p "$WORK/.runs"

real_failures=0
real_runs=0
real_name=$(basename "$0" .sh)

now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# The library must be mapped in a preloaded process, under the expected name.
check_preload() {
  local maps
  maps=$(LD_PRELOAD="$LIB" cat /proc/self/maps 2>"$WORK/.runs/probe.err")
  if grep -q 'cannot be preloaded' "$WORK/.runs/probe.err"; then
    echo "FAIL preload: ld.so could not preload $LIB:" >&2
    cat "$WORK/.runs/probe.err" >&2
    exit 1
  fi
  if ! grep -qF "$LIB_REAL" <<<"$maps"; then
    echo "FAIL preload: LD_PRELOAD=$LIB cat /proc/self/maps does not list $LIB_REAL" >&2
    exit 1
  fi
  if [ "$(basename "$LIB_REAL")" != "$REAL_PROGRAMS_EXPECT" ]; then
    echo "FAIL preload: the preloaded library is $(basename "$LIB_REAL"), not $REAL_PROGRAMS_EXPECT" >&2
    exit 1
  fi
  echo "preload active: $LIB_REAL is mapped in a preloaded process"
}

run_both() {
  local name="" stdin=/dev/null stderr=1 anystatus=0
  while [ $# -gt 0 ]; do
    case "$1" in
      --name) name=$2; shift ;;
      --stdin) stdin=$2; shift ;;
      --no-stderr) stderr=0 ;;
      --any-status) anystatus=1 ;;
      *) break ;;
    esac
    shift
  done
  [ -n "$name" ] || name="$*"
  real_runs=$((real_runs + 1))
  local base="$WORK/.runs/$real_runs"
  local t0 t1 t2 sg sp ok=1

  t0=$(now)
  env -u LD_PRELOAD "$@" <"$stdin" >"$base.glibc.out" 2>"$base.glibc.err"
  sg=$?
  t1=$(now)
  env LD_PRELOAD="$LIB" "$@" <"$stdin" >"$base.preload.out" 2>"$base.preload.err"
  sp=$?
  t2=$(now)

  if grep -q 'cannot be preloaded' "$base.preload.err"; then
    echo "  ld.so did not preload $LIB:"; grep 'cannot be preloaded' "$base.preload.err" | head -n 3
    ok=0
  fi
  if [ "$sg" != 0 ] && [ "$anystatus" = 0 ]; then
    echo "  the command fails under glibc (status $sg): the test itself is wrong"
    tail -n 10 "$base.glibc.err" | sed 's/^/  glibc stderr| /'
    ok=0
  fi
  if [ "$sg" != "$sp" ]; then
    echo "  exit status: glibc $sg, preload $sp$([ "$sp" -gt 128 ] && echo " (signal $((sp - 128)))")"
    ok=0
  fi
  if ! cmp -s "$base.glibc.out" "$base.preload.out"; then
    echo "  stdout differs ($(wc -c <"$base.glibc.out") bytes under glibc, $(wc -c <"$base.preload.out") under the preload):"
    diff -u --label glibc --label preload "$base.glibc.out" "$base.preload.out" | head -n 40 | sed 's/^/  | /'
    ok=0
  fi
  if [ "$stderr" = 1 ] && ! cmp -s "$base.glibc.err" "$base.preload.err"; then
    echo "  stderr differs:"
    diff -u --label glibc --label preload "$base.glibc.err" "$base.preload.err" | head -n 40 | sed 's/^/  | /'
    ok=0
  elif [ "$ok" = 0 ] && [ -s "$base.preload.err" ]; then
    echo "  preload stderr (last lines):"
    tail -n 10 "$base.preload.err" | sed 's/^/  | /'
  fi

  local times="glibc $(elapsed "$t0" "$t1") s, preload $(elapsed "$t1" "$t2") s"
  if [ "$ok" = 1 ]; then
    echo "ok   $name ($times; $(wc -c <"$base.glibc.out") bytes of output)"
    return 0
  fi
  echo "FAIL $name ($times)"
  real_failures=$((real_failures + 1))
  return 1
}

same_file() { # a b what
  real_runs=$((real_runs + 1))
  if [ -f "$1" ] && [ -f "$2" ] && cmp -s "$1" "$2"; then
    echo "ok   $3: identical ($(wc -c <"$1") bytes)"
    return 0
  fi
  if [ -f "$1" ] && [ -f "$2" ]; then
    echo "FAIL $3 differ: $(cmp "$1" "$2" 2>&1 | head -n 1)"
  else
    echo "FAIL $3: missing $( [ -f "$1" ] || echo "$1") $( [ -f "$2" ] || echo "$2")"
  fi
  real_failures=$((real_failures + 1))
  return 1
}

pass() { real_runs=$((real_runs + 1)); echo "ok   $1"; }
fail() { real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "FAIL $1"; }
has() {
  if grep -Eq -- "$2" "$1"; then pass "$3"; else
    fail "$3: no line of $(basename "$1") matches /$2/"; fi
}
wait_for() {
  local i
  for ((i = 0; i < $3; i++)); do
    grep -Eq -- "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  return 1
}

# wait_exit PID SECONDS: waits for background PID to end and returns its
# status; after SECONDS it is killed (SIGKILL also ends a stopped one), the
# script says so, and the status is 124.
wait_exit() {
  local i
  for ((i = 0; i < $2 * 10; i++)); do
    kill -0 "$1" 2>/dev/null || { wait "$1" 2>/dev/null; return; }
    sleep 0.1
  done
  echo "  process $1 did not end within $2 s: killed"
  kill -9 "$1" 2>/dev/null
  wait "$1" 2>/dev/null
  return 124
}

finish() {
  if [ "$real_failures" -gt 0 ]; then
    echo "$real_name: $real_failures of $real_runs comparisons FAILED"
    exit 1
  fi
  echo "$real_name: all $real_runs comparisons agree"
  exit 0
}

check_preload
