/* mmap_realloc_threads: threads that grow and shrink mmap'd chunks with
 * realloc (mremap, which may move the mapping) while other threads map and
 * unmap chunks of their own.  When mremap moves a mapping, the kernel frees
 * the old range at once, and another thread's mmap may get that very
 * address; its chunk must then be freed and realloc'd like any other.
 * (The allocator once recorded the move only after mremap returned: a
 * thread that mapped the old range meanwhile found the moved chunk's stale
 * record under its address, and its free aborted with "munmap_chunk():
 * invalid pointer" or its realloc with "realloc(): invalid pointer".)
 * Every block's first and last 256 bytes carry a pattern, checked before each
 * realloc and free.  The mmap threshold is fixed at 128 KiB, so every block
 * here is mmap'd (the dynamic threshold would otherwise move them into the
 * heap). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#define TEST_NAME "mmap_realloc_threads"
#include "testlib.h"

#define THREADS 4
#define ROUNDS 150000
#define SLOTS 8
#define EDGE 256
#define WATCHDOG_S 60

static void fill(unsigned char *p, uint64_t seed, size_t n) {
  pat_fill(p, seed, 0, EDGE);
  pat_fill(p + n - EDGE, seed + 1, 0, EDGE);
}
static int intact(const unsigned char *p, uint64_t seed, size_t n) {
  return pat_check(p, seed, EDGE) == ALL_GOOD && pat_check(p + n - EDGE, seed + 1, EDGE) == ALL_GOOD;
}

static long reallocs_moved[THREADS];

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t st = 0x9e3779b97f4a7c15ull * (uint64_t)(id + 1);
  unsigned char *p[SLOTS] = {0};
  size_t n[SLOTS] = {0};
  uint64_t seed[SLOTS] = {0};
  for (long i = 0; i < ROUNDS; i++) {
    int k = (int)(rnd(&st) % SLOTS);
    size_t want = 140000 + (size_t)(rnd(&st) % 64) * 4096;
    if (p[k] && !intact(p[k], seed[k], n[k])) {
      FAIL("thread %d: a %zu-byte block at %p lost its contents", id, n[k], (void *)p[k]);
      return NULL;
    }
    if (p[k] && rnd(&st) % 2) {
      /* realloc keeps the first min(old, new) bytes: the head pattern */
      unsigned char *q = realloc(p[k], want);
      if (!q) {
        FAIL("thread %d: realloc(%zu) returned NULL", id, want);
        return NULL;
      }
      if (pat_check(q, seed[k], EDGE) != ALL_GOOD) {
        FAIL("thread %d: realloc from %zu to %zu bytes lost the contents", id, n[k], want);
        return NULL;
      }
      if (q != p[k]) reallocs_moved[id]++;
      p[k] = q;
    } else {
      free(p[k]);
      p[k] = malloc(want);
      if (!p[k]) {
        FAIL("thread %d: malloc(%zu) returned NULL", id, want);
        return NULL;
      }
    }
    n[k] = want;
    seed[k] = ((uint64_t)id << 40) + (uint64_t)i * 2;
    fill(p[k], seed[k], n[k]);
  }
  for (int k = 0; k < SLOTS; k++) free(p[k]);
  return NULL;
}

int main(void) {
  test_watchdog(WATCHDOG_S, "threads reallocating and freeing mmap'd chunks");
  if (mallopt(M_MMAP_THRESHOLD, 128 * 1024) != 1) FAIL("mallopt(M_MMAP_THRESHOLD) failed");
  pthread_t t[THREADS];
  for (int i = 0; i < THREADS; i++) {
    int e = pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    if (e) {
      FAIL("pthread_create: %s", strerror(e));
      return test_finish();
    }
  }
  for (int i = 0; i < THREADS; i++) pthread_join(t[i], NULL);
  test_watchdog(0, NULL);
  long moved = 0;
  for (int i = 0; i < THREADS; i++) moved += reallocs_moved[i];
  /* the race needs moving reallocs: make sure there were many */
  if (moved < ROUNDS / 100) FAIL("only %ld reallocs moved their block", moved);
  printf(TEST_NAME ": %d threads x %d rounds of 140 KiB..400 KiB blocks, %ld reallocs moved\n",
         THREADS, ROUNDS, moved);
  test_expect_reuse();
  return test_finish();
}
