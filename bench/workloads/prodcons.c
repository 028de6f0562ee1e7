/* prodcons: producer/consumer.  Producer threads allocate batches of blocks
 * (random sizes 24..1024 bytes, stamped) and hand each batch through a
 * bounded queue to consumer threads, which check every block and free it:
 * every free is of a block another thread allocated (the batch array too).
 * The batches and the queue are bench.h's, shared with xfree.
 *
 *   prodcons BLOCKS PAIRS BATCH     (PAIRS producer/consumer pairs) */
#include "bench.h"

static struct bqueue queue;
static long per_producer;
static int batch_size;

struct res {
  int id;
  uint64_t sum, bad;
};

static void *producer(void *arg) {
  struct res *r = arg;
  uint64_t st = seed_of(r->id, 5);
  r->sum = bq_produce(&queue, per_producer, batch_size, (uint64_t)r->id, &st, 24, 1024);
  return NULL;
}

static void *consumer(void *arg) {
  struct res *r = arg;
  bq_consume(&queue, 24, 1024, &r->sum, &r->bad);
  return NULL;
}

int main(int argc, char **argv) {
  long blocks = arg_or(argc, argv, 1, 10000000);
  int pairs = (int)arg_or(argc, argv, 2, 1);
  batch_size = (int)arg_or(argc, argv, 3, 256);
  if (pairs < 1) pairs = 1;
  if (pairs > 64) pairs = 64;
  if (batch_size < 1) batch_size = 1;
  per_producer = blocks / pairs;
  bq_init(&queue, pairs);
  report_allocator();
  pthread_t t[2 * 64];
  struct res res[2 * 64];
  for (int i = 0; i < pairs; i++) {
    res[i] = (struct res){.id = i};
    res[pairs + i] = (struct res){.id = pairs + i};
    CHECK_PT(pthread_create(&t[i], NULL, producer, &res[i]));
    CHECK_PT(pthread_create(&t[pairs + i], NULL, consumer, &res[pairs + i]));
  }
  uint64_t made = 0, got = 0, bad = 0;
  for (int i = 0; i < 2 * pairs; i++) {
    CHECK_PT(pthread_join(t[i], NULL));
    if (i < pairs)
      made += res[i].sum;
    else
      got += res[i].sum, bad += res[i].bad;
  }
  /* What the consumers saw must be what the producers made. */
  report_checksum(made * 3 + (got == made ? 0 : 1), bad);
  return 0;
}
