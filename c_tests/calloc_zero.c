/* calloc_zero: calloc returns zeroed memory for small, medium and large
 * (200 KiB, 1 MiB, 4 MiB) requests, also when the memory is reused: blocks
 * are malloc'ed, filled with 0xAA and freed, then calloc'ed again (same
 * sizes, same and reverse order, several rounds, in the main thread and in a
 * second thread whose arena is not the main one).  calloc(n, size) whose
 * product overflows returns NULL with errno ENOMEM; calloc(0, x) and
 * calloc(x, 0) return non-NULL pointers that free accepts.
 * Guards against: the "fresh memory needs no clearing" shortcut applied to
 * dirty memory (reused chunks, a top chunk that absorbed freed chunks, a
 * reused mmap threshold block), clearing only part of the block, and an
 * unchecked n*size multiplication. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "calloc_zero"
#include "testlib.h"

static void check_zero(const unsigned char *p, size_t n, const char *what, size_t a, size_t b) {
  size_t j = first_byte_not(p, n, 0);
  if (j != ALL_GOOD)
    FAIL("%s: calloc(%zu, %zu) = %p: byte %zu of %zu is 0x%02x, expected 0", what, a, b,
         (const void *)p, j, n, p[j]);
}

static const size_t sizes_fixed[] = {
    1,     2,     8,     15,     16,     17,     24,     25,     31,     32,     33,
    40,    48,    64,    100,    127,    128,    129,    255,    256,    512,    1000,
    1024,  1032,  1033,  1040,   2000,   4000,   4096,   8192,   10000,  30000,  65536,
    65537, 100000, 131000, 131072, 200 * 1024, 1 << 20, (1 << 20) + 1, 4 << 20,
};
#define NFIXED (sizeof sizes_fixed / sizeof sizes_fixed[0])

/* One round: malloc all sizes, dirty them, free them, calloc them back
 * (forward or backward), check zero, free. */
static void reuse_round(const char *who, int backwards) {
  void *p[NFIXED];
  for (size_t i = 0; i < NFIXED; i++) {
    p[i] = malloc(sizes_fixed[i]);
    if (!p[i]) {
      FAIL("%s: malloc(%zu) returned NULL", who, sizes_fixed[i]);
      continue;
    }
    memset(p[i], 0xAA, malloc_usable_size(p[i]));
  }
  for (size_t i = 0; i < NFIXED; i++) {
    keep_stores(p[i]); /* keep the 0xAA stores */
    free(p[i]);
  }
  for (size_t k = 0; k < NFIXED; k++) {
    size_t i = backwards ? NFIXED - 1 - k : k;
    size_t n = sizes_fixed[i];
    /* alternate the factorisation n*1 and 1*n, and a split when possible */
    size_t a = n, b = 1;
    if (k % 3 == 1) a = 1, b = n;
    else if (k % 3 == 2 && n % 8 == 0) a = n / 8, b = 8;
    p[i] = calloc(a, b);
    if (!p[i]) {
      FAIL("%s: calloc(%zu, %zu) returned NULL", who, a, b);
      continue;
    }
    check_zero(p[i], n, who, a, b);
    memset(p[i], 0xAA, malloc_usable_size(p[i])); /* dirty it for the next round */
  }
  for (size_t i = 0; i < NFIXED; i++) {
    keep_stores(p[i]);
    free(p[i]);
  }
}

/* Every size 0..3000: dirty blocks freed in bulk, then calloc'ed back. */
static void sweep_small(const char *who) {
  enum { N = 3001 };
  static void *p[N];
  for (size_t n = 0; n < N; n++) {
    p[n] = malloc(n);
    if (!p[n]) {
      FAIL("%s: malloc(%zu) returned NULL", who, n);
      continue;
    }
    memset(p[n], 0xAA, malloc_usable_size(p[n]));
  }
  for (size_t n = 0; n < N; n++) {
    keep_stores(p[n]);
    free(p[n]);
  }
  for (size_t n = N; n-- > 0;) {
    p[n] = calloc(1, n);
    if (!p[n]) {
      FAIL("%s: calloc(1, %zu) returned NULL", who, n);
      continue;
    }
    check_zero(p[n], n, who, 1, n);
  }
  for (size_t n = 0; n < N; n++) free(p[n]);
}

/* A big dirty region coalesces into top (or is trimmed); calloc carving from
 * that top must still clear. */
static void top_round(const char *who) {
  enum { K = 64 };
  void *p[K];
  for (int i = 0; i < K; i++) {
    p[i] = malloc(16384 + 16 * i);
    if (p[i]) memset(p[i], 0xAA, malloc_usable_size(p[i]));
  }
  for (int i = K; i-- > 0;) {
    keep_stores(p[i]);
    free(p[i]);
  }
  for (int i = 0; i < K; i++) {
    size_t n = 20000 + 24 * i;
    p[i] = calloc(n, 1);
    if (!p[i]) FAIL("%s: calloc(%zu, 1) returned NULL", who, n);
    else check_zero(p[i], n, who, n, 1);
  }
  for (int i = 0; i < K; i++) free(p[i]);
}

static void all_rounds(const char *who) {
  for (int r = 0; r < 4; r++) {
    reuse_round(who, r & 1);
    top_round(who);
  }
  sweep_small(who);
}

static void *thread_main(void *arg) {
  (void)arg;
  all_rounds("second thread");
  return NULL;
}

static void expect_enomem(size_t a, size_t b, const char *why) {
  errno = 0;
  void *p = calloc(opq(a), opq(b));
  int e = errno;
  if (p) {
    FAIL("calloc(%zu, %zu) (%s) returned %p, expected NULL", a, b, why, p);
    free(p);
  } else if (e != ENOMEM) {
    FAIL("calloc(%zu, %zu) (%s) returned NULL with errno %d, expected ENOMEM (%d)", a, b, why,
         e, ENOMEM);
  }
}

static void expect_zero_size_ok(size_t a, size_t b) {
  errno = 0;
  void *p = calloc(opq(a), opq(b));
  if (!p) {
    FAIL("calloc(%zu, %zu) returned NULL (errno %d), expected a unique freeable pointer", a, b,
         errno);
    return;
  }
  if ((uintptr_t)p % 16) FAIL("calloc(%zu, %zu) = %p, not 16-byte aligned", a, b, p);
  free(p);
}

int main(void) {
  /* fresh memory first */
  for (size_t i = 0; i < NFIXED; i++) {
    size_t n = sizes_fixed[i];
    unsigned char *p = calloc(n, 1);
    if (!p) FAIL("fresh: calloc(%zu, 1) returned NULL", n);
    else check_zero(p, n, "fresh", n, 1);
    free(p);
  }

  all_rounds("main thread");

  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL) != 0) {
    FAIL("pthread_create failed");
  } else {
    pthread_join(t, NULL);
  }
  all_rounds("main thread after thread exit");

  /* overflow of n*size */
  expect_enomem(SIZE_MAX, SIZE_MAX, "n*size overflows");
  expect_enomem(SIZE_MAX / 2, 3, "n*size overflows");
  expect_enomem(SIZE_MAX / 16 + 1, 16, "n*size overflows");
  expect_enomem(16, SIZE_MAX / 16 + 1, "n*size overflows");
  expect_enomem((size_t)1 << 32, (size_t)1 << 32, "n*size overflows");
  expect_enomem(((size_t)1 << 33) + 1, (size_t)1 << 31, "n*size overflows");
  expect_enomem(SIZE_MAX, 2, "n*size overflows");
  expect_enomem(2, SIZE_MAX, "n*size overflows");
  /* no overflow, but more than PTRDIFF_MAX: still ENOMEM */
  expect_enomem(1, (size_t)PTRDIFF_MAX + 1, "n*size > PTRDIFF_MAX");
  expect_enomem((size_t)1 << 62, 2, "n*size > PTRDIFF_MAX");

  /* zero-sized calloc */
  expect_zero_size_ok(0, 0);
  expect_zero_size_ok(0, 1);
  expect_zero_size_ok(1, 0);
  expect_zero_size_ok(0, 4096);
  expect_zero_size_ok(4096, 0);
  expect_zero_size_ok(0, SIZE_MAX);
  expect_zero_size_ok(SIZE_MAX, 0);
  {
    void *z[32];
    for (int i = 0; i < 32; i++) {
      z[i] = calloc(0, opq(1 + i));
      if (!z[i]) FAIL("calloc(0, %d) returned NULL", 1 + i);
      for (int j = 0; j < i; j++)
        if (z[i] && z[i] == z[j]) FAIL("calloc(0, x) returned %p twice while both alive", z[i]);
    }
    for (int i = 0; i < 32; i++) free(z[i]);
  }

  test_expect_reuse();
  return test_finish();
}
