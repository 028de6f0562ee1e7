// Not under the fast profile: it checks glibc's usable size for each request
// (the fast profile's large cache may hand out up to a quarter more).
/* size_sweep: malloc of every size 0..5000 and of every power of two (and
 * pow2 +-1) up to 64 MiB returns a non-NULL, 16-byte aligned block whose
 * malloc_usable_size is glibc's: chunk = max(32, (n+8+15) & ~15), usable =
 * chunk-8 for heap chunks; mmap'd or possibly-mmap'd chunks (chunk >= 128 KiB)
 * need usable >= n and < n+4096+32.  Every usable byte is written and read
 * back while many blocks are alive, so overlapping blocks are caught.
 * Guards against: wrong size rounding (header word not accounted, usable size
 * too small or off by the lent prev_size word), misaligned results, chunks
 * that overlap their neighbours, broken mmap path for big requests.
 *
 * Exactness: in phase A (all blocks allocated back to back, nothing freed in
 * between) the usable size must be exactly chunk-8.  Once blocks have been
 * freed glibc may hand out a free chunk up to 16 bytes larger than needed
 * (a remainder below MINSIZE is not split off), so later phases accept
 * chunk-8 or chunk-8+16 for heap sizes. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MMAP_THRESHOLD ((size_t)128 * 1024)

#define TEST_NAME "size_sweep"
#include "testlib.h"

static size_t chunk_of(size_t n) {
  size_t c = (n + 8 + 15) & ~(size_t)15;
  return c < 32 ? 32 : c;
}

struct blk {
  unsigned char *p;
  size_t n, usable, id;
};

/* every usable byte holds the pattern seeded with the block's id */
static void verify(const struct blk *b, const char *phase) {
  size_t j = pat_check(b->p, b->id, b->usable);
  if (j != ALL_GOOD)
    FAIL("%s: malloc(%zu) at %p: byte %zu of %zu usable is 0x%02x, expected "
         "0x%02x (overwritten: overlapping blocks or not writable)",
         phase, b->n, (void *)b->p, j, b->usable, b->p[j], pat_byte(b->id, j));
}

/* exact: 1 = usable must equal chunk-8; 0 = chunk-8 or chunk-8+16 allowed */
static int get(struct blk *b, size_t n, size_t id, int exact, const char *phase) {
  b->n = n;
  b->id = id;
  b->p = malloc(n);
  if (!b->p) {
    FAIL("%s: malloc(%zu) returned NULL", phase, n);
    return 0;
  }
  if ((uintptr_t)b->p % 16) FAIL("%s: malloc(%zu) = %p, not 16-byte aligned", phase, n, (void *)b->p);
  b->usable = malloc_usable_size(b->p);
  size_t c = chunk_of(n);
  if (c < MMAP_THRESHOLD) {
    size_t want = c - 8;
    if (exact ? b->usable != want : (b->usable != want && b->usable != want + 16))
      FAIL("%s: malloc(%zu) usable %zu, expected %s%zu (chunk %zu)", phase, n, b->usable,
           exact ? "" : "(or +16) ", want, c);
  } else {
    if (b->usable < n || b->usable >= n + 4096 + 32)
      FAIL("%s: malloc(%zu) usable %zu, expected >= %zu and < %zu", phase, n, b->usable,
           n, n + 4096 + 32);
  }
  if (b->usable < n) b->usable = n; /* already reported; don't write past n */
  pat_fill(b->p, b->id, 0, b->usable);
  return 1;
}

static int by_addr(const void *a, const void *b) {
  uintptr_t x = (uintptr_t)(*(const struct blk *const *)a)->p;
  uintptr_t y = (uintptr_t)(*(const struct blk *const *)b)->p;
  return x < y ? -1 : x > y;
}

/* The usable ranges [p, p+usable) of live blocks must be pairwise disjoint. */
static void check_no_overlap(struct blk *v, size_t n, const char *phase) {
  struct blk **s = malloc(n * sizeof *s);
  size_t m = 0;
  if (!s) {
    FAIL("%s: malloc for the overlap check failed", phase);
    return;
  }
  for (size_t i = 0; i < n; i++)
    if (v[i].p) s[m++] = &v[i];
  qsort(s, m, sizeof *s, by_addr);
  for (size_t i = 0; i + 1 < m; i++)
    if ((uintptr_t)s[i]->p + s[i]->usable > (uintptr_t)s[i + 1]->p)
      FAIL("%s: malloc(%zu) = %p (usable %zu) overlaps malloc(%zu) = %p", phase, s[i]->n,
           (void *)s[i]->p, s[i]->usable, s[i + 1]->n, (void *)s[i + 1]->p);
  free(s);
}

#define NSMALL 5001

int main(void) {
  static struct blk small[NSMALL];
  size_t id = 1;

  /* Phase A: sizes 0..5000 back to back, all alive at once, exact usable. */
  for (size_t n = 0; n < NSMALL; n++) get(&small[n], n, id++, 1, "phase A");
  for (size_t n = 0; n < NSMALL; n++)
    if (small[n].p) verify(&small[n], "phase A");
  check_no_overlap(small, NSMALL, "phase A");

  /* Phase B: free every other block, reallocate those sizes in descending
   * order (reusing freed chunks), verify everything. */
  for (size_t n = 0; n < NSMALL; n += 2) {
    free(small[n].p);
    small[n].p = NULL;
  }
  for (size_t k = NSMALL; k-- > 0;)
    if (k % 2 == 0) get(&small[k], k, id++, 0, "phase B");
  for (size_t n = 0; n < NSMALL; n++)
    if (small[n].p) verify(&small[n], "phase B");
  check_no_overlap(small, NSMALL, "phase B");
  for (size_t n = 0; n < NSMALL; n++) {
    free(small[n].p);
    small[n].p = NULL;
  }

  /* Phase C: powers of two and +-1 up to 64 MiB.  Everything up to 4 MiB
   * stays alive until the end of the phase; larger ones are alive three at
   * a time (2^k-1, 2^k, 2^k+1). */
  struct blk keep[3 * 27];
  size_t nkeep = 0;
  for (int k = 0; k <= 26; k++) {
    size_t base = (size_t)1 << k;
    struct blk trio[3];
    int ntrio = 0;
    for (int d = -1; d <= 1; d++) {
      size_t n = base + d;
      if (k == 0 && d == 1) continue; /* 2 is 2^1 */
      struct blk *b = base <= ((size_t)4 << 20) ? &keep[nkeep] : &trio[ntrio];
      if (get(b, n, id++, 0, "phase C")) {
        if (base <= ((size_t)4 << 20)) nkeep++;
        else ntrio++;
      }
    }
    for (int t = 0; t < ntrio; t++) {
      verify(&trio[t], "phase C");
      free(trio[t].p);
    }
  }
  for (size_t i = 0; i < nkeep; i++) verify(&keep[i], "phase C");
  for (size_t i = 0; i < nkeep; i++) free(keep[i].p);

  /* Phase D: the sweep again, in a different order and mixed with frees of
   * big blocks (the mmap threshold may have moved), sizes 0..5000 alive. */
  {
    /* 5001 = 3 * 1667 and 1234 is coprime to it: i -> i*1234 mod 5001 is a
     * permutation of 0..5000 */
    const size_t s = 1234;
    for (size_t i = 0; i < NSMALL; i++) {
      size_t n = (i * s) % NSMALL;
      get(&small[n], n, id++, 0, "phase D");
      if (i % 500 == 0) {
        void *big = malloc((size_t)3 << 20);
        if (!big) FAIL("phase D: malloc(3 MiB) returned NULL");
        else memset(big, 0x5a, (size_t)3 << 20);
        keep_stores(big); /* keep the memset */
        free(big);
      }
    }
    for (size_t n = 0; n < NSMALL; n++)
      if (small[n].p) verify(&small[n], "phase D");
    check_no_overlap(small, NSMALL, "phase D");
    for (size_t n = 0; n < NSMALL; n++) free(small[n].p);
  }

  test_expect_reuse();
  return test_finish();
}
