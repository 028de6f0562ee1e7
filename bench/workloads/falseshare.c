/* falseshare: false sharing through the allocator.  THREADS threads start
 * together and each allocates BLOCKS blocks of random sizes 8..64 bytes;
 * thread t hands its blocks to thread t + 1 (a ring: the last to the first).
 * Then every thread, ROUNDS times over, increments a counter (the first 8
 * bytes) in each block it was handed, and at the end checks those blocks
 * and frees them (cross-thread frees).  The blocks one thread allocated are
 * written by one thread only, so two threads write to the same cache line
 * only where the allocator put blocks of different threads side by side (one
 * heap or arena for several threads, small blocks interleaved): then the
 * line moves between their cores at every write, and the counting is slower.
 * Reports the counting phase's wall time per block per round (count_ns).
 * Checksum: the total of the counters.
 *
 *   falseshare THREADS BLOCKS ROUNDS */
#include "bench.h"

static int threads;
static long nblocks, rounds;
static unsigned char **made[256]; /* made[t]: the blocks thread t allocated */
static pthread_barrier_t barrier;
static double t_count;

struct res {
  int id;
  uint64_t sum, bad;
};

static void *work(void *arg) {
  struct res *r = arg;
  int id = r->id, from = (id + threads - 1) % threads;
  uint64_t st = seed_of((uint64_t)id, 23), sum = 0, bad = 0;
  /* Bytes 8.. of a block hold a stamp (its size and maker), for the check. */
  unsigned char **mine = calloc((size_t)nblocks, sizeof *mine);
  for (long b = 0; b < nblocks; b++) {
    size_t n = rnd_range(&st, 8, 64);
    mine[b] = xmalloc(n);
    memset(mine[b], 0, 8);
    if (n > 8) stamp_put(mine[b] + 8, n - 8, (uint64_t)id << 32 | (uint64_t)b);
  }
  made[id] = mine;
  pthread_barrier_wait(&barrier);
  if (id == 0) t_count = now_s();
  unsigned char **got = made[from];
  for (long k = 0; k < rounds; k++)
    for (long b = 0; b < nblocks; b++) (*(volatile uint64_t *)got[b])++;
  pthread_barrier_wait(&barrier);
  if (id == 0) t_count = now_s() - t_count;
  /* The maker's size sequence again, to check the blocks handed over. */
  uint64_t st2 = seed_of((uint64_t)from, 23);
  for (long b = 0; b < nblocks; b++) {
    size_t n = rnd_range(&st2, 8, 64);
    uint64_t c;
    memcpy(&c, got[b], 8);
    sum += c;
    bad += c != (uint64_t)rounds || (n > 8 && !stamp_check(got[b] + 8, n - 8, (uint64_t)from << 32 | (uint64_t)b));
    free(got[b]);
  }
  r->sum = sum;
  r->bad = bad;
  return NULL;
}

int main(int argc, char **argv) {
  threads = (int)arg_or(argc, argv, 1, 4);
  nblocks = arg_or(argc, argv, 2, 1000);
  rounds = arg_or(argc, argv, 3, 100000);
  if (threads < 2) threads = 2;
  if (threads > 256) threads = 256;
  if (nblocks < 1) nblocks = 1;
  report_allocator();
  CHECK_PT(pthread_barrier_init(&barrier, NULL, (unsigned)threads));
  pthread_t tid[256];
  struct res res[256];
  for (int t = 0; t < threads; t++) {
    res[t] = (struct res){.id = t};
    CHECK_PT(pthread_create(&tid[t], NULL, work, &res[t]));
  }
  uint64_t sum = 0, bad = 0;
  for (int t = 0; t < threads; t++) {
    CHECK_PT(pthread_join(tid[t], NULL));
    sum += res[t].sum;
    bad += res[t].bad;
  }
  for (int t = 0; t < threads; t++) free(made[t]);
  report_metric("count_ns", t_count * 1e9 / (double)nblocks / (double)rounds, "ns");
  report_checksum(sum, bad);
  return 0;
}
