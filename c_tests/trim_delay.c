/* trim_delay: when the main heap's free top goes back to the kernel.
 * 200 blocks of 100 KiB (below the mmap threshold: from the heap) are
 * allocated and freed in reverse order, which leaves a top of some 20 MiB.
 *  - default and hardened (glibc's policy): the free that makes the top
 *    pass the trim threshold lowers the break at once (sbrk(0) ends within
 *    1 MiB of where the blocks began).
 *  - fast: the break stays up (at least 15 MiB above) while the heap grew
 *    less than a second ago; after a pause of 1.1 s the next big free
 *    trims it.
 *  - every profile: malloc_trim(0) lowers it at once (tried in the fast
 *    profile's kept state too).
 * The profile is read from PTMALLOC_RS_PROFILE, as scripts/run-tests sets
 * it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "trim_delay"
#include "testlib.h"

enum { N = 200, BLOCK = 100 << 10 };

static void *blocks[N];

/* Allocates and frees the blocks; returns where the first one began. */
static uintptr_t churn(void) {
  for (int i = 0; i < N; i++) {
    blocks[i] = malloc(BLOCK);
    if (!blocks[i]) {
      FAIL("malloc(%d) returned NULL", BLOCK);
      exit(1);
    }
    memset(blocks[i], 1, BLOCK);
  }
  uintptr_t start = (uintptr_t)blocks[0];
  for (int i = N - 1; i >= 0; i--) free(blocks[i]);
  return start;
}

static uintptr_t brk_now(void) { return (uintptr_t)sbrk(0); }

int main(void) {
  const char *prof = getenv("PTMALLOC_RS_PROFILE");
  int fast = prof && strcmp(prof, "fast") == 0;
  uintptr_t start = churn();
  uintptr_t after = brk_now();
  printf(TEST_NAME ": blocks from %#lx, break %#lx after the frees\n", (unsigned long)start, (unsigned long)after);
  if (!fast && after > start + (1u << 20))
    FAIL("the break stayed %lu KiB above the freed blocks (want it lowered at once)",
         (unsigned long)((after - start) >> 10));
  if (fast) {
    if (after < start + (15u << 20))
      FAIL("fast: the break came down to %lu KiB above the blocks right after the frees (want it kept)",
           (unsigned long)((after - start) >> 10));
    struct timespec pause = {1, 100000000};
    nanosleep(&pause, NULL);
    void *p = malloc(BLOCK);
    memset(p, 2, BLOCK);
    free(p);
    uintptr_t later = brk_now();
    printf(TEST_NAME ": break %#lx after a pause and a free\n", (unsigned long)later);
    if (later > start + (1u << 20))
      FAIL("fast: the break stayed %lu KiB above the blocks after a pause of 1.1 s and a free (want it lowered)",
           (unsigned long)((later - start) >> 10));
  }
  /* malloc_trim at once, also from the fast profile's kept state. */
  start = churn();
  if (malloc_trim(0) != 1) FAIL("malloc_trim(0) said it released nothing");
  after = brk_now();
  if (after > start + (1u << 20))
    FAIL("the break stayed %lu KiB above the blocks after malloc_trim(0)", (unsigned long)((after - start) >> 10));
  test_expect_reuse();
  return test_finish();
}
