#!/usr/bin/env bash
# Not under the fast profile: the page and the replay do not depend on it,
# and one run of the browser is enough.
# scripts/heap-timeline and scripts/heaplib/record.py, in a real browser
# (Debian's headless Chromium, driven over the DevTools protocol by
# scripts/heaplib/cdp.py, with a watchdog: it never runs over 90 s a page):
#   - a recording written here by hand following docs/record-format.md (two
#     threads; malloc, calloc, realloc in place and moved, aligned_alloc,
#     free into the tcache, the unsorted bin and an mmap'd chunk unmapped;
#     a thread arena, system calls, a failed call, a thread exit, the two
#     threads' buffers out of seq order) is replayed by record.py to the
#     chunk listing, bins and tcaches worked out by hand; the same cut in
#     the middle of a record (a crash) still reads, its last call shown as
#     unfinished;
#   - its page is self-contained (no URL outside it), loads with no script
#     error, has one [data-event] element per call; after stepping to each
#     call the chunk it returned is drawn in use at its address (and a chunk
#     freed into the tcache is drawn so, in its thread's tcache); keys step
#     (Home, End, arrows, Shift); the search box finds the calls that
#     allocated, freed and reused an address, with their threads, and a click
#     goes there; system calls are marked on the timeline; a call reached
#     from far, from after and from before gives the same heaps; and a
#     screenshot decoded here has the in-use and top colours of heap-map in
#     quantity and many colours in all;
#   - a recording of 30,000 calls: the list holds a window of rows (and
#     says how many calls there are), stepping to any call draws its row;
#   - when $LIB records (PTMALLOC_RS_RECORD), a C program with two threads
#     is recorded: the replay up to its marker call (free(malloc(12345)),
#     right before the program calls malloc_rs_dump_chunks) must be that
#     dump, line for line, and its page must pass the same checks; when the
#     library does not record, a SKIP line says so.
# HEAP_TIMELINE_KEEP=DIR keeps the pages and screenshots there.
set -u
scripts=$(cd "$(dirname "$0")/.." && pwd)
# shellcheck source=common.bash
source "$(dirname "$0")/common.bash"   # LIB, WORK (the cwd), check_preload, finish

export PYTHONDONTWRITEBYTECODE=1   # no __pycache__ in the source tree
pass() { real_runs=$((real_runs + 1)); echo "ok   $1"; }
fail() { real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "FAIL $1"; }
# same TEXT_FILE EXPECTED_FILE WHAT
same() {
  if cmp -s "$1" "$2"; then pass "$3"; else
    fail "$3:"; diff -u --label expected --label got "$2" "$1" | head -n 40 | sed 's/^/  | /'; fi
}
# checker NAME ARGS...: runs check_page.py ARGS (it prints "ok"/"FAIL" lines,
# tallied here); a checker that dies without saying FAIL fails too
checker() {
  local name=$1 out line st
  shift
  out=$WORK/.runs/check-$name.out
  timeout 200 python3 check_page.py "$@" >"$out" 2>&1
  st=$?
  while IFS= read -r line; do
    case "$line" in
      "ok   "*) real_runs=$((real_runs + 1)); echo "$line" ;;
      "FAIL "*) real_runs=$((real_runs + 1)); real_failures=$((real_failures + 1)); echo "$line" ;;
      *) echo "  | $line" ;;
    esac
  done <"$out"
  if [ "$st" != 0 ] && ! grep -q '^FAIL ' "$out"; then
    fail "$name page: the checker exited $st$([ "$st" = 124 ] && echo " (timed out)")"
  fi
}
keep() { [ -n "${HEAP_TIMELINE_KEEP:-}" ] && mkdir -p "$HEAP_TIMELINE_KEEP" && cp "$@" "$HEAP_TIMELINE_KEEP/"; true; }
timeline=$scripts/heap-timeline

# ------------------------------------------------- a recording written by hand
cat >synth.py <<'PY'
import sys
sys.path.insert(0, sys.argv[3])
from heaplib import record

MAIN, SBRK, BRK = 0x7ffff7fb6c80, 0x555555559000, 0x55555557a000
H2, AR2, H2END = 0x7ffff0000000, 0x7ffff0000020, 0x7ffff0021000
T1, T2 = 4242, 4243
E = {}   # seq -> (tid, records, call)
def ev(seq, tid, call, *recs):
    E[seq] = (tid, recs, call)
def TOP(a, end=BRK, ar=MAIN):
    return ("chunk", "top", a, end - a, ar)
# call: (kind, a0, a1, a2, chunk size, arena, a5 bits, errno, how)
ev(1, T1, (1, 1000, 0, 0x5555555592a0, 0x3f0, MAIN, 1 << 11, 0, 8),
   ("sys", "brk(NULL) = 0x555555559000"), ("sys", "brk(0x55555557a000) = 0x55555557a000"),
   ("heap", SBRK, BRK, MAIN), ("chunk", "inuse", SBRK, 0x290, MAIN), TOP(0x555555559680))
ev(2, T1, (1, 24, 0, 0x555555559690, 32, MAIN, 0, 0, 8), TOP(0x5555555596a0))
ev(3, T1, (3, 4, 100, 0x5555555596b0, 0x1a0, MAIN, 0, 0, 8), TOP(0x555555559840))
ev(4, T1, (2, 0x555555559690, 0, 0, 32, 0, 1, 0, 0))
ev(5, T2, (1, 200, 0, 0x7ffff0000b60, 0xd0, AR2, 1 << 11, 0, 8),
   ("sys", "mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7fffec000000"),
   ("sys", "munmap(0x7fffec000000, 67108864) = 0"), ("sys", "munmap(0x7ffff4000000, 67108864) = 0"),
   ("sys", "mprotect(0x7ffff0000000, 135168, PROT_READ|PROT_WRITE) = 0"),
   ("heap", H2, H2END, AR2), ("chunk", "inuse", 0x7ffff00008c0, 0x290, AR2), TOP(0x7ffff0000c20, H2END, AR2))
ev(6, T2, (2, 0x7ffff0000b60, 0, 0, 0xd0, 0, 1, 0, 0))
ev(7, T1, (4, 0x5555555596b0, 2000, 0x5555555596b0, 0x7e0, MAIN, 0, 0, 11), TOP(0x555555559e80))
ev(8, T1, (1, 5000, 0, 0x555555559e90, 0x1390, MAIN, 0, 0, 8), TOP(0x55555555b210))
ev(9, T1, (1, 30, 0, 0x55555555b220, 0x30, MAIN, 0, 0, 8), TOP(0x55555555b240))
ev(10, T1, (2, 0x555555559e90, 0, 0, 0x1390, MAIN, 1 << 2, 0, 0),
   ("chunk", "unsorted", 0x555555559e80, 0x1390, MAIN))
ev(11, T1, (1, 200000, 0, 0x7ffff7a00010, 0x32000, 0, 0, 0, 9),
   ("sys", "mmap(NULL, 204800, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0) = 0x7ffff7a00000"),
   ("chunk", "mmapped", 0x7ffff7a00000, 0x32000, 0))
ev(12, T2, (1, 200, 0, 0x7ffff0000b60, 0xd0, 0, 0, 0, 1))
ev(13, T1, (1, 1000, 0, 0x555555559e90, 0x3f0, MAIN, 1 << 10, 0, 7),
   ("chunk", "large", 0x555555559e80, 0x1390, MAIN), ("chunk", "unsorted", 0x55555555a270, 0xfa0, MAIN))
ev(14, T1, (2, 0x7ffff7a00010, 0, 0, 0x32000, 0, 1 << 7, 0, 0),
   ("sys", "munmap(0x7ffff7a00000, 204800) = 0"), ("chunk", "gone", 0x7ffff7a00000, 0x32000, 0))
ev(15, T1, (2, 0x5555555596b0, 0, 0, 0x7e0, MAIN, 1 << 2, 0, 0),
   ("chunk", "unsorted", 0x5555555596a0, 0x7e0, MAIN))
ev(16, T2, (2, 0x7ffff0000b60, 0, 0, 0xd0, 0, 1, 0, 0))
ev(17, T2, (13, 0, 0, 0, 0, AR2, 1 << 5, 0, 0),
   TOP(0x7ffff0000b50, H2END, AR2), TOP(0x7ffff00008c0, H2END, AR2))
ev(18, T1, (1, 24, 0, 0x555555559690, 32, 0, 0, 0, 1))
ev(19, T1, (10, 2 ** 64 - 3, 1048576, 1, 0, 0, 0, 0, 0), ("sys", "mmap threshold set to 1048576 (mallopt)"))
ev(20, T1, (1, 40, 0, 0x55555555b250, 0x30, MAIN, 0, 0, 8), TOP(0x55555555b270))
ev(21, T1, (4, 0x55555555b220, 500, 0x55555555b280, 0x200, MAIN, 1, 0, 12), TOP(0x55555555b470))
ev(22, T1, (1, 100, 0, 0x5555555596b0, 0x70, MAIN, 1 << 10, 0, 7),
   ("chunk", "large", 0x5555555596a0, 0x7e0, MAIN), ("chunk", "large", 0x55555555a270, 0xfa0, MAIN),
   ("chunk", "unsorted", 0x555555559710, 0x770, MAIN))
ev(23, T1, (2, 0x555555559e90, 0, 0, 0x3f0, 0, 1, 0, 0))
ev(24, T1, (1, 40, 0, 0x55555555b220, 0x30, 0, 0, 0, 1))
ev(25, T1, (6, 64, 64, 0x55555555b480, 0x50, MAIN, 0, 0, 8), TOP(0x55555555b4c0))
ev(26, T1, (1, 2 ** 64 - 1, 0, 0, 0, 0, 1 << 14, 12, 0))

# each thread's records in order; the threads' buffers interleaved out of seq order
ORDER = [1, 2, 3, 4, 7, 8, 9, 10, 11, 5, 6, 12, 13, 14, 15, 16, 17] + list(range(18, 27))
with open(sys.argv[1], "wb") as f:
    w = record.Writer(f)
    w.header(pid=T1, main_arena=MAIN, sbrk_base=SBRK, build="ptmalloc-rs synthetic (heap-timeline test)")
    for seq in ORDER:
        tid, recs, (kind, a0, a1, a2, size, arena, bits, errno, how) = E[seq]
        for r in recs:
            if r[0] == "sys":
                w.syscall(seq, tid, r[1])
            elif r[0] == "heap":
                w.heap(seq, tid, r[1], r[2], r[3])
            else:
                w.chunk(seq, tid, r[1], r[2], r[3], r[4])
        w.call(seq, tid, kind, a0, a1, a2, size=size, arena=arena, bits=bits, errno=errno, how=how)
    if sys.argv[2] == "cut":   # a call that never ended, and half a record: the process died
        w.chunk(27, T1, "inuse", 0x55555555b4c0, 0x20, MAIN)
        w.syscall(27, T1, "brk(0x55555559b000) = 0x55555559b000")
        f.write(bytes(40))
PY
if ! { python3 synth.py synth.rec whole "$scripts" && python3 synth.py cut.rec cut "$scripts"; }; then
  fail "synthetic recording: the generator failed"
  finish
fi

# What the replay must give, worked out by hand from the calls above.
cat >expected.chunks <<'EOF'
heap 0 0x555555559000 0x55555557a000
chunk 0 0x555555559000 0x555555559000 656 P inuse
chunk 0 0x555555559000 0x555555559290 1008 P inuse
chunk 0 0x555555559000 0x555555559680 32 P inuse
chunk 0 0x555555559000 0x5555555596a0 112 P inuse
chunk 0 0x555555559000 0x555555559710 1904 P unsorted
chunk 0 0x555555559000 0x555555559e80 1008 - tcache
chunk 0 0x555555559000 0x55555555a270 4000 P large
chunk 0 0x555555559000 0x55555555b210 48 - inuse
chunk 0 0x555555559000 0x55555555b240 48 P inuse
chunk 0 0x555555559000 0x55555555b270 512 P inuse
chunk 0 0x555555559000 0x55555555b470 80 P inuse
chunk 0 0x555555559000 0x55555555b4c0 125760 P top
heap 1 0x7ffff0000000 0x7ffff0021000
chunk 1 0x7ffff0000000 0x7ffff00008c0 132928 P top
EOF
cat >expected.chunks13 <<'EOF'
heap 0 0x555555559000 0x55555557a000
chunk 0 0x555555559000 0x555555559000 656 P inuse
chunk 0 0x555555559000 0x555555559290 1008 P inuse
chunk 0 0x555555559000 0x555555559680 32 P tcache
chunk 0 0x555555559000 0x5555555596a0 2016 P inuse
chunk 0 0x555555559000 0x555555559e80 1008 P inuse
chunk 0 0x555555559000 0x55555555a270 4000 P unsorted
chunk 0 0x555555559000 0x55555555b210 48 - inuse
chunk 0 0x555555559000 0x55555555b240 126400 P top
heap 1 0x7ffff0000000 0x7ffff0021000
chunk 1 0x7ffff0000000 0x7ffff00008c0 656 PA inuse
chunk 1 0x7ffff0000000 0x7ffff0000b50 208 PA inuse
chunk 1 0x7ffff0000000 0x7ffff0000c20 132064 P top
# mmapped 0x7ffff7a00000 204800
EOF
cat >expected.bins16 <<'EOF'
arena 0:
  unsorted: 0x5555555596a0(2016) 0x55555555a270(4000)
tcache of thread 4242:
  bin 0 (32 bytes): 0x555555559680
tcache of thread 4243:
  bin 11 (208 bytes): 0x7ffff0000b50
EOF
cat >expected.bins26 <<'EOF'
arena 0:
  unsorted: 0x555555559710(1904)
  large bin 98: 0x55555555a270(4000)
tcache of thread 4242:
  bin 61 (1008 bytes): 0x555555559e80
EOF
python3 "$timeline" synth.rec --chunks >got.chunks 2>&1
same got.chunks expected.chunks "replay: the chunks after the last call (heaps, sizes, flags, states)"
python3 "$timeline" synth.rec --chunks 13 >got.chunks13 2>&1
same got.chunks13 expected.chunks13 "replay: the chunks after call 13 (a thread arena, an mmap'd chunk)"
python3 "$timeline" synth.rec --bins 16 >got.bins16 2>&1
same got.bins16 expected.bins16 "replay: bins and both threads' tcaches after call 16"
python3 "$timeline" synth.rec --bins 26 >got.bins26 2>&1
same got.bins26 expected.bins26 "replay: bins and tcaches at the end (the second thread's given back at its exit)"
python3 "$timeline" synth.rec --calls >got.calls 2>&1
if grep -q '^#5 4243 malloc(200) = 0x7ffff0000b60 (chunk 0x7ffff0000b50, 208 bytes): served from top; top grown$' got.calls &&
   grep -q '^    syscall: mmap(NULL, 134217728, PROT_NONE, MAP_PRIVATE|MAP_ANONYMOUS|MAP_NORESERVE, -1, 0) = 0x7fffec000000$' got.calls &&
   grep -q '^#26 4242 malloc(18446744073709551615) = NULL: failed, errno 12$' got.calls &&
   [ "$(grep -c '^#' got.calls)" = 26 ]; then
  pass "replay: 26 calls in seq order, in words, with a system call line of 3 records"
else
  fail "replay: the calls in words:"; sed 's/^/  | /' got.calls | head -n 40
fi
python3 "$timeline" cut.rec --summary >got.cut 2>&1
python3 "$timeline" cut.rec --chunks >got.cutchunks 2>&1
if grep -q 'ends inside a record (40 stray bytes' got.cut && grep -q "thread 4242's last 2 record(s) have no call record after them" got.cut &&
   grep -q '^27 calls' got.cut && grep -q '^chunk 0 0x555555559000 0x55555555b4c0 32 P inuse$' got.cutchunks; then
  pass "replay: a recording cut inside a record reads to its last whole record, the last call unfinished"
else
  fail "replay: a recording cut inside a record:"; sed 's/^/  | /' got.cut got.cutchunks | head -n 30
fi
printf 'PTMRREC1' >short.rec
if ! python3 "$timeline" short.rec --summary >got.short 2>&1 && grep -q 'cut short inside its header' got.short &&
   ! python3 "$timeline" /etc/hostname --summary >got.notrec 2>&1 && grep -q 'not a ptmalloc-rs recording' got.notrec; then
  pass "a file that is not a recording, or only part of a header, is refused in one line"
else
  fail "refusing a non-recording:"; cat got.short got.notrec | sed 's/^/  | /'
fi

# ------------------------------------------------------------------- pages
if python3 "$timeline" synth.rec -o synth.html >got.page 2>&1 && python3 "$timeline" cut.rec -o cut.html >>got.page 2>&1; then
  pass "heap-timeline writes the pages ($(wc -c <synth.html) bytes for 26 calls)"
else
  fail "heap-timeline -o:"; sed 's/^/  | /' got.page
fi
# self-contained: nothing fetched from outside the file
if grep -Eiq '<(script|img|iframe|link)[^>]*(src|href)=|url\(|@import|https?://[^ "<]*\.(js|css)' synth.html; then
  fail "the page is self-contained:"; grep -Eio '<(script|img|iframe|link)[^>]*(src|href)=[^>]*|url\([^)]*\)|@import[^;]*' synth.html | head -n 5 | sed 's/^/  | /'
else
  pass "the page is self-contained: no src=, href=, url() or @import in it"
fi

# a recording of 30,000 calls: two threads, a heap each, tcache frees and
# unsorted frees, brk now and then
cat >big.py <<'PY'
import random, sys
sys.path.insert(0, sys.argv[3])
from heaplib import record
N = int(sys.argv[2])
rnd = random.Random(7)
MAIN = 0x7ffff7fb6c80
with open(sys.argv[1], "wb") as f:
    w = record.Writer(f)
    w.header(pid=100, main_arena=MAIN, sbrk_base=0x555555559000, build="ptmalloc-rs synthetic (big)")
    heaps, bufs = {}, {}
    for t in range(2):
        base = 0x555555559000 if t == 0 else 0x7ff004000000
        heaps[100 + t] = {"top": base, "end": base, "base": base, "arena": MAIN if t == 0 else base + 0x20,
                          "live": [], "tc": {}}
        bufs[100 + t] = []
    for seq in range(1, N + 1):
        tid = 100 + rnd.randrange(2)
        h, out = heaps[tid], bufs[tid]
        if h["live"] and (rnd.random() < 0.48 or len(h["live"]) > 3000):
            addr, size = h["live"].pop(rnd.randrange(len(h["live"])))
            if size <= 1040 and len(h["tc"].setdefault(size, [])) < 7:
                h["tc"][size].append(addr)
                out.append(("call", seq, tid, 2, addr + 16, 0, 0, size, 0, 1, 0))
            else:
                out.append(("chunk", seq, tid, "unsorted", addr, size, h["arena"]))
                out.append(("call", seq, tid, 2, addr + 16, 0, 0, size, h["arena"], 4, 0))
        else:
            req = rnd.choice([24, 40, 100, 200, 500, 1000, 3000])
            size = max(32, (req + 8 + 15) & ~15)
            if h["tc"].get(size):
                addr = h["tc"][size].pop()
                out.append(("call", seq, tid, 1, req, 0, addr + 16, size, 0, 0, 1))
            else:
                addr, grew = h["top"], h["top"] + size + 32 > h["end"]
                h["top"] += size
                if grew:
                    h["end"] += 0x21000
                    out.append(("sys", seq, tid, "brk(%#x) = %#x" % (h["end"], h["end"])))
                    out.append(("heap", seq, tid, h["base"], h["end"], h["arena"]))
                out.append(("chunk", seq, tid, "top", h["top"], h["end"] - h["top"], h["arena"]))
                out.append(("call", seq, tid, 1, req, 0, addr + 16, size, h["arena"], (1 << 11) if grew else 0, 8))
            h["live"].append((addr, size))
        if len(out) > 300 or seq == N:
            for t in bufs:
                for r in bufs[t]:
                    if r[0] == "call":
                        _, s, t2, kind, a0, a1, a2, sz, ar, bits, how = r
                        w.call(s, t2, kind, a0, a1, a2, size=sz, arena=ar, bits=bits, how=how)
                    elif r[0] == "chunk":
                        w.chunk(*r[1:])
                    elif r[0] == "heap":
                        w.heap(*r[1:])
                    else:
                        w.syscall(*r[1:])
                bufs[t] = []
PY
if ! { python3 big.py big.rec 30000 "$scripts" && python3 "$timeline" big.rec -o big.html; } >got.big 2>&1; then
  fail "the recording of 30,000 calls and its page:"; tail -n 10 got.big | sed 's/^/  | /'
fi

# --------------------------------------------------------------- the browser
cat >check_page.py <<'PY'
"""Checks a heap-timeline page in headless Chromium; prints ok/FAIL lines."""
import os, random, sys, time
page, rec_path, mode, scripts, shot = sys.argv[1:6]
sys.path.insert(0, scripts)
from heaplib import cdp, record

fails = 0
def check(ok, what, detail=""):
    global fails
    print(("ok   " if ok else "FAIL ") + what + ("" if ok or not detail else ": " + str(detail)[:600]), flush=True)
    fails += 0 if ok else 1
    return ok

rec = record.read(rec_path)
calls = rec.calls
n = len(calls)
t0 = time.time()
with cdp.Browser(limit=90) as b:
    p = b.open("file://" + os.path.abspath(page), timeout=40)
    try:
        p.wait_for("document.body.dataset.ready === '1' || document.body.dataset.error", 60)
    except cdp.CDPError as e:
        check(False, "%s page: loads" % mode, e)
        sys.exit(1)
    errs = p.errors() + ([p.evaluate("document.body.dataset.error")] if p.evaluate("document.body.dataset.error") else [])
    check(not errs, "%s page: loads and draws in %.1f s with no script error" % (mode, time.time() - t0), errs)
    ev = lambda e: p.evaluate(e)

    count = ev("+document.getElementById('events').dataset.eventCount")
    rows = ev("document.querySelectorAll('[data-event]').length")
    seqs = ev("Array.from(document.querySelectorAll('[data-event]')).map(e => +e.dataset.event).sort((a, b) => a - b)")
    if n <= 20000:
        check(count == n and rows == n and seqs == [c.seq for c in calls],
              "%s page: one [data-event] element per call, %d in all (data-event-count %s)" % (mode, n, count),
              "%s elements, seqs %s..." % (rows, seqs[:10]))
    else:
        check(count == n and 0 < rows < 1000,
              "%s page: %d calls, a window of %d rows in the DOM, data-event-count %s" % (mode, n, rows, count))

    # step to calls: the chunk each returned is drawn in use at its address
    allocs = [c for c in calls if c.kind in record.ALLOCATING and c.a2 and not c.failed and not c.unfinished]
    if len(allocs) > 80:
        allocs = random.Random(1).sample(allocs, 80)
    bad = []
    for c in allocs:
        got = ev("heapTimeline.goto(%d)" % c.seq)
        q = "#heaps .ck[data-addr='%#x']" % (c.a2 - 16)
        st = ev("(e => e && [e.dataset.state, +e.dataset.size])(document.querySelector(\"%s\"))" % q)
        cur = ev("!!document.querySelector('.ev.cur[data-event=\"%d\"]')" % c.seq)
        if got != c.seq or st != ["inuse", c.a3] or not cur or ev("document.body.dataset.seq") != str(c.seq):
            bad.append((c.seq, got, st, cur))
    check(not bad and allocs, "%s page: after stepping to each of %d allocating calls, its row is the current one "
          "and the chunk it returned is drawn in use at its address, its size" % (mode, len(allocs)), bad[:5])
    tfrees = [c for c in calls if c.kind == 2 and c.bits & record.BIT_TCACHE][:40]
    bad = []
    for c in tfrees:
        ev("heapTimeline.goto(%d)" % c.seq)
        a = "%#x" % (c.a0 - 16)
        st = ev("(e => e && e.dataset.state)(document.querySelector(\"#heaps .ck[data-addr='%s']\"))" % a)
        intc = ev("!!document.querySelector(\"[data-tcache-thread='%d'] [data-chunk='%s']\")" % (c.tid, a))
        if st != "tcache" or not intc:
            bad.append((c.seq, a, st, intc))
    if tfrees:
        check(not bad, "%s page: a chunk freed into the tcache is drawn so, in its thread's tcache (%d frees)"
              % (mode, len(tfrees)), bad[:5])

    # keys
    def key_to(k, want, shift=False):
        p.key(k, shift)
        try:
            p.wait_for("document.body.dataset.seq === '%d'" % want, 10, 0.05)
            return True
        except cdp.CDPError:
            return False
    seq = [c.seq for c in calls]
    ok = (key_to("Home", seq[0]) and key_to("ArrowRight", seq[1]) and key_to("ArrowRight", seq[2])
          and key_to("End", seq[-1]) and key_to("ArrowLeft", seq[-2])
          and key_to("ArrowLeft", seq[max(0, n - 12)], shift=True))
    check(ok, "%s page: Home, End, the arrows and Shift+arrow step (now at call %s)" % (mode, ev("document.body.dataset.seq")))
    row = ev("!!document.querySelector('.ev.cur[data-event=\"%d\"]')" % seq[max(0, n - 12)])
    check(row, "%s page: the current call's row is drawn after stepping with keys" % mode)

    # the same heaps whichever way a call is reached
    rnd = random.Random(5)
    bad = []
    for i in rnd.sample(range(n), min(n, 12)):
        ev("heapTimeline.gotoIndex(%d)" % ((i + n // 2) % n))
        d1 = ev("heapTimeline.gotoIndex(%d), heapTimeline.digest()" % i)
        ev("heapTimeline.gotoIndex(%d)" % min(n - 1, i + rnd.randrange(1, 40)))
        d2 = ev("heapTimeline.gotoIndex(%d), heapTimeline.digest()" % i)
        ev("heapTimeline.gotoIndex(%d)" % max(0, i - rnd.randrange(1, 40)))
        d3 = ev("heapTimeline.gotoIndex(%d), heapTimeline.digest()" % i)
        if not d1 == d2 == d3 or ":false:" in d1:
            bad.append(i)
    check(not bad, "%s page: a call reached from far away, from after it and from before it shows the same heaps"
          % mode, bad)

    # timeline marks: every call with a system call (one mark per pixel at most)
    with_sys = [c.seq for c in calls if c.syscalls()]
    marks = ev("Array.from(document.querySelectorAll('[data-syscall-event]')).map(e => +e.dataset.syscallEvent)")
    if n < 500:
        check(with_sys and set(with_sys) <= set(marks), "%s page: the %d calls that made system calls are marked "
              "on the timeline" % (mode, len(with_sys)), (with_sys, marks))

    if mode == "synthetic":
        hits = ev("heapTimeline.search('0x55555555b230')")
        main = [h for h in hits if h[0] != "changed"]
        check(main == [["allocated", 9, 4242], ["freed", 21, 4242], ["reused", 24, 4242]],
              "synthetic page: searching 0x55555555b230 finds it allocated (call 9), freed (21) and reused (24) "
              "by thread 4242", hits)
        ev("document.querySelector('.hit-row[data-hit-kind=\"reused\"]').click()")
        check(ev("document.body.dataset.seq") == "24", "synthetic page: clicking a search result goes to its call",
              ev("document.body.dataset.seq"))
        ev("heapTimeline.goto(26)")
        bins = ev("Array.from(document.querySelectorAll('#bins [data-bin]')).map(b => b.dataset.bin + ':' + "
                  "Array.from(b.querySelectorAll('[data-chunk]')).map(c => c.dataset.chunk).join(','))")
        check(bins == ["unsorted bin:0x555555559710", "large bin 98:0x55555555a270"],
              "synthetic page: the bins at the end (unsorted, large bin 98)", bins)
        text = ev("document.getElementById('call').textContent")
        check("malloc(18446744073709551615) = NULL" in text and "errno 12" in text,
              "synthetic page: the failed call in words, with its errno", text)
        ev("heapTimeline.goto(5)")
        text = ev("document.getElementById('call').textContent")
        check("MAP_NORESERVE, -1, 0) = 0x7fffec000000" in text and "served from top" in text,
              "synthetic page: a call's path and its system calls in words", text)
    if mode == "cut":
        ev("heapTimeline.goto(27)")
        text = ev("document.getElementById('call').textContent") + ev("document.getElementById('notes').textContent")
        check("unfinished" in text and "ends inside a record" in text,
              "cut page: the unfinished call and the cut are said", text)

    if shot != "-":
        target = {"synthetic": 13}.get(mode, seq[len(seq) // 2])
        ev("heapTimeline.goto(%d)" % target)
        png = p.screenshot()
        with open(shot, "wb") as f:
            f.write(png)
        w, h, _, _ = cdp.decode_png(png)
        cols = cdp.colours(png)
        total = w * h
        inuse = cols.get((0x4C, 0x78, 0xA8), 0)
        top = cols.get((0xD0, 0xD0, 0xD0), 0)
        white = cols.get((255, 255, 255), 0)
        check(w >= 1000 and h >= 700 and len(cols) > 40 and inuse > 1500 and top > 1000 and white < 0.9 * total,
              "%s page: the screenshot (%dx%d) has %d colours, %d pixels of heap-map's in-use colour, %d of top's, "
              "%.0f%% white" % (mode, w, h, len(cols), inuse, top, 100.0 * white / total))
sys.exit(1 if fails else 0)
PY

browser=$(python3 -c "import sys; sys.path.insert(0, '$scripts'); from heaplib import cdp; print(cdp.find_chromium() or '')")
if [ -z "$browser" ]; then
  echo "SKIP real:heap-timeline/browser: no Chromium to run (Debian: apt-get install chromium): no page is loaded in a browser"
else
  echo "browser: $browser ($("$browser" --version 2>/dev/null | head -n 1))"
  checker synthetic synth.html synth.rec synthetic "$scripts" synth.png
  checker cut cut.html cut.rec cut "$scripts" -
  checker big big.html big.rec big "$scripts" -
  keep synth.html synth.png
fi

# ------------------------------------------------ a real recording, if $LIB records
cat >prog.c <<'C'
/* A few mallocs of different sizes, frees, a realloc, a memalign, an mmap'd
 * chunk and a second thread; then a marker (malloc(12345), free) and the
 * program's own malloc_rs_dump_chunks into argv[1].  No stdio: its buffer
 * would be allocated too. */
#define _GNU_SOURCE
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
void malloc_rs_dump_chunks(int fd) __attribute__((weak));
static void *volatile keep[256];
static int nkeep;
static void *k(void *p) { keep[nkeep++ & 255] = p; return p; }
static void *worker(void *arg) {
  (void)arg;
  char *p[24];
  for (int i = 0; i < 24; i++) p[i] = k(malloc(16 + 40 * i));
  for (int i = 0; i < 24; i += 2) free(p[i]);
  char *q = k(calloc(10, 100));
  q = k(realloc(q, 3000));
  for (int i = 1; i < 24; i += 2) free(p[i]);
  free(q);
  k(malloc(5000));
  return NULL;
}
int main(int argc, char **argv) {
  if (argc < 2) return 2;
  char *a[60];
  for (int i = 0; i < 60; i++) { a[i] = k(malloc(24 + 100 * (i % 13))); memset(a[i], i, 24); }
  for (int i = 0; i < 60; i += 3) free(a[i]);
  char *big = k(malloc(300000));
  a[1] = k(realloc(a[1], 2000));
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) return 3;
  pthread_join(t, NULL);
  free(big);
  k(memalign(64, 200));
  for (int i = 0; i < 60; i += 3) a[i] = k(malloc(24 + 100 * (i % 13)));
  for (int i = 4; i < 60; i += 5) free(a[i]);
  k(malloc(70000));
  free(k(malloc(12345)));   /* the marker: the dump shows the heaps right after it */
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0 || !malloc_rs_dump_chunks) return 4;
  malloc_rs_dump_chunks(fd);
  close(fd);
  return 0;
}
C
if ! command -v gcc >/dev/null 2>&1; then
  echo "SKIP real:heap-timeline/real-recording: gcc is not installed"
elif ! gcc -O1 -pthread -o prog prog.c 2>gcc.err; then
  fail "real recording: prog.c does not compile:"; sed 's/^/  | /' gcc.err
else
  env PTMALLOC_RS_RECORD="$WORK/real.rec" LD_PRELOAD="$LIB" ./prog "$WORK/dump.txt" >prog.out 2>&1
  st=$?
  if [ ! -e real.rec ]; then
    echo "SKIP real:heap-timeline/real-recording: $LIB does not record (PTMALLOC_RS_RECORD=FILE made no file; the program exited $st)"
  elif [ "$(head -c 8 real.rec)" != PTMRREC1 ]; then
    fail "real recording: real.rec does not start with PTMRREC1 ($(head -c 8 real.rec | od -An -c | head -n 1))"
  elif [ "$st" != 0 ] || [ ! -s dump.txt ]; then
    fail "real recording: the program exited $st, its dump has $(wc -c <dump.txt 2>/dev/null || echo no) bytes:"
    sed 's/^/  | /' prog.out | tail -n 10
  else
    pass "real recording: PTMALLOC_RS_RECORD wrote $(wc -c <real.rec) bytes starting with PTMRREC1"
    python3 "$timeline" real.rec --summary 2>&1 | sed 's/^/  | /'
    # the marker: the free of the pointer malloc(12345) returned, the last call before the dump
    marker=$(python3 - "$scripts" <<'PY'
import sys
sys.path.insert(0, sys.argv[1])
from heaplib import record
rec = record.read("real.rec")
ptr = None
for c in rec.calls:
    if c.kind == 1 and c.a0 == 12345:
        ptr = c.a2
    elif c.kind == 2 and ptr and c.a0 == ptr:
        print(c.seq)
PY
)
    marker=$(printf '%s\n' "$marker" | tail -n 1)
    if [ -z "$marker" ]; then
      fail "real recording: no free(malloc(12345)) in it (the marker before the dump)"
    else
      python3 "$timeline" real.rec --chunks "$marker" | grep -E '^(heap|chunk) ' >replay.chunks
      grep -E '^(heap|chunk) ' dump.txt >dump.chunks
      if grep -q '^#' dump.txt; then echo "  dump notes:"; grep '^#' dump.txt | sed 's/^/  | /'; fi
      # sizes and states first (a difference in flags alone is said apart)
      awk '{ if ($1 == "chunk") $6 = ""; print }' replay.chunks >replay.noflags
      awk '{ if ($1 == "chunk") $6 = ""; print }' dump.chunks >dump.noflags
      same replay.noflags dump.noflags "real recording: the replay up to the marker (call $marker) is the program's own malloc_rs_dump_chunks: heaps, chunks, sizes, states ($(grep -c '^chunk' dump.chunks) chunks)"
      same replay.chunks dump.chunks "real recording: ... and every chunk's flags (P, A)"
      if python3 "$timeline" real.rec -o real.html >>got.page 2>&1; then
        if [ -n "$browser" ]; then
          checker real real.html real.rec real "$scripts" real.png
          keep real.html real.png real.rec
        fi
      else
        fail "real recording: heap-timeline -o real.html:"; tail -n 5 got.page | sed 's/^/  | /'
      fi
    fi
  fi
fi
finish
