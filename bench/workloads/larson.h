/* larson.h: the body of the larson workload (see larson.c for what it
 * does), shared by larson.c (malloc and free) and larson_sized.cc (C++'s
 * operator new and sized operator delete).  Include it after bench.h, once
 * the program has defined
 *   static inline unsigned char *block_new(size_t n);            n bytes
 *   static inline void block_delete(unsigned char *p, size_t n);  frees p, of n bytes
 * and call larson_main from main.  Written in the part of C that C++ also
 * takes. */
#ifndef LARSON_H
#define LARSON_H

static unsigned char **slot;
static long nslots, ops;

struct job {
  int round, id;
  uint64_t sum, bad;
};

/* A block's tag is stored in it (bytes 8..15) and holds its size (the top 16
 * bits), so whoever frees it can check its stamp and give its size without
 * knowing who made it. */
static unsigned char *make(uint64_t *st, uint64_t tag, uint64_t *sum) {
  size_t n = rnd_range(st, 24, 1000);
  unsigned char *p = block_new(n);
  stamp_put(p, n, tag);
  memcpy(p + 8, &tag, 8);
  *sum += n;
  return p;
}

/* Frees a block made by make() and returns 1, or returns 0 and leaves it
 * alone if it is damaged (its size cannot be trusted). */
static int unmake(unsigned char *p) {
  uint64_t tag;
  memcpy(&tag, p + 8, 8);
  size_t n = (size_t)(tag >> 48);
  if (n < 24 || n > 1000 || !stamp_check(p, n, tag)) return 0;
  block_delete(p, n);
  return 1;
}

static void *work(void *arg) {
  struct job *j = (struct job *)arg;
  uint64_t st = seed_of((uint64_t)j->round, (uint64_t)j->id), sum = 0, bad = 0;
  for (long i = 0; i < ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)nslots);
    uint64_t st2 = st;
    size_t n = rnd_range(&st2, 24, 1000); /* the size make() will draw */
    unsigned char *p = make(&st, (uint64_t)n << 48 | (uint64_t)j->id << 32 | (uint64_t)i, &sum);
    unsigned char *old = __atomic_exchange_n(&slot[k], p, __ATOMIC_ACQ_REL);
    if (old) bad += !unmake(old);
  }
  j->sum = sum;
  j->bad = bad;
  return NULL;
}

/*   THREADS SLOTS ROUNDS OPS_PER_THREAD_PER_ROUND */
static int larson_main(int argc, char **argv) {
  int threads = (int)arg_or(argc, argv, 1, 4);
  nslots = arg_or(argc, argv, 2, 10000);
  int rounds = (int)arg_or(argc, argv, 3, 10);
  ops = arg_or(argc, argv, 4, 200000);
  if (threads < 1) threads = 1;
  report_allocator();
  slot = (unsigned char **)calloc((size_t)nslots, sizeof *slot);
  uint64_t st = seed_of(99, 99), sum = 0, bad = 0;
  for (long k = 0; k < nslots; k++) {
    uint64_t st2 = st;
    size_t n = rnd_range(&st2, 24, 1000);
    slot[k] = make(&st, (uint64_t)n << 48 | (uint64_t)k, &sum);
  }
  pthread_t *tid = (pthread_t *)calloc((size_t)threads, sizeof *tid);
  struct job *jobs = (struct job *)calloc((size_t)threads, sizeof *jobs);
  for (int r = 0; r < rounds; r++) {
    for (int t = 0; t < threads; t++) {
      memset(&jobs[t], 0, sizeof jobs[t]);
      jobs[t].round = r;
      jobs[t].id = t;
      CHECK_PT(pthread_create(&tid[t], NULL, work, &jobs[t]));
    }
    for (int t = 0; t < threads; t++) {
      CHECK_PT(pthread_join(tid[t], NULL));
      sum = sum * 1000003 + jobs[t].sum;
      bad += jobs[t].bad;
    }
  }
  for (long k = 0; k < nslots; k++) bad += !unmake(slot[k]);
  free(slot);
  report_checksum(sum, bad);
  return 0;
}

#endif /* LARSON_H */
