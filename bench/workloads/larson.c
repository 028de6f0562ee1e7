/* larson: the Larson & Krishnan server workload.  A shared array of slots
 * holds live blocks (24..1000 bytes); worker threads repeatedly pick a random
 * slot, allocate a new block, swap it in (atomically) and free the block that
 * was there, which another thread, or the main thread, had allocated: most
 * frees cross threads.  As in larson, the workers are replaced: the work is
 * done in ROUNDS, each by fresh threads (the old ones exit), so arenas and
 * thread caches are left behind and taken over.
 *
 *   larson THREADS SLOTS ROUNDS OPS_PER_THREAD_PER_ROUND */
#include "bench.h"

static unsigned char **slot;
static long nslots, ops;

struct job {
  int round, id;
  uint64_t sum, bad;
};

/* A block's tag is stored in it (bytes 8..15), so whoever frees it can check
 * its stamp without knowing who made it. */
static unsigned char *make(uint64_t *st, uint64_t tag, uint64_t *sum) {
  size_t n = rnd_range(st, 24, 1000);
  unsigned char *p = xmalloc(n);
  stamp_put(p, n, tag);
  memcpy(p + 8, &tag, 8);
  *sum += n;
  return p;
}

static int intact(unsigned char *p) {
  uint64_t tag;
  memcpy(&tag, p + 8, 8);
  size_t n = (size_t)(tag >> 48);
  return n >= 24 && n <= 1000 && stamp_check(p, n, tag);
}

static void *work(void *arg) {
  struct job *j = arg;
  uint64_t st = seed_of((uint64_t)j->round, (uint64_t)j->id), sum = 0, bad = 0;
  for (long i = 0; i < ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)nslots);
    uint64_t st2 = st;
    size_t n = rnd_range(&st2, 24, 1000); /* the size make() will draw */
    unsigned char *p = make(&st, (uint64_t)n << 48 | (uint64_t)j->id << 32 | (uint64_t)i, &sum);
    unsigned char *old = __atomic_exchange_n(&slot[k], p, __ATOMIC_ACQ_REL);
    if (old) {
      bad += !intact(old);
      free(old);
    }
  }
  j->sum = sum;
  j->bad = bad;
  return NULL;
}

int main(int argc, char **argv) {
  int threads = (int)arg_or(argc, argv, 1, 4);
  nslots = arg_or(argc, argv, 2, 10000);
  int rounds = (int)arg_or(argc, argv, 3, 10);
  ops = arg_or(argc, argv, 4, 200000);
  if (threads < 1) threads = 1;
  report_allocator();
  slot = calloc((size_t)nslots, sizeof *slot);
  uint64_t st = seed_of(99, 99), sum = 0, bad = 0;
  for (long k = 0; k < nslots; k++) {
    uint64_t st2 = st;
    size_t n = rnd_range(&st2, 24, 1000);
    slot[k] = make(&st, (uint64_t)n << 48 | (uint64_t)k, &sum);
  }
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  struct job *jobs = calloc((size_t)threads, sizeof *jobs);
  for (int r = 0; r < rounds; r++) {
    for (int t = 0; t < threads; t++) {
      jobs[t] = (struct job){.round = r, .id = t};
      CHECK_PT(pthread_create(&tid[t], NULL, work, &jobs[t]));
    }
    for (int t = 0; t < threads; t++) {
      CHECK_PT(pthread_join(tid[t], NULL));
      sum = sum * 1000003 + jobs[t].sum;
      bad += jobs[t].bad;
    }
  }
  for (long k = 0; k < nslots; k++) {
    bad += !intact(slot[k]);
    free(slot[k]);
  }
  free(slot);
  report_checksum(sum, bad);
  return 0;
}
