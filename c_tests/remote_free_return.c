/* remote_free_return: blocks one thread allocates and others free all
 * come back.  A producer thread allocates rounds of 1000 blocks (16..1000
 * bytes, filled); 4 consumer threads take turns (round r goes to consumer
 * r % 4), each checking and freeing its round's blocks while the producer
 * already allocates the next; 3000 rounds, 3 million blocks.  Then all the
 * threads exit.
 *  - The producer's arena must not grow with the rounds: the arenas' bytes
 *    from the system (mallinfo2 arena) after the last round stay within
 *    4 MiB of those after round 100.  Frees that never reached the arena
 *    (a batch of handed-over frees lost, a list of waiting frees never
 *    taken) would add some 1.5 GiB.
 *  - Once the threads have exited, the bytes in use (mallinfo2 uordblks)
 *    are back within 4 KiB of what they were before the threads started:
 *    a thread's exit gives back its tcache and whatever it had gathered for
 *    other arenas (in the fast profile up to 63 blocks each, some 16 KiB
 *    on average: four consumers that lost theirs would leave about 64 KiB),
 *    and the next lock holder frees what waits on a list.
 * Under every profile; the fast one batches the consumer's frees and the
 * producer takes them straight into its tcache (arena::remote). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "remote_free_return"
#include "testlib.h"

enum { ROUNDS = 3000, PER_ROUND = 1000, SLOTS = 4, CONSUMERS = SLOTS };

/* A ring of SLOTS rounds: the producer fills slot r % SLOTS, consumer
 * r % SLOTS empties it; the slot's state (full or not) under a mutex and
 * condition variable. */
static unsigned char *blocks[SLOTS][PER_ROUND];
static size_t sizes[SLOTS][PER_ROUND];
static int full[SLOTS];
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static size_t arena_at_100, arena_at_end;

static void *producer(void *arg) {
  (void)arg;
  uint64_t st = 42;
  for (int r = 0; r < ROUNDS; r++) {
    int s = r % SLOTS;
    pthread_mutex_lock(&mu);
    while (full[s]) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < PER_ROUND; i++) {
      size_t n = 16 + (size_t)(rnd(&st) % 985);
      unsigned char *p = malloc(n);
      if (!p) {
        FAIL("malloc(%zu) returned NULL in round %d", n, r);
        exit(1);
      }
      memset(p, (unsigned char)(r + i), n);
      blocks[s][i] = p;
      sizes[s][i] = n;
    }
    if (r == 100) arena_at_100 = mallinfo2().arena;
    pthread_mutex_lock(&mu);
    full[s] = 1;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  arena_at_end = mallinfo2().arena;
  return NULL;
}

static void *consumer(void *arg) {
  int s = (int)(intptr_t)arg;
  for (int r = s; r < ROUNDS; r += SLOTS) {
    pthread_mutex_lock(&mu);
    while (!full[s]) pthread_cond_wait(&cv, &mu);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < PER_ROUND; i++) {
      unsigned char *p = blocks[s][i];
      unsigned char want = (unsigned char)(r + i);
      if (p[0] != want || p[sizes[s][i] - 1] != want)
        FAIL("round %d block %d: contents changed before its free", r, i);
      free(p);
    }
    pthread_mutex_lock(&mu);
    full[s] = 0;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
  }
  return NULL;
}

static pthread_barrier_t all_in;

static void *warm_up(void *arg) {
  (void)arg;
  void *p = malloc(100);
  pthread_barrier_wait(&all_in); /* each thread on an arena of its own */
  free(p);
  return NULL;
}

int main(void) {
  /* What the threads' start and exit leave allocated in any case (their
   * arenas' headers, kept for the next threads) is there before counting. */
  /* The threads wait for each other (barrier, condition variable): bounded. */
  test_watchdog(180, "the producer and consumer rounds");
  pthread_t w[1 + CONSUMERS];
  pthread_barrier_init(&all_in, NULL, 1 + CONSUMERS);
  for (int j = 0; j < 1 + CONSUMERS; j++) pthread_create(&w[j], NULL, warm_up, NULL);
  for (int j = 0; j < 1 + CONSUMERS; j++) pthread_join(w[j], NULL);
  size_t before = mallinfo2().uordblks;
  pthread_t p, c[CONSUMERS];
  pthread_create(&p, NULL, producer, NULL);
  for (int j = 0; j < CONSUMERS; j++) pthread_create(&c[j], NULL, consumer, (void *)(intptr_t)j);
  pthread_join(p, NULL);
  for (int j = 0; j < CONSUMERS; j++) pthread_join(c[j], NULL);
  test_watchdog(0, NULL);
  size_t after = mallinfo2().uordblks;
  printf(TEST_NAME ": arenas' bytes %zu after round 100, %zu after round %d; in use %zu before the threads, %zu after\n",
         arena_at_100, arena_at_end, ROUNDS, before, after);
  if (arena_at_end > arena_at_100 + (4u << 20))
    FAIL("the arenas grew from %zu to %zu bytes over the rounds: freed blocks did not come back", arena_at_100,
         arena_at_end);
  if (after > before + (4u << 10))
    FAIL("%zu bytes in use after the threads exited, %zu before they started: frees were lost", after, before);
  test_expect_reuse();
  return test_finish();
}
