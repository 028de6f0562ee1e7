/* realloc_contents: realloc keeps the contents while a block grows from 1
 * byte to past 4 MiB in small steps (crossing the 128 KiB mmap threshold:
 * heap->heap, heap->mmap, mmap->mmap moves and in-place growth) and shrinks
 * back to 1 byte, with the pattern checked at every step; realloc(NULL, n)
 * is malloc(n); realloc(p, 0) frees p and returns NULL (glibc's choice; a
 * loop of them must not leak); realloc to a size > PTRDIFF_MAX fails with
 * NULL/ENOMEM and leaves the old block valid and intact; a shrunk block is
 * fully usable; reallocarray with an overflowing product fails with
 * NULL/ENOMEM and leaves the block intact.
 * Guards against: copying too few bytes (old usable vs requested size mix-up),
 * losing data when moving between heap and mmap'd chunks, freeing the old
 * block on failure, size arithmetic overflow, realloc(p, 0) leaking or
 * returning a pointer. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_NAME "realloc_contents"
#include "testlib.h"

/* the first n bytes of p hold the pattern of seed (reports a failure if not) */
static int check(const unsigned char *p, unsigned seed, size_t n, const char *what, size_t a,
                 size_t b) {
  size_t j = pat_check(p, seed, n);
  if (j == ALL_GOOD) return 1;
  FAIL("%s (%zu -> %zu bytes) at %p: byte %zu is 0x%02x, expected 0x%02x", what, a, b,
       (const void *)p, j, p[j], pat_byte(seed, j));
  return 0;
}

static size_t next_up(size_t n) {
  if (n < 2048) return n + 1;                       /* every size */
  if (n >= 126 * 1024 && n < 134 * 1024) return n + 40; /* finely around the mmap threshold */
  return n + n / 16 + 8;
}

static size_t next_down(size_t n) {
  if (n <= 2048) return n - 1;
  if (n > 126 * 1024 && n <= 134 * 1024) return n - 40;
  size_t d = n / 16 + 8;
  return n - d < 2048 ? 2048 : n - d;
}

/* One step of a block that holds the pattern of seed: realloc it from n to m
 * bytes, check that the result is aligned, big enough and still holds the
 * first min(n, m) bytes, and give the pattern to the new bytes.  Returns the
 * new block, or NULL after a failure (the block is then freed).  what names
 * the call: "jumps: realloc" reports "jumps: realloc(...) returned NULL". */
static unsigned char *realloc_step(unsigned char *p, size_t n, size_t m, unsigned seed,
                                   const char *what) {
  unsigned char *q = realloc(p, m);
  if (!q) {
    FAIL("%s(%p, %zu) returned NULL", what, (void *)p, m);
    free(p);
    return NULL;
  }
  if ((uintptr_t)q % 16) FAIL("%s(.., %zu) = %p not 16-byte aligned", what, m, (void *)q);
  if (malloc_usable_size(q) < m)
    FAIL("%s(.., %zu) usable %zu < %zu", what, m, malloc_usable_size(q), m);
  size_t keep = n < m ? n : m;
  if (!check(q, seed, keep, what, n, m)) {
    free(q);
    return NULL;
  }
  pat_fill(q, seed, keep, m);
  return q;
}

static void grow_and_shrink(unsigned seed, const char *label) {
  char growing[128], shrinking[128];
  snprintf(growing, sizeof growing, "%s: growing realloc", label);
  snprintf(shrinking, sizeof shrinking, "%s: shrinking realloc", label);
  size_t n = 1;
  unsigned char *p = malloc(n);
  if (!p) {
    FAIL("%s: malloc(1) returned NULL", label);
    return;
  }
  pat_fill(p, seed, 0, n);
  const size_t top = (4u << 20) + 12345;
  while (n < top) {
    size_t m = next_up(n);
    if (!(p = realloc_step(p, n, m, seed, growing))) return;
    n = m;
  }
  while (n > 1) {
    size_t m = next_down(n);
    if (!(p = realloc_step(p, n, m, seed, shrinking))) return;
    n = m;
  }
  free(p);
}

/* Big jumps in both directions between very different sizes. */
static void jumps(unsigned seed) {
  static const size_t sz[] = {1,        100,      24,      5000,    1 << 20, 40,
                              200000,   131072,   131071,  1,       3 << 20, 65536,
                              600000,   1032,     1033,    (2 << 20) + 1, 17, 8 << 20,
                              300,      128 * 1024 + 1, 0x1000, 2};
  size_t n = 0;
  unsigned char *p = NULL;
  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
    if (!(p = realloc_step(p, n, sz[i], seed, "jumps: realloc"))) return;
    n = sz[i];
  }
  free(p);
}

/* realloc to an impossible size: NULL, ENOMEM, old block intact and usable */
static void impossible(size_t n, unsigned seed) {
  static const size_t bad[] = {(size_t)PTRDIFF_MAX + 1, SIZE_MAX, SIZE_MAX - 15, SIZE_MAX - 4096,
                               (size_t)PTRDIFF_MAX};
  unsigned char *p = malloc(n);
  if (!p) {
    FAIL("malloc(%zu) returned NULL", n);
    return;
  }
  pat_fill(p, seed, 0, n);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    errno = 0;
    void *q = realloc(opqp(p), opq(bad[i]));
    int e = errno;
    if (q) {
      FAIL("realloc(%zu-byte block, %zu) returned %p, expected NULL", n, bad[i], q);
      return; /* p is gone */
    }
    if (e != ENOMEM)
      FAIL("realloc(%zu-byte block, %zu) returned NULL with errno %d, expected ENOMEM", n, bad[i],
           e);
    if (!check(p, seed, n, "failed realloc damaged the old block", n, bad[i])) return;
  }
  /* reallocarray with an overflowing product */
  static const size_t ov[][2] = {{SIZE_MAX / 2, 3}, {SIZE_MAX, SIZE_MAX}, {(size_t)1 << 32, (size_t)1 << 32}, {3, SIZE_MAX / 2}};
  for (size_t i = 0; i < sizeof ov / sizeof ov[0]; i++) {
    errno = 0;
    void *q = reallocarray(opqp(p), opq(ov[i][0]), opq(ov[i][1]));
    int e = errno;
    if (q) {
      FAIL("reallocarray(%zu-byte block, %zu, %zu) returned %p, expected NULL", n, ov[i][0],
           ov[i][1], q);
      return;
    }
    if (e != ENOMEM)
      FAIL("reallocarray(%zu-byte block, %zu, %zu) returned NULL with errno %d, expected ENOMEM",
           n, ov[i][0], ov[i][1], e);
    if (!check(p, seed, n, "failed reallocarray damaged the old block", n, ov[i][0])) return;
  }
  /* the old block still works: grow it, then free */
  unsigned char *q = realloc(p, n * 2 + 10);
  if (!q) {
    FAIL("realloc(%zu-byte block, %zu) after failures returned NULL", n, n * 2 + 10);
    free(p);
    return;
  }
  check(q, seed, n, "realloc after failed reallocs lost contents", n, n * 2 + 10);
  /* reallocarray that does not overflow behaves like realloc */
  unsigned char *r = reallocarray(q, n + 3, 2);
  if (!r) {
    FAIL("reallocarray(%zu-byte block, %zu, 2) returned NULL", n * 2 + 10, n + 3);
    free(q);
    return;
  }
  check(r, seed, n, "reallocarray lost contents", n * 2 + 10, (n + 3) * 2);
  free(r);
}

int main(void) {
  grow_and_shrink(1, "grow/shrink");
  /* with other blocks around, so that in-place growth is not always possible */
  {
    void *blocker[64];
    for (int i = 0; i < 64; i++) blocker[i] = malloc(opq(40 + 100 * i));
    grow_and_shrink(2, "grow/shrink with neighbours");
    for (int i = 0; i < 64; i++) free(blocker[i]);
  }
  jumps(3);
  jumps(4);

  /* realloc(NULL, n) == malloc(n) */
  static const size_t rn[] = {0, 1, 24, 25, 1000, 70000, 200000, 1 << 20};
  for (size_t i = 0; i < sizeof rn / sizeof rn[0]; i++) {
    unsigned char *p = realloc(NULL, rn[i]);
    if (!p) {
      FAIL("realloc(NULL, %zu) returned NULL", rn[i]);
      continue;
    }
    if ((uintptr_t)p % 16) FAIL("realloc(NULL, %zu) = %p, not 16-byte aligned", rn[i], (void *)p);
    if (malloc_usable_size(p) < rn[i])
      FAIL("realloc(NULL, %zu): usable %zu", rn[i], malloc_usable_size(p));
    pat_fill(p, 5, 0, rn[i]);
    check(p, 5, rn[i], "realloc(NULL, n) block", 0, rn[i]);
    free(p);
  }

  /* realloc(p, 0): returns NULL, leaves errno alone, frees p (no leak) */
  static const size_t zn[] = {1, 24, 1000, 5000, 70000, 200000, 1 << 20};
  for (size_t i = 0; i < sizeof zn / sizeof zn[0]; i++) {
    unsigned char *p = malloc(zn[i]);
    if (!p) {
      FAIL("malloc(%zu) returned NULL", zn[i]);
      continue;
    }
    pat_fill(p, 6, 0, zn[i]);
    errno = 4321;
    void *q = realloc(opqp(p), opq(0));
    if (q) {
      FAIL("realloc(%zu-byte block, 0) returned %p, expected NULL (glibc frees the block)", zn[i],
           q);
      free(q);
    }
    if (errno != 4321) FAIL("realloc(%zu-byte block, 0) changed errno to %d", zn[i], errno);
  }
  {
    /* 1000 x realloc(touched 512 KiB block, 0): a leak would cost 500 MiB */
    const size_t big = 512 * 1024;
    long before = rss_kib();
    for (int i = 0; i < 1000; i++) {
      unsigned char *p = malloc(big);
      if (!p) {
        FAIL("malloc(%zu) returned NULL in the realloc(p, 0) loop", big);
        break;
      }
      memset(p, i, big);
      void *q = realloc(opqp(p), opq(0));
      if (q) {
        FAIL("realloc(p, 0) returned %p in the loop", q);
        free(q);
        break;
      }
    }
    long after = rss_kib(), grown = after - before;
    if (before < 0 || after < 0) FAIL("cannot read /proc/self/statm");
    else if (grown > 64 * 1024)
      FAIL("realloc(p, 0) leaks: RSS grew by %ld KiB over 1000 x realloc(512 KiB block, 0)",
           grown);
  }

  /* realloc to impossible sizes, for heap and mmap'd blocks */
  static const size_t in[] = {1, 24, 1000, 100000, 300000, 3 << 20};
  for (size_t i = 0; i < sizeof in / sizeof in[0]; i++) impossible(in[i], 7 + i);

  /* shrinking keeps a usable block, for each kind of block */
  static const size_t sh[][2] = {{1000, 10},       {5000, 4000},   {200000, 100},
                                 {200000, 150000}, {4 << 20, 1},   {4 << 20, 200000},
                                 {100000, 99990},  {1 << 20, 131072}};
  for (size_t i = 0; i < sizeof sh / sizeof sh[0]; i++) {
    size_t a = sh[i][0], b = sh[i][1];
    unsigned char *p = malloc(a);
    if (!p) {
      FAIL("malloc(%zu) returned NULL", a);
      continue;
    }
    pat_fill(p, 20 + i, 0, a);
    unsigned char *q = realloc(p, b);
    if (!q) {
      FAIL("shrinking realloc(%zu-byte block, %zu) returned NULL", a, b);
      free(p);
      continue;
    }
    size_t u = malloc_usable_size(q);
    if (u < b) FAIL("shrinking realloc(%zu -> %zu): usable %zu < %zu", a, b, u, b);
    if (!check(q, 20 + i, b, "shrinking realloc lost contents", a, b)) {
      free(q);
      continue;
    }
    /* the whole usable area of the shrunk block is ours; a new block right
     * after it must not overlap it */
    memset(q, 0x77, u);
    unsigned char *n2 = malloc(64);
    if (n2) memset(n2, 0x11, 64);
    size_t j = first_byte_not(q, u, 0x77);
    if (j != ALL_GOOD)
      FAIL("shrunk block (%zu -> %zu, usable %zu) byte %zu overwritten by a new block", a, b, u, j);
    free(n2);
    free(q);
  }

  test_expect_reuse();
  return test_finish();
}
