// Not under the fast profile: it checks that a free trims at once (the
// fast profile waits until the heap has not grown for a second: trim_delay).
/* heap_trim: when a free leaves the top chunk bigger than the trim threshold
 * (128 KiB), the main arena gives memory back to the kernel by lowering the
 * program break, keeping the top pad. Guards against a heap that only grows,
 * and against trimming memory still in use (contents are checked). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_NAME "heap_trim"
#define TEST_MAX_FAILURES 1 /* the first failure ends the test */
#include "testlib.h"

int main(void) {
  enum { N = 100, SZ = 60 * 1024 };
  unsigned char *keep = malloc(100);
  memset(keep, 0x42, 100);
  uintptr_t start = (uintptr_t)sbrk(0);
  unsigned char *b[N];
  for (int i = 0; i < N; i++) {
    b[i] = malloc(SZ);
    if (!b[i]) FAIL("malloc #%d failed", i);
    memset(b[i], i, SZ);
  }
  uintptr_t peak = (uintptr_t)sbrk(0);
  if (peak - start < (uintptr_t)N * SZ - 256 * 1024)
    FAIL("the break grew by %#lx only for %d x %d bytes: not from brk?",
         (unsigned long)(peak - start), N, SZ);
  /* Free from the top down: each free merges into top. */
  for (int i = N - 1; i >= 0; i--) {
    for (int j = 0; j < SZ; j += 4093)
      if (b[i][j] != (unsigned char)i) FAIL("block %d changed before free", i);
    free(b[i]);
  }
  uintptr_t after = (uintptr_t)sbrk(0);
  if (after >= peak) FAIL("the break did not come down after freeing 6 MB (peak %#lx, now %#lx)",
                          (unsigned long)peak, (unsigned long)after);
  if (after > start + 512 * 1024)
    FAIL("the heap kept %#lx bytes above its start after everything was freed",
         (unsigned long)(after - start));
  for (int j = 0; j < 100; j++)
    if (keep[j] != 0x42) FAIL("the live block below the trimmed area changed");
  /* The trimmed heap grows again and works. */
  unsigned char *again = malloc(SZ);
  memset(again, 7, SZ);
  free(again);
  free(keep);
  printf("heap_trim: break %#lx -> peak +%#lx -> +%#lx after frees\n", (unsigned long)start,
         (unsigned long)(peak - start), (unsigned long)(after - start));
  test_expect_reuse();
  return test_finish();
}
