#!/usr/bin/env bash
# Not under the fast profile: the picture's truth does not depend on it.
# scripts/heap-map's command line and the truth of its picture, on chunk
# listings written here (synthetic, in the format its --help documents) and
# on one from a small C program under the preload (malloc_rs_dump_chunks):
#   - the scale written in the picture is the one it is drawn at: a heap of
#     11.6 MiB of small chunks takes the rows that scale implies (within one),
#     about two at the default scale, and not one row per 320 chunks as when
#     every chunk was widened to 3 px; the boxes' widths add up to the heap's
#     size over the scale; merged boxes are as wide as the chunks they hold,
#     and every chunk still has its own <g class="chunk STATE">;
#   - a box that goes on from the end of a row to the next is marked (a
#     <g class="continued"> naming the chunk), and only such a box;
#   - a binary input, a bad number for --width, --bytes-per-px, --timeout or
#     --pid, an input with no chunks, and -o with another extension than .svg
#     or .png: one line on stderr, exit status 2, no traceback, nothing
#     written;
#   - a command line argparse cannot read (an unknown option, no --pid or
#     --from, --no-install, which is gone): the message and one usage line
#     saying "try --help", not the whole help;
#   - -o FILE.png without matplotlib (python3 -S: no site-packages; or a
#     stub package that fails to import) fails in one line naming
#     `apt-get install python3-matplotlib` and `-o FILE.svg`, writes nothing
#     and runs no pip (a stub pip records any run); with the
#     system's matplotlib, if it has one, the PNG is written, its height the
#     SVG's at the PNG's scale.
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, finish

pass() { real_runs=$((real_runs + 1)); echo "ok   $1"; }
fail() { real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "FAIL $1"; }
map() { timeout 120 python3 "$scripts/heap-map" "$@"; }

# ------------------------------------------------------------ the listings
# dense.txt: one heap of 11.6 MiB of chunks of 32 to 256 bytes, in every
# state, then a top of 128 KiB.  wide.txt: chunks of 256 bytes, a chunk of
# 20000 bytes (wider than a row at 16 bytes per px and 500 px: drawn a row
# wide, shortened) and one of 6400 (400 px, which does not fit where it
# starts), then more small chunks and top.
python3 - <<'PY'
states = ["inuse", "inuse", "inuse", "tcache", "fast", "inuse", "small", "unsorted", "inuse", "large"]
def write(name, start, sizes):
    at, lines = start, []
    for size, state in sizes:
        lines.append("chunk 0 %#x %#x %d P %s" % (start, at, size, state))
        at += size
    with open(name, "w") as f:
        f.write("heap 0 %#x %#x\n" % (start, at) + "\n".join(lines) + "\n")
dense, total, i = [], 0, 0
while total < int(11.6 * 1024 * 1024):
    size = 32 + 16 * (i * 7 % 15)
    dense.append((size, states[i % len(states)]))
    total += size
    i += 1
write("dense.txt", 0x555555554000, dense + [(128 * 1024, "top")])
write("wide.txt", 0x7f0000000000, [(256, "inuse")] * 40 + [(20000, "inuse"), (6400, "small")] +
      [(256, "tcache")] * 10 + [(50000, "top")])
PY
printf 'chunk 0 0x1000 0x1000 32 P inuse\n' >tiny.txt
echo "listings: dense.txt $(grep -c '^chunk' dense.txt) chunks, wide.txt $(grep -c '^chunk' wide.txt) chunks"

# check_scale SVG LISTING WIDTH [MAXROWS] WHAT: the picture of a one-heap
# listing keeps the scale it states (see the top of this file)
cat >check_scale.py <<'PY'
import collections, math, re, sys
import xml.etree.ElementTree as ET
svg, listing, width = sys.argv[1], sys.argv[2], float(sys.argv[3])
maxrows = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else None
NS = "{http://www.w3.org/2000/svg}"
heaps, chunks = [], []
for line in open(listing):
    f = line.split()
    if f[:1] == ["heap"]:
        heaps.append((int(f[2], 16), int(f[3], 16)))
    elif f[:1] == ["chunk"] and len(f) == 7:
        chunks.append((int(f[3], 16), int(f[4]), f[6]))
if len(heaps) != 1:
    print("  the listing has %d heaps, this check reads one" % len(heaps)); sys.exit(1)
root = ET.parse(svg).getroot()
texts = ["".join(t.itertext()) for t in root.iter(NS + "text")]
scales = [float(m.group(1)) for t in texts for m in [re.search(r"1 px = ([0-9.eE+-]+) bytes", t)] if m]
if not scales:
    print("  no '1 px = N bytes' in the picture"); sys.exit(1)
bpp = scales[0]
start = heaps[0][0]
end = max([heaps[0][1]] + [a + s for a, s, _ in chunks])
# what the stated scale implies: every byte at bpp, top at most half a row,
# anything else at most a row
want_px = (end - start - sum(s for _, s, _ in chunks)) / bpp
for _, size, state in chunks:
    want_px += min(size / bpp, width / 2 if state == "top" else width)
want_rows = math.ceil(want_px / width - 1e-9)
# what is drawn: the rect of every chunk, header and gap (a merged chunk's
# unfilled one included: it is where the chunk lies)
ys, drawn, boxes, ok = set(), 0.0, collections.Counter(), True
def kind(g):
    return (g.get("class") or "").split()
for g in root.iter(NS + "g"):
    k = kind(g)
    if k[:1] == ["chunk"] and len(k) == 2:
        boxes[k[1]] += 1
    if k[:1] in (["chunk"], ["header"], ["gap"]):
        rects = g.findall(NS + "rect")
        if not rects:
            print("  a %s group without a rect" % k[0]); ok = False
        for r in rects:
            ys.add(round(float(r.get("y")), 2))
            drawn += float(r.get("width"))
want_boxes = collections.Counter(st for _, _, st in chunks)
if boxes != want_boxes:
    print("  chunk groups by state %s, chunk lines %s" % (dict(boxes), dict(want_boxes))); ok = False
# merged boxes: as wide as their chunks, holding as many as they say
merged = held = 0
for g in root.iter(NS + "g"):
    if kind(g)[:1] != ["merged"]:
        continue
    merged += 1
    inner = [c for c in g.findall(NS + "g") if kind(c)[:1] == ["chunk"]]
    held += len(inner)
    if int(g.get("data-chunks", "-1")) != len(inner):
        print("  a merged box says %s chunks and holds %d" % (g.get("data-chunks"), len(inner))); ok = False
    inner_w = sum(float(r.get("width")) for c in inner for r in c.findall(NS + "rect"))
    seen = {(r.get("x"), r.get("width")) for r in g.findall(NS + "rect") if r.get("fill") != "none"}
    box_w = sum(float(w) for _, w in seen)
    if abs(box_w - inner_w) > 0.01 + 0.002 * len(inner):
        print("  a merged box is %.3f px wide, its chunks %.3f px" % (box_w, inner_w)); ok = False
print("  1 px = %g bytes, rows of %g px: the heap takes %.1f px, %d rows; drawn: %.1f px in %d rows; "
      "%d merged boxes holding %d of %d chunks" % (bpp, width, want_px, want_rows, drawn, len(ys), merged, held,
                                                    len(chunks)))
if abs(drawn - want_px) > max(2.0, 0.002 * want_px):
    print("  the boxes are %.1f px wide together, not %.1f px" % (drawn, want_px)); ok = False
if abs(len(ys) - want_rows) > 1:
    print("  %d rows drawn where the stated scale makes %d" % (len(ys), want_rows)); ok = False
if maxrows is not None and len(ys) > maxrows:
    print("  %d rows drawn, expected at most %d" % (len(ys), maxrows)); ok = False
sys.exit(0 if ok else 1)
PY
check_scale() {
  local out
  if out=$(python3 check_scale.py "$1" "$2" "$3" "$4" 2>&1); then pass "$5"; echo "$out"; else
    fail "$5"; echo "$out"; fi
}

# ------------------------------------------------- the scale line is true
if map --from dense.txt -o dense.svg >dense.log 2>&1; then
  check_scale dense.svg dense.txt 960 4 "dense heap, default scale: drawn at the scale it states, in about two rows"
else
  fail "heap-map --from dense.txt: exit $?"; cat dense.log
fi
if map --from dense.txt --width 500 --bytes-per-px 4096 -o dense4k.svg >dense4k.log 2>&1; then
  if grep -q '1 px = 4096 bytes' dense4k.svg; then pass "--bytes-per-px 4096: the picture says 1 px = 4096 bytes"; else
    fail "--bytes-per-px 4096: the picture does not say 1 px = 4096 bytes"; fi
  check_scale dense4k.svg dense.txt 500 "" "dense heap, --bytes-per-px 4096 --width 500: drawn at that scale"
else
  fail "heap-map --from dense.txt --bytes-per-px 4096: exit $?"; cat dense4k.log
fi

# A real listing: a program under the preload lists its own chunks.
cat >many.c <<'C'
#include <stdlib.h>
/* 60000 small blocks, every fifth freed (tcache, fastbins, bins), then the
 * program's own chunk listing on fd 3. */
void malloc_rs_dump_chunks(int fd) __attribute__((weak));
static void *volatile keep[60000];
int main(void) {
  if (!malloc_rs_dump_chunks) return 3;
  for (int i = 0; i < 60000; i++) keep[i] = malloc(24 + (i * 37) % 232);
  for (int i = 0; i < 60000; i += 5) { free(keep[i]); keep[i] = 0; }
  malloc_rs_dump_chunks(3);
  return 0;
}
C
if ! command -v gcc >/dev/null; then
  echo "SKIP real:heap-map-cli/real-listing: no gcc"
elif ! gcc -O1 -o many many.c; then
  fail "many.c does not compile"
elif ! LD_PRELOAD="$LIB" ./many 3>real.txt || ! grep -q '^chunk ' real.txt; then
  fail "the program under the preload wrote no chunk listing"
else
  echo "real.txt: $(grep -c '^heap ' real.txt) heap(s), $(grep -c '^chunk ' real.txt) chunks"
  if map --from real.txt -o real.svg >real.log 2>&1; then
    check_scale real.svg real.txt 960 4 "a real listing (malloc_rs_dump_chunks): drawn at the scale it states"
  else
    fail "heap-map --from real.txt: exit $?"; cat real.log
  fi
fi

# ------------------------------------------- boxes going on at the next row
cat >check_cont.py <<'PY'
import sys
import xml.etree.ElementTree as ET
NS = "{http://www.w3.org/2000/svg}"
root = ET.parse(sys.argv[1]).getroot()
wanted = set(sys.argv[2:])
spanning, marked, ok = set(), set(), True
for g in root.iter(NS + "g"):
    cls = (g.get("class") or "").split()
    if cls[:1] == ["chunk"]:
        rows = {r.get("y") for r in g.findall(NS + "rect")}
        if len(rows) > 1:
            spanning.add(g.findtext(NS + "title").split(":")[0])
    elif cls[:1] == ["continued"]:
        if not g.findall(NS + "line"):
            print("  a continuation mark with nothing drawn"); ok = False
        if g.get("data-chunk"):
            marked.add(g.get("data-chunk"))
print("  chunks drawn on two rows: %s; marked as going on: %s" % (sorted(spanning), sorted(marked)))
if not wanted <= spanning:
    print("  not drawn on two rows: %s" % sorted(wanted - spanning)); ok = False
if spanning != marked:
    print("  on two rows but not marked: %s; marked but on one row: %s"
          % (sorted(spanning - marked), sorted(marked - spanning))); ok = False
sys.exit(0 if ok else 1)
PY
# at 16 bytes per px in rows of 500 px the 40 chunks of 256 bytes end at
# 140 px into the second row: the 20000-byte chunk (shortened to a row)
# goes on into the third, and the 6400-byte one (400 px, from 140 px) into
# the fourth
big=$(awk '$5 == 20000 {print $4}' wide.txt)
mid=$(awk '$5 == 6400 {print $4}' wide.txt)
if map --from wide.txt --width 500 --bytes-per-px 16 -o wide.svg >wide.log 2>&1 &&
   out=$(python3 check_cont.py wide.svg "$big" "$mid" 2>&1); then
  pass "the chunks at $big and $mid go on at the next row, marked (class continued), and no other"; echo "$out"
else
  fail "continuation marks"; cat wide.log; echo "${out:-}"
fi
if grep -q 'class="chunk inuse"><title>'"$big"': 20000 bytes, flags P, inuse (drawn shortened, not to scale)' wide.svg; then
  pass "the chunk wider than a row says it is drawn shortened"; else fail "the chunk wider than a row does not say it is shortened"; fi

# ------------------------------------------------------ one-line refusals
# refused WHAT ERE ARGS...: exit 2, nothing on stdout, one line on stderr
# matching ^heap-map: ERE, no traceback, no picture written
refused() {
  local what=$1 ere=$2 st
  shift 2
  rm -f out.* heap-map.svg
  map "$@" >r.out 2>r.err
  st=$?
  if [ "$st" = 2 ] && [ ! -s r.out ] && [ "$(wc -l <r.err)" = 1 ] && grep -Eq -- "^heap-map: $ere" r.err &&
     ! grep -q Traceback r.err && [ -z "$(ls out.* heap-map.svg 2>/dev/null)" ]; then
    pass "$what: exit 2, one line: $(cat r.err)"
  else
    fail "$what: exit $st (expected 2 and one line matching /^heap-map: $ere/, nothing written):"
    sed 's/^/  | /' r.out r.err | head -n 20
    ls out.* heap-map.svg 2>/dev/null
  fi
}
head -c 4096 /dev/urandom >random.bin
refused "--from /bin/ls (binary)" "/bin/ls is not a text file" --from /bin/ls -o out.svg
refused "--from random bytes" "random.bin is not a text file" --from random.bin -o out.svg
refused "--from a text file with no chunk lines" "no chunk lines in .*common.bash" --from "$scripts/real-programs/common.bash" -o out.svg
refused "--from a missing file" "nowhere.txt: No such file" --from nowhere.txt -o out.svg
for v in 0 -5 abc nan inf 1e9; do
  refused "--width $v" "--width takes .*'$v'" --from tiny.txt --width "$v" -o out.svg
done
for v in 0 -1 x nan 1e308; do
  refused "--bytes-per-px $v" "--bytes-per-px takes .*'$v'" --from tiny.txt --bytes-per-px "$v" -o out.svg
done
for v in 0 -3 soon 1e9; do
  refused "--timeout $v" "--timeout takes .*'$v'" --from tiny.txt --timeout "$v" -o out.svg
done
for v in 0 -7 abc; do
  refused "--pid $v" "--pid takes .*'$v'" --pid "$v" -o out.svg
done
for o in out.jpg out.PDF out; do
  refused "-o $o" "-o $o: the picture is written as FILE.svg or FILE.png" --from tiny.txt -o "$o"
  if [ -e "$o" ]; then fail "-o $o wrote $o"; else pass "-o $o wrote no $o"; fi
done
map --from tiny.txt -o out.SVG >r.out 2>&1 && [ -s out.SVG ] && pass "-o out.SVG (upper case) is an SVG" ||
  { fail "-o out.SVG"; cat r.out; }

# usage ARGS...: a command line argparse cannot read: exit 2, the message
# and one usage line ending with "try --help", nothing more
usage() {
  local st
  map "$@" >u.out 2>u.err
  st=$?
  if [ "$st" = 2 ] && [ ! -s u.out ] && [ "$(wc -l <u.err)" = 2 ] && head -n 1 u.err | grep -q '^heap-map: ' &&
     tail -n 1 u.err | grep -q '^usage: heap-map .*--from FILE.*try --help' && ! grep -q Traceback u.err; then
    pass "heap-map $*: exit 2, the message and one usage line"
  else
    fail "heap-map $*: exit $st, expected 2, a message and one usage line saying try --help:"
    sed 's/^/  | /' u.out u.err | head -n 20
  fi
}
usage --from tiny.txt --bogus
usage
usage --from
usage --pid 1 --from tiny.txt
usage --from tiny.txt --no-install -o out.svg
map --help >help.out 2>&1
st=$?
if [ "$st" = 0 ] && grep -q '^usage: ' help.out && grep -q 'apt-get install' help.out &&
   ! grep -Eqi 'no-install|HEAP_MAP_NO_INSTALL|pip' help.out; then
  pass "--help: exit 0, names apt-get install, no --no-install, no pip"
else
  fail "--help: exit $st"; cat help.out
fi

# -------------------------------------------------- PNG and matplotlib
# A pip that records being run, first on the module path, and two ways of
# having no matplotlib: python3 -S (no site-packages: none to be found) and
# a stub package that fails to import.
mkdir -p nopip/pip stub/matplotlib
touch nopip/pip/__init__.py
printf 'open(%s, "w").write("pip ran")\nraise SystemExit(1)\n' "'$WORK/pip-ran'" >nopip/pip/__main__.py
echo 'raise ImportError("stub: no matplotlib here")' >stub/matplotlib/__init__.py
# no_matplotlib WHAT ENV... -- PYTHON_ARGS...: -o map.png fails in one line
# naming the install command and -o map.svg, exit 1, runs no pip, writes
# nothing
no_matplotlib() {
  local what=$1 st
  shift
  rm -f map.png map.svg pip-ran
  env "$@" --from dense.txt -o map.png >p.out 2>p.err
  st=$?
  if [ "$st" = 1 ] && [ ! -s p.out ] && [ "$(wc -l <p.err)" = 1 ] &&
     grep -q '^heap-map: -o map.png needs matplotlib.*apt-get install python3-matplotlib.*-o map.svg' p.err &&
     ! grep -q Traceback p.err; then
    pass "-o map.png, $what: exit 1, one line: $(cat p.err)"
  else
    fail "-o map.png, $what: exit $st, expected 1 and one line naming the apt-get command and -o map.svg:"
    sed 's/^/  | /' p.out p.err | head -n 20
  fi
  if [ -e pip-ran ]; then fail "-o map.png, $what: ran pip"; else pass "-o map.png, $what: runs no pip"; fi
  if [ -e map.png ] || [ -e map.svg ]; then fail "-o map.png, $what: wrote $(ls map.png map.svg 2>/dev/null)"; else
    pass "-o map.png, $what: writes nothing"; fi
}
no_matplotlib "no site-packages (python3 -S)" PYTHONPATH="$WORK/nopip" timeout 120 python3 -S "$scripts/heap-map"
no_matplotlib "a matplotlib that fails to import" PYTHONPATH="$WORK/nopip:$WORK/stub" \
  timeout 120 python3 "$scripts/heap-map"

if python3 -c 'import matplotlib' 2>/dev/null; then
  if map --from dense.txt -o map.png >p.out 2>p.err && python3 - map.png dense.svg <<'PY'; then
import re, struct, sys
data = open(sys.argv[1], "rb").read()
ok = data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
w, h = struct.unpack(">II", data[16:24]) if ok else (0, 0)
svg_h = float(re.search(r'<svg [^>]*height="([0-9.]+)"', open(sys.argv[2]).read()).group(1))
print("  map.png: %d x %d (the SVG: %g high)" % (w, h, svg_h))
sys.exit(0 if ok and abs(h - 1.5 * svg_h) <= 2 else 1)
PY
    pass "-o map.png with the system's matplotlib: a PNG as high as the SVG at its scale"
  else
    fail "-o map.png with matplotlib"; cat p.out p.err
  fi
else
  echo "SKIP real:heap-map-cli/png: this python3 has no matplotlib (apt-get install python3-matplotlib)"
fi

finish
