/* producer_consumer: memory allocated in one thread and freed in another.
 * Two threads, A and B, and two bounded lock-free single-producer/single-
 * consumer rings: A produces for B through ring 0 while B produces for A
 * through ring 1 (the second producer/consumer pair, roles reversed, running
 * at the same time).  A producer allocates block number `seq` of a random
 * size (1..4096 bytes; one in 1000 of 64..200 KiB, around the mmap
 * threshold), fills it with a pattern derived from (ring, seq) and pushes it.
 * The consumer pops the blocks in order, checks the sequence number and the
 * whole pattern, and frees the block -- or first reallocs it (one in 8) to a
 * new random size and checks the kept prefix again.  1,000,000 blocks per
 * ring, 2,000,000 in all.
 * Guards against: chunks freed into the wrong arena (a consumer's free of the
 * producer's chunk), races between one thread's malloc and another's free in
 * the same arena, tcache entries of foreign chunks reused incorrectly, realloc
 * of another arena's chunk, and mmap'd chunks freed by another thread. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PER_RING 1000000L
#define RING 1024 /* entries; a power of two */
#define LARGE_ONE_IN 1000
#define REALLOC_ONE_IN 8

#define TEST_NAME "producer_consumer"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

struct entry {
  unsigned char *p;
  size_t n;
  uint64_t seq;
};

struct ring {
  struct entry buf[RING];
  size_t head __attribute__((aligned(64))); /* next to pop; written by the consumer */
  size_t tail __attribute__((aligned(64))); /* next to push; written by the producer */
};

static struct ring rings[2];
static long produced[2], consumed[2], large[2], reallocs[2];
static volatile int give_up;

static uint64_t seed_of(int ring, uint64_t seq) {
  return (seq + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)(ring + 1) << 60;
}

static size_t pick_size(uint64_t *st) {
  if (rnd(st) % LARGE_ONE_IN == 0) return 65536 + rnd(st) % (200 * 1024 - 65536 + 1);
  return 1 + rnd(st) % 4096;
}

/* Produce as many blocks as fit (at most 64) into ring r.  Returns how many. */
static int produce(int r, uint64_t *st) {
  struct ring *q = &rings[r];
  size_t tail = q->tail;
  size_t head = __atomic_load_n(&q->head, __ATOMIC_ACQUIRE);
  int k = 0;
  while (k < 64 && tail - head < RING && produced[r] < PER_RING) {
    uint64_t seq = (uint64_t)produced[r];
    size_t n = pick_size(st);
    unsigned char *p = malloc(n);
    if (!p) {
      FAIL("ring %d: producer: malloc(%zu) for block %llu returned NULL", r, n,
           (unsigned long long)seq);
      give_up = 1;
      return k;
    }
    if (n >= 65536) large[r]++;
    pat_fill(p, seed_of(r, seq), 0, n);
    q->buf[tail % RING] = (struct entry){p, n, seq};
    tail++;
    __atomic_store_n(&q->tail, tail, __ATOMIC_RELEASE);
    produced[r]++;
    k++;
  }
  return k;
}

static int check(int r, const unsigned char *p, size_t n, uint64_t seq, const char *when) {
  size_t j = pat_check(p, seed_of(r, seq), n);
  if (j == ALL_GOOD) return 1;
  FAIL("ring %d: consumer, %s: block %llu at %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x",
       r, when, (unsigned long long)seq, (const void *)p, n, j, p[j],
       pat_byte(seed_of(r, seq), j));
  return 0;
}

/* Consume what ring r holds (at most 64 blocks).  Returns how many. */
static int consume(int r, uint64_t *st) {
  struct ring *q = &rings[r];
  size_t head = q->head;
  size_t tail = __atomic_load_n(&q->tail, __ATOMIC_ACQUIRE);
  int k = 0;
  while (k < 64 && head != tail) {
    struct entry e = q->buf[head % RING];
    head++;
    __atomic_store_n(&q->head, head, __ATOMIC_RELEASE);
    uint64_t want = (uint64_t)consumed[r];
    consumed[r]++;
    k++;
    if (e.seq != want) {
      FAIL("ring %d: consumer expected block %llu, got block %llu (the queue lost or reordered "
           "blocks)",
           r, (unsigned long long)want, (unsigned long long)e.seq);
      give_up = 1;
      return k;
    }
    if (!check(r, e.p, e.n, want, "received")) continue; /* leak it: it is corrupt */
    if (rnd(st) % REALLOC_ONE_IN == 0) {
      size_t m = pick_size(st);
      unsigned char *p = realloc(e.p, m);
      if (!p) {
        FAIL("ring %d: consumer: realloc(block %llu, %zu -> %zu) returned NULL", r,
             (unsigned long long)want, e.n, m);
        continue;
      }
      reallocs[r]++;
      if (!check(r, p, e.n < m ? e.n : m, want, "after realloc")) continue;
      free(p);
    } else {
      free(e.p);
    }
  }
  return k;
}

/* Thread t produces into ring t and consumes from ring 1 - t. */
static void *run(void *arg) {
  int t = (int)(intptr_t)arg;
  /* separate random streams: the sizes do not depend on the interleaving */
  uint64_t st_prod = 0x243F6A8885A308D3ull * (uint64_t)(t + 1);
  uint64_t st_cons = 0x13198A2E03707344ull * (uint64_t)(t + 1);
  while (!give_up && (produced[t] < PER_RING || consumed[1 - t] < PER_RING)) {
    int done = produce(t, &st_prod);
    done += consume(1 - t, &st_cons);
    if (!done) sched_yield();
  }
  return NULL;
}

int main(void) {
  pthread_t th[2];
  for (int t = 0; t < 2; t++)
    if (pthread_create(&th[t], NULL, run, (void *)(intptr_t)t)) {
      fprintf(stderr, TEST_NAME ": pthread_create failed\n");
      return 1;
    }
  for (int t = 0; t < 2; t++) pthread_join(th[t], NULL);
  /* blocks still queued (only after a failure) */
  for (int r = 0; r < 2; r++) {
    struct ring *q = &rings[r];
    for (size_t h = q->head; h != q->tail; h++) free(q->buf[h % RING].p);
  }
  for (int r = 0; r < 2; r++) {
    printf(TEST_NAME ": ring %d (thread %c -> thread %c): %ld blocks produced, %ld consumed, %ld "
           "of them of 64 KiB or more, %ld realloc'd by the consumer\n",
           r, 'A' + r, 'B' - r, produced[r], consumed[r], large[r], reallocs[r]);
    if (produced[r] != PER_RING || consumed[r] != PER_RING)
      FAIL("ring %d: %ld blocks produced and %ld consumed; expected %ld each", r, produced[r],
           consumed[r], PER_RING);
  }
  test_expect_reuse();
  return test_finish();
}
