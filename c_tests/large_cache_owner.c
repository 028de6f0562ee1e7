/* large_cache_owner: which freed blocks of 1 KiB..32 MiB the fast profile's
 * per-thread large cache keeps, seen through mallinfo2's uordblks: a cached
 * chunk is still in use to its arena, a chunk given back to its arena is not
 * (whether it goes to a bin or into the top, and whether the top is then
 * trimmed or not).
 *  1. A block the thread allocated from its own arena, not next to the
 *     top, and freed by that thread: kept in the fast profile (the bytes in
 *     use stay); given to the arena in the others, as glibc does (they drop
 *     by the chunk's size).
 *  2. A block another thread allocated from its arena and the main thread
 *     frees: given back to that arena in every profile. A cache that kept
 *     it would pin memory of an arena the freeing thread never allocates
 *     from (consumers of a producer's blocks, the blocks an exited thread
 *     left behind).
 *  3. A block just below its arena's top: given back in every profile (the
 *     top absorbs it).
 * The profile is read from PTMALLOC_RS_PROFILE, as scripts/run-tests sets
 * it. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "large_cache_owner"
#include "testlib.h"

enum { BLOCK = 8000 };

static size_t used_bytes(void) { return mallinfo2().uordblks; }

static size_t chunk_size(void *p) { return ((size_t *)p)[-1] & ~(size_t)7; }

/* Frees p and says by how many bytes the arenas' chunks in use dropped. */
static size_t freed_into_arenas(void *p) {
  size_t before = used_bytes();
  free(p);
  size_t after = used_bytes();
  return before > after ? before - after : 0;
}

static void *foreign[2];
static pthread_barrier_t handed, done;

static void *producer(void *arg) {
  (void)arg;
  /* Two blocks from this thread's arena; the guard keeps them off the top. */
  foreign[0] = malloc(BLOCK);
  foreign[1] = malloc(BLOCK);
  memset(foreign[0], 1, BLOCK);
  pthread_barrier_wait(&handed);
  pthread_barrier_wait(&done); /* alive (not holding its arena) while main frees */
  free(foreign[1]);
  return NULL;
}

int main(void) {
  const char *prof = getenv("PTMALLOC_RS_PROFILE");
  int fast = prof && strcmp(prof, "fast") == 0;

  /* 1. Own arena, away from the top. */
  void *mine = malloc(BLOCK), *guard = malloc(BLOCK);
  memset(mine, 2, BLOCK);
  size_t sz = chunk_size(mine);
  size_t grew = freed_into_arenas(mine);
  if (fast && grew != 0)
    FAIL("fast: free of a %zu-byte chunk of the thread's own arena gave %zu bytes to the arena (want 0: kept in the large cache)", sz, grew);
  if (!fast && grew != sz)
    FAIL("%s: free of a %zu-byte chunk gave %zu bytes to the arena (want all of it, as glibc)", prof ? prof : "default", sz, grew);
  /* The cached (or binned) chunk serves the next request of that size. */
  void *again = malloc(BLOCK);
  if (again != mine) FAIL("malloc(%d) after the free returned %p, not the freed %p", BLOCK, again, mine);

  /* 2. Another thread's arena. */
  /* The producer and this thread wait for each other: bounded. */
  test_watchdog(60, "the producer thread's barriers");
  pthread_barrier_init(&handed, NULL, 2);
  pthread_barrier_init(&done, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, producer, NULL);
  pthread_barrier_wait(&handed);
  size_t fsz = chunk_size(foreign[0]);
  grew = freed_into_arenas(foreign[0]);
  if (grew != fsz)
    FAIL("free by the main thread of a %zu-byte chunk of another thread's arena gave %zu bytes to it (want all: a cache must not keep another arena's chunks)", fsz, grew);
  pthread_barrier_wait(&done);
  pthread_join(t, NULL);
  test_watchdog(0, NULL);

  /* 3. Just below the top. */
  void *last = malloc(BLOCK);
  size_t lsz = chunk_size(last);
  grew = freed_into_arenas(last);
  if (grew != lsz)
    FAIL("free of the %zu-byte chunk just below the top gave %zu bytes to the arena (want all: the top absorbs it)", lsz, grew);

  free(again);
  free(guard);
  test_expect_reuse();
  return test_finish();
}
