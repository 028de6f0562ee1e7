/* env_knobs: the malloc environment variables and GLIBC_TUNABLES.  The test
 * re-executes itself (/proc/self/exe case NAME) once per case with the
 * case's variables added to the environment (every MALLOC_* and
 * GLIBC_TUNABLES variable of the parent removed; LD_PRELOAD and the rest
 * kept) and checks, in the fresh process, that the knob took effect -- or,
 * for malformed values, that the process runs and behaves as glibc 2.36 does.
 *
 * glibc 2.36 facts asserted here (checked against the system libc):
 *  - Values are parsed like strtoul with a prefix: leading blanks skipped,
 *    0x... hex, 0... octal, parsing stops at the first bad character and the
 *    prefix counts ("3x" is 3, "12x" is 12, "abc" and "" are 0); "-1" is
 *    2^64-1; an overflowing number saturates at 2^64-1.  The value must then
 *    lie within the tunable's bounds or it is ignored: arena_max and
 *    arena_test need >= 1 (so "abc", "" and 0 are ignored, while -1 and
 *    99999999999999999999999 mean "no limit"), perturb needs 0..255 (256 and
 *    -1 are ignored), tcache_count needs <= 65535.  mxfast above 160 and
 *    tcache_max above 1032 are ignored by malloc itself; mmap_threshold has
 *    no upper bound in 2.36 (64 MiB applies: a 40 MiB block is not mmap'd).
 *  - GLIBC_TUNABLES entries that are not NAME=VALUE ("garbage",
 *    "glibc.malloc.arena_max") are skipped and the next entries still apply;
 *    unknown names are ignored.  glibc.malloc.mmap_threshold=12x sets the
 *    threshold to 12 bytes: every request then gets its own mapping (the
 *    threshold only matters when the top cannot serve a request, and the top
 *    never grows), the break never moves.
 *  - The default arena limit is 8 x ONLINE CPUs (get_nprocs) arenas in all,
 *    main included, reached once more than arena_test (8) exist; glibc 2.36
 *    ignores the affinity mask for it (a process bound to one CPU of two
 *    still gets 16 arenas).
 *  - MALLOC_TOP_PAD_: the first heap growth for malloc(1000) is
 *    request2size(1000) + pad + 32 rounded up to a page (0x101000 for 1 MiB,
 *    0x1000 for 0, 0x21000 by default).
 *  - tcache_count=0 disables the tcache (a freed 64-byte chunk goes to a
 *    fastbin, mallinfo2().smblks + 1); tcache_count=N keeps N per bin;
 *    tcache_max=100 caches chunks up to 112 bytes only; tcache_max=0 still
 *    caches the smallest bin (32-byte chunks, requests up to 24). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysinfo.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "env_knobs"
#define TEST_MAX_FAILURES 20
#define TESTLIB_CHUNKS
#include "testlib.h"

extern char **environ;


static const char *case_name = "parent";
static uintptr_t brk_at_start; /* sbrk(0) first thing in main */

/* ---------- threads and arenas ---------- */

#define MAXT 136
static pthread_barrier_t barrier;
static void *thread_block[MAXT][3];
static const size_t thread_sizes[3] = {2000, 100, 50000};

static void *arena_thread(void *arg) {
  long i = (long)arg;
  for (int k = 0; k < 3; k++) {
    thread_block[i][k] = malloc(thread_sizes[k]);
    if (thread_block[i][k]) memset(thread_block[i][k], (int)i, thread_sizes[k]);
  }
  pthread_barrier_wait(&barrier); /* all alive at once: no arena reuse */
  return NULL;
}

struct arena_count {
  int thread_arenas; /* distinct 64 MiB heaps of NON_MAIN_ARENA blocks */
  int in_main;       /* threads none of whose blocks has NON_MAIN_ARENA */
  int mmapped;       /* blocks that are mmap'd */
};

static struct arena_count run_threads(int T) {
  struct arena_count c = {0, 0, 0};
  pthread_t th[MAXT];
  uintptr_t heaps[MAXT];
  pthread_barrier_init(&barrier, NULL, T);
  for (long i = 0; i < T; i++)
    if (pthread_create(&th[i], NULL, arena_thread, (void *)i) != 0) {
      FAIL("[%s] pthread_create #%ld failed", case_name, i);
      exit(1);
    }
  for (int i = 0; i < T; i++) pthread_join(th[i], NULL);
  pthread_barrier_destroy(&barrier);
  for (int i = 0; i < T; i++) {
    int nonmain = 0;
    for (int k = 0; k < 3; k++) {
      void *p = thread_block[i][k];
      if (!p) {
        FAIL("[%s] thread %d: malloc(%zu) failed", case_name, i, thread_sizes[k]);
        continue;
      }
      if (first_byte_not(p, thread_sizes[k], (unsigned char)i) != ALL_GOOD)
        FAIL("[%s] thread %d: block %d changed", case_name, i, k);
      if (is_mmapped(p)) c.mmapped++;
      else if (size_word(p) & NON_MAIN_ARENA) nonmain++;
    }
    if (nonmain == 0) {
      c.in_main++;
      continue;
    }
    uintptr_t h = (uintptr_t)thread_block[i][0] & ~(HEAP_MAX - 1);
    int seen = 0;
    for (int j = 0; j < c.thread_arenas; j++) seen |= heaps[j] == h;
    if (!seen) heaps[c.thread_arenas++] = h;
  }
  for (int i = 0; i < T; i++)
    for (int k = 0; k < 3; k++) free(thread_block[i][k]);
  return c;
}

/* Threads enough to pass the default limit (8 x online CPUs), or 0. */
static int threads_past_limit(void) {
  int cpus = get_nprocs();
  if (cpus < 1 || 8 * cpus + 8 > MAXT) return 0;
  return 8 * cpus + 8;
}

static void expect_main_arena_only(void) {
  struct arena_count c = run_threads(8);
  if (c.in_main != 8 || c.mmapped)
    FAIL("[%s] 8 threads: %d in the main arena, %d thread arenas, %d blocks mmap'd; expected all "
         "in the main arena",
         case_name, c.in_main, c.thread_arenas, c.mmapped);
}

static void expect_thread_arenas(int T, int want) {
  struct arena_count c = run_threads(T);
  if (c.thread_arenas != want || c.mmapped)
    FAIL("[%s] %d threads got %d thread arenas (%d threads in the main arena, %d blocks mmap'd); "
         "glibc gives %d",
         case_name, T, c.thread_arenas, c.in_main, c.mmapped, want);
}

static void expect_default_arena_limit(void) {
  int T = threads_past_limit();
  if (T)
    expect_thread_arenas(T, 8 * get_nprocs() - 1);
  else
    SKIP("default-arena-limit", "[%s] %d online CPUs: 8 x %d + 8 threads are more than this test runs (%d)",
         case_name, get_nprocs(), get_nprocs(), MAXT);
}

static void expect_no_arena_limit(void) {
  int T = threads_past_limit();
  if (T)
    expect_thread_arenas(T, T);
  else
    SKIP("no-arena-limit", "[%s] %d online CPUs: 8 x %d + 8 threads are more than this test runs (%d)", case_name,
         get_nprocs(), get_nprocs(), MAXT);
}

/* ---------- mmap threshold ---------- */

/* 100 KiB blocks: once the top cannot serve one, every one is mmap'd, and the
 * heap never grows by brk. */
static void expect_100k_mmapped(void) {
  enum { N = 64, SZ = 100 * 1024 };
  /* The heap's (and the tcache's) first small allocation may grow the heap. */
  void *warm = malloc(200);
  free(warm);
  uintptr_t b0 = brk_now();
  void *p[N];
  int first = -1;
  for (int i = 0; i < N; i++) {
    p[i] = malloc(SZ);
    if (!p[i]) {
      FAIL("[%s] malloc(100 KiB) #%d failed", case_name, i);
      return;
    }
    if (is_mmapped(p[i])) {
      if (first < 0) first = i;
      if (chunk_size(p[i]) != align_up(req2size(SZ) + 8, PAGE))
        FAIL("[%s] mmap'd 100 KiB block: chunk size %#zx", case_name, chunk_size(p[i]));
    } else if (first >= 0) {
      FAIL("[%s] 100 KiB block #%d came from the heap after #%d was mmap'd", case_name, i, first);
    }
  }
  if (first < 0) FAIL("[%s] none of %d blocks of 100 KiB was mmap'd (threshold 64 KiB)", case_name, N);
  if (brk_now() != b0)
    FAIL("[%s] the break moved by %ld while allocating 100 KiB blocks above the mmap threshold",
         case_name, (long)(brk_now() - b0));
  for (int i = 0; i < N; i++) free(p[i]);
}

static void expect_100k_from_heap(void) {
  for (int i = 0; i < 8; i++) {
    void *p = malloc(100 * 1024);
    if (!p || is_mmapped(p))
      FAIL("[%s] a 100 KiB block is mmap'd with the default threshold (128 KiB)", case_name);
    /* kept: the next one cannot reuse it */
  }
}

/* ---------- top pad ---------- */

static void expect_top_pad(size_t pad) {
  /* The first growth, if this malloc is the heap's first. */
  uintptr_t b0 = brk_now();
  void *first = malloc(1000);
  uintptr_t b1 = brk_now();
  if (b0 == brk_at_start && b1 != b0 && (b0 & (PAGE - 1)) == 0) {
    size_t want = align_up(req2size(1000) + pad + MINSIZE, PAGE);
    if (b1 - b0 != want)
      FAIL("[%s] the first heap growth for malloc(1000) is %#lx, glibc grows by %#zx "
           "(request + pad + 32, page-rounded)",
           case_name, (unsigned long)(b1 - b0), want);
  }
  /* Any growth leaves a top of pad + 32 .. pad + 32 + 4095 after the
   * request that caused it. */
  enum { SZ = 40 * 1024, MAXN = 400 };
  static void *blk[MAXN];
  int n = 0, grew = 0;
  for (; n < MAXN && !grew; n++) {
    uintptr_t before = brk_now();
    blk[n] = malloc(SZ);
    uintptr_t after = brk_now();
    if (!blk[n]) {
      FAIL("[%s] malloc(40 KiB) failed", case_name);
      break;
    }
    if (after == before) continue;
    grew = 1;
    uintptr_t end = (uintptr_t)blk[n] - 16 + chunk_size(blk[n]);
    if (is_mmapped(blk[n]) || end > after) {
      FAIL("[%s] the block that grew the heap is not below the break", case_name);
      break;
    }
    size_t top = after - end;
    if (top < pad + MINSIZE || top >= pad + MINSIZE + PAGE)
      FAIL("[%s] after a heap growth for a 40 KiB request the top is %zu bytes, expected %zu .. %zu",
           case_name, top, pad + MINSIZE, pad + MINSIZE + PAGE - 1);
  }
  if (!grew) FAIL("[%s] %d blocks of 40 KiB never grew the heap", case_name, MAXN);
  for (int i = 0; i < n; i++) free(blk[i]);
  free(first);
}

/* ---------- trim threshold ---------- */

static void expect_no_trim(void) {
  enum { N = 30, SZ = 100 * 1024 };
  void *p[N];
  for (int i = 0; i < N; i++) {
    p[i] = malloc(SZ);
    if (!p[i] || is_mmapped(p[i])) {
      FAIL("[%s] malloc(100 KiB) failed or was mmap'd", case_name);
      return;
    }
  }
  uintptr_t peak = brk_now();
  for (int i = N - 1; i >= 0; i--) free(p[i]);
  if (brk_now() != peak)
    FAIL("[%s] freeing 3 MB at the top moved the break down by %ld (trim threshold 64 MiB)",
         case_name, (long)(peak - brk_now()));
}

/* A 100 KiB block from the top, freed: what is left of the top above its
 * chunk start. */
static size_t top_after_free_of_100k(void) {
  unsigned char *p = malloc(100 * 1024);
  if (!p || is_mmapped(p)) {
    FAIL("[%s] malloc(100 KiB) failed or was mmap'd", case_name);
    return 0;
  }
  uintptr_t end = (uintptr_t)p - 16 + chunk_size(p);
  if (brk_now() - end > 1 * MiB) FAIL("[%s] the 100 KiB block is not near the top", case_name);
  free(p);
  return brk_now() - ((uintptr_t)p - 16);
}

/* ---------- perturb ---------- */

static void expect_perturb(unsigned char byte) {
  enum { SZ = 2000 };
  unsigned char fill = byte ^ 0xff;
  unsigned char *p = malloc(SZ), *guard = malloc(SZ);
  if (!p || !guard) {
    FAIL("[%s] malloc(2000) failed", case_name);
    return;
  }
  size_t bad;
  if ((bad = first_byte_not(p, SZ, fill)) != ALL_GOOD)
    FAIL("[%s] new 2000-byte block: byte %zu is %#x, expected %#x", case_name, bad, p[bad], fill);
  memset(p, 0x11, SZ);
  keep_stores(p);
  free(p);
  if ((bad = first_byte_not(p + 32, SZ - 32, byte)) != ALL_GOOD)
    FAIL("[%s] freed 2000-byte block: byte %zu is %#x, expected %#x", case_name, 32 + bad,
         p[32 + bad], byte);
  unsigned char *r = malloc(SZ);
  if (!r || (bad = first_byte_not(r, SZ, fill)) != ALL_GOOD)
    FAIL("[%s] reused 2000-byte block is not filled with %#x", case_name, fill);
  unsigned char *c = calloc(1, SZ);
  if (!c || first_byte_not(c, SZ, 0) != ALL_GOOD) FAIL("[%s] calloc(1, 2000) is not zero", case_name);
  free(c);
  free(r);
  free(guard);
}

static void expect_no_perturb(void) {
  unsigned char *p = malloc(2000), *guard = malloc(2000);
  memset(p, 0x11, 2000);
  keep_stores(p);
  free(p);
  if (first_byte_not(p + 32, 2000 - 40, 0x11) != ALL_GOOD)
    FAIL("[%s] a freed 2000-byte block was overwritten beyond its bin links (perturb is off)",
         case_name);
  free(guard);
}

/* ---------- tcache and fastbins ---------- */

/* Frees n blocks of size sz (allocated together, so all live at once) and
 * returns how many fastbin chunks that added. */
static long fastbin_gain(int n, size_t sz) {
  void *v[200];
  for (int i = 0; i < n; i++) {
    v[i] = malloc(sz);
    if (!v[i]) {
      FAIL("[%s] malloc(%zu) failed", case_name, sz);
      return -1;
    }
  }
  void *sep = malloc(sz); /* keeps the last one off the top */
  size_t before = mallinfo2().smblks;
  for (int i = 0; i < n; i++) free(v[i]);
  long d = (long)mallinfo2().smblks - (long)before;
  free(sep);
  return d;
}

static void expect_fastbin_gain(int n, size_t sz, long want) {
  long d = fastbin_gain(n, sz);
  if (d != want)
    FAIL("[%s] freeing %d blocks of %zu bytes added %ld fastbin chunks (mallinfo2().smblks), "
         "expected %ld",
         case_name, n, sz, d, want);
}

/* ---------- the cases ---------- */

static void c_defaults(void) {
  size_t pad = 128 * KiB;
  expect_top_pad(pad);
  expect_100k_from_heap();
  expect_fastbin_gain(1, 64, 0); /* tcache on */
  expect_no_perturb();
  expect_default_arena_limit();
}
static void c_default_limit_one_cpu(void) {
  /* glibc 2.36 counts online CPUs, not the affinity mask. */
  if (get_nprocs() < 2) {
    SKIP("limit-with-one-cpu-allowed", "one online CPU: no narrower affinity mask to try");
    return;
  }
  if (!threads_past_limit()) {
    SKIP("limit-with-one-cpu-allowed", "%d online CPUs: too many threads needed", get_nprocs());
    return;
  }
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(sched_getcpu() < 0 ? 0 : sched_getcpu(), &set);
  if (sched_setaffinity(0, sizeof set, &set) != 0) {
    SKIP("limit-with-one-cpu-allowed", "sched_setaffinity failed: %s", strerror(errno));
    return;
  }
  expect_default_arena_limit();
}
static void c_arena_max_1(void) { expect_main_arena_only(); }
static void c_arena_max_3(void) { expect_thread_arenas(12, 2); }
static void c_arena_max_3x(void) { expect_thread_arenas(12, 2); }
static void c_default_limit(void) { expect_default_arena_limit(); }
static void c_no_limit(void) { expect_no_arena_limit(); }
static void c_mmap_threshold(void) {
  expect_100k_mmapped();
  void *p = malloc(1000); /* small ones still come from the heap */
  if (!p || is_mmapped(p)) FAIL("[%s] malloc(1000) is mmap'd", case_name);
  free(p);
}
static void c_mmap_threshold_64mib(void) {
  /* Above HEAP_MAX_SIZE / 2 (32 MiB): glibc 2.36 accepts it. */
  unsigned char *p = malloc(40 * MiB);
  if (!p || is_mmapped(p))
    FAIL("[%s] a 40 MiB block is mmap'd with a 64 MiB mmap threshold (glibc 2.36 accepts it)", case_name);
  else
    p[40 * MiB - 1] = 1;
  free(p);
}
static void c_top_pad_1mib(void) { expect_top_pad(1 * MiB); }
static void c_top_pad_0(void) {
  expect_top_pad(0);
  /* pad 0, default trim threshold (128 KiB): a 100 KiB top is kept. */
  size_t top = top_after_free_of_100k();
  if (top < 100 * KiB)
    FAIL("[%s] freeing a 100 KiB block into the top left a top of %zu bytes: trimmed below the "
         "128 KiB threshold",
         case_name, top);
}
static void c_trim_threshold_high(void) { expect_no_trim(); }
static void c_trim_threshold_low(void) {
  /* pad 0 and trim threshold 4096: the freed 100 KiB goes back at once. */
  size_t top = top_after_free_of_100k();
  if (top > MINSIZE + PAGE)
    FAIL("[%s] after freeing a 100 KiB block into the top, %zu bytes remain above it (trim "
         "threshold 4096, pad 0: at most 32 + 4096)",
         case_name, top);
}
static void c_perturb_ab(void) { expect_perturb(0xab); }
static void c_no_perturb(void) { expect_no_perturb(); }
static void c_mmap_max_0(void) {
  size_t sizes[3] = {1 * MiB, 4 * MiB, 300 * KiB};
  for (int i = 0; i < 3; i++) {
    unsigned char *p = malloc(sizes[i]);
    if (!p || is_mmapped(p)) FAIL("[%s] a %zu-byte block is mmap'd (mmap max 0)", case_name, sizes[i]);
    else memset(p, i, sizes[i]);
  }
  if (mallinfo2().hblks != 0) FAIL("[%s] mallinfo2().hblks is %zu", case_name, mallinfo2().hblks);
}
static void c_arena_test_big(void) { expect_no_arena_limit(); }
static void c_tunables_both(void) {
  expect_100k_mmapped();
  expect_main_arena_only();
}
static void c_tcache_count_0(void) {
  expect_fastbin_gain(1, 64, 1);
  expect_fastbin_gain(5, 24, 5);
}
static void c_tcache_count_2(void) {
  expect_fastbin_gain(5, 64, 3);
  expect_fastbin_gain(2, 40, 0);
}
static void c_tcache_count_65535(void) { expect_fastbin_gain(150, 64, 0); }
static void c_tcache_count_65536(void) {
  /* ignored: the default count (7 in glibc, 16 in ptmalloc-rs) applies */
  long d = fastbin_gain(40, 64);
  if (d < 40 - 16 || d > 40 - 7)
    FAIL("[%s] freeing 40 blocks of 64 bytes added %ld fastbin chunks: the default tcache count "
         "should apply",
         case_name, d);
}
static void c_tcache_max_100(void) {
  expect_fastbin_gain(1, 64, 0);  /* chunk 80: cached */
  expect_fastbin_gain(1, 104, 0); /* chunk 112: cached */
  expect_fastbin_gain(1, 120, 1); /* chunk 128: not cached -> fastbin */
}
static void c_tcache_max_0(void) {
  expect_fastbin_gain(1, 24, 0); /* chunk 32: the one bin left */
  expect_fastbin_gain(1, 40, 1); /* chunk 48 -> fastbin */
}
static void c_mxfast_0(void) { expect_fastbin_gain(40, 100, 0); }
static void c_mxfast_160_no_tcache(void) {
  expect_fastbin_gain(1, 120, 1);
  expect_fastbin_gain(1, 140, 1); /* chunk 160 */
}
static void c_mxfast_161_no_tcache(void) {
  /* 161 is ignored: the default 128 stays */
  expect_fastbin_gain(1, 120, 1); /* chunk 128 */
  expect_fastbin_gain(1, 140, 0); /* chunk 160 */
}
static void c_threshold_12(void) {
  /* glibc.malloc.mmap_threshold=12x is 12: every request is mmap'd. */
  uintptr_t b0 = brk_now();
  size_t sizes[5] = {100, 8, 5000, 24, 1};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i] || !is_mmapped(p[i]))
      FAIL("[%s] malloc(%zu) is not mmap'd with a 12-byte mmap threshold", case_name, sizes[i]);
  }
  if (brk_now() != b0) FAIL("[%s] the break moved", case_name);
  for (int i = 0; i < 5; i++) free(p[i]);
  /* arena_max=1 applies too: thread blocks are never in a thread arena. */
  struct arena_count c = run_threads(8);
  if (c.in_main != 8 || c.thread_arenas != 0)
    FAIL("[%s] 8 threads used %d thread arenas", case_name, c.thread_arenas);
  if (c.mmapped != 24) FAIL("[%s] %d of 24 thread blocks are mmap'd, expected all", case_name, c.mmapped);
}

struct env_case {
  const char *name;
  void (*fn)(void);
  const char *env[3];
};

static char arena_test_env[64];

static const struct env_case cases[] = {
    {"defaults", c_defaults, {NULL}},
    {"default_limit_one_cpu", c_default_limit_one_cpu, {NULL}},
    {"arena_max_1", c_arena_max_1, {"MALLOC_ARENA_MAX=1"}},
    {"arena_max_3", c_arena_max_3, {"MALLOC_ARENA_MAX=3"}},
    {"arena_max_3x", c_arena_max_3x, {"MALLOC_ARENA_MAX=3x"}},
    {"arena_max_abc", c_default_limit, {"MALLOC_ARENA_MAX=abc"}},
    {"arena_max_empty", c_default_limit, {"MALLOC_ARENA_MAX="}},
    {"arena_max_0", c_default_limit, {"MALLOC_ARENA_MAX=0"}},
    {"arena_max_minus1", c_no_limit, {"MALLOC_ARENA_MAX=-1"}},
    {"arena_max_huge", c_no_limit, {"MALLOC_ARENA_MAX=99999999999999999999999"}},
    {"arena_test_big", c_arena_test_big, {arena_test_env}},
    {"arena_test_0", c_default_limit, {"MALLOC_ARENA_TEST=0"}},
    {"mmap_threshold", c_mmap_threshold, {"MALLOC_MMAP_THRESHOLD_=65536"}},
    {"mmap_threshold_hex", c_mmap_threshold, {"MALLOC_MMAP_THRESHOLD_=0x10000"}},
    {"mmap_threshold_64mib", c_mmap_threshold_64mib, {"MALLOC_MMAP_THRESHOLD_=67108864"}},
    {"tunables_mmap_threshold_64mib", c_mmap_threshold_64mib,
     {"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=67108864"}},
    {"top_pad_1mib", c_top_pad_1mib, {"MALLOC_TOP_PAD_=1048576"}},
    {"top_pad_0", c_top_pad_0, {"MALLOC_TOP_PAD_=0"}},
    {"trim_threshold_high", c_trim_threshold_high, {"MALLOC_TRIM_THRESHOLD_=67108864"}},
    {"trim_threshold_low", c_trim_threshold_low, {"MALLOC_TRIM_THRESHOLD_=4096", "MALLOC_TOP_PAD_=0"}},
    {"perturb_hex", c_perturb_ab, {"MALLOC_PERTURB_=0xAB"}},
    {"perturb_dec", c_perturb_ab, {"MALLOC_PERTURB_=171"}},
    {"perturb_octal", c_perturb_ab, {"MALLOC_PERTURB_=0253"}},
    {"perturb_256_ignored", c_no_perturb, {"MALLOC_PERTURB_=256"}},
    {"perturb_minus1_ignored", c_no_perturb, {"MALLOC_PERTURB_=-1"}},
    {"mmap_max_0", c_mmap_max_0, {"MALLOC_MMAP_MAX_=0"}},
    {"tunables_both", c_tunables_both,
     {"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=1"}},
    {"tunables_tcache_count_0", c_tcache_count_0, {"GLIBC_TUNABLES=glibc.malloc.tcache_count=0"}},
    {"tunables_tcache_count_2", c_tcache_count_2, {"GLIBC_TUNABLES=glibc.malloc.tcache_count=2"}},
    {"tunables_tcache_count_65535", c_tcache_count_65535,
     {"GLIBC_TUNABLES=glibc.malloc.tcache_count=65535"}},
    {"tunables_tcache_count_65536", c_tcache_count_65536,
     {"GLIBC_TUNABLES=glibc.malloc.tcache_count=65536"}},
    {"tunables_tcache_max_100", c_tcache_max_100, {"GLIBC_TUNABLES=glibc.malloc.tcache_max=100"}},
    {"tunables_tcache_max_0", c_tcache_max_0, {"GLIBC_TUNABLES=glibc.malloc.tcache_max=0"}},
    {"tunables_mxfast_0", c_mxfast_0, {"GLIBC_TUNABLES=glibc.malloc.mxfast=0"}},
    {"tunables_mxfast_160", c_mxfast_160_no_tcache,
     {"GLIBC_TUNABLES=glibc.malloc.mxfast=160:glibc.malloc.tcache_count=0"}},
    {"tunables_mxfast_161", c_mxfast_161_no_tcache,
     {"GLIBC_TUNABLES=glibc.malloc.mxfast=161:glibc.malloc.tcache_count=0"}},
    {"tunables_perturb", c_perturb_ab, {"GLIBC_TUNABLES=glibc.malloc.perturb=171"}},
    {"tunables_top_pad", c_top_pad_1mib, {"GLIBC_TUNABLES=glibc.malloc.top_pad=1048576"}},
    {"tunables_trim_threshold", c_trim_threshold_high,
     {"GLIBC_TUNABLES=glibc.malloc.trim_threshold=67108864"}},
    {"tunables_mmap_max", c_mmap_max_0, {"GLIBC_TUNABLES=glibc.malloc.mmap_max=0"}},
    {"tunables_garbage", c_default_limit, {"GLIBC_TUNABLES=garbage"}},
    {"tunables_garbage_defaults", c_defaults, {"GLIBC_TUNABLES=garbage"}},
    {"tunables_no_value", c_default_limit, {"GLIBC_TUNABLES=glibc.malloc.arena_max"}},
    {"tunables_empty", c_default_limit, {"GLIBC_TUNABLES="}},
    {"tunables_garbage_then_valid", c_arena_max_1, {"GLIBC_TUNABLES=garbage:glibc.malloc.arena_max=1"}},
    {"tunables_no_value_then_valid", c_arena_max_1,
     {"GLIBC_TUNABLES=glibc.malloc.arena_max:glibc.malloc.arena_max=1"}},
    {"tunables_unknown_names", c_arena_max_1,
     {"GLIBC_TUNABLES=glibc.malloc.nonexistent=5:glibc.foo.bar=1:glibc.malloc.arena_max=1"}},
    {"tunables_threshold_12x", c_threshold_12,
     {"GLIBC_TUNABLES=glibc.malloc.mmap_threshold=12x:glibc.malloc.arena_max=1"}},
};
#define NCASES (sizeof cases / sizeof cases[0])

/* ---------- the parent ---------- */

static int drop_var(const char *e) {
  return strncmp(e, "MALLOC_", 7) == 0 || strncmp(e, "GLIBC_TUNABLES=", 15) == 0;
}

static void run_case(const struct env_case *c) {
  static char *envp[4096];
  size_t n = 0;
  for (char **e = environ; *e && n < 4000; e++)
    if (!drop_var(*e)) envp[n++] = *e;
  for (int i = 0; i < 3 && c->env[i]; i++) envp[n++] = (char *)c->env[i];
  envp[n] = NULL;
  char *argv[] = {"env_knobs", "case", (char *)c->name, NULL};
  fflush(stdout);
  fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    FAIL("fork failed: %s", strerror(errno));
    return;
  }
  if (pid == 0) {
    execve("/proc/self/exe", argv, envp);
    fprintf(stderr, TEST_NAME ": execve(/proc/self/exe) failed: %s\n", strerror(errno));
    _exit(127);
  }
  int st;
  if (waitpid(pid, &st, 0) != pid) {
    FAIL("waitpid failed: %s", strerror(errno));
    return;
  }
  if (WIFSIGNALED(st))
    FAIL("case %s (%s): killed by signal %d", c->name, c->env[0] ? c->env[0] : "no variable",
         WTERMSIG(st));
  else if (WEXITSTATUS(st) != 0)
    FAIL("case %s (%s%s%s) failed", c->name, c->env[0] ? c->env[0] : "no variable",
         c->env[1] ? " " : "", c->env[1] ? c->env[1] : "");
  else
    printf(TEST_NAME ": case %s ok\n", c->name);
}

int main(int argc, char **argv) {
  brk_at_start = brk_now(); /* before anything that could allocate */
  if (argc == 3 && strcmp(argv[1], "case") == 0) {
    for (size_t i = 0; i < NCASES; i++)
      if (strcmp(argv[2], cases[i].name) == 0) {
        case_name = cases[i].name;
        cases[i].fn();
        return test_finish();
      }
    fprintf(stderr, TEST_NAME ": unknown case %s\n", argv[2]);
    return 2;
  }
  int T = threads_past_limit();
  snprintf(arena_test_env, sizeof arena_test_env, "MALLOC_ARENA_TEST=%d", (T ? T : 100) + 10);
  for (size_t i = 0; i < NCASES; i++) run_case(&cases[i]);
  test_expect_reuse();
  return test_finish();
}
