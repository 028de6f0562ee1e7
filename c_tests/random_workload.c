/* random_workload: a fixed-seed xorshift PRNG drives 2 million
 * malloc/calloc/realloc/free/memalign/posix_memalign operations on a table of
 * 4096 slots.  Sizes are mostly small (0..1100), some medium (1..64 KiB) and
 * a few large (128 KiB..2 MiB, mmap'd or not).  Every live block holds a
 * pattern derived from (slot, generation) over its whole requested size; it
 * is checked before every realloc and free, after every realloc (the kept
 * prefix), every 100k operations for all blocks, and at the end.  calloc'ed
 * blocks must be zero.  Any mismatch fails.
 * Guards against: bin/tcache/fastbin/unsorted/large-bin bookkeeping bugs
 * that hand out memory that is still in use, coalescing or splitting errors
 * that corrupt neighbours, realloc in-place growth over a live neighbour,
 * lost data in realloc, calloc not clearing reused memory, misaligned
 * memalign results. */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SLOTS 4096
#define OPS 2000000L

#define TEST_NAME "random_workload"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

static uint64_t rng = 0x243F6A8885A308D3ull; /* the PRNG state (fixed seed) */

enum how { H_MALLOC, H_CALLOC, H_MEMALIGN, H_POSIX_MEMALIGN, H_REALLOC_NULL, H_REALLOC };
static const char *how_name[] = {"malloc", "calloc", "memalign", "posix_memalign",
                                 "realloc(NULL)", "realloc"};

struct slot {
  unsigned char *p;
  size_t n;
  uint64_t seed;
  unsigned gen;
  enum how how;
};
static struct slot tab[SLOTS];
static long op;

static int verify_slot(int s, const char *when) {
  struct slot *t = &tab[s];
  size_t bad = pat_check(t->p, t->seed, t->n);
  if (bad != ALL_GOOD) {
    FAIL("op %ld (%s): slot %d (generation %u, %zu bytes from %s at %p): byte %zu is 0x%02x, "
         "expected 0x%02x",
         op, when, s, t->gen, t->n, how_name[t->how], (void *)t->p, bad, t->p[bad],
         pat_byte(t->seed, bad));
    return 0;
  }
  return 1;
}

static size_t pick_size(void) {
  uint64_t r = rnd(&rng) % 10000;
  if (r < 9550) return rnd(&rng) % 1101;                          /* small */
  if (r < 9995) return 1 + rnd(&rng) % 65536;                     /* medium */
  return (128 << 10) + rnd(&rng) % ((2 << 20) - (128 << 10) + 1); /* large */
}

static uint64_t seed_of(int s, unsigned gen) {
  uint64_t x = ((uint64_t)s << 32 | gen) * 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 32);
}

static void alloc_slot(int s) {
  struct slot *t = &tab[s];
  size_t n = pick_size();
  uint64_t r = rnd(&rng) % 100;
  size_t al = 0;
  unsigned char *p = NULL;
  enum how how;
  if (r < 55) {
    how = H_MALLOC;
    p = malloc(n);
  } else if (r < 75) {
    how = H_CALLOC;
    size_t a = n, b = 1;
    if (n % 4 == 0 && (r & 1)) a = n / 4, b = 4;
    p = calloc(a, b);
  } else if (r < 83) {
    how = H_MEMALIGN;
    al = (size_t)1 << (rnd(&rng) % 13); /* 1 .. 4096 */
    p = memalign(al, n);
  } else if (r < 90) {
    how = H_POSIX_MEMALIGN;
    al = (size_t)8 << (rnd(&rng) % 10); /* 8 .. 4096 */
    void *q = NULL;
    if (posix_memalign(&q, al, n) == 0) p = q;
  } else {
    how = H_REALLOC_NULL;
    p = realloc(NULL, n);
  }
  if (!p) {
    FAIL("op %ld: %s(%zu) (alignment %zu) returned NULL", op, how_name[how], n, al);
    return;
  }
  size_t want_al = al > 16 ? al : 16;
  if ((uintptr_t)p % want_al)
    FAIL("op %ld: %s(%zu) (alignment %zu) = %p is not %zu-aligned", op, how_name[how], n, al,
         (void *)p, want_al);
  if (malloc_usable_size(p) < n)
    FAIL("op %ld: %s(%zu) usable size %zu < %zu", op, how_name[how], n, malloc_usable_size(p), n);
  if (how == H_CALLOC) {
    size_t j = first_byte_not(p, n, 0);
    if (j != ALL_GOOD)
      FAIL("op %ld: calloc(%zu) = %p byte %zu is 0x%02x, expected 0", op, n, (void *)p, j, p[j]);
  }
  t->p = p;
  t->n = n;
  t->gen++;
  t->seed = seed_of(s, t->gen);
  t->how = how;
  pat_fill(p, t->seed, 0, n);
}

static void realloc_slot(int s) {
  struct slot *t = &tab[s];
  if (!verify_slot(s, "before realloc")) {
    t->p = NULL; /* leak it, do not touch corrupt memory */
    return;
  }
  size_t m = pick_size();
  uint64_t r = rnd(&rng) % 100;
  if (r < 10 && t->n > 0) m = t->n - rnd(&rng) % (t->n < 64 ? t->n : 64); /* small shrink */
  else if (r < 20) m = t->n + rnd(&rng) % 64;                         /* small growth */
  unsigned char *q = realloc(t->p, m);
  if (!q) {
    if (m == 0) { /* glibc: realloc(p, 0) frees p */
      t->p = NULL;
      return;
    }
    FAIL("op %ld: realloc(%p, %zu) (old size %zu) returned NULL", op, (void *)t->p, m, t->n);
    return;
  }
  if ((uintptr_t)q % 16) FAIL("op %ld: realloc(.., %zu) = %p not 16-byte aligned", op, m, (void *)q);
  if (malloc_usable_size(q) < m)
    FAIL("op %ld: realloc(.., %zu) usable size %zu", op, m, malloc_usable_size(q));
  size_t keep = t->n < m ? t->n : m;
  size_t bad = pat_check(q, t->seed, keep);
  if (bad != ALL_GOOD) {
    FAIL("op %ld: realloc slot %d (generation %u, %s) %zu -> %zu bytes, %p -> %p: byte %zu is "
         "0x%02x, expected 0x%02x",
         op, s, t->gen, how_name[t->how], t->n, m, (void *)t->p, (void *)q, bad, q[bad],
         pat_byte(t->seed, bad));
    t->p = NULL;
    return;
  }
  pat_fill(q, t->seed, keep, m);
  t->p = q;
  t->n = m;
  t->how = H_REALLOC;
}

static void free_slot(int s) {
  struct slot *t = &tab[s];
  if (verify_slot(s, "before free")) free(t->p);
  t->p = NULL;
}

int main(void) {
  for (op = 0; op < OPS; op++) {
    int s = (int)(rnd(&rng) % SLOTS);
    if (!tab[s].p) alloc_slot(s);
    else if (rnd(&rng) % 100 < 40) realloc_slot(s);
    else free_slot(s);
    if (op % 100000 == 99999)
      for (int i = 0; i < SLOTS; i++)
        if (tab[i].p && !verify_slot(i, "periodic check")) tab[i].p = NULL;
  }
  for (int i = 0; i < SLOTS; i++)
    if (tab[i].p && !verify_slot(i, "final check")) tab[i].p = NULL;
  for (int i = 0; i < SLOTS; i++) free(tab[i].p);

  test_expect_reuse();
  return test_finish();
}
