// Not under the fast profile: it checks what trimming gives back from a known
// top (the fast profile's malloc_trim first empties the caller's large cache
// into the heap).
/* malloc_trim_test: malloc_trim(pad) gives back the top of the main heap
 * (lowering the break, keeping pad bytes) and the whole pages inside free
 * chunks of every arena (MADV_DONTNEED: RSS drops, the chunks stay in the
 * bins), never touching live blocks.
 *
 * glibc 2.36 facts asserted here (checked against the system libc):
 *  - malloc_trim(0) returns 1 when it released something: the main heap's
 *    top shrank (the break came down) or some binned free chunk spans at
 *    least one whole page; it returns 0 when there is nothing of the kind
 *    (a fresh process right after a first trim: top below a page, no free
 *    chunks).
 *  - It returns 1 again on a second call while page-spanning free chunks
 *    are still in the bins: glibc does not remember that their pages were
 *    already released (madvise is simply repeated).
 *  - malloc_trim(pad) leaves a top (mallinfo2().keepcost) of pad + 32 ..
 *    pad + 32 + 4096 bytes, the break coming down by as much.
 *  - Thread arenas' free chunks are released too (RSS drops after the
 *    thread freed most of its blocks).
 * All blocks are 40 KiB (above the tcache range, below the mmap threshold);
 * every 10th stays live as a separator, so each hole is 9 blocks. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_NAME "malloc_trim_test"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)

enum { N = 200, SZ = 40 * 1024 };

static uintptr_t brk_now(void) { return (uintptr_t)sbrk(0); }

/* Allocates N blocks, fills each with its pattern, then frees all but every
 * 10th (i % 10 == 9, which includes the last one, so the free space stays in
 * the bins and not in the top). */
static void make_holes(unsigned char **b, uint64_t seed) {
  for (int i = 0; i < N; i++) {
    b[i] = malloc(SZ);
    if (!b[i]) {
      FAIL("malloc(40 KiB) #%d failed", i);
      exit(1);
    }
    pat_fill(b[i], seed + i, 0, SZ);
  }
  for (int i = 0; i < N; i++)
    if (i % 10 != 9) {
      keep_stores(b[i]);
      free(b[i]);
      b[i] = NULL;
    }
}

static void check_live(unsigned char **b, uint64_t seed, const char *who) {
  for (int i = 0; i < N; i++)
    if (b[i]) {
      size_t bad = pat_check(b[i], seed + i, SZ);
      if (bad != ALL_GOOD) FAIL("%s: live block %d changed at byte %zu after malloc_trim", who, i, bad);
    }
}

static unsigned char *tblk[N];
static void *thread_fn(void *arg) {
  (void)arg;
  make_holes(tblk, 5000);
  return NULL;
}

int main(void) {
  /* ---- nothing to release ---- */
  void *first = malloc(100);
  uintptr_t b0 = brk_now();
  int r1 = malloc_trim(0);
  uintptr_t b1 = brk_now();
  int r2 = malloc_trim(0);
  uintptr_t b2 = brk_now();
  if (b1 < b0 && r1 != 1) FAIL("malloc_trim(0) lowered the break but returned %d", r1);
  if (b1 > b0) FAIL("malloc_trim(0) raised the break");
  if (b0 - b1 < 64 * KiB)
    FAIL("the first malloc_trim(0) after malloc(100) released %ld bytes of the top only "
         "(the first growth leaves ~128 KiB)",
         (long)(b0 - b1));
  if (r2 != 0)
    FAIL("a second malloc_trim(0), with nothing to release (top trimmed, no free chunks), returned "
         "%d; glibc returns 0",
         r2);
  if (b2 != b1) FAIL("the second malloc_trim(0) moved the break");
  free(first);

  /* ---- main arena: holes in the middle ---- */
  static unsigned char *b[N];
  make_holes(b, 1000);
  long rss_before = rss_kib();
  uintptr_t brk_before = brk_now();
  int r = malloc_trim(0);
  long rss_after = rss_kib();
  /* 20 holes of 9 x 40 KiB: about 7 MB of whole pages */
  if (r != 1) FAIL("malloc_trim(0) with 7 MB of free chunks in the bins returned %d", r);
  if (rss_before < 0 || rss_before - rss_after < 5000)
    FAIL("malloc_trim(0): RSS went from %ld to %ld KiB, expected a drop of about 7000 KiB (free "
         "chunks' pages released)",
         rss_before, rss_after);
  if (brk_now() > brk_before) FAIL("malloc_trim raised the break");
  check_live(b, 1000, "main arena");
  /* glibc: the released chunks are still in the bins, so trimming again
   * reports 1 again. */
  r = malloc_trim(0);
  if (r != 1)
    FAIL("a second malloc_trim(0) while page-spanning free chunks are still in the bins returned "
         "%d; glibc returns 1 (it releases them again)",
         r);
  check_live(b, 1000, "main arena (second trim)");
  /* The released memory is reused normally: fresh blocks from the holes
   * hold what is written, calloc'ed ones are zero. */
  static unsigned char *again[N];
  for (int i = 0; i < N; i++)
    if (!b[i]) {
      again[i] = (i & 1) ? calloc(1, SZ) : malloc(SZ);
      if (!again[i]) {
        FAIL("malloc after trim failed");
        return test_finish();
      }
      if ((i & 1) && first_byte_not(again[i], SZ, 0) != ALL_GOOD)
        FAIL("calloc(1, 40 KiB) after malloc_trim is not zero");
      pat_fill(again[i], 9000 + i, 0, SZ);
    }
  for (int i = 0; i < N; i++)
    if (again[i] && pat_check(again[i], 9000 + i, SZ) != ALL_GOOD) FAIL("a block reused after trim changed");
  check_live(b, 1000, "main arena (after reuse)");
  for (int i = 0; i < N; i++) {
    free(again[i]);
    free(b[i]);
  }

  /* ---- malloc_trim(pad) keeps pad bytes of top ---- */
  mallopt(M_TRIM_THRESHOLD, 64 << 20); /* frees alone do not trim */
  {
    enum { M = 30 };
    void *big[M];
    for (int i = 0; i < M; i++) big[i] = malloc(100 * 1024);
    for (int i = M - 1; i >= 0; i--) free(big[i]);
    /* The top's size is mallinfo2().keepcost; the break must move by as much
     * as the top shrinks. */
    size_t top0 = mallinfo2().keepcost;
    uintptr_t brk0 = brk_now();
    if (top0 < 2 * MiB) { /* some blocks may have come from free chunks lower down */
      FAIL("after freeing 3 MB at the top (trim threshold 64 MiB), the top (keepcost) is %zu bytes", top0);
    } else {
      size_t pad = 1 * MiB;
      r = malloc_trim(pad);
      size_t top1 = mallinfo2().keepcost;
      if (r != 1) FAIL("malloc_trim(1 MiB) with a top of more than 2 MB returned %d", r);
      if (top1 < pad + 32 || top1 > pad + 32 + PAGE)
        FAIL("malloc_trim(1 MiB) left a top (keepcost) of %zu bytes, expected 1 MiB + 32 .. + 4096", top1);
      if (brk0 - brk_now() != top0 - top1)
        FAIL("malloc_trim(1 MiB): the break came down by %ld, the top shrank by %ld", (long)(brk0 - brk_now()),
             (long)(top0 - top1));
    }
  }

  /* ---- a thread arena ---- */
  pthread_t th;
  if (pthread_create(&th, NULL, thread_fn, NULL) != 0) {
    FAIL("pthread_create failed");
    return test_finish();
  }
  pthread_join(th, NULL);
  int in_thread_arena = 0;
  for (int i = 0; i < N; i++)
    if (tblk[i] && (((size_t *)tblk[i])[-1] & 4)) in_thread_arena++;
  if (in_thread_arena != N / 10)
    FAIL("%d of the thread's %d live blocks are in a thread arena (NON_MAIN_ARENA)", in_thread_arena, N / 10);
  rss_before = rss_kib();
  r = malloc_trim(0);
  rss_after = rss_kib();
  if (r != 1) FAIL("malloc_trim(0) with 7 MB of free chunks in a thread arena returned %d", r);
  if (rss_before < 0 || rss_before - rss_after < 5000)
    FAIL("malloc_trim(0): RSS went from %ld to %ld KiB, expected a drop of about 7000 KiB (the "
         "thread arena's free chunks)",
         rss_before, rss_after);
  check_live(tblk, 5000, "thread arena");
  for (int i = 0; i < N; i++) free(tblk[i]);
  printf(TEST_NAME ": main arena and thread arena trimmed\n");
  test_expect_reuse();
  return test_finish();
}
