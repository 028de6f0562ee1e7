/* bench.h: what the workload programs in bench/workloads/ share.
 * Header-only; scripts/bench compiles each .c file alone:
 *   gcc -O2 -pthread -fno-builtin -o build/bench/NAME bench/workloads/NAME.c
 *
 * (C++ programs include it too: g++ -O2 -fsized-deallocation -pthread ...,
 * NAME.cc; what is here is written in the part of C that C++ also takes.)
 *
 * Output protocol (stdout, one item a line, read by scripts/bench):
 *   allocator PATH        the file that provides malloc in this process
 *                         (checks that the LD_PRELOAD took effect)
 *   provider WHAT PATH    the file that provides another function (WHAT: one
 *                         word, e.g. sized_delete), for the reader
 *   metric NAME VALUE UNIT  a figure the program measured itself
 *   checksum HEX          depends only on the work done, never on addresses or
 *                         thread timing: the same under every allocator
 *   bad N                 blocks whose contents were found damaged (0)
 *
 * Include it after the program's own system headers: the allocator macros
 * below would break a system header included after them. */
#ifndef BENCH_H
#define BENCH_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Every allocator call goes through a volatile function pointer, so the
 * compiler can neither delete a malloc/free pair nor fold anything it knows
 * about malloc's result (-fno-builtin as well, for memset & co.). */
static void *(*volatile malloc_v)(size_t) = malloc;
static void (*volatile free_v)(void *) = free;
static void *(*volatile realloc_v)(void *, size_t) = realloc;
#define malloc(n) malloc_v(n)
#define free(p) free_v(p)
#define realloc(p, n) realloc_v(p, n)

/* xorshift64*, a fast PRNG with a fixed seed per thread; *st must not be 0. */
static inline uint64_t rnd(uint64_t *st) {
  uint64_t x = *st;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *st = x;
  return x * 0x2545F4914F6CDD1Dull;
}
static inline uint64_t seed_of(uint64_t a, uint64_t b) {
  uint64_t x = (a + 1) * 0x9E3779B97F4A7C15ull ^ (b + 7) * 0xBF58476D1CE4E5B9ull;
  x ^= x >> 31;
  return x ? x : 1;
}
/* A value in [lo, hi]. */
static inline size_t rnd_range(uint64_t *st, size_t lo, size_t hi) {
  return lo + (size_t)(rnd(st) % (hi - lo + 1));
}

/* A block's stamp: the first 8 bytes (fewer for a block of 8 bytes or less:
 * never its last byte) and the last byte, derived from its size and a tag.
 * stamp_check returns 1 when the block still holds the stamp that stamp_put
 * wrote.  A program may keep data of its own in bytes 8 .. n-2. */
static inline uint64_t stamp_word(size_t n, uint64_t tag) {
  uint64_t x = (uint64_t)n * 0x9E3779B97F4A7C15ull ^ tag;
  return x ^ (x >> 29);
}
static inline void stamp_put(unsigned char *p, size_t n, uint64_t tag) {
  uint64_t w = stamp_word(n, tag);
  memcpy(p, &w, n <= 8 ? n - 1 : 8);
  p[n - 1] = (unsigned char)(n ^ tag);
}
static inline int stamp_check(const unsigned char *p, size_t n, uint64_t tag) {
  uint64_t w = stamp_word(n, tag), got = w;
  memcpy(&got, p, n <= 8 ? n - 1 : 8);
  return got == w && p[n - 1] == (unsigned char)(n ^ tag);
}

/* Writes one byte in every 4 KiB page of [p, p + n), so that the pages are
 * really in memory (what a program using the block would cause). */
static inline void touch_pages(unsigned char *p, size_t n, unsigned char v) {
  for (size_t j = 0; j < n; j += 4096) p[j] = v;
  p[n - 1] = v;
}

static inline double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* VmRSS from /proc/self/status, in KiB (-1 if unreadable). */
static inline long vm_rss_kib(void) {
  char line[256];
  long kib = -1;
  FILE *f = fopen("/proc/self/status", "r");
  if (!f) return -1;
  while (fgets(line, sizeof line, f))
    if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
  fclose(f);
  return kib;
}

/* The argument i as a number, or dflt when absent. */
static inline long arg_or(int argc, char **argv, int i, long dflt) {
  return argc > i ? strtol(argv[i], NULL, 0) : dflt;
}

/* The file that provides the function at fn. */
static inline const char *file_of(void *fn) {
  Dl_info info;
  return dladdr(fn, &info) && info.dli_fname ? info.dli_fname : "unknown";
}

static inline void report_allocator(void) {
  printf("allocator %s\n", file_of((void *)malloc_v));
}

static inline void report_provider(const char *what, void *fn) {
  printf("provider %s %s\n", what, file_of(fn));
}

static inline void report_metric(const char *name, double value, const char *unit) {
  printf("metric %s %.6g %s\n", name, value, unit);
}

static inline void report_checksum(uint64_t sum, uint64_t bad) {
  printf("checksum %016" PRIx64 "\n", sum);
  printf("bad %" PRIu64 "\n", bad);
}

static inline void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) {
    fprintf(stderr, "malloc(%zu) failed\n", n);
    exit(3);
  }
  return p;
}

#define CHECK_PT(call)                                                         \
  do {                                                                         \
    int rc_ = (call);                                                          \
    if (rc_) {                                                                 \
      fprintf(stderr, "%s failed: %d\n", #call, rc_);                          \
      exit(3);                                                                 \
    }                                                                          \
  } while (0)

/* The medium and large workloads: OPS times, a random one of LIVE slots gets
 * a new block of lo..hi bytes (the old one's stamp checked, then freed);
 * one byte of every 4 KiB page of the new block is written. */
static inline int replace_blocks(int argc, char **argv, long ops_default, long live_default,
                                 size_t lo, size_t hi, uint64_t seed_a, uint64_t seed_b) {
  long ops = arg_or(argc, argv, 1, ops_default);
  long live = arg_or(argc, argv, 2, live_default);
  report_allocator();
  unsigned char **slot = (unsigned char **)calloc((size_t)live, sizeof *slot);
  size_t *len = (size_t *)calloc((size_t)live, sizeof *len);
  uint64_t st = seed_of(seed_a, seed_b), sum = 0, bad = 0;
  for (long i = 0; i < ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)live);
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], k);
      free(slot[k]);
    }
    size_t n = rnd_range(&st, lo, hi);
    slot[k] = (unsigned char *)xmalloc(n);
    len[k] = n;
    touch_pages(slot[k], n, (unsigned char)i);
    stamp_put(slot[k], n, k);
    sum += n;
  }
  for (long k = 0; k < live; k++)
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], (uint64_t)k);
      free(slot[k]);
    }
  report_checksum(sum, bad);
  return 0;
}

/* Hand-off between threads (prodcons, xfree): a thread allocates a batch of
 * blocks of lo..hi bytes (lo >= 13), each stamped with the batch's tag plus
 * its index and holding its size in bytes 8..11, and puts the batch into a
 * bounded queue; another thread takes it out, checks every block and frees
 * it, and the batch array too: every free is of a block another thread
 * allocated. */
struct batch {
  int n;
  uint64_t tag;
  unsigned char *p[];
};

static inline struct batch *batch_make(int n, uint64_t tag, uint64_t *st, size_t lo, size_t hi,
                                       uint64_t *sum) {
  struct batch *b = (struct batch *)xmalloc(sizeof *b + (size_t)n * sizeof b->p[0]);
  b->n = n;
  b->tag = tag;
  for (int i = 0; i < n; i++) {
    uint32_t sz = (uint32_t)rnd_range(st, lo, hi);
    b->p[i] = (unsigned char *)xmalloc(sz);
    stamp_put(b->p[i], sz, tag + (uint64_t)i);
    memcpy(b->p[i] + 8, &sz, 4);
    *sum += sz;
  }
  return b;
}

/* Checks and frees b's blocks and b: adds the sizes of the intact blocks to
 * *sum and counts the others in *bad. */
static inline void batch_free(struct batch *b, size_t lo, size_t hi, uint64_t *sum, uint64_t *bad) {
  for (int i = 0; i < b->n; i++) {
    uint32_t sz;
    memcpy(&sz, b->p[i] + 8, 4);
    if (sz < lo || sz > hi || !stamp_check(b->p[i], sz, b->tag + (uint64_t)i))
      (*bad)++;
    else
      *sum += sz;
    free(b->p[i]);
  }
  free(b);
}

#define BQ_CAP 64
struct bqueue {
  struct batch *slot[BQ_CAP];
  int head, len, producers; /* producers: those still putting */
  pthread_mutex_t lock;
  pthread_cond_t notfull, notempty;
};

static inline void bq_init(struct bqueue *q, int producers) {
  memset(q, 0, sizeof *q);
  q->producers = producers;
  CHECK_PT(pthread_mutex_init(&q->lock, NULL));
  CHECK_PT(pthread_cond_init(&q->notfull, NULL));
  CHECK_PT(pthread_cond_init(&q->notempty, NULL));
}

/* Waits while the queue is full. */
static inline void bq_put(struct bqueue *q, struct batch *b) {
  pthread_mutex_lock(&q->lock);
  while (q->len == BQ_CAP) pthread_cond_wait(&q->notfull, &q->lock);
  q->slot[(q->head + q->len++) % BQ_CAP] = b;
  pthread_cond_signal(&q->notempty);
  pthread_mutex_unlock(&q->lock);
}

/* The oldest batch; waits while the queue is empty and a producer is still
 * putting; NULL when it is empty and none is. */
static inline struct batch *bq_get(struct bqueue *q) {
  pthread_mutex_lock(&q->lock);
  while (q->len == 0 && q->producers > 0) pthread_cond_wait(&q->notempty, &q->lock);
  struct batch *b = NULL;
  if (q->len) {
    b = q->slot[q->head];
    q->head = (q->head + 1) % BQ_CAP;
    q->len--;
    pthread_cond_signal(&q->notfull);
  }
  pthread_mutex_unlock(&q->lock);
  return b;
}

/* A producer has put its last batch. */
static inline void bq_producer_done(struct bqueue *q) {
  pthread_mutex_lock(&q->lock);
  q->producers--;
  pthread_cond_broadcast(&q->notempty);
  pthread_mutex_unlock(&q->lock);
}

/* A producer's work: count blocks of lo..hi bytes in batches of up to
 * batch_size, put into q, then bq_producer_done.  A batch's tag is
 * id << 40 | the number of blocks before it.  Returns the sum of the sizes. */
static inline uint64_t bq_produce(struct bqueue *q, long count, int batch_size, uint64_t id, uint64_t *st,
                                  size_t lo, size_t hi) {
  uint64_t sum = 0;
  for (long done = 0; done < count;) {
    int n = (int)(count - done < batch_size ? count - done : batch_size);
    bq_put(q, batch_make(n, id << 40 | (uint64_t)done, st, lo, hi, &sum));
    done += n;
  }
  bq_producer_done(q);
  return sum;
}

/* A consumer's work: batch_free every batch taken out of q until none is
 * left; the sizes and damaged blocks are added to *sum and *bad at the end
 * (so that consumers do not write to shared lines meanwhile). */
static inline void bq_consume(struct bqueue *q, size_t lo, size_t hi, uint64_t *sum, uint64_t *bad) {
  uint64_t s = 0, d = 0;
  struct batch *b;
  while ((b = bq_get(q))) batch_free(b, lo, hi, &s, &d);
  *sum += s;
  *bad += d;
}

#endif /* BENCH_H */
