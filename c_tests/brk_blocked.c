/* brk_blocked: when something is mapped right where the program break would
 * grow, the main arena must fall back to mmap'd memory instead of failing
 * (glibc's "non-contiguous" main arena). Guards against a malloc that returns
 * NULL, or overwrites the blocking mapping, once brk stops working. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEST_NAME "brk_blocked"
#define TEST_MAX_FAILURES 1 /* the first failure ends the test */
#include "testlib.h"

int main(void) {
  /* Make the heap exist, then block its growth with a mapping at the break. */
  void *first = malloc(1000);
  if (!first) FAIL("malloc(1000) failed");
  long page = sysconf(_SC_PAGESIZE);
  uintptr_t brk_now = (uintptr_t)sbrk(0);
  uintptr_t at = (brk_now + page - 1) & ~(uintptr_t)(page - 1);
  unsigned char *wall = mmap((void *)at, 16 * page, PROT_READ | PROT_WRITE,
                             MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
  if (wall == MAP_FAILED || (uintptr_t)wall != at)
    FAIL("could not map a wall at the break %#lx (errno %d)", (unsigned long)at, errno);
  memset(wall, 0x77, 16 * page);
  if (sbrk(page) != (void *)-1) FAIL("sbrk still grows past the wall: the test cannot block brk");

  /* 200 blocks of 100 KiB (below the mmap threshold): 20 MB the heap cannot
   * hold, so they must come from the fall-back mappings. */
  enum { N = 200, SZ = 100 * 1024 };
  unsigned char *blk[N];
  int outside = 0;
  for (int i = 0; i < N; i++) {
    blk[i] = malloc(SZ);
    if (!blk[i]) FAIL("malloc(%d) #%d returned NULL with brk blocked", SZ, i);
    if ((uintptr_t)blk[i] % 16) FAIL("block %d misaligned: %p", i, (void *)blk[i]);
    if ((uintptr_t)blk[i] + SZ > at && (uintptr_t)blk[i] < at + 16 * page)
      FAIL("block %d at %p overlaps the wall", i, (void *)blk[i]);
    if ((uintptr_t)blk[i] > at) outside++;
    memset(blk[i], i & 0xff, SZ);
  }
  if (outside == 0) FAIL("no block came from outside the brk heap");
  for (int i = 0; i < N; i++)
    for (int j = 0; j < SZ; j += 997)
      if (blk[i][j] != (i & 0xff)) FAIL("block %d byte %d changed", i, j);
  for (long j = 0; j < 16 * page; j++)
    if (wall[j] != 0x77) FAIL("the wall was overwritten at byte %ld", j);
  for (int i = 0; i < N; i += 2) free(blk[i]);
  for (int i = 1; i < N; i += 2) {
    blk[i] = realloc(blk[i], SZ + 5000);
    if (!blk[i] || blk[i][SZ - 1] != (i & 0xff)) FAIL("realloc of block %d lost data", i);
  }
  for (int i = 1; i < N; i += 2) free(blk[i]);
  free(first);
  printf("brk_blocked: %d blocks served past a blocked break (%d above it)\n", N, outside);
  test_expect_reuse();
  return test_finish();
}
