/* mt_stress: N threads (env STRESS_THREADS, default 16, clamped to 8..64)
 * for S seconds (env STRESS_SECONDS, default 3, clamped to 1..600) do random
 * operations on one shared table of 4096 slots.  A thread takes a slot with
 * an atomic exchange of its busy flag (skipping it if another thread holds
 * it), so a block is usually freed or realloc'd by another thread than the
 * one that allocated it.  An empty slot gets malloc / calloc / realloc(NULL)
 * / memalign / posix_memalign / aligned_alloc of 0..100 KiB (biased small);
 * a full slot has its contents checked (the pattern of (slot, generation)),
 * then is freed, realloc'd (to 0..100 KiB: the kept prefix checked again) or
 * kept.  Checks: no NULL (glibc returns a unique pointer for size 0 too),
 * malloc_usable_size >= the request, 16-byte alignment, calloc memory zero,
 * memalign/posix_memalign/aligned_alloc alignment, posix_memalign returns 0,
 * contents intact before every realloc/free and in a final sweep by the main
 * thread after the join.  Prints the number of operations of each kind.
 * Guards against: races in the arena code (locking, bins, top, consolidation,
 * heap growth/shrink) when frees and reallocs of a chunk come from threads
 * attached to other arenas, lost or doubly handed-out chunks, aligned
 * allocations corrupting neighbours, calloc skipping the clearing of reused
 * memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SLOTS 4096
#define MAX_SIZE (100 * 1024)

#define TEST_NAME "mt_stress"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

struct slot {
  int busy; /* taken with an atomic exchange */
  int live;
  unsigned char *p;
  size_t n;
  uint64_t gen;
} __attribute__((aligned(64)));

static struct slot table[SLOTS];
static volatile int stop;

enum op { MALLOC, CALLOC, REALLOC_NULL, MEMALIGN, POSIX_MEMALIGN, ALIGNED_ALLOC, FREE, REALLOC,
          KEEP, BUSY, OPS };
static const char *op_names[OPS] = {"malloc", "calloc", "realloc(NULL)", "memalign",
                                    "posix_memalign", "aligned_alloc", "free", "realloc",
                                    "check only", "slot busy"};
struct counters {
  long n[OPS];
} __attribute__((aligned(64)));
static struct counters counts[64];

static uint64_t seed_of(int slot, uint64_t gen) {
  return ((uint64_t)slot << 40 | gen) * 0x9E3779B97F4A7C15ull + 1;
}

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 100;
  if (r < 60) return rnd(st) % 129;
  if (r < 85) return 129 + rnd(st) % 896;
  if (r < 96) return 1025 + rnd(st) % 15360;
  return 16385 + rnd(st) % (MAX_SIZE - 16384);
}

static size_t pick_align(uint64_t *st) {
  uint64_t r = rnd(st) % 100;
  if (r < 90) return (size_t)8 << (rnd(st) % 6); /* 8..256 */
  if (r < 99) return (size_t)512 << (rnd(st) % 4); /* 512..4096 */
  return (size_t)8192 << (rnd(st) % 4);            /* 8 KiB..64 KiB */
}

static int verify(int i, const struct slot *s, const char *when) {
  size_t j = pat_check(s->p, seed_of(i, s->gen), s->n);
  if (j == ALL_GOOD) return 1;
  FAIL("slot %d, %s: block %p (%zu bytes, generation %llu): byte %zu is 0x%02x, expected 0x%02x",
       i, when, (void *)s->p, s->n, (unsigned long long)s->gen, j, s->p[j],
       pat_byte(seed_of(i, s->gen), j));
  return 0;
}

/* Checks common to every fresh block.  Returns 0 when p is unusable. */
static int check_new(const char *what, void *p, size_t n, size_t align) {
  if (!p) {
    FAIL("%s(%zu bytes, alignment %zu) returned NULL", what, n, align);
    return 0;
  }
  if ((uintptr_t)p % 16) FAIL("%s(%zu) = %p is not 16-byte aligned", what, n, p);
  if (align && (uintptr_t)p % align)
    FAIL("%s(alignment %zu, %zu bytes) = %p is not aligned", what, align, n, p);
  size_t u = malloc_usable_size(p);
  if (u < n) FAIL("%s(%zu) = %p: malloc_usable_size %zu is less than asked", what, n, p, u);
  return 1;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t st = 0x9E3779B97F4A7C15ull * (uint64_t)(self + 1) + 31;
  long *cnt = counts[self].n;
  while (!stop) {
    int i = (int)(rnd(&st) % SLOTS);
    struct slot *s = &table[i];
    if (__atomic_exchange_n(&s->busy, 1, __ATOMIC_ACQUIRE)) {
      cnt[BUSY]++;
      continue;
    }
    uint64_t r = rnd(&st) % 100;
    if (!s->live) {
      size_t n = pick_size(&st), align = 0;
      void *p = NULL;
      const char *what;
      enum op o;
      if (r < 45) {
        o = MALLOC, what = "malloc";
        p = malloc(n);
      } else if (r < 60) {
        o = CALLOC, what = "calloc";
        size_t each = 1 + rnd(&st) % 16;
        size_t cnt_ = n / each;
        n = cnt_ * each;
        p = calloc(cnt_, each);
      } else if (r < 70) {
        o = REALLOC_NULL, what = "realloc(NULL)";
        p = realloc(NULL, n);
      } else if (r < 82) {
        o = MEMALIGN, what = "memalign";
        align = pick_align(&st);
        p = memalign(align, n);
      } else if (r < 94) {
        o = POSIX_MEMALIGN, what = "posix_memalign";
        align = pick_align(&st);
        int rc = posix_memalign(&p, align, n);
        if (rc) {
          FAIL("posix_memalign(alignment %zu, %zu bytes) returned %d, expected 0", align, n, rc);
          p = NULL;
          __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
          continue;
        }
      } else {
        o = ALIGNED_ALLOC, what = "aligned_alloc";
        align = pick_align(&st);
        n = (n + align - 1) / align * align; /* C11: a multiple of the alignment */
        if (n > MAX_SIZE) n -= align;
        p = aligned_alloc(align, n);
      }
      cnt[o]++;
      if (check_new(what, p, n, align)) {
        if (o == CALLOC) {
          size_t j = first_byte_not(p, n, 0);
          if (j != ALL_GOOD)
            FAIL("calloc: %zu bytes at %p: byte %zu is 0x%02x, expected 0", n, p, j,
                 ((unsigned char *)p)[j]);
        }
        s->p = p;
        s->n = n;
        s->gen++;
        s->live = 1;
        pat_fill(s->p, seed_of(i, s->gen), 0, n);
      }
    } else if (!verify(i, s, r < 40 ? "before free" : r < 80 ? "before realloc" : "check")) {
      s->live = 0; /* corrupt: drop it */
    } else if (r < 40) {
      cnt[FREE]++;
      free(s->p);
      s->live = 0;
    } else if (r < 80) {
      cnt[REALLOC]++;
      size_t m = pick_size(&st);
      unsigned char *q = realloc(s->p, m);
      if (!q) {
        if (m) {
          FAIL("realloc(%p, %zu -> %zu) returned NULL", (void *)s->p, s->n, m);
          free(s->p);
        }
        s->live = 0; /* realloc(p, 0) freed it */
      } else {
        check_new("realloc", q, m, 0);
        size_t keep = s->n < m ? s->n : m;
        struct slot k = {0, 1, q, keep, s->gen};
        if (!verify(i, &k, "after realloc (the kept prefix)")) {
          s->live = 0;
        } else {
          s->p = q;
          s->n = m;
          s->gen++;
          pat_fill(q, seed_of(i, s->gen), 0, m);
        }
      }
    } else {
      cnt[KEEP]++;
    }
    __atomic_store_n(&s->busy, 0, __ATOMIC_RELEASE);
  }
  return NULL;
}

static long env_long(const char *name, long dflt, long lo, long hi) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  char *end;
  long x = strtol(v, &end, 10);
  if (*end) return dflt;
  return x < lo ? lo : x > hi ? hi : x;
}

int main(void) {
  int nthreads = (int)env_long("STRESS_THREADS", 16, 8, 64);
  long seconds = env_long("STRESS_SECONDS", 3, 1, 600);
  pthread_t t[64];
  for (int i = 0; i < nthreads; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i)) {
      fprintf(stderr, TEST_NAME ": pthread_create #%d failed\n", i);
      stop = 1;
      nthreads = i;
      break;
    }
  struct timespec ts = {seconds, 0};
  while (nanosleep(&ts, &ts) && errno == EINTR) {
  }
  stop = 1;
  for (int i = 0; i < nthreads; i++) pthread_join(t[i], NULL);

  /* final sweep */
  long live = 0;
  for (int i = 0; i < SLOTS; i++) {
    struct slot *s = &table[i];
    if (s->busy) FAIL("slot %d is still marked busy after the join", i);
    if (!s->live) continue;
    live++;
    if (verify(i, s, "final sweep")) free(s->p);
    s->live = 0;
  }
  long total[OPS] = {0}, all = 0;
  for (int k = 0; k < nthreads; k++)
    for (int o = 0; o < OPS; o++) total[o] += counts[k].n[o];
  for (int o = 0; o < BUSY; o++) all += total[o];
  printf(TEST_NAME ": %d threads, %ld s: %ld operations (", nthreads, seconds, all);
  for (int o = 0; o < OPS; o++) printf("%s%s %ld", o ? ", " : "", op_names[o], total[o]);
  printf("); %ld blocks checked and freed in the final sweep\n", live);
  if (all < 1000) FAIL("only %ld operations done in %ld s", all, seconds);
  test_expect_reuse();
  return test_finish();
}
