/* calloc_fresh: calloc must not write zeros over memory that is fresh from
 * the kernel (already zero): neither a new mapping nor a newly grown brk
 * heap beyond its old top. A calloc that memsets everything makes RSS jump by
 * the whole size;
 * checked through /proc/self/statm. Contents must read as zero all the same. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define TEST_NAME "calloc_fresh"
#define TEST_MAX_FAILURES 1 /* the first failure ends the test */
#include "testlib.h"

/* the RSS in KiB; not being able to read it fails the test */
static long rss(void) {
  long kib = rss_kib();
  if (kib < 0) FAIL("cannot read /proc/self/statm");
  return kib;
}

int main(void) {
  rss(); /* let stdio set itself up first */

  long before = rss();
  unsigned char *big = calloc(64, 1 << 20); /* 64 MiB: its own mapping */
  if (!big) FAIL("calloc(64 MiB) failed");
  long after = rss();
  if (after - before > 4096)
    FAIL("calloc(64 MiB) raised RSS by %ld KiB: fresh mmap'd memory was cleared", after - before);
  for (size_t i = 0; i < (64u << 20); i += 4096)
    if (big[i]) FAIL("calloc(64 MiB) byte %zu is %d", i, big[i]);
  free(big);

  /* Heap-sized blocks that grow the brk heap: 100 x 120 KiB = 12 MiB. */
  enum { N = 100, SZ = 120 * 1024 };
  unsigned char *b[N];
  before = rss();
  for (int i = 0; i < N; i++) {
    b[i] = calloc(1, SZ);
    if (!b[i]) FAIL("calloc(%d) #%d failed", SZ, i);
  }
  after = rss();
  /* glibc counts everything below the highest break as possibly dirty, so
   * only the part of each block beyond the old top is skipped: about half
   * here (glibc 2.36: ~6800 KiB). Clearing everything would cost 12000. */
  if (after - before > 9000)
    FAIL("100 callocs of 120 KiB from a growing heap raised RSS by %ld KiB (12000 if cleared)",
         after - before);
  for (int i = 0; i < N; i++)
    for (int j = 0; j < SZ; j += 512)
      if (b[i][j]) FAIL("block %d byte %d is %d", i, j, b[i][j]);
  /* Reused memory must be cleared: dirty a block, free it, calloc again. */
  for (int j = 0; j < SZ; j++) b[N - 1][j] = 0xee;
  free(b[N - 1]);
  unsigned char *again = calloc(1, SZ);
  for (int j = 0; j < SZ; j++)
    if (again[j]) FAIL("reused block byte %d is %#x", j, again[j]);
  printf("calloc_fresh: RSS grew %ld KiB for 12000 KiB of fresh calloc\n", after - before);
  test_expect_reuse();
  return test_finish();
}
