/* xfree: cross-thread frees, one allocating thread against many freeing
 * ones.  Thread 0 allocates OPS blocks of random sizes 16..512 bytes
 * (stamped) in batches of 64 and puts each batch into a bounded queue
 * (bench.h's, mutex-protected); THREADS - 1 other threads take the batches
 * out, check every block and free it.  No thread frees a block it allocated,
 * and the freeing threads allocate nothing: an allocator has to send every
 * block back to the allocating thread's heap or arena (glibc: through the
 * freeing thread's tcache, then the arena's lock), while that thread goes on
 * allocating.  prodcons is the same with pairs of threads and bigger blocks.
 *
 *   xfree OPS THREADS */
#include "bench.h"

#define BATCH 64

static struct bqueue queue;
static long ops;

struct res {
  uint64_t sum, bad;
};

static void *allocating(void *arg) {
  struct res *r = arg;
  uint64_t st = seed_of(17, 3);
  r->sum = bq_produce(&queue, ops, BATCH, 0, &st, 16, 512);
  return NULL;
}

static void *freeing(void *arg) {
  struct res *r = arg;
  bq_consume(&queue, 16, 512, &r->sum, &r->bad);
  return NULL;
}

int main(int argc, char **argv) {
  ops = arg_or(argc, argv, 1, 5000000);
  int threads = (int)arg_or(argc, argv, 2, 2);
  if (threads < 2) threads = 2;
  bq_init(&queue, 1);
  report_allocator();
  pthread_t *tid = (pthread_t *)calloc((size_t)threads, sizeof *tid);
  struct res *res = (struct res *)calloc((size_t)threads, sizeof *res);
  CHECK_PT(pthread_create(&tid[0], NULL, allocating, &res[0]));
  for (int t = 1; t < threads; t++) CHECK_PT(pthread_create(&tid[t], NULL, freeing, &res[t]));
  uint64_t got = 0, bad = 0;
  for (int t = 0; t < threads; t++) {
    CHECK_PT(pthread_join(tid[t], NULL));
    if (t) got += res[t].sum, bad += res[t].bad;
  }
  /* What the freeing threads saw must be what thread 0 made. */
  report_checksum(res[0].sum * 3 + (got == res[0].sum ? 0 : 1), bad);
  free(tid);
  free(res);
  return 0;
}
