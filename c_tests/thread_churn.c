/* thread_churn: 3000 short-lived threads.  In every group of 300, threads
 * 0..199 run one at a time (each joined before the next is created) and
 * threads 200..299 run 4 at a time.  Each thread mallocs, fills, checks and
 * frees (in random order) 2 rounds of 32 blocks: mostly small, some of a few
 * KiB, and 2 per round of 64..256 KiB (around the mmap threshold); then it
 * leaves 2 or 3 filled blocks behind in a global table (1..200 bytes,
 * 200..2000 bytes, and 64..100 KiB for every 25th thread), which the main
 * thread checks and frees at the end of the group.  The 4 threads of a batch
 * wait for each other (a barrier) while holding their first blocks, so 4
 * thread arenas are in use at once (already in the warm-up group).
 * After every group the main thread counts the thread heaps in
 * /proc/self/maps and reads its RSS.  A thread heap is a 64 MiB-aligned
 * address B inside an anonymous rw-p mapping (a heap starts read-write: its
 * heap_info) where a plausible heap_info lies (ar_ptr non-NULL, size a
 * non-zero multiple of 4 KiB, at most 64 MiB); the simpler counts -- anonymous
 * mappings starting on a 64 MiB boundary, and rw-p + ---p pairs adding up to
 * 64 MiB -- are printed too.  The first group is the warm-up; after it the
 * heap count must stay at most the warm-up count + 1 and RSS within warm-up
 * RSS + 8 MiB.  glibc gives an exiting thread's arena to the next new thread,
 * so the count stays at the number of threads ever alive at once (4 here).
 * Guards against: arenas not detached at thread exit (one new heap per
 * thread: 3000 x 64 MiB of address space), memory of exited threads never
 * reused (RSS growth), tcache contents lost at thread exit, and frees by the
 * main thread of chunks from arenas whose thread has exited. */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOTAL 3000
#define GROUP 300
#define SEQUENTIAL 200 /* per group; the rest run 4 at a time */
#define CONCURRENT 4
_Static_assert((GROUP - SEQUENTIAL) % CONCURRENT == 0, "the barrier needs full batches");
#define ROUNDS 2
#define BLOCKS 32
#define LEFT 3
#define HEAP_MAX ((uintptr_t)64 << 20)
#define RSS_SLACK_KIB (8 * 1024)

#define TEST_NAME "thread_churn"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};
static struct blk leftover[TOTAL][LEFT];
static pthread_barrier_t four;

/* Blocks up to 8 KiB get the full pattern; larger ones the first 256
 * bytes, one word per 4 KiB and the last 64 bytes (touching every page,
 * without spending seconds on memory bandwidth). */
#define FULL_LIMIT 8192
static void fill(struct blk *b) {
  size_t n = b->n;
  if (n <= FULL_LIMIT) {
    pat_fill(b->p, b->seed, 0, n);
    return;
  }
  pat_fill(b->p, b->seed, 0, 256);
  for (size_t j = 4096; j + 8 <= n; j += 4096) pat_fill(b->p, b->seed, j, j + 8);
  pat_fill(b->p, b->seed, n - 64, n);
}
/* The first wrong byte's offset, or ALL_GOOD. */
static size_t check(const struct blk *b) {
  size_t n = b->n, j;
  if (n <= FULL_LIMIT) return pat_check(b->p, b->seed, n);
  if ((j = pat_check(b->p, b->seed, 256)) != ALL_GOOD) return j;
  for (size_t k = 4096; k + 8 <= n; k += 4096)
    for (j = k; j < k + 8; j++)
      if (b->p[j] != pat_byte(b->seed, j)) return j;
  for (j = n - 64; j < n; j++)
    if (b->p[j] != pat_byte(b->seed, j)) return j;
  return ALL_GOOD;
}
static int verify(const struct blk *b, long id, const char *when) {
  size_t j = check(b);
  if (j == ALL_GOOD) return 1;
  FAIL("thread #%ld, %s: block %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x", id, when,
       (void *)b->p, b->n, j, b->p[j], pat_byte(b->seed, j));
  return 0;
}

/* Two blocks of each round are large (64..256 KiB), the rest small
 * (70%: 1..512 bytes) or a few KiB.  A fixed number of large blocks bounds
 * what a thread holds at once, so the heaps reach their working size in the
 * warm-up. */
static size_t pick_size(uint64_t *st, int large) {
  if (large) return 65536 + rnd(st) % (256 * 1024 - 65536);
  if (rnd(st) % 100 < 70) return 1 + rnd(st) % 512;
  return 513 + rnd(st) % 8000;
}

static void *worker(void *arg) {
  long id = (long)(intptr_t)arg;
  uint64_t st = 0x9E3779B97F4A7C15ull * (uint64_t)(id + 1) + 5;
  struct blk b[BLOCKS];
  for (int round = 0; round < ROUNDS; round++) {
    int l1 = (int)(rnd(&st) % BLOCKS), l2 = (l1 + 1 + (int)(rnd(&st) % (BLOCKS - 1))) % BLOCKS;
    for (int i = 0; i < BLOCKS; i++) {
      b[i].n = pick_size(&st, i == l1 || i == l2);
      b[i].seed = rnd(&st) | 1;
      b[i].p = malloc(b[i].n);
      if (!b[i].p) {
        FAIL("thread #%ld: malloc(%zu) returned NULL", id, b[i].n);
        continue;
      }
      fill(&b[i]);
    }
    /* in the 4-at-a-time phase, all 4 hold an arena (and blocks) at once */
    if (round == 0 && id % GROUP >= SEQUENTIAL) pthread_barrier_wait(&four);
    for (int left = BLOCKS; left > 0; left--) { /* free in random order */
      int i = (int)(rnd(&st) % (uint64_t)left);
      struct blk x = b[i];
      b[i] = b[left - 1];
      if (x.p && verify(&x, id, "before free")) free(x.p);
    }
  }
  /* blocks for the main thread */
  for (int k = 0; k < LEFT; k++) {
    struct blk *l = &leftover[id][k];
    size_t n = k == 0 ? 1 + rnd(&st) % 200 : k == 1 ? 200 + rnd(&st) % 1800 : 0;
    if (k == 2 && id % 25 == 0) n = 65536 + rnd(&st) % (36 * 1024);
    if (!n) continue;
    l->n = n;
    l->seed = (uint64_t)id << 32 ^ (uint64_t)k ^ 0xABCD0000ull;
    l->p = malloc(n);
    if (!l->p) {
      FAIL("thread #%ld: malloc(%zu) for the main thread returned NULL", id, n);
      continue;
    }
    fill(l);
  }
  return NULL;
}

struct counts {
  int heaps;   /* validated heap_info at a 64 MiB boundary */
  int aligned; /* anonymous mappings starting on a 64 MiB boundary */
  int pairs;   /* rw-p + ---p (or one mapping) of exactly 64 MiB from a boundary */
};

static int plausible_heap_info(uintptr_t b) {
  const size_t *h = (const size_t *)b; /* ar_ptr, prev, size, mprotect_size, ... */
  return h[0] != 0 && h[2] != 0 && h[2] % 4096 == 0 && h[2] <= HEAP_MAX;
}

static struct counts count_heaps(void) {
  struct counts c = {0, 0, 0};
  FILE *f = fopen("/proc/self/maps", "r");
  if (!f) {
    FAIL("cannot open /proc/self/maps");
    return c;
  }
  char line[512];
  uintptr_t pstart = 0, pend = 0;
  char pperm[8] = "";
  int panon = 0;
  while (fgets(line, sizeof line, f)) {
    unsigned long start, end, off, inode;
    char perm[8], dev[16];
    int pathpos = 0;
    if (sscanf(line, "%lx-%lx %7s %lx %15s %lu %n", &start, &end, perm, &off, dev, &inode,
               &pathpos) < 6)
      continue;
    int anon = inode == 0 && (pathpos == 0 || line[pathpos] == '\n' || line[pathpos] == 0);
    if (anon && start % HEAP_MAX == 0) {
      c.aligned++;
      if (end - start == HEAP_MAX) c.pairs++;
    }
    if (anon && panon && pend == start && pstart % HEAP_MAX == 0 && !strcmp(pperm, "rw-p") &&
        !strcmp(perm, "---p") && end - pstart == HEAP_MAX)
      c.pairs++;
    if (anon && !strcmp(perm, "rw-p"))
      for (uintptr_t b = (start + HEAP_MAX - 1) & ~(HEAP_MAX - 1); b < end; b += HEAP_MAX)
        if (plausible_heap_info(b)) c.heaps++;
    pstart = start;
    pend = end;
    panon = anon;
    snprintf(pperm, sizeof pperm, "%s", perm);
  }
  fclose(f);
  return c;
}

static void free_leftovers(long from, long to) {
  for (long id = from; id < to; id++)
    for (int k = 0; k < LEFT; k++) {
      struct blk *l = &leftover[id][k];
      if (!l->p) continue;
      if (verify(l, id, "block left for the main thread, checked after the thread exited"))
        free(l->p);
      l->p = NULL;
    }
}

int main(void) {
  pthread_barrier_init(&four, NULL, CONCURRENT);
  struct counts warm = {0, 0, 0};
  long warm_rss = 0;
  for (long g = 0; g < TOTAL; g += GROUP) {
    long id = g;
    while (id < g + SEQUENTIAL) {
      pthread_t t;
      if (pthread_create(&t, NULL, worker, (void *)(intptr_t)id)) {
        FAIL("pthread_create for thread #%ld failed", id);
        return test_finish();
      }
      pthread_join(t, NULL);
      id++;
    }
    while (id < g + GROUP) {
      pthread_t t[CONCURRENT];
      int n = 0;
      for (; n < CONCURRENT && id < g + GROUP; n++, id++)
        if (pthread_create(&t[n], NULL, worker, (void *)(intptr_t)id)) {
          FAIL("pthread_create for thread #%ld failed", id);
          return test_finish();
        }
      for (int k = 0; k < n; k++) pthread_join(t[k], NULL);
    }
    free_leftovers(g, g + GROUP);

    struct counts c = count_heaps();
    long rss = rss_kib();
    printf(TEST_NAME ": after %4ld threads: %d thread heaps (%d anonymous mappings on a 64 MiB "
           "boundary, %d rw-p+---p pairs of 64 MiB), RSS %ld KiB\n",
           g + GROUP, c.heaps, c.aligned, c.pairs, rss);
    fflush(stdout);
    if (g == 0) {
      warm = c;
      warm_rss = rss;
      if (c.heaps < 1)
        FAIL("after %d threads: no thread heap found in /proc/self/maps; expected at least 1", GROUP);
      continue;
    }
    if (c.heaps > warm.heaps + 1)
      FAIL("after %ld threads: %d thread heaps; expected at most the warm-up count %d + 1 "
           "(arenas of exited threads are not reused?)",
           g + GROUP, c.heaps, warm.heaps);
    if (rss < 0 || warm_rss < 0)
      FAIL("cannot read RSS from /proc/self/statm");
    else if (rss > warm_rss + RSS_SLACK_KIB)
      FAIL("after %ld threads: RSS %ld KiB; expected at most the warm-up RSS %ld KiB + %d KiB",
           g + GROUP, rss, warm_rss, RSS_SLACK_KIB);
  }
  void *p = malloc(1000);
  if (!p) FAIL("malloc(1000) after all threads returned NULL");
  free(p);
  test_expect_reuse();
  return test_finish();
}
