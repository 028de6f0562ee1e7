#!/usr/bin/env bash
# CPython's own regression tests for its allocation-heavy modules, under glibc
# and under the preload: `python3 -m test -j2` over test_dict, test_list,
# test_set, test_unicode, test_json, test_re, test_threading and test_bytes
# (each test file in a worker process of its own; the tests also start
# subprocesses, which inherit the preload), run twice: with Python's own
# small-object allocator (pymalloc, the default: blocks over 512 bytes and
# the arenas come from malloc) and with PYTHONMALLOC=malloc (every object
# from malloc).  regrtest prints timings and finishes tests in no fixed order,
# so what is compared is: its exit status, its closing summary ("Tests
# result: SUCCESS", the counts and sorted lists of failed/skipped files)
# without the duration, and the outcome of every single test case from its
# JUnit XML (name: ok / skipped / failure / error).  A test that fails, or a
# worker that crashes, under the preload is a difference; the glibc run must
# succeed.  --timeout 90 (per test file; test_threading, the slowest, takes
# ~16 s) turns a hang into a failure well inside the runner's 300 s.
#
# Needs a python3 whose `test` package has these tests (pyenv's and
# python.org's builds do; Debian's python3 needs libpython3.X-testsuite):
# the first of $PYTHON, python3, python3.11, /usr/bin/python3 that has them is
# used.  If this machine's site initialisation imports threading (a .pth file
# does on some machines), test_threading's test_import_from_another_thread
# fails under glibc too, and is left out (the script says so).
. "$(dirname "$0")/common.bash"
export PYTHONHASHSEED=0 PYTHONDONTWRITEBYTECODE=1
unset PYTHONMALLOC PYTHONPATH PYTHONHOME PYTHONSTARTUP

# test_threading first: it is the slowest (timeouts, sleeps), so with -j2 the
# others run beside it.
tests=(test_threading test_dict test_list test_set test_unicode test_json test_re test_bytes)

PY=
why=()
for c in ${PYTHON:-} python3 python3.11 /usr/bin/python3; do
  command -v "$c" >/dev/null 2>&1 || continue
  # the interpreter itself, not a wrapper (pyenv's shims are shell scripts)
  exe=$("$c" -c 'import sys; print(sys.executable)' 2>/dev/null) && [ -x "$exe" ] || continue
  if "$exe" -c '
import sys, importlib.util as u
sys.exit(0 if u.find_spec("test.libregrtest") and all(u.find_spec("test." + m) for m in sys.argv[1:]) else 1)' \
    "${tests[@]}" 2>/dev/null; then
    PY=$exe
    break
  fi
  why+=("  $c ($exe): its test package lacks libregrtest or one of these tests")
done
if [ -z "$PY" ]; then
  echo "no python3 with its regression tests (the test package with ${tests[*]}):"
  printf '%s\n' "${why[@]}"
  echo "install them (Debian: apt-get install libpython3.11-testsuite, for python3.11) or set PYTHON"
  exit 1
fi
echo "python: $PY ($("$PY" -c 'import sys; print(sys.version.split()[0])'))"

ignore=()
if ! "$PY" -X faulthandler -I -c 'import sys; sys.exit("threading" in sys.modules)'; then
  echo "note: this python's site initialisation imports threading (a .pth file?), so"
  echo "      test_threading's test_import_from_another_thread fails under glibc too: left out"
  ignore=(-i test_import_from_another_thread)
fi

# summarize.py LOG XML STATUS: what must be the same under glibc and the preload.
cat >summarize.py <<'EOF'
import sys, xml.etree.ElementTree as ET
log, xml, status = sys.argv[1:4]
print("regrtest exit status", status)
lines = open(log, errors="replace").read().splitlines()
start = [i for i, l in enumerate(lines) if l.startswith("== Tests result:")]
if not start:
    print("no '== Tests result' line in the log")
else:
    for l in lines[start[-1]:]:
        if not l.startswith("Total duration:"):
            print(l)
try:
    root = ET.parse(xml).getroot()
except Exception as e:
    print("no JUnit XML:", type(e).__name__)
    sys.exit(0)
cases = []
counts = {}
for c in root.iter("testcase"):
    name = c.get("name")
    kinds = [k.tag for k in c if k.tag in ("failure", "error", "skipped")]
    cases.append("%s: %s" % (name, ",".join(kinds) or c.get("result", "?")))
    # test.test_x.Class.method, or a doctest such as json.encoder...
    mod = name.split(".")[1] if name.startswith("test.") else name.split(".")[0]
    counts[mod] = counts.get(mod, 0) + 1
print("test cases:", len(cases), " per file:", " ".join("%s=%d" % kv for kv in sorted(counts.items())))
for c in sorted(cases):
    print(c)
EOF

# regress.sh MODE: runs the tests, writes log-MODE-{glibc,preload}.txt and the
# XML beside it, prints the summary and exits with regrtest's status.
cat >regress.sh <<EOF
mode=\$1
tag=\$(test -n "\${LD_PRELOAD:-}" && echo preload || echo glibc)
rm -rf "tmp-\$mode-\$tag" && mkdir "tmp-\$mode-\$tag"
TMPDIR=\$PWD/tmp-\$mode-\$tag "$PY" -m test -j2 --timeout 90 ${ignore[*]} \\
  --junit-xml "junit-\$mode-\$tag.xml" ${tests[*]} >"log-\$mode-\$tag.txt" 2>&1
st=\$?
env -u LD_PRELOAD -u PYTHONMALLOC "$PY" summarize.py "log-\$mode-\$tag.txt" "junit-\$mode-\$tag.xml" \$st
exit \$st
EOF

# On a mismatch: what regrtest itself said under the preload.
show_log() { # mode
  local log=log-$1-preload.txt
  [ -f "$log" ] || return 0
  echo "  regrtest's output under the preload: its failures and last lines:"
  grep -E '^(FAIL|ERROR):|failed|crashed|Fatal Python error|Segmentation|Timeout' "$log" | head -n 20 | sed 's/^/  | /'
  tail -n 25 "$log" | sed 's/^/  | /'
}

run_both --name "python3 -m test -j2 ${tests[*]} (pymalloc)" \
  bash regress.sh pymalloc || show_log pymalloc
run_both --name "PYTHONMALLOC=malloc python3 -m test -j2 (every object from malloc)" \
  env PYTHONMALLOC=malloc bash regress.sh malloc || show_log malloc
finish
