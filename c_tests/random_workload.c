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

#define NAME "random_workload"

/* All allocator calls go through volatile function pointers: GCC knows
 * malloc & co. as builtins and, with direct calls, folds alignment checks
 * (aligned_alloc(64, n) % 64 == 0), comparisons of two malloc results and
 * errno reads after free/posix_memalign, or deletes malloc/free pairs
 * (seen with gcc 12 -O2).  An indirect call has none of that knowledge. */
static void *(*volatile malloc_v)(size_t) = malloc;
static void (*volatile free_v)(void *) = free;
static void *(*volatile calloc_v)(size_t, size_t) = calloc;
static void *(*volatile realloc_v)(void *, size_t) = realloc;
static void *(*volatile memalign_v)(size_t, size_t) = memalign;
static int (*volatile posix_memalign_v)(void **, size_t, size_t) = posix_memalign;
#define malloc(a0) malloc_v(a0)
#define free(a0) free_v(a0)
#define calloc(a0, a1) calloc_v(a0, a1)
#define realloc(a0, a1) realloc_v(a0, a1)
#define memalign(a0, a1) memalign_v(a0, a1)
#define posix_memalign(a0, a1, a2) posix_memalign_v(a0, a1, a2)
#define SLOTS 4096
#define OPS 2000000L

static int failures;

#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, NAME ": " __VA_ARGS__);                                    \
    fputc('\n', stderr);                                                       \
    if (++failures >= 10) {                                                    \
      fprintf(stderr, NAME ": too many failures, giving up\n");                \
      exit(1);                                                                 \
    }                                                                          \
  } while (0)

static uint64_t rng_state = 0x243F6A8885A308D3ull;
static inline uint64_t rnd(void) { /* xorshift64* */
  uint64_t x = rng_state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  rng_state = x;
  return x * 0x2545F4914F6CDD1Dull;
}

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

static inline uint64_t word(uint64_t seed, size_t k) {
  uint64_t x = seed ^ (k * 0x9E3779B97F4A7C15ull);
  return x ^ (x >> 29);
}
static inline uint8_t byte_at(uint64_t seed, size_t j) {
  return (uint8_t)(word(seed, j >> 3) >> ((j & 7) * 8));
}

/* blocks are at least 16-byte aligned, so p + j is 8-aligned when j is */
static void fill(unsigned char *p, uint64_t seed, size_t from, size_t to) {
  size_t j = from;
  while (j < to && (j & 7)) {
    p[j] = byte_at(seed, j);
    j++;
  }
  for (; j + 8 <= to; j += 8) *(uint64_t *)(p + j) = word(seed, j >> 3);
  for (; j < to; j++) p[j] = byte_at(seed, j);
}

/* returns the first bad offset, or (size_t)-1 */
static size_t check(const unsigned char *p, uint64_t seed, size_t to) {
  size_t j = 0;
  for (; j + 8 <= to; j += 8)
    if (*(const uint64_t *)(p + j) != word(seed, j >> 3)) break;
  for (; j < to; j++)
    if (p[j] != byte_at(seed, j)) return j;
  return (size_t)-1;
}

static int verify_slot(int s, const char *when) {
  struct slot *t = &tab[s];
  size_t bad = check(t->p, t->seed, t->n);
  if (bad != (size_t)-1) {
    FAIL("op %ld (%s): slot %d (generation %u, %zu bytes from %s at %p): byte %zu is 0x%02x, "
         "expected 0x%02x",
         op, when, s, t->gen, t->n, how_name[t->how], (void *)t->p, bad, t->p[bad],
         byte_at(t->seed, bad));
    return 0;
  }
  return 1;
}

static size_t pick_size(void) {
  uint64_t r = rnd() % 10000;
  if (r < 9550) return rnd() % 1101;                          /* small */
  if (r < 9995) return 1 + rnd() % 65536;                     /* medium */
  return (128 << 10) + rnd() % ((2 << 20) - (128 << 10) + 1); /* large */
}

static uint64_t seed_of(int s, unsigned gen) {
  uint64_t x = ((uint64_t)s << 32 | gen) * 0xD6E8FEB86659FD93ull;
  return x ^ (x >> 32);
}

static void alloc_slot(int s) {
  struct slot *t = &tab[s];
  size_t n = pick_size();
  uint64_t r = rnd() % 100;
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
    al = (size_t)1 << (rnd() % 13); /* 1 .. 4096 */
    p = memalign(al, n);
  } else if (r < 90) {
    how = H_POSIX_MEMALIGN;
    al = (size_t)8 << (rnd() % 10); /* 8 .. 4096 */
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
  if (how == H_CALLOC)
    for (size_t j = 0; j < n; j++)
      if (p[j]) {
        FAIL("op %ld: calloc(%zu) = %p byte %zu is 0x%02x, expected 0", op, n, (void *)p, j, p[j]);
        break;
      }
  t->p = p;
  t->n = n;
  t->gen++;
  t->seed = seed_of(s, t->gen);
  t->how = how;
  fill(p, t->seed, 0, n);
}

static void realloc_slot(int s) {
  struct slot *t = &tab[s];
  if (!verify_slot(s, "before realloc")) {
    t->p = NULL; /* leak it, do not touch corrupt memory */
    return;
  }
  size_t m = pick_size();
  uint64_t r = rnd() % 100;
  if (r < 10 && t->n > 0) m = t->n - rnd() % (t->n < 64 ? t->n : 64); /* small shrink */
  else if (r < 20) m = t->n + rnd() % 64;                              /* small growth */
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
  size_t bad = check(q, t->seed, keep);
  if (bad != (size_t)-1) {
    FAIL("op %ld: realloc slot %d (generation %u, %s) %zu -> %zu bytes, %p -> %p: byte %zu is "
         "0x%02x, expected 0x%02x",
         op, s, t->gen, how_name[t->how], t->n, m, (void *)t->p, (void *)q, bad, q[bad],
         byte_at(t->seed, bad));
    t->p = NULL;
    return;
  }
  fill(q, t->seed, keep, m);
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
    int s = (int)(rnd() % SLOTS);
    if (!tab[s].p) alloc_slot(s);
    else if (rnd() % 100 < 40) realloc_slot(s);
    else free_slot(s);
    if (op % 100000 == 99999)
      for (int i = 0; i < SLOTS; i++)
        if (tab[i].p && !verify_slot(i, "periodic check")) tab[i].p = NULL;
  }
  for (int i = 0; i < SLOTS; i++)
    if (tab[i].p && !verify_slot(i, "final check")) tab[i].p = NULL;
  for (int i = 0; i < SLOTS; i++) free(tab[i].p);

  if (failures) {
    fprintf(stderr, NAME ": %d failure(s)\n", failures);
    return 1;
  }
  return 0;
}
