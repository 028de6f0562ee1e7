/* threads_shared: 8 threads each run ~200k random malloc/calloc/realloc/free
 * operations on their own 1024-slot table, checking a per-block pattern
 * before every realloc/free; in addition they hand blocks to each other
 * through a small mutex-protected exchange array: a producer allocates and
 * fills a block, another thread verifies it and frees it (or reallocs it
 * first).  After the join, the main thread verifies and frees what is left in
 * the exchange.  Any mismatch, NULL result or crash fails.
 * Guards against: races in arena selection/locking, a tcache or arena state
 * shared between threads by mistake, frees of another thread's (another
 * arena's) chunks going to the wrong arena or corrupting it, cross-thread
 * realloc, and thread-exit cleanup (tcache flush) losing or corrupting
 * blocks still referenced by other threads. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 8
#define SLOTS 1024
#define OPS 200000L
#define XSLOTS 64

#define TEST_NAME "threads_shared"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
  int owner; /* thread that allocated it */
};

static pthread_mutex_t xlock = PTHREAD_MUTEX_INITIALIZER;
static struct blk xchg[XSLOTS];
static long handed[THREADS], received[THREADS];

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 1000;
  if (r < 900) return rnd(st) % 600;
  if (r < 995) return 1 + rnd(st) % 20000;
  return 100000 + rnd(st) % 300000; /* around the mmap threshold */
}

static int verify(const struct blk *b, int self, const char *when) {
  size_t bad = pat_check(b->p, b->seed, b->n);
  if (bad != ALL_GOOD) {
    FAIL("thread %d, %s: block %p (%zu bytes, allocated by thread %d): byte %zu is 0x%02x, "
         "expected 0x%02x",
         self, when, (void *)b->p, b->n, b->owner, bad, b->p[bad], pat_byte(b->seed, bad));
    return 0;
  }
  return 1;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t st = 0x9E3779B97F4A7C15ull * (self + 1) + 12345;
  struct blk *tab = calloc(SLOTS, sizeof *tab);
  uint64_t gen = 0;
  if (!tab) {
    FAIL("thread %d: calloc of its slot table failed", self);
    return NULL;
  }
  for (long op = 0; op < OPS; op++) {
    uint64_t r = rnd(&st) % 1000;
    if (r < 60) {
      /* exchange: take a block from another thread if one is there, else
       * deposit one of ours */
      struct blk got = {0};
      int deposited = 0;
      pthread_mutex_lock(&xlock);
      int start = (int)(rnd(&st) % XSLOTS);
      for (int k = 0; k < XSLOTS; k++) {
        struct blk *x = &xchg[(start + k) % XSLOTS];
        if (x->p && x->owner != self) {
          got = *x;
          x->p = NULL;
          break;
        }
      }
      if (!got.p) {
        for (int k = 0; k < XSLOTS; k++) {
          struct blk *x = &xchg[(start + k) % XSLOTS];
          if (!x->p) {
            size_t n = pick_size(&st);
            x->p = malloc(n);
            if (!x->p) {
              FAIL("thread %d: malloc(%zu) for the exchange returned NULL", self, n);
              break;
            }
            x->n = n;
            x->seed = rnd(&st);
            x->owner = self;
            pat_fill(x->p, x->seed, 0, n);
            deposited = 1;
            break;
          }
        }
      }
      pthread_mutex_unlock(&xlock);
      if (deposited) handed[self]++;
      if (got.p) {
        received[self]++;
        if (!verify(&got, self, "block received from another thread")) continue;
        if (rnd(&st) & 1) { /* realloc another thread's block, then free it */
          size_t m = pick_size(&st);
          unsigned char *q = realloc(got.p, m);
          if (!q && m) {
            FAIL("thread %d: realloc of a received block to %zu returned NULL", self, m);
            continue;
          }
          if (q) {
            size_t keep = got.n < m ? got.n : m;
            struct blk k = {q, keep, got.seed, got.owner};
            verify(&k, self, "received block after realloc");
            free(q);
          }
        } else {
          free(got.p);
        }
      }
      continue;
    }
    struct blk *b = &tab[rnd(&st) % SLOTS];
    if (!b->p) {
      size_t n = pick_size(&st);
      int use_calloc = r < 200;
      b->p = use_calloc ? calloc(1, n) : malloc(n);
      if (!b->p) {
        FAIL("thread %d: %s(%zu) returned NULL", self, use_calloc ? "calloc" : "malloc", n);
        continue;
      }
      if ((uintptr_t)b->p % 16) FAIL("thread %d: %p not 16-byte aligned", self, (void *)b->p);
      size_t j = use_calloc ? first_byte_not(b->p, n, 0) : ALL_GOOD;
      if (j != ALL_GOOD)
        FAIL("thread %d: calloc(1, %zu) byte %zu is 0x%02x, expected 0", self, n, j, b->p[j]);
      b->n = n;
      b->seed = (uint64_t)self << 56 ^ ++gen * 0xD6E8FEB86659FD93ull;
      b->owner = self;
      pat_fill(b->p, b->seed, 0, n);
    } else if (r < 450) {
      if (!verify(b, self, "before realloc")) {
        b->p = NULL;
        continue;
      }
      size_t m = pick_size(&st);
      unsigned char *q = realloc(b->p, m);
      if (!q) {
        if (m == 0) {
          b->p = NULL;
          continue;
        }
        FAIL("thread %d: realloc(%zu -> %zu) returned NULL", self, b->n, m);
        continue;
      }
      size_t keep = b->n < m ? b->n : m;
      struct blk k = {q, keep, b->seed, self};
      if (!verify(&k, self, "after realloc")) {
        b->p = NULL;
        continue;
      }
      pat_fill(q, b->seed, keep, m);
      b->p = q;
      b->n = m;
    } else {
      if (verify(b, self, "before free")) free(b->p);
      b->p = NULL;
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (tab[i].p) {
      if (verify(&tab[i], self, "final check")) free(tab[i].p);
    }
  free(tab);
  return NULL;
}

int main(void) {
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i)) {
      FAIL("pthread_create #%d failed", i);
      return 1;
    }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  /* what is left in the exchange was allocated by threads that have exited */
  long left = 0;
  for (int k = 0; k < XSLOTS; k++)
    if (xchg[k].p) {
      left++;
      if (verify(&xchg[k], -1, "exchange leftovers after join (owner exited)")) free(xchg[k].p);
    }
  long h = 0, rcv = 0;
  for (int i = 0; i < THREADS; i++) h += handed[i], rcv += received[i];
  if (h != rcv + left)
    FAIL("exchange bookkeeping: %ld handed, %ld received, %ld left", h, rcv, left);
  if (rcv < 1000) FAIL("only %ld blocks changed threads; the test did not exercise hand-over", rcv);
  /* the allocator still works after all threads exited */
  void *p = malloc(1000);
  if (!p) FAIL("malloc(1000) after join returned NULL");
  free(p);

  test_expect_reuse();
  return test_finish();
}
