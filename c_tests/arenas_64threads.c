/* arenas_64threads: 64 threads alive at once (a barrier holds them all).
 * Phase 1: each thread mallocs a few blocks below the mmap threshold and
 * reports the arena they came from: the chunk's size word
 * (((size_t*)p)[-1]) must not have IS_MMAPPED (0x2); with NON_MAIN_ARENA
 * (0x4) the arena is heap_info->ar_ptr at the 64 MiB-aligned start of the
 * chunk's heap, else "main".  Checks: all of one thread's first blocks come
 * from one arena; a thread arena's ar_ptr is non-NULL and is the arena that
 * sits right after the heap_info (48 bytes) of its own first heap, whose
 * header names it again; 2 <= distinct arenas <= 8 x CPUs allowed
 * (sched_getaffinity, CPU_COUNT) -- glibc creates arenas freely up to
 * arena_test (8), then caps the count at 8 x cores.
 * Phase 2, all 64 still alive (second barrier): each thread runs random
 * malloc/calloc/realloc/free on its own slot table, checking a per-block
 * content pattern before every realloc/free (so threads sharing an arena, as
 * most of the 64 must, race on its lock and bins), and swaps blocks with other
 * threads through a shared lock-free exchange array (atomic exchange of a
 * slot), verifying and freeing (or reallocating) what it receives: cross-
 * thread, cross-arena frees.  After the join the main thread verifies and
 * frees what is left in the exchange.
 * Guards against: arena-limit miscounts (too many arenas, or no thread arena
 * at all), a wrong heap_info/arena layout, lost updates in arena selection
 * when many threads attach at once, and corruption under heavy arena
 * sharing. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS 64
#define FIRST_BLOCKS 6
#define SLOTS 256
#define OPS 200000L
#define XSLOTS 128
#define HEAP_MAX ((uintptr_t)64 << 20)
#define HEAP_INFO_SIZE 48 /* ar_ptr, prev, size, mprotect_size, pagesize, pad */

#define TEST_NAME "arenas_64threads"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

typedef struct heap_info {
  void *ar_ptr;
  struct heap_info *prev;
  size_t size;
  size_t mprotect_size;
  size_t pagesize;
  size_t pad;
} heap_info;

static pthread_barrier_t barrier;
static void *arena_of_thread[THREADS]; /* NULL = main arena */
static int arena_ok[THREADS];

/* A block handed between threads: header (size, seed, owner) in the block's
 * first 24 bytes, the pattern in the rest. */
struct xhdr {
  size_t n;
  uint64_t seed;
  uint64_t owner;
};
static struct xhdr *xchg[XSLOTS];
static long handed[THREADS], received[THREADS], ops_done[THREADS];

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 1000;
  if (r < 850) return rnd(st) % 300;
  if (r < 990) return 1 + rnd(st) % 4000;
  if (r < 999) return 1 + rnd(st) % 40000;
  return 100000 + rnd(st) % 120000; /* around the mmap threshold */
}

static size_t size_word(const void *p) { return ((const size_t *)p)[-1]; }

/* The arena of a (non-mmapped) chunk: NULL for the main arena. */
static void *arena_of(const void *p) {
  if (!(size_word(p) & 4)) return NULL;
  const heap_info *h = (const heap_info *)((uintptr_t)p & ~(HEAP_MAX - 1));
  return h->ar_ptr;
}

struct slot {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

static int verify(const unsigned char *p, size_t n, uint64_t seed, int self, const char *when) {
  size_t bad = pat_check(p, seed, n);
  if (bad != ALL_GOOD) {
    FAIL("thread %d, %s: block %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x", self, when,
         (const void *)p, n, bad, p[bad], pat_byte(seed, bad));
    return 0;
  }
  return 1;
}

/* Check a block received through the exchange, then free it (or realloc it
 * first). */
static void take_received(struct xhdr *x, int self, uint64_t *st) {
  size_t n = x->n;
  uint64_t seed = x->seed;
  unsigned owner = (unsigned)x->owner;
  if (n < sizeof *x || owner >= THREADS) {
    FAIL("thread %d: received block %p has a corrupt header (size %zu, owner %u)", self, (void *)x,
         n, owner);
    return;
  }
  unsigned char *body = (unsigned char *)(x + 1);
  if (!verify(body, n - sizeof *x, seed, self, "block received from another thread")) return;
  if (rnd(st) & 1) {
    size_t m = sizeof *x + pick_size(st);
    unsigned char *q = realloc(x, m);
    if (!q) {
      FAIL("thread %d: realloc of a received block (%zu -> %zu) returned NULL", self, n, m);
      return;
    }
    size_t keep = (n < m ? n : m) - sizeof *x;
    if (((struct xhdr *)q)->seed != seed)
      FAIL("thread %d: received block's header changed by realloc", self);
    verify(q + sizeof *x, keep, seed, self, "received block after realloc");
    free(q);
  } else {
    free(x);
  }
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t st = 0x9E3779B97F4A7C15ull * (self + 1) + 777;

  /* ---- phase 1: which arena? ---- */
  pthread_barrier_wait(&barrier);
  static const size_t first_sizes[FIRST_BLOCKS] = {24, 100, 1000, 2000, 10000, 60000};
  void *first[FIRST_BLOCKS];
  for (int i = 0; i < FIRST_BLOCKS; i++) {
    first[i] = malloc(first_sizes[i]);
    if (!first[i]) FAIL("thread %d: malloc(%zu) returned NULL", self, first_sizes[i]);
  }
  int ok = 1;
  void *a0 = NULL;
  for (int i = 0; i < FIRST_BLOCKS; i++) {
    if (!first[i]) {
      ok = 0;
      continue;
    }
    size_t sw = size_word(first[i]);
    if (sw & 2) {
      FAIL("thread %d: malloc(%zu) = %p has IS_MMAPPED set (size word %#zx); expected a heap chunk",
           self, first_sizes[i], first[i], sw);
      ok = 0;
      continue;
    }
    void *a = arena_of(first[i]);
    if (sw & 4) {
      if (!a) {
        FAIL("thread %d: chunk %p has NON_MAIN_ARENA but heap_info->ar_ptr at %p is NULL", self,
             first[i], (void *)((uintptr_t)first[i] & ~(HEAP_MAX - 1)));
        ok = 0;
        continue;
      }
      uintptr_t ah = (uintptr_t)a & ~(HEAP_MAX - 1);
      if ((uintptr_t)a - ah != HEAP_INFO_SIZE || ((heap_info *)ah)->ar_ptr != a) {
        FAIL("thread %d: arena %p (from the heap_info of chunk %p) is not right after the "
             "heap_info of its first heap %p (that heap_info names %p)",
             self, a, first[i], (void *)ah, ((heap_info *)ah)->ar_ptr);
        ok = 0;
        continue;
      }
    }
    if (i == 0) a0 = a;
    else if (a != a0) {
      FAIL("thread %d: its first blocks come from different arenas: %p and %p (NULL = main)", self,
           a0, a);
      ok = 0;
    }
  }
  arena_of_thread[self] = a0;
  arena_ok[self] = ok;
  for (int i = 0; i < FIRST_BLOCKS; i++) free(first[i]);

  /* ---- phase 2: random work, all 64 threads alive ---- */
  pthread_barrier_wait(&barrier);
  struct slot *tab = calloc(SLOTS, sizeof *tab);
  if (!tab) {
    FAIL("thread %d: calloc of its slot table failed", self);
    return NULL;
  }
  uint64_t gen = 0;
  long op;
  for (op = 0; op < OPS; op++) {
    uint64_t r = rnd(&st) % 1000;
    if (r < 40) {
      /* exchange: put a fresh block of ours into a random exchange slot; if
       * the slot held a block, it is now ours to check and free */
      size_t m = sizeof(struct xhdr) + pick_size(&st);
      struct xhdr *x = malloc(m);
      if (!x) {
        FAIL("thread %d: malloc(%zu) for the exchange returned NULL", self, m);
        continue;
      }
      x->n = m;
      x->seed = rnd(&st) | 1;
      x->owner = (uint64_t)self;
      pat_fill((unsigned char *)(x + 1), x->seed, 0, m - sizeof *x);
      handed[self]++;
      struct xhdr *old = __atomic_exchange_n(&xchg[rnd(&st) % XSLOTS], x, __ATOMIC_ACQ_REL);
      if (old) {
        received[self]++;
        take_received(old, self, &st);
      }
      continue;
    }
    struct slot *b = &tab[rnd(&st) % SLOTS];
    if (!b->p) {
      size_t n = pick_size(&st);
      int use_calloc = r < 150;
      b->p = use_calloc ? calloc(1, n) : malloc(n);
      if (!b->p) {
        FAIL("thread %d: %s(%zu) returned NULL", self, use_calloc ? "calloc" : "malloc", n);
        continue;
      }
      if ((uintptr_t)b->p % 16) FAIL("thread %d: %p is not 16-byte aligned", self, (void *)b->p);
      if (use_calloc) {
        size_t j = first_byte_not(b->p, n, 0);
        if (j != ALL_GOOD)
          FAIL("thread %d: calloc(1, %zu) byte %zu is 0x%02x, expected 0", self, n, j, b->p[j]);
      }
      b->n = n;
      b->seed = (uint64_t)self << 56 ^ ++gen * 0xD6E8FEB86659FD93ull;
      pat_fill(b->p, b->seed, 0, n);
    } else if (r < 450) {
      if (!verify(b->p, b->n, b->seed, self, "before realloc")) {
        b->p = NULL;
        continue;
      }
      size_t m = pick_size(&st);
      if (m == 0) m = 1;
      unsigned char *q = realloc(b->p, m);
      if (!q) {
        FAIL("thread %d: realloc(%zu -> %zu) returned NULL", self, b->n, m);
        b->p = NULL;
        continue;
      }
      size_t keep = b->n < m ? b->n : m;
      if (!verify(q, keep, b->seed, self, "after realloc")) {
        b->p = NULL;
        continue;
      }
      pat_fill(q, b->seed, keep, m);
      b->p = q;
      b->n = m;
    } else {
      if (verify(b->p, b->n, b->seed, self, "before free")) free(b->p);
      b->p = NULL;
    }
  }
  for (int i = 0; i < SLOTS; i++)
    if (tab[i].p && verify(tab[i].p, tab[i].n, tab[i].seed, self, "final check")) free(tab[i].p);
  free(tab);
  ops_done[self] = op;
  return NULL;
}

int main(void) {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set)) {
    perror(TEST_NAME ": sched_getaffinity");
    return 1;
  }
  int cpus = CPU_COUNT(&set);
  int limit = 8 * cpus;

  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setstacksize(&attr, 256 * 1024);
  pthread_barrier_init(&barrier, NULL, THREADS);
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&t[i], &attr, worker, (void *)(intptr_t)i)) {
      fprintf(stderr, TEST_NAME ": pthread_create #%d failed\n", i);
      return 1;
    }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);

  /* distinct arenas */
  void *seen[THREADS];
  int users[THREADS];
  int distinct = 0, main_users = 0, reported = 0;
  for (int i = 0; i < THREADS; i++) {
    if (!arena_ok[i]) continue;
    reported++;
    int k;
    for (k = 0; k < distinct; k++)
      if (seen[k] == arena_of_thread[i]) break;
    if (k == distinct) {
      seen[distinct] = arena_of_thread[i];
      users[distinct++] = 0;
    }
    users[k]++;
    if (!arena_of_thread[i]) main_users++;
  }
  printf(TEST_NAME ": %d CPUs allowed (limit %d arenas); %d threads reported; %d distinct arenas "
         "(%d threads on the main arena); threads per arena:",
         cpus, limit, reported, distinct, main_users);
  for (int k = 0; k < distinct; k++) printf(" %d", users[k]);
  printf("\n");
  if (reported != THREADS)
    FAIL("only %d of %d threads could report their arena", reported, THREADS);
  if (distinct < 2)
    FAIL("64 concurrent threads used %d distinct arena(s); expected at least 2 (a thread arena "
         "besides main)",
         distinct);
  if (distinct > limit)
    FAIL("64 concurrent threads used %d distinct arenas; expected at most 8 x %d CPUs = %d",
         distinct, cpus, limit);

  /* what is left in the exchange was allocated by threads that have exited */
  long left = 0, h = 0, rcv = 0, ops = 0;
  uint64_t st = 99;
  for (int k = 0; k < XSLOTS; k++)
    if (xchg[k]) {
      left++;
      take_received(xchg[k], -1, &st);
      xchg[k] = NULL;
    }
  for (int i = 0; i < THREADS; i++) h += handed[i], rcv += received[i], ops += ops_done[i];
  printf(TEST_NAME ": %ld operations, %ld blocks through the exchange (%ld received by another "
         "thread, %ld left at the end)\n",
         ops, h, rcv, left);
  if (h != rcv + left)
    FAIL("exchange bookkeeping: %ld handed, %ld received, %ld left", h, rcv, left);
  if (ops != (long)THREADS * OPS) FAIL("%ld operations done, expected %ld", ops, (long)THREADS * OPS);
  void *p = malloc(1000);
  if (!p) FAIL("malloc(1000) after join returned NULL");
  free(p);
  test_expect_reuse();
  return test_finish();
}
