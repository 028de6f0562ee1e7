/* random: random sizes 8..1024 bytes with a live set of thousands of blocks:
 * each step picks a random slot, checks and frees the block in it and puts a
 * new block of a random size there (every 8th step leaves the slot empty for
 * a while instead), so the allocator splits, bins and coalesces chunks of
 * every small size.  With THREADS > 1, each thread does OPS / THREADS steps
 * on a live set of its own (no block crosses threads).
 *
 *   random OPS LIVE THREADS */
#include "bench.h"

struct job {
  long ops, live;
  int id;
  uint64_t sum, bad;
};

static void *work(void *arg) {
  struct job *j = arg;
  uint64_t st = seed_of(j->id, 11), sum = 0, bad = 0;
  unsigned char **slot = calloc((size_t)j->live, sizeof *slot);
  size_t *len = calloc((size_t)j->live, sizeof *len);
  if (!slot || !len) exit(3);
  for (long i = 0; i < j->ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)j->live);
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], k);
      sum += slot[k][0];
      free(slot[k]);
      slot[k] = NULL;
    }
    if ((i & 7) == 7) continue;
    size_t n = rnd_range(&st, 8, 1024);
    slot[k] = xmalloc(n);
    len[k] = n;
    stamp_put(slot[k], n, k);
    sum += n;
  }
  for (long k = 0; k < j->live; k++)
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], (uint64_t)k);
      free(slot[k]);
    }
  free(slot);
  free(len);
  j->sum = sum;
  j->bad = bad;
  return NULL;
}

int main(int argc, char **argv) {
  long ops = arg_or(argc, argv, 1, 20000000);
  long live = arg_or(argc, argv, 2, 5000);
  int threads = (int)arg_or(argc, argv, 3, 1);
  if (threads < 1) threads = 1;
  report_allocator();
  struct job *jobs = calloc((size_t)threads, sizeof *jobs);
  pthread_t *tid = calloc((size_t)threads, sizeof *tid);
  for (int t = 0; t < threads; t++) {
    jobs[t] = (struct job){.ops = ops / threads, .live = live, .id = t};
    if (threads == 1)
      work(&jobs[t]);
    else
      CHECK_PT(pthread_create(&tid[t], NULL, work, &jobs[t]));
  }
  uint64_t sum = 0, bad = 0;
  for (int t = 0; t < threads; t++) {
    if (threads > 1) CHECK_PT(pthread_join(tid[t], NULL));
    sum = sum * 1000003 + jobs[t].sum;
    bad += jobs[t].bad;
  }
  report_checksum(sum, bad);
  return 0;
}
