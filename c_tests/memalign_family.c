/* memalign_family: memalign, aligned_alloc, posix_memalign, valloc and
 * pvalloc for every power-of-two alignment 1..1 MiB and sizes 0, 1, 17, 1000,
 * 5000, 200000 return aligned blocks with usable size >= size (pvalloc: >=
 * size rounded up to a page) that are writable, freeable with free,
 * realloc-able with contents kept, and known to malloc_usable_size.
 * Invalid and edge cases, as glibc 2.36 behaves on this machine:
 *  - posix_memalign with alignment 0, 1, 2, 3, 4 (sizeof(void*)/2), 24, 48 or
 *    2^63+1 returns EINVAL, leaves errno and *memptr untouched;
 *  - memalign/aligned_alloc with a non-power-of-two alignment (24, 48, 100,
 *    1000, 3000, 5000) succeed, aligned to the next power of two;
 *  - aligned_alloc is lenient (size need not be a multiple of the alignment)
 *    and alignment 0 works like malloc;
 *  - memalign/aligned_alloc with alignment > SIZE_MAX/2+1 (e.g. SIZE_MAX/2+2,
 *    SIZE_MAX) return NULL with errno EINVAL; with alignment 2^63 (a power of
 *    two) NULL with ENOMEM;
 *  - a huge size returns NULL with ENOMEM (posix_memalign: returns ENOMEM,
 *    *memptr untouched).
 * Guards against: padding arithmetic that misaligns or overruns, aligned
 * blocks that free/realloc/malloc_usable_size cannot handle (they must be
 * normal chunks), strict checks glibc 2.36 does not make, and overflow in
 * alignment + size computations. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_NAME "memalign_family"
#include "testlib.h"

static size_t page;

enum fn { F_MEMALIGN, F_ALIGNED_ALLOC, F_POSIX_MEMALIGN, F_VALLOC, F_PVALLOC };
static const char *fname[] = {"memalign", "aligned_alloc", "posix_memalign", "valloc",
                              "pvalloc"};

static void *call(enum fn f, size_t al, size_t n, int *err) {
  void *p = NULL;
  *err = 0;
  switch (f) {
  case F_MEMALIGN: p = memalign(opq(al), opq(n)); break;
  case F_ALIGNED_ALLOC: p = aligned_alloc(opq(al), opq(n)); break;
  case F_POSIX_MEMALIGN: *err = posix_memalign(&p, opq(al), opq(n)); break;
  case F_VALLOC: p = valloc(opq(n)); break;
  case F_PVALLOC: p = pvalloc(opq(n)); break;
  }
  return p;
}

/* allocate, check, write, realloc, check, free */
static void one(enum fn f, size_t al, size_t n, unsigned seed) {
  int err;
  unsigned char *p = call(f, al, n, &err);
  size_t want_al = al < 16 ? 16 : al; /* everything is at least 16-aligned */
  if (f == F_VALLOC || f == F_PVALLOC) want_al = page;
  if (!p || err) {
    FAIL("%s(align %zu, size %zu) failed: %p, error %d", fname[f], al, n, (void *)p, err);
    return;
  }
  if ((uintptr_t)p % want_al)
    FAIL("%s(align %zu, size %zu) = %p, not %zu-aligned", fname[f], al, n, (void *)p, want_al);
  size_t u = malloc_usable_size(p);
  size_t need = n;
  if (f == F_PVALLOC) need = (n + page - 1) & ~(page - 1);
  if (u < need)
    FAIL("%s(align %zu, size %zu): malloc_usable_size %zu, expected >= %zu", fname[f], al, n, u,
         need);
  if (u > need + 2 * al + 2 * page + 64) /* sanity: not absurdly large (bad header?) */
    FAIL("%s(align %zu, size %zu): malloc_usable_size %zu is implausibly large", fname[f], al, n,
         u);
  if (u < need) u = need;
  pat_fill(p, seed, 0, u);
  size_t bad = pat_check(p, seed, u);
  if (bad != ALL_GOOD)
    FAIL("%s(align %zu, size %zu) = %p: byte %zu not writable (reads 0x%02x)", fname[f], al, n,
         (void *)p, bad, p[bad]);
  /* realloc keeps the contents (grow) */
  size_t m = n * 2 + 100;
  unsigned char *q = realloc(p, m);
  if (!q) {
    FAIL("realloc(%s(align %zu, size %zu), %zu) returned NULL", fname[f], al, n, m);
    free(p);
    return;
  }
  if (malloc_usable_size(q) < m)
    FAIL("realloc(%s block, %zu): usable %zu", fname[f], m, malloc_usable_size(q));
  bad = pat_check(q, seed, n);
  if (bad != ALL_GOOD)
    FAIL("realloc(%s(align %zu, size %zu), %zu): byte %zu is 0x%02x, expected 0x%02x", fname[f],
         al, n, m, bad, q[bad], pat_byte(seed, bad));
  free(q);
}

/* allocate a block and free it without realloc (plain free of aligned blocks),
 * keeping several alive at the same time */
static void keep_many(enum fn f, size_t al, size_t n) {
  enum { K = 16 };
  unsigned char *p[K];
  size_t u[K];
  int err;
  for (int i = 0; i < K; i++) {
    p[i] = call(f, al, n, &err);
    u[i] = 0;
    if (!p[i] || err) {
      FAIL("%s(align %zu, size %zu) #%d failed: error %d", fname[f], al, n, i, err);
      p[i] = NULL;
      continue;
    }
    u[i] = malloc_usable_size(p[i]);
    memset(p[i], 0x40 + i, u[i]);
  }
  for (int i = 0; i < K; i++) {
    size_t j = first_byte_not(p[i], u[i], 0x40 + i); /* u[i] is 0 for a failed one */
    if (j != ALL_GOOD)
      FAIL("%s(align %zu, size %zu): block %d byte %zu overwritten (0x%02x): blocks overlap",
           fname[f], al, n, i, j, p[i][j]);
  }
  for (int i = 0; i < K; i++) free(p[i]);
}

static void expect_fail(enum fn f, size_t al, size_t n, int want_errno) {
  int err;
  errno = 0;
  void *p = call(f, al, n, &err);
  int e = errno;
  if (p) {
    FAIL("%s(align %zu, size %zu) returned %p, expected NULL (errno %d)", fname[f], al, n, p,
         want_errno);
    free(p);
    return;
  }
  if (e != want_errno)
    FAIL("%s(align %zu, size %zu) returned NULL with errno %d, expected %d", fname[f], al, n, e,
         want_errno);
}

static void posix_bad(size_t al, size_t n, int want) {
  void *p = (void *)0x1234;
  errno = 5555;
  int r = posix_memalign(&p, opq(al), opq(n));
  int e = errno;
  if (r != want)
    FAIL("posix_memalign(align %zu, size %zu) returned %d, expected %d", al, n, r, want);
  if (p != (void *)0x1234)
    FAIL("posix_memalign(align %zu, size %zu) failed but changed *memptr to %p", al, n, p);
  /* glibc leaves errno alone on EINVAL (on ENOMEM it sets errno to ENOMEM,
   * which is not checked here) */
  if (want == EINVAL && e != 5555)
    FAIL("posix_memalign(align %zu, size %zu) returned EINVAL but changed errno to %d", al, n, e);
  if (r == 0) free(p);
}

int main(void) {
  page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {0, 1, 17, 1000, 5000, 200000};
  const int nsizes = sizeof sizes / sizeof sizes[0];
  unsigned seed = 1;

  for (size_t al = 1; al <= ((size_t)1 << 20); al <<= 1) {
    for (int s = 0; s < nsizes; s++) {
      size_t n = sizes[s];
      one(F_MEMALIGN, al, n, seed++);
      one(F_ALIGNED_ALLOC, al, n, seed++);
      if (al >= sizeof(void *)) one(F_POSIX_MEMALIGN, al, n, seed++);
    }
    /* several alive at once, small sizes (keeps the run short for big al) */
    keep_many(F_MEMALIGN, al, 17);
    keep_many(F_ALIGNED_ALLOC, al, 1000);
    if (al >= sizeof(void *)) keep_many(F_POSIX_MEMALIGN, al, 5000);
  }
  for (int s = 0; s < nsizes; s++) {
    one(F_VALLOC, 0, sizes[s], seed++);
    one(F_PVALLOC, 0, sizes[s], seed++);
  }
  keep_many(F_VALLOC, 0, 100);
  keep_many(F_PVALLOC, 0, 5000);
  /* pvalloc sizes around page boundaries */
  for (size_t n = page - 2; n <= page + 2; n++) one(F_PVALLOC, 0, n, seed++);
  for (size_t n = 3 * page - 1; n <= 3 * page + 1; n++) one(F_PVALLOC, 0, n, seed++);

  /* non-power-of-two alignments: memalign and aligned_alloc round up */
  static const size_t npow[][2] = {{24, 32},     {48, 64},     {100, 128},
                                   {1000, 1024}, {3000, 4096}, {5000, 8192}};
  for (size_t i = 0; i < sizeof npow / sizeof npow[0]; i++) {
    for (int f = F_MEMALIGN; f <= F_ALIGNED_ALLOC; f++) {
      for (int k = 0; k < 8; k++) { /* several: one could be aligned by luck */
        int err;
        size_t n = 100 + 10 * k;
        unsigned char *p = call(f, npow[i][0], n, &err);
        if (!p) {
          FAIL("%s(align %zu, size %zu) returned NULL (errno %d); glibc 2.36 rounds the "
               "alignment up to %zu",
               fname[f], npow[i][0], n, errno, npow[i][1]);
          continue;
        }
        if ((uintptr_t)p % npow[i][1])
          FAIL("%s(align %zu, size %zu) = %p, not %zu-aligned (glibc rounds up to the next "
               "power of two)",
               fname[f], npow[i][0], n, (void *)p, npow[i][1]);
        if (malloc_usable_size(p) < n)
          FAIL("%s(align %zu, size %zu): usable %zu", fname[f], npow[i][0], n,
               malloc_usable_size(p));
        memset(p, 0x33, n);
        free(p);
      }
    }
  }
  /* aligned_alloc is lenient: size not a multiple of the alignment */
  one(F_ALIGNED_ALLOC, 64, 100, seed++);
  one(F_ALIGNED_ALLOC, 4096, 1, seed++);
  one(F_ALIGNED_ALLOC, 256, 4097, seed++);
  /* alignment 0 and 3 for memalign/aligned_alloc: like malloc */
  one(F_MEMALIGN, 0, 100, seed++);
  one(F_ALIGNED_ALLOC, 0, 100, seed++);
  one(F_MEMALIGN, 3, 100, seed++);

  /* posix_memalign with a bad alignment: EINVAL, errno and *memptr untouched */
  static const size_t bad[] = {0, 1, 2, 3, sizeof(void *) / 2, 12, 24, 48, 100, 4097,
                               ((size_t)1 << 63) + 1, SIZE_MAX};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    posix_bad(bad[i], 100, EINVAL);
    posix_bad(bad[i], 0, EINVAL);
  }
  /* posix_memalign with a huge size or a huge (power-of-two) alignment */
  posix_bad(64, SIZE_MAX - 100, ENOMEM);
  posix_bad(64, (size_t)PTRDIFF_MAX + 1, ENOMEM);
  posix_bad(4096, SIZE_MAX, ENOMEM);
  posix_bad((size_t)1 << 63, 16, ENOMEM);

  /* memalign/aligned_alloc: alignment too big to be a power of two -> EINVAL */
  expect_fail(F_MEMALIGN, SIZE_MAX / 2 + 2, 16, EINVAL);
  expect_fail(F_ALIGNED_ALLOC, SIZE_MAX / 2 + 2, 16, EINVAL);
  expect_fail(F_MEMALIGN, SIZE_MAX, 16, EINVAL);
  expect_fail(F_ALIGNED_ALLOC, SIZE_MAX, 1, EINVAL);
  /* alignment 2^63 is a power of two but cannot be satisfied -> ENOMEM */
  expect_fail(F_MEMALIGN, SIZE_MAX / 2 + 1, 16, ENOMEM);
  expect_fail(F_ALIGNED_ALLOC, SIZE_MAX / 2 + 1, 16, ENOMEM);
  /* huge sizes -> ENOMEM */
  expect_fail(F_MEMALIGN, 64, SIZE_MAX - 100, ENOMEM);
  expect_fail(F_MEMALIGN, 64, (size_t)PTRDIFF_MAX + 1, ENOMEM);
  expect_fail(F_MEMALIGN, 64, (size_t)PTRDIFF_MAX, ENOMEM);
  expect_fail(F_MEMALIGN, 4096, SIZE_MAX - 4096, ENOMEM);
  expect_fail(F_ALIGNED_ALLOC, 64, SIZE_MAX - 100, ENOMEM);
  expect_fail(F_ALIGNED_ALLOC, 1 << 20, (size_t)PTRDIFF_MAX, ENOMEM);
  expect_fail(F_VALLOC, 0, SIZE_MAX - 100, ENOMEM);
  expect_fail(F_VALLOC, 0, (size_t)PTRDIFF_MAX, ENOMEM);
  expect_fail(F_PVALLOC, 0, SIZE_MAX - 100, ENOMEM); /* rounding up to a page overflows */
  expect_fail(F_PVALLOC, 0, SIZE_MAX, ENOMEM);
  expect_fail(F_PVALLOC, 0, (size_t)PTRDIFF_MAX, ENOMEM);

  /* after all of that, ordinary allocation still works */
  one(F_MEMALIGN, 64, 1000, seed++);
  one(F_POSIX_MEMALIGN, 4096, 200000, seed++);

  test_expect_reuse();
  return test_finish();
}
