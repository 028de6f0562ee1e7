/* realloc_growth: a block grown a few bytes at a time.
 * A block starts at 16 bytes and is realloc'd 4000 times, one byte more
 * each time, with a small block malloc'd after every step so that the
 * chunk after it is always in use (no growing in place into free memory
 * or the top). The contents are checked after every move.
 *  - default and hardened (glibc's policy): realloc asks for exactly the
 *    new size, so the block moves whenever it outgrows its chunk and the
 *    next chunk is in use: 102 moves under glibc 2.36 (often it grows into
 *    the chunk it left before); more than 60 wanted.
 *  - fast: a block that must move gets a quarter more room than it had,
 *    so it moves a logarithmic number of times: at most 40 (log base 1.25
 *    of 4016/16 is about 25).
 *  - every profile: realloc to fewer bytes returns the same pointer with
 *    the contents kept; in the fast profile a block shrunk by less than a
 *    quarter of its chunk keeps its usable size (no split), in the others
 *    a shrink by 64 bytes or more gives the tail back (the usable size
 *    drops).
 * The profile is read from PTMALLOC_RS_PROFILE, as scripts/run-tests sets
 * it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "realloc_growth"
#include "testlib.h"

enum { STEPS = 4000 };

static void *blockers[STEPS];

int main(void) {
  const char *prof = getenv("PTMALLOC_RS_PROFILE");
  int fast = prof && strcmp(prof, "fast") == 0;
  size_t n = 16;
  unsigned char *p = malloc(n);
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)i;
  int moves = 0;
  for (int s = 0; s < STEPS; s++) {
    unsigned char *q = realloc(p, n + 1);
    if (!q) {
      FAIL("realloc to %zu bytes returned NULL", n + 1);
      return test_finish();
    }
    if (q != p) {
      moves++;
      for (size_t i = 0; i < n; i++)
        if (q[i] != (unsigned char)i) {
          FAIL("byte %zu changed when the block moved at %zu bytes", i, n + 1);
          break;
        }
    }
    q[n] = (unsigned char)n;
    n++;
    p = q;
    blockers[s] = malloc(16);
  }
  printf(TEST_NAME ": %d moves in %d one-byte growths\n", moves, STEPS);
  if (fast && moves > 40) FAIL("fast: the block moved %d times (want at most 40)", moves);
  if (!fast && moves <= 60) FAIL("%d moves: glibc's realloc moves at most 16 bytes later (102 moves; want more than 60)", moves);

  /* Shrinking. */
  size_t before = malloc_usable_size(p);
  unsigned char *q = realloc(p, n - 64);
  if (q != p) FAIL("realloc to fewer bytes moved the block (%p -> %p)", (void *)p, (void *)q);
  for (size_t i = 0; i < n - 64; i++)
    if (q[i] != (unsigned char)i) {
      FAIL("byte %zu changed by the shrink", i);
      break;
    }
  size_t after = malloc_usable_size(q);
  if (fast && after != before) FAIL("fast: a shrink by 64 of %zu bytes changed the usable size to %zu", before, after);
  if (!fast && after >= before) FAIL("a shrink by 64 bytes left the usable size at %zu (was %zu)", after, before);
  free(q);
  for (int s = 0; s < STEPS; s++) free(blockers[s]);
  test_expect_reuse();
  return test_finish();
}
