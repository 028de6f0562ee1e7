/* cancel_random: threads cancelled at random moments while they allocate.
 * THREADS threads run a malloc-heavy loop with deferred cancellation: on a
 * table of SLOTS blocks on their stack, random malloc / calloc /
 * realloc(NULL) / memalign / posix_memalign of 0..400000 bytes (a tenth
 * past 128 KiB: mmap'd), and checks of the contents followed by free or
 * realloc; one operation in 400 is malloc_trim(0), mallinfo2() or
 * malloc_info into an open_memstream FILE (none is a cancellation point in
 * glibc, and each takes the arenas' locks); between two operations, a
 * cancellation point: mostly pthread_testcancel(), now and then a write()
 * to /dev/null or usleep(0).
 * A cleanup handler (pushed before the thread's first allocation) checks and
 * frees every block of the table when the thread is cancelled: the table is
 * consistent at every cancellation point.  The main thread picks a thread,
 * lets it run for a random 0..3 ms, cancels it, joins it (it must end
 * PTHREAD_CANCELED, with its cleanup run), and starts a new one in its
 * place, which one time in eight is cancelled at once (its first
 * allocation, attaching it to an arena, then runs with the request
 * pending): CANCELS times (or for MAX_SECONDS; then at least CANCELS / 10).
 * The main thread allocates a little between two cancellations.
 * At the end: no block's contents changed; the bytes in use (mallinfo2
 * uordblks + hblkhd) are back within LEAK_SLACK of what they were after the
 * first round (every block was freed by its thread or its cleanup handler);
 * new threads and the main thread can still allocate, check and free a few
 * thousand blocks.  A hang (a thread cancelled while holding an allocator
 * lock, a cancellation point inside the allocator) ends in the watchdog's
 * report. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "cancel_random"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define THREADS 4
#define SLOTS 48
#define CANCELS 1000
#define MAX_SECONDS 12.0
#define WATCHDOG_S 30
#define LEAK_SLACK ((size_t)1 << 20)

static int devnull;

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

struct worker {
  pthread_t t;
  int id;              /* a new one per thread started */
  uint64_t rng;
  long ops;            /* operations done (atomic) */
  int cleaned;         /* the cleanup handler ran */
  long cleanup_freed;  /* blocks it freed */
  int finished;        /* returned normally (never should) */
};

static struct worker w[THREADS];
static long total_ops, total_cleanup_freed, cancelled_at_once;

static void check(const struct blk *b, const char *when, int id) {
  size_t bad = pat_check(b->p, b->seed, b->n);
  if (bad != ALL_GOOD)
    FAIL("thread #%d, %s: block %p of %zu bytes: byte %zu is 0x%02x, expected 0x%02x", id, when,
         (void *)b->p, b->n, bad, b->p[bad], pat_byte(b->seed, bad));
}

struct table {
  struct blk b[SLOTS];
  struct worker *me;
  uint64_t next; /* the next block's number */
};

static void cleanup(void *arg) {
  struct table *t = arg;
  long freed = 0;
  for (int i = 0; i < SLOTS; i++)
    if (t->b[i].p) {
      check(&t->b[i], "in the cleanup handler", t->me->id);
      free(t->b[i].p);
      t->b[i].p = NULL;
      freed++;
    }
  t->me->cleanup_freed = freed;
  t->me->cleaned = 1;
}

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 100;
  if (r < 50) return rnd(st) % 512;
  if (r < 75) return 512 + rnd(st) % 8000;
  if (r < 90) return 8512 + rnd(st) % 100000;
  return 131072 + rnd(st) % 270000;
}

static void *worker_main(void *arg) {
  struct worker *me = arg;
  struct table t;
  memset(&t, 0, sizeof t);
  t.me = me;
  uint64_t st = me->rng;
  t.next = 1;
  pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
  pthread_cleanup_push(cleanup, &t);
  for (;;) {
    struct blk *b = &t.b[rnd(&st) % SLOTS];
    uint64_t r = rnd(&st) % 100;
    if (b->p) {
      check(b, "before free/realloc", me->id);
      if (r < 55) {
        free(b->p);
        b->p = NULL;
      } else {
        size_t m = pick_size(&st);
        unsigned char *q = realloc(b->p, m);
        if (!q) {
          if (m) FAIL("thread #%d: realloc(%zu) returned NULL", me->id, m);
          else b->p = NULL; /* realloc(p, 0) freed it */
        } else {
          size_t keep = b->n < m ? b->n : m;
          if (pat_check(q, b->seed, keep) != ALL_GOOD)
            FAIL("thread #%d: realloc %zu -> %zu lost contents", me->id, b->n, m);
          pat_fill(q, b->seed, 0, m);
          b->p = q;
          b->n = m;
        }
      }
    } else {
      size_t n = pick_size(&st);
      void *p = NULL;
      if (r < 40) p = malloc(n);
      else if (r < 60) {
        p = calloc(1, n);
        if (p && first_byte_not(p, n, 0) != ALL_GOOD)
          FAIL("thread #%d: calloc(%zu) not zero", me->id, n);
      } else if (r < 70) p = realloc(NULL, n);
      else if (r < 85) p = memalign((size_t)16 << (rnd(&st) % 9), n);
      else if (posix_memalign(&p, (size_t)64 << (rnd(&st) % 5), n)) p = NULL;
      if (!p) {
        FAIL("thread #%d: allocation of %zu bytes returned NULL", me->id, n);
      } else {
        /* no cancellation point between the allocation and the table */
        b->p = p;
        b->n = n;
        b->seed = ((uint64_t)me->id << 32) + t.next++;
        pat_fill(b->p, b->seed, 0, n);
      }
    }
    /* now and then a call that takes every arena's lock, or malloc_info */
    if (rnd(&st) % 400 == 0) {
      uint64_t k = rnd(&st) % 3;
      if (k == 0) {
        malloc_trim(0);
      } else if (k == 1) {
        struct mallinfo2 mi = mallinfo2();
        if (mi.arena == 0) FAIL("thread #%d: mallinfo2().arena is 0", me->id);
      } else {
        char *xml = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&xml, &len);
        if (f) {
          malloc_info(0, f);
          fclose(f);
          if (!xml || len < 10 || !strstr(xml, "</malloc>"))
            FAIL("thread #%d: malloc_info wrote %zu bytes, no </malloc>", me->id, len);
          free(xml);
        }
      }
    }
    __atomic_store_n(&me->ops, me->ops + 1, __ATOMIC_RELAXED);
    /* a cancellation point: the table is consistent here */
    uint64_t c = rnd(&st) % 64;
    if (c == 0) {
      ssize_t wr = write(devnull, "x", 1);
      (void)wr;
    } else if (c == 1) {
      usleep(0);
    } else {
      pthread_testcancel();
    }
  }
  pthread_cleanup_pop(1);
  me->finished = 1;
  return NULL;
}

static int next_id;

static int start(struct worker *x) {
  x->id = next_id++;
  x->rng = 0x9E3779B97F4A7C15ull * (uint64_t)(x->id + 1) + 7;
  x->ops = 0;
  x->cleaned = 0;
  x->cleanup_freed = 0;
  x->finished = 0;
  int e = pthread_create(&x->t, NULL, worker_main, x);
  if (e) FAIL("pthread_create: %s", strerror(e));
  return e == 0;
}

/* Cancels x, joins it and checks how it ended. */
static void cancel_join(struct worker *x) {
  int e = pthread_cancel(x->t);
  if (e) FAIL("pthread_cancel(thread #%d): %s", x->id, strerror(e));
  void *ret = NULL;
  e = pthread_join(x->t, &ret);
  if (e) {
    FAIL("pthread_join(thread #%d): %s", x->id, strerror(e));
    return;
  }
  if (ret != PTHREAD_CANCELED)
    FAIL("thread #%d ended with %p, not PTHREAD_CANCELED (after %ld operations)", x->id, ret,
         x->ops);
  if (!x->cleaned) FAIL("thread #%d: its cleanup handler did not run", x->id);
  if (x->finished) FAIL("thread #%d returned normally", x->id);
  total_ops += x->ops;
  total_cleanup_freed += x->cleanup_freed;
}

/* What the program holds: the calling thread's caches are emptied first
 * (malloc_trim), as a cache may hold freed blocks counted as in use (the
 * fast profile's large cache, up to a few MiB per thread). */
static size_t in_use(void) {
  malloc_trim(0);
  struct mallinfo2 mi = mallinfo2();
  return mi.uordblks + mi.hblkhd;
}

static void sleep_us(long us) {
  struct timespec ts = {0, us * 1000};
  nanosleep(&ts, NULL);
}

/* After the run: threads that allocate, check and free, run to the end. */
static void *final_worker(void *arg) {
  uint64_t st = (uint64_t)(intptr_t)arg * 31 + 5;
  struct blk b[256];
  memset(b, 0, sizeof b);
  for (int round = 0; round < 4; round++) {
    for (int i = 0; i < 256; i++) {
      b[i].n = pick_size(&st);
      b[i].seed = rnd(&st) | 1;
      b[i].p = malloc(b[i].n);
      if (!b[i].p) {
        FAIL("final: malloc(%zu) returned NULL", b[i].n);
        continue;
      }
      pat_fill(b[i].p, b[i].seed, 0, b[i].n);
    }
    for (int i = 0; i < 256; i++)
      if (b[i].p) {
        check(&b[i], "final check", -1);
        free(b[i].p);
      }
  }
  return NULL;
}

int main(void) {
  test_watchdog(WATCHDOG_S, "the cancel/join/restart loop of allocating threads");
  devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
  if (devnull < 0) {
    FAIL("open(/dev/null): %s", strerror(errno));
    return test_finish();
  }
  uint64_t st = 0xCA9CE1;
  int running[THREADS] = {0};
  /* round 0: every thread started and cancelled once (this loads
   * libgcc_s for the unwinding); the baseline of the bytes in use after */
  for (int i = 0; i < THREADS; i++) running[i] = start(&w[i]);
  sleep_us(2000);
  for (int i = 0; i < THREADS; i++)
    if (running[i]) cancel_join(&w[i]);
  size_t base = in_use();
  for (int i = 0; i < THREADS; i++) running[i] = start(&w[i]);

  int cancels = 0;
  double t0 = test_now();
  void *mine[16] = {0};
  while (cancels < CANCELS && test_now() - t0 < MAX_SECONDS) {
    int i = (int)(rnd(&st) % THREADS);
    if (!running[i]) {
      running[i] = start(&w[i]);
      continue;
    }
    sleep_us((long)(rnd(&st) % 3000));
    cancel_join(&w[i]);
    cancels++;
    running[i] = start(&w[i]);
    if (running[i] && rnd(&st) % 8 == 0) {
      /* at once: its first allocation (arena attach) with the request pending */
      cancel_join(&w[i]);
      cancels++;
      cancelled_at_once++;
      running[i] = start(&w[i]);
    }
    /* a little of the main thread's own */
    int k = (int)(rnd(&st) % 16);
    free(mine[k]);
    mine[k] = malloc(pick_size(&st));
  }
  double ran = test_now() - t0;
  for (int i = 0; i < THREADS; i++)
    if (running[i]) cancel_join(&w[i]);
  for (int k = 0; k < 16; k++) free(mine[k]);

  test_watchdog(WATCHDOG_S, "the allocations after the cancellations");
  size_t end = in_use();
  if (end > base + LEAK_SLACK)
    FAIL("%zu bytes in use after every thread was cancelled and cleaned up, %zu after the first "
         "round (mallinfo2 uordblks + hblkhd): %zu more, over the %zu of slack",
         end, base, end - base, LEAK_SLACK);
  pthread_t f[THREADS];
  int nf = 0;
  for (int i = 0; i < THREADS; i++)
    if (pthread_create(&f[nf], NULL, final_worker, (void *)(intptr_t)i) == 0) nf++;
  final_worker((void *)(intptr_t)99);
  for (int i = 0; i < nf; i++) pthread_join(f[i], NULL);
  test_watchdog(0, NULL);

  printf(TEST_NAME ": %.1f s: %d cancellations (%ld right after pthread_create), %ld operations, "
         "%ld blocks freed by cleanup handlers; in use: %zu after round 0, %zu at the end\n",
         ran, cancels, cancelled_at_once, total_ops, total_cleanup_freed, base, end);
  if (cancels < CANCELS / 10) FAIL("only %d cancellations in %.1f s", cancels, ran);
  if (total_cleanup_freed == 0) FAIL("no cleanup handler ever freed a block");
  test_expect_reuse();
  return test_finish();
}
