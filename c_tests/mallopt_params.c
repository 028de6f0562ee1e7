// Not under the fast profile: it checks glibc's effect of each knob (the fast
// profile caches 32 chunks a bin and serves a 4 MiB request from its large
// cache, not mmap).
/* mallopt_params: mallopt's return value for every parameter, valid and
 * invalid values, exactly as glibc 2.36 returns them, and the observable
 * effect of each knob.  Every case runs in a forked child (a knob set in one
 * case does not leak into the next; the arena limit, fixed by glibc at the
 * first thread arena, is fresh in each child).
 *
 * glibc 2.36 facts asserted here (checked against the system libc):
 *  - mallopt returns 1 for everything except M_MXFAST outside 0..160 (0).
 *    In particular M_MMAP_THRESHOLD accepts ANY value in 2.36 (no "at most
 *    HEAP_MAX_SIZE/2" check any more): 32 MiB + 1, 64 MiB and -1 return 1
 *    and take effect; M_ARENA_MAX / M_ARENA_TEST with 0 or a negative value
 *    are ignored but still return 1; M_CHECK_ACTION is a no-op returning 1;
 *    an unknown parameter number (0, 2, 3, 4, 12345, -9, -100) returns 1.
 *  - M_MMAP_THRESHOLD is consulted only when the top chunk cannot serve a
 *    request (sysmalloc): after lowering it to 64 KiB, 100 KiB blocks are
 *    carved from the existing top while it lasts, then every one is mmap'd
 *    and the break never moves.  Raised to 1 MiB, a 300 KiB block comes from
 *    the heap.  Set to 64 MiB (above 32 MiB), a 40 MiB block comes from the
 *    heap.
 *  - M_MMAP_MAX 0 and -1 (an int compare: n_mmaps < -1 never holds) keep
 *    large blocks in the heap; M_MMAP_MAX 1 allows one live mmap'd chunk.
 *  - M_TOP_PAD: a brk growth leaves a top of pad + MINSIZE .. pad + MINSIZE
 *    + page after the request that caused it.
 *  - M_TRIM_THRESHOLD: a high one keeps the break up after large frees, a
 *    low one lowers it.
 *  - M_MXFAST 0: no chunk goes to a fastbin (mallinfo2().smblks stays 0).
 *  - M_PERTURB b: memory from the arena (not the tcache) is filled with
 *    b ^ 0xff on malloc (request bytes), with b on free (from user byte 32
 *    on, the first 32 hold the bin links); calloc still returns zeros; only
 *    the low byte counts (0x1AB acts as 0xAB); 0 turns it off.
 *  - M_ARENA_MAX 1: threads all use the main arena (no NON_MAIN_ARENA bit).
 *    M_ARENA_MAX 3: exactly 2 thread arenas.  M_ARENA_TEST t: no limit is
 *    computed before t+1 arenas exist, so T < t threads get T arenas.
 *    Default: 8 x online CPUs arenas in all (main included) once more than
 *    arena_test (8) exist -- glibc 2.36 counts ONLINE CPUs (get_nprocs),
 *    not the affinity mask.
 * Sizes above 1032 bytes are used wherever the tcache could interfere, and
 * the fastbin check frees more blocks than any tcache bin holds (7 in glibc,
 * 16 in ptmalloc-rs). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "mallopt_params"
#define TEST_MAX_FAILURES 20
#define TESTLIB_CHUNKS
#include "testlib.h"


/* ---------- running a case in a child ---------- */

static void run_case(const char *name, void (*fn)(void)) {
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    FAIL("fork for case %s failed: %s", name, strerror(errno));
    return;
  }
  if (pid == 0) {
    __atomic_store_n(&failures, 0, __ATOMIC_SEQ_CST); /* count this case's failures only */
    fn();
    _exit(__atomic_load_n(&failures, __ATOMIC_SEQ_CST) ? 1 : 0);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) {
    FAIL("waitpid for case %s failed: %s", name, strerror(errno));
    return;
  }
  if (WIFSIGNALED(st))
    FAIL("case %s: child killed by signal %d", name, WTERMSIG(st));
  else if (WEXITSTATUS(st) != 0)
    FAIL("case %s failed (see above)", name);
  else
    printf(TEST_NAME ": case %s ok\n", name);
}

/* ---------- return values ---------- */

static void case_returns(void) {
  static const struct {
    int param;
    int value;
    int want;
    const char *what;
  } t[] = {
      {M_MXFAST, 0, 1, "M_MXFAST 0"},
      {M_MXFAST, 1, 1, "M_MXFAST 1"},
      {M_MXFAST, 8, 1, "M_MXFAST 8"},
      {M_MXFAST, 80, 1, "M_MXFAST 80"},
      {M_MXFAST, 160, 1, "M_MXFAST 160"},
      {M_MXFAST, 161, 0, "M_MXFAST 161"},
      {M_MXFAST, 1000, 0, "M_MXFAST 1000"},
      {M_MXFAST, -1, 0, "M_MXFAST -1"},
      {M_MXFAST, 128, 1, "M_MXFAST 128 (the default, restored)"},
      {M_TRIM_THRESHOLD, 0, 1, "M_TRIM_THRESHOLD 0"},
      {M_TRIM_THRESHOLD, -1, 1, "M_TRIM_THRESHOLD -1"},
      {M_TRIM_THRESHOLD, 128 * 1024, 1, "M_TRIM_THRESHOLD 128 KiB"},
      {M_TOP_PAD, 0, 1, "M_TOP_PAD 0"},
      {M_TOP_PAD, -1, 1, "M_TOP_PAD -1"},
      {M_TOP_PAD, 128 * 1024, 1, "M_TOP_PAD 128 KiB"},
      {M_MMAP_THRESHOLD, 0, 1, "M_MMAP_THRESHOLD 0"},
      {M_MMAP_THRESHOLD, 32 << 20, 1, "M_MMAP_THRESHOLD 32 MiB"},
      {M_MMAP_THRESHOLD, (32 << 20) + 1, 1, "M_MMAP_THRESHOLD 32 MiB + 1 (accepted by 2.36)"},
      {M_MMAP_THRESHOLD, 64 << 20, 1, "M_MMAP_THRESHOLD 64 MiB (accepted by 2.36)"},
      {M_MMAP_THRESHOLD, -1, 1, "M_MMAP_THRESHOLD -1 (accepted by 2.36)"},
      {M_MMAP_THRESHOLD, 128 * 1024, 1, "M_MMAP_THRESHOLD 128 KiB"},
      {M_MMAP_MAX, 0, 1, "M_MMAP_MAX 0"},
      {M_MMAP_MAX, -1, 1, "M_MMAP_MAX -1"},
      {M_MMAP_MAX, 65536, 1, "M_MMAP_MAX 65536"},
      {M_CHECK_ACTION, 0, 1, "M_CHECK_ACTION 0"},
      {M_CHECK_ACTION, 3, 1, "M_CHECK_ACTION 3"},
      {M_CHECK_ACTION, -1, 1, "M_CHECK_ACTION -1"},
      {M_CHECK_ACTION, 99, 1, "M_CHECK_ACTION 99"},
      {M_PERTURB, 0xab, 1, "M_PERTURB 0xab"},
      {M_PERTURB, 0x1234, 1, "M_PERTURB 0x1234"},
      {M_PERTURB, -1, 1, "M_PERTURB -1"},
      {M_PERTURB, 0, 1, "M_PERTURB 0"},
      {M_ARENA_TEST, 0, 1, "M_ARENA_TEST 0 (ignored)"},
      {M_ARENA_TEST, -3, 1, "M_ARENA_TEST -3 (ignored)"},
      {M_ARENA_TEST, 8, 1, "M_ARENA_TEST 8"},
      {M_ARENA_MAX, 0, 1, "M_ARENA_MAX 0 (ignored)"},
      {M_ARENA_MAX, -1, 1, "M_ARENA_MAX -1 (ignored)"},
      {M_ARENA_MAX, -100, 1, "M_ARENA_MAX -100 (ignored)"},
      {0, 5, 1, "unknown parameter 0"},
      {2, 1, 1, "parameter 2 (M_NLBLKS, unsupported)"},
      {3, 1, 1, "parameter 3 (M_GRAIN, unsupported)"},
      {4, 1, 1, "parameter 4 (M_KEEP, unsupported)"},
      {12345, 0, 1, "unknown parameter 12345"},
      {-9, 1, 1, "unknown parameter -9"},
      {-100, 1, 1, "unknown parameter -100"},
  };
  void *warm = malloc(100); /* the allocator is initialised */
  for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
    int r = mallopt(t[i].param, t[i].value);
    if (r != t[i].want)
      FAIL("mallopt(%d, %d) [%s] returned %d, glibc returns %d", t[i].param, t[i].value,
           t[i].what, r, t[i].want);
  }
  free(warm);
  /* The allocator still works after all that (defaults restored above). */
  unsigned char *p = malloc(5000);
  if (!p) FAIL("malloc(5000) failed after the mallopt calls");
  else {
    memset(p, 1, 5000);
    free(p);
  }
}

/* ---------- M_MMAP_THRESHOLD ---------- */

static void case_mmap_threshold_low(void) {
  enum { N = 64, SZ = 100 * 1024 };
  if (mallopt(M_MMAP_THRESHOLD, 64 * 1024) != 1) FAIL("mallopt(M_MMAP_THRESHOLD, 64 KiB) failed");
  uintptr_t b0 = brk_now();
  void *p[N];
  int first = -1;
  for (int i = 0; i < N; i++) {
    p[i] = malloc(SZ);
    if (!p[i]) {
      FAIL("malloc(100 KiB) #%d failed", i);
      return;
    }
    memset(p[i], i, SZ);
    if (is_mmapped(p[i])) {
      if (first < 0) first = i;
      size_t want = align_up(req2size(SZ) + 8, PAGE);
      if (chunk_size(p[i]) != want)
        FAIL("mmap'd 100 KiB block #%d: chunk size %#zx, expected %#zx", i, chunk_size(p[i]), want);
    } else if (first >= 0) {
      FAIL("100 KiB block #%d came from the heap after block #%d was mmap'd (threshold 64 KiB)", i,
           first);
    }
  }
  if (first < 0)
    FAIL("none of %d blocks of 100 KiB was mmap'd with M_MMAP_THRESHOLD 64 KiB", N);
  if (brk_now() != b0)
    FAIL("the break moved by %ld while allocating 100 KiB blocks with M_MMAP_THRESHOLD 64 KiB "
         "(requests above the threshold must be mmap'd, not grow the heap)",
         (long)(brk_now() - b0));
  for (int i = 0; i < N; i++) {
    if (first_byte_not(p[i], SZ, (unsigned char)i) != ALL_GOOD) FAIL("block #%d changed", i);
    free(p[i]);
  }
}

static void case_mmap_threshold_high(void) {
  if (mallopt(M_MMAP_THRESHOLD, 1024 * 1024) != 1) FAIL("mallopt(M_MMAP_THRESHOLD, 1 MiB) failed");
  unsigned char *p = malloc(300 * 1024);
  if (!p) {
    FAIL("malloc(300 KiB) failed");
    return;
  }
  if (is_mmapped(p)) FAIL("a 300 KiB block is mmap'd with M_MMAP_THRESHOLD 1 MiB (size word %#zx)", size_word(p));
  memset(p, 3, 300 * 1024);
  unsigned char *q = malloc(2 * MiB);
  if (!q) FAIL("malloc(2 MiB) failed");
  else if (!is_mmapped(q))
    FAIL("a 2 MiB block is not mmap'd with M_MMAP_THRESHOLD 1 MiB (size word %#zx)", size_word(q));
  free(q);
  free(p);
}

static void case_mmap_threshold_above_32mib(void) {
  /* glibc 2.36 accepts thresholds above HEAP_MAX_SIZE / 2 and applies them. */
  if (mallopt(M_MMAP_THRESHOLD, 64 << 20) != 1)
    FAIL("mallopt(M_MMAP_THRESHOLD, 64 MiB) returned 0; glibc 2.36 returns 1");
  uintptr_t b0 = brk_now();
  unsigned char *p = malloc(40 * MiB);
  if (!p) {
    FAIL("malloc(40 MiB) failed");
    return;
  }
  if (is_mmapped(p))
    FAIL("a 40 MiB block is mmap'd with M_MMAP_THRESHOLD 64 MiB (size word %#zx)", size_word(p));
  if (brk_now() - b0 < 40 * MiB)
    FAIL("the break grew by %#lx only for a 40 MiB heap block", (unsigned long)(brk_now() - b0));
  p[0] = 1;
  p[40 * MiB - 1] = 2;
  free(p);
  /* -1 (SIZE_MAX) is accepted too: nothing is mmap'd. */
  if (mallopt(M_MMAP_THRESHOLD, -1) != 1) FAIL("mallopt(M_MMAP_THRESHOLD, -1) returned 0; glibc returns 1");
  p = malloc(3 * MiB);
  if (!p) FAIL("malloc(3 MiB) failed");
  else if (is_mmapped(p))
    FAIL("a 3 MiB block is mmap'd with M_MMAP_THRESHOLD -1 (SIZE_MAX)");
  free(p);
}

/* ---------- M_MMAP_MAX ---------- */

static void mmap_max_heap_only(int value) {
  if (mallopt(M_MMAP_MAX, value) != 1) FAIL("mallopt(M_MMAP_MAX, %d) failed", value);
  uintptr_t b0 = brk_now();
  size_t sizes[3] = {1 * MiB, 4 * MiB, 300 * KiB};
  unsigned char *p[3];
  for (int i = 0; i < 3; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i]) {
      FAIL("malloc(%zu) failed with M_MMAP_MAX %d", sizes[i], value);
      return;
    }
    if (is_mmapped(p[i]))
      FAIL("a %zu-byte block is mmap'd with M_MMAP_MAX %d (size word %#zx)", sizes[i], value,
           size_word(p[i]));
    memset(p[i], i + 1, sizes[i]);
  }
  if (brk_now() - b0 < 5 * MiB)
    FAIL("M_MMAP_MAX %d: the break grew by %#lx only for 5.3 MiB of large blocks", value,
         (unsigned long)(brk_now() - b0));
  for (int i = 0; i < 3; i++) {
    if (first_byte_not(p[i], sizes[i], i + 1) != ALL_GOOD) FAIL("large heap block %d changed", i);
    free(p[i]);
  }
  mallopt(M_MMAP_MAX, 65536);
  unsigned char *q = malloc(4 * MiB);
  if (!q || !is_mmapped(q)) FAIL("with M_MMAP_MAX back at 65536, a 4 MiB block is not mmap'd");
  free(q);
}
static void case_mmap_max_0(void) { mmap_max_heap_only(0); }
static void case_mmap_max_minus1(void) { mmap_max_heap_only(-1); }

static void case_mmap_max_1(void) {
  if (mallinfo2().hblks != 0) return; /* another mmap'd chunk is live: not testable */
  if (mallopt(M_MMAP_MAX, 1) != 1) FAIL("mallopt(M_MMAP_MAX, 1) failed");
  unsigned char *a = malloc(1 * MiB), *b = malloc(1 * MiB);
  if (!a || !b) {
    FAIL("malloc(1 MiB) failed");
    return;
  }
  if (!is_mmapped(a)) FAIL("M_MMAP_MAX 1: the first 1 MiB block is not mmap'd");
  if (is_mmapped(b)) FAIL("M_MMAP_MAX 1: the second 1 MiB block is mmap'd while the first is live");
  memset(a, 1, MiB);
  memset(b, 2, MiB);
  free(a);
  unsigned char *c = malloc(2 * MiB);
  if (!c || !is_mmapped(c)) FAIL("M_MMAP_MAX 1: after the mmap'd block was freed, a 2 MiB block is not mmap'd");
  if (first_byte_not(b, MiB, 2) != ALL_GOOD) FAIL("the 1 MiB heap block changed");
  free(c);
  free(b);
}

/* ---------- M_TOP_PAD ---------- */

static void top_pad_case(size_t pad) {
  if (mallopt(M_TOP_PAD, (int)pad) != 1) FAIL("mallopt(M_TOP_PAD, %zu) failed", pad);
  enum { SZ = 40 * 1024, MAXN = 400 };
  static void *blk[MAXN];
  int n = 0, grew = 0;
  for (; n < MAXN && !grew; n++) {
    uintptr_t before = brk_now();
    blk[n] = malloc(SZ);
    if (!blk[n]) {
      FAIL("malloc(40 KiB) failed");
      break;
    }
    uintptr_t after = brk_now();
    if (after != before) {
      grew = 1;
      /* The block that made the heap grow was carved from the new top; what
       * is left of the top ends at the break. */
      uintptr_t chunk_end = (uintptr_t)blk[n] - 16 + chunk_size(blk[n]);
      size_t top = after - chunk_end;
      if (is_mmapped(blk[n]) || chunk_end > after)
        FAIL("M_TOP_PAD %zu: the block that grew the heap is not below the break (%p, break %#lx)",
             pad, blk[n], (unsigned long)after);
      else if (top < pad + MINSIZE || top >= pad + MINSIZE + PAGE)
        FAIL("M_TOP_PAD %zu: after a brk growth for a 40 KiB request the top is %zu bytes, "
             "expected pad + 32 .. pad + 32 + 4095 (growth %#lx)",
             pad, top, (unsigned long)(after - before));
      if (after - before < pad)
        FAIL("M_TOP_PAD %zu: the break grew by %#lx only", pad, (unsigned long)(after - before));
    }
  }
  if (!grew) FAIL("M_TOP_PAD %zu: %d blocks of 40 KiB never grew the heap", pad, MAXN);
  for (int i = 0; i < n; i++) free(blk[i]);
}
static void case_top_pad_1mib(void) { top_pad_case(1 * MiB); }
static void case_top_pad_0(void) { top_pad_case(0); }

/* ---------- M_TRIM_THRESHOLD ---------- */

static void case_trim_threshold(void) {
  enum { N = 30, SZ = 100 * 1024 };
  void *p[N];
  if (mallopt(M_TRIM_THRESHOLD, 64 << 20) != 1) FAIL("mallopt(M_TRIM_THRESHOLD, 64 MiB) failed");
  for (int i = 0; i < N; i++) {
    p[i] = malloc(SZ);
    if (!p[i] || is_mmapped(p[i])) {
      FAIL("malloc(100 KiB) #%d failed or was mmap'd", i);
      return;
    }
    memset(p[i], i, SZ);
  }
  uintptr_t peak = brk_now();
  for (int i = N - 1; i >= 0; i--) free(p[i]);
  if (brk_now() != peak)
    FAIL("with M_TRIM_THRESHOLD 64 MiB, freeing 3 MB of heap blocks moved the break from %#lx to "
         "%#lx",
         (unsigned long)peak, (unsigned long)brk_now());
  /* Low threshold: the next large free at the top gives the memory back. */
  if (mallopt(M_TRIM_THRESHOLD, 256 * 1024) != 1) FAIL("mallopt(M_TRIM_THRESHOLD, 256 KiB) failed");
  void *q = malloc(SZ);
  if (!q || is_mmapped(q)) {
    FAIL("malloc(100 KiB) failed or was mmap'd");
    return;
  }
  if (brk_now() != peak) FAIL("a 100 KiB block did not come from the 3 MB free top");
  free(q);
  if (brk_now() + 2 * MiB > peak)
    FAIL("with M_TRIM_THRESHOLD 256 KiB, freeing a block into a 3 MB top lowered the break by "
         "%ld bytes only",
         (long)(peak - brk_now()));
}

/* ---------- M_MXFAST ---------- */

/* Frees 40 blocks of 100 bytes (chunk 112, a fastbin size by default); more
 * than any tcache bin holds, so at least 24 reach the arena.  Returns how many
 * fastbin chunks that added (mallinfo2().smblks) and checks fsmblks. */
static long free_small_batch(void) {
  enum { N = 40 };
  void *v[N];
  for (int i = 0; i < N; i++) {
    v[i] = malloc(100);
    memset(v[i], 0x33, 100);
  }
  struct mallinfo2 a = mallinfo2();
  for (int i = 0; i < N; i++) free(v[i]);
  struct mallinfo2 b = mallinfo2();
  long d = (long)b.smblks - (long)a.smblks;
  if ((long)(b.fsmblks - a.fsmblks) != d * 112)
    FAIL("fsmblks grew by %ld for %ld more fastbin chunks of 112 bytes", (long)(b.fsmblks - a.fsmblks), d);
  return d;
}

static void case_mxfast(void) {
  long d = free_small_batch();
  if (d < 24)
    FAIL("default M_MXFAST: freeing 40 chunks of 112 bytes added %ld fastbin chunks (smblks), "
         "expected at least 40 - 16 (tcache) = 24",
         d);
  if (mallopt(M_MXFAST, 0) != 1) FAIL("mallopt(M_MXFAST, 0) failed");
  /* mallopt consolidated the fastbins. */
  if (mallinfo2().smblks != 0)
    FAIL("after mallopt(M_MXFAST, 0) there are %zu fastbin chunks left", mallinfo2().smblks);
  d = free_small_batch();
  if (d != 0 || mallinfo2().smblks != 0)
    FAIL("with M_MXFAST 0, freeing 40 chunks of 112 bytes added %ld fastbin chunks", d);
  /* 112-byte chunks stay out with M_MXFAST 96 (chunks up to 96 only)... */
  mallopt(M_MXFAST, 96);
  d = free_small_batch();
  if (d != 0) FAIL("with M_MXFAST 96, freeing 40 chunks of 112 bytes added %ld fastbin chunks", d);
  /* ...and are back with 160. */
  mallopt(M_MXFAST, 160);
  d = free_small_batch();
  if (d < 24) FAIL("with M_MXFAST 160, freeing 40 chunks of 112 bytes added %ld fastbin chunks", d);
}

/* ---------- M_PERTURB ---------- */

static void perturb_check(int value, unsigned char byte) {
  enum { SZ = 2000 };
  if (mallopt(M_PERTURB, value) != 1) FAIL("mallopt(M_PERTURB, %#x) failed", value);
  unsigned char fill = byte ^ 0xff;
  unsigned char *p = malloc(SZ);
  unsigned char *guard = malloc(SZ); /* p does not merge into top when freed */
  if (!p || !guard) {
    FAIL("malloc(2000) failed");
    return;
  }
  size_t bad;
  if ((bad = first_byte_not(p, SZ, fill)) != ALL_GOOD)
    FAIL("M_PERTURB %#x: new 2000-byte block byte %zu is %#x, expected %#x", value, bad, p[bad], fill);
  pat_fill(p, 7, 0, SZ);
  keep_stores(p);
  free(p);
  /* Freed: bytes from 32 on (past fd, bk, fd_nextsize, bk_nextsize) up to the
   * next chunk's prev_size hold the perturb byte. */
  if ((bad = first_byte_not(p + 32, SZ - 32, byte)) != ALL_GOOD)
    FAIL("M_PERTURB %#x: freed 2000-byte block byte %zu is %#x, expected %#x", value, 32 + bad,
         p[32 + bad], byte);
  unsigned char *r = malloc(SZ); /* reuses the freed chunk */
  if (!r) {
    FAIL("malloc(2000) failed");
    return;
  }
  if ((bad = first_byte_not(r, SZ, fill)) != ALL_GOOD)
    FAIL("M_PERTURB %#x: reused 2000-byte block (%s) byte %zu is %#x, expected %#x", value,
         r == p ? "same chunk" : "another chunk", bad, r[bad], fill);
  unsigned char *c = calloc(1, SZ);
  if (!c || (bad = first_byte_not(c, SZ, 0)) != ALL_GOOD)
    FAIL("M_PERTURB %#x: calloc(1, 2000) is not all zero", value);
  unsigned char *m = malloc(300 * 1024); /* mmap'd: perturbed too */
  if (!m || !is_mmapped(m)) FAIL("malloc(300 KiB) failed or was not mmap'd");
  else if ((bad = first_byte_not(m, 300 * 1024, fill)) != ALL_GOOD)
    FAIL("M_PERTURB %#x: new mmap'd block byte %zu is %#x, expected %#x", value, bad, m[bad], fill);
  free(m);
  free(c);
  free(r);
  free(guard);
}

static void case_perturb(void) {
  /* A fixed threshold: freeing the mmap'd block must not raise it. */
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
  perturb_check(0x5a, 0x5a);
  perturb_check(0x1ab, 0xab); /* only the low byte counts */
  if (mallopt(M_PERTURB, 0) != 1) FAIL("mallopt(M_PERTURB, 0) failed");
  unsigned char *p = malloc(2000), *g = malloc(2000);
  memset(p, 0x11, 2000);
  keep_stores(p);
  free(p);
  unsigned char *q = malloc(2000);
  if (q == p && first_byte_not(q + 32, 2000 - 40, 0x11) != ALL_GOOD)
    FAIL("M_PERTURB 0: a freed and reused 2000-byte block was overwritten beyond its bin links");
  free(q);
  free(g);
}

/* ---------- arenas ---------- */

#define MAXT 136
static pthread_barrier_t barrier;
static void *thread_block[MAXT][3];

static void *arena_thread(void *arg) {
  long i = (long)arg;
  thread_block[i][0] = malloc(2000);
  thread_block[i][1] = malloc(100);
  thread_block[i][2] = malloc(50000);
  for (int k = 0; k < 3; k++)
    if (thread_block[i][k]) memset(thread_block[i][k], (int)i, k == 1 ? 100 : k == 0 ? 2000 : 50000);
  pthread_barrier_wait(&barrier); /* all alive at once: no arena reuse */
  return NULL;
}

/* Runs T threads alive at once; returns how many distinct thread arenas
 * (64 MiB heaps) their first blocks came from; *in_main counts the threads
 * whose blocks all lack NON_MAIN_ARENA. */
static int run_threads(int T, int *in_main) {
  pthread_t th[MAXT];
  pthread_barrier_init(&barrier, NULL, T);
  for (long i = 0; i < T; i++)
    if (pthread_create(&th[i], NULL, arena_thread, (void *)i) != 0) {
      FAIL("pthread_create #%ld failed", i);
      exit(1);
    }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  uintptr_t heaps[MAXT];
  int nh = 0;
  *in_main = 0;
  for (int i = 0; i < T; i++) {
    int nonmain = 0;
    for (int k = 0; k < 3; k++) {
      void *p = thread_block[i][k];
      if (!p) {
        FAIL("thread %d: malloc failed", i);
        continue;
      }
      if (is_mmapped(p)) FAIL("thread %d: block %d is mmap'd", i, k);
      if (size_word(p) & NON_MAIN_ARENA) nonmain++;
    }
    if (nonmain != 0 && nonmain != 3) FAIL("thread %d: its blocks come from different arenas", i);
    if (nonmain == 0) {
      (*in_main)++;
      continue;
    }
    uintptr_t h = (uintptr_t)thread_block[i][0] & ~(HEAP_MAX - 1);
    int seen = 0;
    for (int j = 0; j < nh; j++) seen |= heaps[j] == h;
    if (!seen) heaps[nh++] = h;
  }
  for (int i = 0; i < T; i++)
    for (int k = 0; k < 3; k++) free(thread_block[i][k]);
  return nh;
}

static void case_arena_default_8_threads(void) {
  int in_main, n = run_threads(8, &in_main);
  if (n != 8 || in_main != 0)
    FAIL("default: 8 threads got %d thread arenas (%d threads in the main arena); glibc creates one "
         "per thread up to arena_test (8)",
         n, in_main);
}

static void case_arena_max_1(void) {
  if (mallopt(M_ARENA_MAX, 1) != 1) FAIL("mallopt(M_ARENA_MAX, 1) failed");
  int in_main, n = run_threads(8, &in_main);
  if (n != 0 || in_main != 8)
    FAIL("M_ARENA_MAX 1: 8 threads used %d thread arenas (%d in the main arena), expected all in "
         "the main arena",
         n, in_main);
}

static void case_arena_max_3(void) {
  if (mallopt(M_ARENA_MAX, 3) != 1) FAIL("mallopt(M_ARENA_MAX, 3) failed");
  int in_main, n = run_threads(12, &in_main);
  if (n != 2)
    FAIL("M_ARENA_MAX 3: 12 threads used %d thread arenas, expected 2 (3 arenas with the main one)", n);
}

static void case_arena_max_0_ignored(void) {
  mallopt(M_ARENA_MAX, 1);
  if (mallopt(M_ARENA_MAX, 0) != 1) FAIL("mallopt(M_ARENA_MAX, 0) returned 0");
  if (mallopt(M_ARENA_MAX, -4) != 1) FAIL("mallopt(M_ARENA_MAX, -4) returned 0");
  int in_main, n = run_threads(8, &in_main);
  if (n != 0 || in_main != 8)
    FAIL("M_ARENA_MAX 1 then 0 and -4 (ignored): 8 threads used %d thread arenas, expected none", n);
}

/* T = 8 x online CPUs + 8 threads, enough to reach the default limit; 0 when
 * that is too many for this test. */
static int threads_past_limit(void) {
  int cpus = get_nprocs();
  if (cpus < 1 || 8 * cpus + 8 > MAXT) return 0;
  return 8 * cpus + 8;
}

static void case_arena_default_limit(void) {
  int T = threads_past_limit();
  if (!T) {
    SKIP("arena-default-limit", "%d online CPUs: 8 x %d + 8 threads are more than this test runs (%d)", get_nprocs(),
         get_nprocs(), MAXT);
    return;
  }
  int in_main, n = run_threads(T, &in_main);
  int want = 8 * get_nprocs() - 1;
  if (n != want)
    FAIL("default: %d threads got %d thread arenas; glibc stops at 8 x %d online CPUs = %d arenas, "
         "i.e. %d besides the main one",
         T, n, get_nprocs(), want + 1, want);
}

static void case_arena_test(void) {
  int T = threads_past_limit();
  if (!T) {
    SKIP("arena-test", "%d online CPUs: 8 x %d + 8 threads are more than this test runs (%d)", get_nprocs(),
         get_nprocs(), MAXT);
    return;
  }
  if (mallopt(M_ARENA_TEST, T + 10) != 1) FAIL("mallopt(M_ARENA_TEST, %d) failed", T + 10);
  int in_main, n = run_threads(T, &in_main);
  if (n != T)
    FAIL("M_ARENA_TEST %d: %d threads got %d thread arenas; no limit applies before arena_test "
         "arenas exist, so each should have its own",
         T + 10, T, n);
}

int main(void) {
  void *warm = malloc(64); /* initialise the allocator before forking */
  free(warm);
  run_case("returns", case_returns);
  run_case("mmap_threshold_low", case_mmap_threshold_low);
  run_case("mmap_threshold_high", case_mmap_threshold_high);
  run_case("mmap_threshold_above_32mib", case_mmap_threshold_above_32mib);
  run_case("mmap_max_0", case_mmap_max_0);
  run_case("mmap_max_minus1", case_mmap_max_minus1);
  run_case("mmap_max_1", case_mmap_max_1);
  run_case("top_pad_1mib", case_top_pad_1mib);
  run_case("top_pad_0", case_top_pad_0);
  run_case("trim_threshold", case_trim_threshold);
  run_case("mxfast", case_mxfast);
  run_case("perturb", case_perturb);
  run_case("arena_default_8_threads", case_arena_default_8_threads);
  run_case("arena_max_1", case_arena_max_1);
  run_case("arena_max_3", case_arena_max_3);
  run_case("arena_max_0_ignored", case_arena_max_0_ignored);
  run_case("arena_default_limit", case_arena_default_limit);
  run_case("arena_test", case_arena_test);
  test_expect_reuse();
  return test_finish();
}
