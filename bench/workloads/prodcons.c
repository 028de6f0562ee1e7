/* prodcons: producer/consumer.  Producer threads allocate batches of blocks
 * (random sizes 24..1024 bytes, stamped) and hand each batch through a
 * bounded queue to consumer threads, which check every block and free it:
 * every free is of a block another thread allocated (the batch array too).
 *
 *   prodcons BLOCKS PAIRS BATCH     (PAIRS producer/consumer pairs) */
#include "bench.h"

struct batch {
  int n;
  uint64_t tag;
  unsigned char *p[];
};

#define QCAP 64
static struct batch *queue[QCAP];
static int qhead, qlen, producers_left;
static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t qnotfull = PTHREAD_COND_INITIALIZER, qnotempty = PTHREAD_COND_INITIALIZER;
static long per_producer;
static int batch_size;

static void put(struct batch *b) {
  pthread_mutex_lock(&qlock);
  while (qlen == QCAP) pthread_cond_wait(&qnotfull, &qlock);
  queue[(qhead + qlen++) % QCAP] = b;
  pthread_cond_signal(&qnotempty);
  pthread_mutex_unlock(&qlock);
}

static struct batch *get(void) {
  pthread_mutex_lock(&qlock);
  while (qlen == 0 && producers_left > 0) pthread_cond_wait(&qnotempty, &qlock);
  struct batch *b = NULL;
  if (qlen) {
    b = queue[qhead];
    qhead = (qhead + 1) % QCAP;
    qlen--;
    pthread_cond_signal(&qnotfull);
  }
  pthread_mutex_unlock(&qlock);
  return b;
}

struct res {
  int id;
  uint64_t sum, bad;
};

static void *producer(void *arg) {
  struct res *r = arg;
  uint64_t st = seed_of(r->id, 5), sum = 0;
  for (long done = 0; done < per_producer;) {
    int n = (int)(per_producer - done < batch_size ? per_producer - done : batch_size);
    struct batch *b = xmalloc(sizeof *b + (size_t)n * sizeof b->p[0]);
    b->n = n;
    b->tag = (uint64_t)r->id << 40 | (uint64_t)done;
    for (int i = 0; i < n; i++) {
      size_t sz = rnd_range(&st, 24, 1024);
      b->p[i] = xmalloc(sz);
      stamp_put(b->p[i], sz, b->tag + (uint64_t)i);
      memcpy(b->p[i] + 8, &sz, 8);
      sum += sz;
    }
    done += n;
    put(b);
  }
  pthread_mutex_lock(&qlock);
  producers_left--;
  pthread_cond_broadcast(&qnotempty);
  pthread_mutex_unlock(&qlock);
  r->sum = sum;
  return NULL;
}

static void *consumer(void *arg) {
  struct res *r = arg;
  uint64_t sum = 0, bad = 0;
  struct batch *b;
  while ((b = get())) {
    for (int i = 0; i < b->n; i++) {
      size_t sz;
      memcpy(&sz, b->p[i] + 8, 8);
      if (sz < 24 || sz > 1024 || !stamp_check(b->p[i], sz, b->tag + (uint64_t)i))
        bad++;
      else
        sum += sz;
      free(b->p[i]);
    }
    free(b);
  }
  r->sum = sum;
  r->bad = bad;
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
  producers_left = pairs;
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
