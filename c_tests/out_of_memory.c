/* out_of_memory: what the allocator does when the kernel has no more memory
 * to give.  Every part runs in a forked child (limits cannot be raised again
 * and must not leak into the next part) that arms alarm() as a watchdog: a
 * deadlock or livelock kills the child with SIGALRM, which the parent reports.
 *
 * (a) RLIMIT_AS = VmSize + 64 MiB (ulimit -v), one thread: a request beyond
 *     the limit fails at once; malloc of mixed sizes (tiny, small, medium,
 *     >= 128 KiB, multi-MiB) until NULL, then of ever smaller sizes until even
 *     malloc(16) fails.  Then, with nothing left: calloc (also n*size
 *     overflow), realloc growing a heap block and an mmap'd block (the old
 *     block must survive intact and stay usable and freeable), reallocarray
 *     (overflow and plain too big), memalign, aligned_alloc, valloc, pvalloc
 *     return NULL with errno ENOMEM; posix_memalign returns ENOMEM and leaves
 *     *memptr alone; a shrinking realloc still works.  A block freed then is
 *     reused at once.  Half the blocks are freed: the others keep their
 *     contents and every API succeeds again; everything is freed, and
 *     allocating until NULL again (rotating malloc, calloc - zeroed -,
 *     memalign, aligned_alloc, posix_memalign, valloc) gets at least half as
 *     far as the first time.
 * (b) RLIMIT_DATA (ulimit -d), three ways.  On Linux >= 4.7 the limit counts
 *     every private writable mapping (VmData), not just the break, and
 *     brk, mmap(PROT_WRITE) and mprotect(PROT_WRITE) all fail with ENOMEM past
 *     it; each part probes what the kernel does and prints it:
 *       b1: limit = VmData: brk and private writable mmap both fail at once;
 *       b2: a mapping blocks the break and limit = VmData + 24 MiB: the main
 *           arena must grow through its mmap fall-back (asserted whenever the
 *           probes show brk failing and mmap working) until the limit;
 *       b3: limit = VmData + 24 MiB: brk grows up to the limit.
 *     In each: blocks allocated before the limit stay intact; allocation
 *     until NULL (all NULLs with ENOMEM); with nothing left, big calloc,
 *     realloc, memalign & co fail cleanly; freed blocks are reused; after
 *     freeing everything, allocation gets at least half as far again.
 * (c) 4 threads (created, and 2 of them attached to their own arena, before
 *     the limit is lowered so stacks and arenas exist) allocate until NULL,
 *     check their blocks, free everything and go again, 3 rounds in lock-step,
 *     under RLIMIT_AS = VmSize + 48 MiB and under RLIMIT_DATA = VmData +
 *     24 MiB: no crash, no deadlock, every NULL with ENOMEM, no block
 *     corrupted (realloc, growing or shrinking, keeps the contents or fails
 *     cleanly), every round allocates something; then the main thread
 *     allocates again.
 * (d) no limit: SIZE_MAX, SIZE_MAX - 16, PTRDIFF_MAX (= SIZE_MAX/2),
 *     PTRDIFF_MAX + 1 and PTRDIFF_MAX + 4096 through every API, calloc/reallocarray n*size overflows
 *     and memalign(2^62, 16): NULL with ENOMEM (posix_memalign: ENOMEM,
 *     *memptr untouched; realloc: old block intact); malloc works afterwards.
 * (e) a thread created before RLIMIT_AS = VmSize + 32 MiB makes its first
 *     calls (no arena, no tcache yet; no new arena can be made) after the
 *     main thread used everything up: NULL with ENOMEM, no crash; once the
 *     main thread frees half its blocks the same calls work, and a block the
 *     thread leaves behind is freed by the main thread after it exits.
 * (f) a thread attached to its own arena before the limit (RLIMIT_AS =
 *     VmSize + 48 MiB, then RLIMIT_DATA = VmData + 16 MiB) runs alone
 *     through (a)'s sequence: allocate until malloc(16) fails, every API
 *     fails cleanly (realloc of blocks of a full thread arena included),
 *     free half, every API works again.
 *
 * Guards against: a NULL without errno (or with the errno of a failed
 * system call other than ENOMEM), a crash or a hang on an out-of-memory path
 * (retrying arenas, the brk -> mmap fall-back, heap chaining, realloc's
 * malloc-copy-free), a failed realloc that frees or damages the old block,
 * posix_memalign writing *memptr on failure, size overflow, a thread that
 * cannot set up its arena or tcache and crashes instead of failing, an
 * allocator that cannot use memory again once it has been freed after an
 * OOM, and calloc returning non-zero memory. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TEST_NAME "out_of_memory"
#define TEST_MAX_FAILURES 30
/* in a child with a limit: no stdio flushing at exit, nothing that allocates */
#define TEST_GIVE_UP() _exit(1)
#include "testlib.h"

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define CHILD_ALARM_S 10 /* watchdog of every child */
#define BIG (4 * MiB)    /* cannot fit in what is left after exhaustion */

/* The part being run (prefix of every message). */
static const char *part = "main";

/* ---------- output without malloc ---------- */

/* printf to stdout through a stack buffer and write(2): no stdio buffer,
 * which would be malloc'ed, and nothing buffered to be duplicated by fork. */
__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...) {
  char buf[512];
  int k = snprintf(buf, sizeof buf, TEST_NAME ": %s: ", part);
  va_list ap;
  va_start(ap, fmt);
  k += vsnprintf(buf + k, sizeof buf - k, fmt, ap);
  va_end(ap);
  if (k > (int)sizeof buf - 2) k = sizeof buf - 2;
  buf[k++] = '\n';
  ssize_t w = write(1, buf, k);
  (void)w;
}

/* ---------- the process ---------- */

static char procbuf[32768];

/* A "Key:  N kB" line of /proc/self/status, in bytes; 0 if missing. */
static size_t status_bytes(const char *key) {
  int fd = open("/proc/self/status", O_RDONLY);
  if (fd < 0) return 0;
  size_t n = 0;
  ssize_t r;
  while (n < sizeof procbuf - 1 && (r = read(fd, procbuf + n, sizeof procbuf - 1 - n)) > 0)
    n += (size_t)r;
  close(fd);
  procbuf[n] = 0;
  char *p = strstr(procbuf, key);
  if (!p) return 0;
  return (size_t)strtoul(p + strlen(key), NULL, 10) * 1024;
}

/* Sets both limits (a lower hard limit already in force is kept). */
static void set_limit(int resource, size_t bytes, const char *name) {
  struct rlimit r;
  if (getrlimit(resource, &r) == 0 && r.rlim_max != RLIM_INFINITY && r.rlim_max < bytes) {
    say("%s is already limited to %zu bytes, below the %zu wanted: kept", name, (size_t)r.rlim_max, bytes);
    bytes = r.rlim_max;
  }
  r.rlim_cur = r.rlim_max = bytes;
  if (setrlimit(resource, &r)) FAIL("%s: setrlimit(%s, %zu) failed: errno %d", part, name, bytes, errno);
}

/* Whether a private writable mapping of `bytes` is refused now (the limit
 * binds mmap: always for RLIMIT_AS; for RLIMIT_DATA since Linux 4.7, unless
 * the kernel was booted with ignore_rlimit_data). */
static int mmap_refused(size_t bytes) {
  void *m = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) return 1;
  munmap(m, bytes);
  return 0;
}

/* Grows the stack by 512 KiB now: once the address space is used up, a stack
 * that needs a new page gets SIGSEGV, whatever the allocator does. */
__attribute__((noinline)) static void touch_stack(void) {
  volatile char pad[512 * 1024];
  for (size_t i = 0; i < sizeof pad; i += 1024) pad[i] = (char)i;
  keep_stores((const void *)pad);
}

/* ---------- pools of patterned blocks ---------- */

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

struct pool {
  struct blk *b;
  int n, cap;
  size_t bytes;   /* sum of the live blocks' sizes */
  long nulls;     /* failed requests */
  int exhausted;  /* the last pool_exhaust ended with its smallest size failing */
  int rotate;     /* pool_add uses every allocation function in turn */
  uint64_t tag;   /* distinguishes the seeds of different pools */
  long made;      /* blocks ever made (seeds, rotation) */
};

enum how { H_MALLOC, H_CALLOC, H_MEMALIGN, H_ALIGNED_ALLOC, H_POSIX_MEMALIGN, H_VALLOC, H_COUNT };
static const char *how_name[] = {"malloc", "calloc", "memalign(64)", "aligned_alloc(256)",
                                 "posix_memalign(128)", "valloc"};
static const size_t how_align[] = {16, 16, 64, 256, 128, 4096};

/* One request of n bytes into the pool: 1 if it succeeded, 0 if it returned
 * NULL (errno checked), -1 if the pool is full. */
static int pool_add(struct pool *pl, size_t n) {
  if (pl->n >= pl->cap) return -1;
  enum how h = pl->rotate ? (enum how)(pl->made % H_COUNT) : H_MALLOC;
  unsigned char *p = NULL;
  int err = 0;
  errno = 0;
  switch (h) {
  case H_MALLOC: p = malloc(n); break;
  case H_CALLOC: p = calloc(1, n); break;
  case H_MEMALIGN: p = memalign(64, n); break;
  case H_ALIGNED_ALLOC: p = aligned_alloc(256, n); break;
  case H_POSIX_MEMALIGN: {
    void *q = (void *)&pool_add;
    err = posix_memalign(&q, 128, n);
    if (err == 0) {
      p = q;
    } else if (q != (void *)&pool_add) {
      FAIL("%s: posix_memalign(128, %zu) returned %d and changed *memptr to %p", part, n, err, q);
    }
    break;
  }
  case H_VALLOC: p = valloc(n); break;
  default: break;
  }
  pl->made++;
  if (!p) {
    pl->nulls++;
    if (h == H_POSIX_MEMALIGN) {
      if (err != ENOMEM) FAIL("%s: posix_memalign(128, %zu) returned %d, expected ENOMEM (%d)", part, n, err, ENOMEM);
    } else if (errno != ENOMEM) {
      FAIL("%s: %s(%zu) returned NULL with errno %d, expected ENOMEM (%d)", part, how_name[h], n, errno, ENOMEM);
    }
    return 0;
  }
  if ((uintptr_t)p % how_align[h])
    FAIL("%s: %s(%zu) returned %p, misaligned", part, how_name[h], n, (void *)p);
  if (h == H_CALLOC) {
    size_t bad = first_byte_not(p, n, 0);
    if (bad != ALL_GOOD) FAIL("%s: calloc(1, %zu) byte %zu is 0x%02x, not 0", part, n, bad, p[bad]);
  }
  uint64_t seed = pl->tag ^ ((uint64_t)pl->made * 0x9E3779B97F4A7C15ull);
  pat_fill(p, seed, 0, n);
  pl->b[pl->n++] = (struct blk){p, n, seed};
  pl->bytes += n;
  return 1;
}

/* Mixed sizes (an odd count, so that freeing every other block frees some of
 * every size), then ever smaller ones. */
static const size_t mixed[] = {24, 1000, 5000, 40000, 200000, 3 * MiB, 100, 70000, 150000, 1500000, 8 * MiB};
static const size_t descend[] = {MiB, 256 * KiB, 64 * KiB, 8 * KiB, 1000, 100, 16};
#define NMIXED ((int)(sizeof mixed / sizeof mixed[0]))
#define NDESCEND ((int)(sizeof descend / sizeof descend[0]))

/* Allocates mixed sizes (starting at mixed[start]) until one returns NULL,
 * then each size of `descend` until it returns NULL; stops early when the
 * pool is full or holds max_bytes.  pl->exhausted tells whether malloc(16)
 * (or its rotated equivalent) failed in the end. */
static void pool_exhaust(struct pool *pl, int start, size_t max_bytes) {
  pl->exhausted = 0;
  for (int i = start;; i++) {
    if (pl->bytes >= max_bytes) return;
    int r = pool_add(pl, mixed[i % NMIXED]);
    if (r < 0) return;
    if (r == 0) break;
  }
  for (int d = 0; d < NDESCEND; d++) {
    for (;;) {
      if (pl->bytes >= max_bytes) return;
      int r = pool_add(pl, descend[d]);
      if (r < 0) return;
      if (r == 0) break;
    }
  }
  pl->exhausted = 1;
}

/* Every block still holds its pattern; 0 if not. */
static int pool_verify(struct pool *pl, const char *when) {
  int ok = 1;
  for (int i = 0; i < pl->n; i++) {
    struct blk *b = &pl->b[i];
    size_t bad = pat_check(b->p, b->seed, b->n);
    if (bad != ALL_GOOD) {
      FAIL("%s: %s: block %d (%zu bytes at %p) byte %zu is 0x%02x, expected 0x%02x", part, when, i, b->n,
           (void *)b->p, bad, b->p[bad], pat_byte(b->seed, bad));
      ok = 0;
    }
  }
  return ok;
}

/* Frees the blocks whose index has parity `parity` (2: all of them). */
static void pool_free(struct pool *pl, int parity) {
  int k = 0;
  pl->bytes = 0; /* recounted: realloc_may_fail may have resized blocks */
  for (int i = 0; i < pl->n; i++) {
    if (parity == 2 || i % 2 == parity) {
      free(pl->b[i].p);
    } else {
      pl->bytes += pl->b[i].n;
      pl->b[k++] = pl->b[i];
    }
  }
  pl->n = k;
}

/* The first block of the pool of exactly n bytes, else the first of at least
 * n bytes, else NULL. */
static struct blk *pool_find(struct pool *pl, size_t n) {
  for (int i = 0; i < pl->n; i++)
    if (pl->b[i].n == n) return &pl->b[i];
  for (int i = 0; i < pl->n; i++)
    if (pl->b[i].n >= n) return &pl->b[i];
  return NULL;
}

/* ---------- single checks ---------- */

/* A request that must fail: NULL with errno ENOMEM. */
#define MUST_FAIL(call)                                                                            \
  do {                                                                                             \
    errno = 0;                                                                                     \
    void *r_ = (call);                                                                             \
    if (r_) {                                                                                      \
      FAIL("%s: %s returned %p, expected NULL", part, #call, r_);                                  \
      free(r_);                                                                                    \
    } else if (errno != ENOMEM) {                                                                  \
      FAIL("%s: %s returned NULL with errno %d, expected ENOMEM (%d)", part, #call, errno, ENOMEM); \
    }                                                                                              \
  } while (0)

/* A request that must succeed (memory is available); the block is checked
 * for alignment, written and freed. */
#define MUST_SUCCEED(call, n, align)                                                               \
  do {                                                                                             \
    errno = 0;                                                                                     \
    unsigned char *r_ = (call);                                                                    \
    if (!r_) {                                                                                     \
      FAIL("%s: %s returned NULL (errno %d) with memory available", part, #call, errno);           \
    } else {                                                                                       \
      if ((uintptr_t)r_ % (align)) FAIL("%s: %s returned %p, misaligned", part, #call, (void *)r_); \
      memset(r_, 0xa5, (n));                                                                       \
      keep_stores(r_);                                                                             \
      free(r_);                                                                                    \
    }                                                                                              \
  } while (0)

/* posix_memalign that must fail: ENOMEM, *memptr untouched. */
static void posix_memalign_must_fail(size_t align, size_t n) {
  void *sentinel = (void *)&posix_memalign_must_fail;
  void *q = sentinel;
  int r = posix_memalign(&q, opq(align), opq(n));
  if (r != ENOMEM) FAIL("%s: posix_memalign(%zu, %zu) returned %d, expected ENOMEM (%d)", part, align, n, r, ENOMEM);
  if (q != sentinel) {
    FAIL("%s: failed posix_memalign(%zu, %zu) changed *memptr to %p", part, align, n, q);
    if (r == 0) free(q);
  }
}

/* realloc (or reallocarray(p, n, 1) / (p, nmemb, size)) of block b that must
 * fail: NULL, ENOMEM, b intact; b is then rewritten (still usable). */
static void realloc_must_fail(struct blk *b, size_t nmemb, size_t size, int array, const char *what) {
  errno = 0;
  size_t total = nmemb * size;
  unsigned char *q = array ? reallocarray(b->p, opq(nmemb), opq(size)) : realloc(b->p, opq(total));
  if (q) {
    FAIL("%s: %s of a %zu-byte block returned %p, expected NULL", part, what, b->n, (void *)q);
    size_t bad = pat_check(q, b->seed, b->n);
    if (bad != ALL_GOOD) FAIL("%s: ... and lost the contents (byte %zu)", part, bad);
    b->p = q;
    return;
  }
  if (errno != ENOMEM) FAIL("%s: %s returned NULL with errno %d, expected ENOMEM (%d)", part, what, errno, ENOMEM);
  size_t bad = pat_check(b->p, b->seed, b->n);
  if (bad != ALL_GOOD)
    FAIL("%s: after a failed %s, byte %zu of the old %zu-byte block is 0x%02x, expected 0x%02x", part, what,
         bad, b->n, b->p[bad], pat_byte(b->seed, bad));
  b->seed = b->seed * 31 + 7;
  pat_fill(b->p, b->seed, 0, b->n);
}

/* realloc of block b to n bytes that may succeed (contents kept, b updated)
 * or fail (NULL, ENOMEM, b intact). 1 if it succeeded. */
static int realloc_may_fail(struct blk *b, size_t n, const char *what) {
  errno = 0;
  unsigned char *q = realloc(b->p, opq(n));
  if (q) {
    size_t keep = b->n < n ? b->n : n;
    size_t bad = pat_check(q, b->seed, keep);
    if (bad != ALL_GOOD)
      FAIL("%s: %s (%zu -> %zu bytes) lost the contents: byte %zu is 0x%02x, expected 0x%02x", part, what, b->n,
           n, bad, q[bad], pat_byte(b->seed, bad));
    if ((uintptr_t)q % 16) FAIL("%s: %s returned %p, misaligned", part, what, (void *)q);
    b->p = q;
    b->n = n;
    pat_fill(q, b->seed, 0, n);
    return 1;
  }
  if (errno != ENOMEM) FAIL("%s: %s returned NULL with errno %d, expected ENOMEM (%d)", part, what, errno, ENOMEM);
  size_t bad = pat_check(b->p, b->seed, b->n);
  if (bad != ALL_GOOD)
    FAIL("%s: after a failed %s, byte %zu of the old %zu-byte block is 0x%02x, expected 0x%02x", part, what,
         bad, b->n, b->p[bad], pat_byte(b->seed, bad));
  return 0;
}

/* With nothing left (the pool exhausted: not even 16 bytes), every API fails
 * cleanly for BIG requests, and overflowing ones. Needs heap and mmap'd
 * blocks in the pool. */
static void apis_fail_when_exhausted(struct pool *pl) {
  MUST_FAIL(malloc(opq(BIG)));
  MUST_FAIL(calloc(opq(1), opq(BIG)));
  MUST_FAIL(calloc(opq(BIG / 1024), opq(1024)));
  MUST_FAIL(calloc(opq(SIZE_MAX / 2), opq(3)));                   /* n*size overflows */
  MUST_FAIL(calloc(opq((size_t)1 << 33), opq((size_t)1 << 31))); /* n*size overflows */
  MUST_FAIL(memalign(opq(64), opq(BIG)));
  MUST_FAIL(memalign(opq(4096), opq(MiB + BIG)));
  MUST_FAIL(aligned_alloc(opq(256), opq(BIG)));
  MUST_FAIL(valloc(opq(BIG)));
  MUST_FAIL(pvalloc(opq(BIG + 1)));
  MUST_FAIL(reallocarray(NULL, opq(SIZE_MAX / 2), opq(3)));
  MUST_FAIL(reallocarray(NULL, opq(BIG / 4096), opq(4096)));
  posix_memalign_must_fail(128, BIG);
  posix_memalign_must_fail(4096, BIG);

  struct blk *small = pool_find(pl, 1000), *medium = pool_find(pl, 40000), *mapped = pool_find(pl, 200000),
             *huge = pool_find(pl, 3 * MiB);
  struct blk *all[] = {small, medium, mapped, huge};
  const char *names[] = {"1000-byte", "40000-byte", "200000-byte (mmap'd)", "multi-MiB"};
  for (int i = 0; i < 4; i++) {
    struct blk *b = all[i];
    if (!b) {
      SKIP("realloc-of-pool-blocks", "no %s block in the pool: its realloc checks not made", names[i]);
      continue;
    }
    size_t grow = b->n + BIG;
    realloc_must_fail(b, grow, 1, 0, "realloc (growing by 4 MiB)");
    realloc_must_fail(b, 2 * grow, 1, 0, "realloc (growing by 8+ MiB)");
    realloc_must_fail(b, SIZE_MAX / 2, 3, 1, "reallocarray (n*size overflow)");
    realloc_must_fail(b, grow / 16, 16, 1, "reallocarray (growing by 4 MiB)");
  }
  /* shrinking needs no memory: it must work even now */
  for (int i = 0; i < 4; i++) {
    struct blk *b = all[i];
    if (b && !realloc_may_fail(b, b->n / 2 + 1, "realloc (shrinking to half, nothing left)"))
      FAIL("%s: shrinking realloc of a %s block failed with nothing left", part, names[i]);
  }
  if (huge && !realloc_may_fail(huge, 100, "realloc (shrinking a multi-MiB block to 100 bytes, nothing left)"))
    FAIL("%s: shrinking realloc of a multi-MiB block to 100 bytes failed with nothing left", part);
}

/* A few requests of each kind that must succeed (room was made). */
static void apis_succeed(struct pool *pl) {
  MUST_SUCCEED(malloc(opq(16)), 16, 16);
  MUST_SUCCEED(malloc(opq(1000)), 1000, 16);
  MUST_SUCCEED(malloc(opq(64 * KiB)), 64 * KiB, 16);
  MUST_SUCCEED(malloc(opq(300000)), 300000, 16);
  MUST_SUCCEED(malloc(opq(3 * MiB)), 3 * MiB, 16);
  MUST_SUCCEED(memalign(opq(4096), opq(100000)), 100000, 4096);
  MUST_SUCCEED(aligned_alloc(opq(64), opq(MiB)), MiB, 64);
  MUST_SUCCEED(valloc(opq(5000)), 5000, 4096);
  MUST_SUCCEED(pvalloc(opq(5000)), 8192, 4096);
  MUST_SUCCEED(reallocarray(NULL, opq(100), opq(1000)), 100000, 16);
  {
    unsigned char *c = calloc(opq(1), opq(200000));
    if (!c) {
      FAIL("%s: calloc(1, 200000) returned NULL (errno %d) with memory available", part, errno);
    } else {
      size_t bad = first_byte_not(c, 200000, 0);
      if (bad != ALL_GOOD) FAIL("%s: calloc(1, 200000) byte %zu is 0x%02x, not 0", part, bad, c[bad]);
      free(c);
    }
  }
  {
    void *q = NULL;
    int r = posix_memalign(&q, opq(256), opq(300000));
    if (r || !q || (uintptr_t)q % 256)
      FAIL("%s: posix_memalign(256, 300000) returned %d, %p with memory available", part, r, q);
    if (!r) free(q);
  }
  struct blk *b = pool_find(pl, 1000);
  if (b && !realloc_may_fail(b, 50000, "realloc (1000 -> 50000 bytes, memory available)"))
    FAIL("%s: realloc growing a block failed with memory available", part);
  b = pool_find(pl, 100);
  if (b && !realloc_may_fail(b, 300000, "realloc (100 -> 300000 bytes, memory available)"))
    FAIL("%s: realloc growing a block failed with memory available", part);
}

/* ---------- (a) RLIMIT_AS ---------- */

#define POOL_CAP 8192
static struct blk pool_blocks[POOL_CAP];

static void part_as(void) {
  struct pool pl = {.b = pool_blocks, .cap = POOL_CAP, .tag = 0xa0a0a0a0ull};
  void *w = malloc(100); /* the arena and the tcache exist before the limit */
  free(w);
  size_t vm = status_bytes("VmSize:");
  if (!vm) FAIL("%s: cannot read VmSize", part);
  /* Less than a thread heap's 64 MiB reservation: calloc's retry in
   * another arena (glibc's too) cannot make one, even where the kernel
   * happens to place a plain 64 MiB mapping 64 MiB-aligned (with 64 MiB of
   * slack that happened about once in 20 runs here: a kernel that aligns
   * large mappings to 2 MiB makes it 1 in 32). */
  size_t slack = 48 * MiB;
  set_limit(RLIMIT_AS, vm + slack, "RLIMIT_AS");

  /* a request beyond the limit fails at once, and leaves the rest working */
  MUST_FAIL(malloc(opq(256 * MiB)));
  MUST_FAIL(calloc(opq(256), opq(MiB)));
  MUST_FAIL(memalign(opq(4096), opq(256 * MiB)));

  pool_exhaust(&pl, 0, SIZE_MAX);
  size_t first = pl.bytes;
  int first_n = pl.n;
  if (!pl.exhausted) FAIL("%s: the pool filled up (%d blocks, %zu bytes) without a NULL", part, pl.n, pl.bytes);
  if (first < slack / 2 || first > slack + 8 * MiB)
    FAIL("%s: got %zu bytes under a limit %zu bytes above the start", part, first, slack);
  pool_verify(&pl, "after allocating until NULL");

  apis_fail_when_exhausted(&pl);
  pool_verify(&pl, "after the failing calls");

  /* a freed block is usable again at once */
  for (size_t want = 1000; want; want = want == 1000 ? 40000 : 0) {
    struct blk *b = pool_find(&pl, want);
    if (!b) continue;
    size_t n = b->n;
    free(b->p);
    errno = 0;
    b->p = malloc(opq(n));
    if (!b->p) {
      FAIL("%s: malloc(%zu) right after free of a %zu-byte block returned NULL (errno %d)", part, n, n, errno);
      pl.bytes -= b->n;
      *b = pl.b[--pl.n];
    } else {
      pat_fill(b->p, b->seed, 0, b->n);
    }
  }

  /* free half: the others are intact and everything works again */
  pool_free(&pl, 1);
  pool_verify(&pl, "after freeing half of the blocks");
  apis_succeed(&pl);
  pool_verify(&pl, "after the recovery calls");

  /* free everything: allocation (every API in turn) gets as far again */
  pool_free(&pl, 2);
  pl.rotate = 1;
  pool_exhaust(&pl, 0, SIZE_MAX);
  size_t second = pl.bytes;
  int second_n = pl.n;
  if (!pl.nulls) FAIL("%s: second round never returned NULL", part);
  if (second < first / 2)
    FAIL("%s: after freeing everything, only %zu bytes could be allocated again (first time %zu)", part, second,
         first);
  pool_verify(&pl, "after the second allocation round");
  pool_free(&pl, 2);
  MUST_SUCCEED(malloc(opq(MiB)), MiB, 16);
  say("RLIMIT_AS = VmSize + %zu MiB: %zu bytes in %d blocks before malloc(16) failed, %zu bytes in %d blocks "
      "the second time (all allocation functions), %ld NULLs, all ENOMEM",
      slack / MiB, first, first_n, second, second_n, pl.nulls);
}

/* ---------- (b) RLIMIT_DATA ---------- */

static int data_variant; /* 1, 2, 3: b1, b2, b3 */

static void part_data(void) {
  struct pool pl = {.b = pool_blocks, .cap = POOL_CAP, .tag = 0xb0b0b0b0ull * (uint64_t)data_variant};
  /* blocks made before the limit: 40 small, two medium, two mmap'd */
  struct pool held = {.b = pool_blocks + POOL_CAP / 2, .cap = 64, .tag = 0x4e4e4e4eull};
  pl.cap = POOL_CAP / 2;
  for (int i = 0; i < 40; i++) pool_add(&held, 1000);
  pool_add(&held, 64 * KiB);
  pool_add(&held, 40000);
  pool_add(&held, 300000);
  pool_add(&held, 3 * MiB);
  if (held.n != 44) FAIL("%s: could not allocate the held blocks before the limit", part);

  uintptr_t wall_at = 0, brk_start = (uintptr_t)sbrk(0);
  long page = sysconf(_SC_PAGESIZE);
  if (data_variant == 2) {
    /* block the break, as brk_blocked does */
    wall_at = (brk_start + page - 1) & ~(uintptr_t)(page - 1);
    void *wall = mmap((void *)wall_at, 16 * page, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (wall == MAP_FAILED || (uintptr_t)wall != wall_at) {
      FAIL("%s: could not map a wall at the break %#lx (errno %d)", part, (unsigned long)wall_at, errno);
      return;
    }
  }
  size_t data = status_bytes("VmData:");
  if (!data) FAIL("%s: cannot read VmData", part);
  size_t extra = data_variant == 1 ? 0 : 24 * MiB;
  set_limit(RLIMIT_DATA, data + extra, "RLIMIT_DATA");

  /* what the kernel does now */
  int brk_fails = sbrk(page) == (void *)-1;
  if (!brk_fails) sbrk(-page);
  void *m = mmap(NULL, MiB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  int mmap_works = m != MAP_FAILED;
  if (mmap_works) munmap(m, MiB);
  int binds = mmap_refused(extra + 2 * MiB);
  say("RLIMIT_DATA = VmData (%zu KiB) + %zu MiB%s: sbrk(+1 page) %s, mmap(1 MiB, PROT_WRITE) %s, "
      "mmap(%zu MiB, PROT_WRITE) %s",
      data / KiB, extra / MiB, wall_at ? ", a mapping blocking the break" : "", brk_fails ? "fails" : "works",
      mmap_works ? "works" : "fails", extra / MiB + 2, binds ? "fails" : "works (the limit does not bind mmap)");

  if (brk_fails && mmap_works) {
    /* heap-sized requests must be served through the mmap fall-back */
    int outside = 0;
    for (int i = 0; i < 20; i++) {
      int r = pool_add(&pl, 100000);
      if (r != 1) {
        FAIL("%s: malloc(100000) #%d failed with brk failing but mmap working: no mmap fall-back", part, i);
        break;
      }
      uintptr_t a = (uintptr_t)pl.b[pl.n - 1].p;
      if (a < brk_start || a >= (uintptr_t)sbrk(0) + 16 * page) outside++;
    }
    if (!outside) FAIL("%s: no block came from outside the brk heap", part);
  }

  pool_exhaust(&pl, 0, 256 * MiB);
  size_t first = pl.bytes;
  int first_n = pl.n, first_exhausted = pl.exhausted;
  if (!pl.exhausted && binds)
    FAIL("%s: %zu bytes in %d blocks without a NULL under the limit", part, pl.bytes, pl.n);
  if (!binds) SKIP("rlimit-data-null-at-the-limit", "%s: RLIMIT_DATA does not bind mmap on this kernel", part);
  pool_verify(&held, "held blocks, after allocating until NULL");
  pool_verify(&pl, "after allocating until NULL");

  if (pl.exhausted) {
    /* the held blocks give apis_fail_when_exhausted its heap/mmap'd blocks */
    apis_fail_when_exhausted(&held);
  } else {
    /* everything may or may not work: it must just be consistent */
    struct blk *b = pool_find(&held, 1000);
    if (b) realloc_may_fail(b, BIG, "realloc (1000 bytes -> 4 MiB)");
    b = pool_find(&held, 3 * MiB);
    if (b) realloc_may_fail(b, b->n + BIG, "realloc (3 MiB -> 7 MiB)");
  }
  pool_verify(&held, "held blocks, after the failing calls");

  /* freed held blocks are reused at once */
  int small_freed = 0;
  for (int i = 0; i < held.n; i++) {
    struct blk *b = &held.b[i];
    if (b->n != 1000 || small_freed == 20) continue;
    free(b->p);
    errno = 0;
    b->p = malloc(opq(1000));
    if (!b->p) {
      FAIL("%s: malloc(1000) right after free of a 1000-byte block returned NULL (errno %d)", part, errno);
      held.bytes -= b->n;
      *b = held.b[--held.n];
      i--;
      continue;
    }
    pat_fill(b->p, b->seed, 0, b->n);
    small_freed++;
  }
  struct blk *b = pool_find(&held, 64 * KiB);
  if (b) {
    size_t n = b->n;
    free(b->p);
    errno = 0;
    b->p = malloc(opq(n));
    if (!b->p) {
      FAIL("%s: malloc(%zu) right after free of a block that size returned NULL (errno %d)", part, n, errno);
      held.bytes -= b->n;
      *b = held.b[--held.n];
    } else {
      pat_fill(b->p, b->seed, 0, b->n);
    }
  }
  pool_verify(&held, "held blocks, after free and malloc");

  /* everything freed: allocation goes as far again */
  pool_free(&pl, 1);
  pool_verify(&pl, "after freeing half of the blocks");
  pool_free(&pl, 2);
  pl.rotate = 1;
  pool_exhaust(&pl, 0, 256 * MiB);
  size_t second = pl.bytes;
  int second_n = pl.n;
  if (second < first / 2)
    FAIL("%s: after freeing everything, only %zu bytes could be allocated again (first time %zu)", part, second,
         first);
  pool_verify(&pl, "after the second allocation round");
  pool_verify(&held, "held blocks, at the end");
  pool_free(&pl, 2);
  pool_free(&held, 2);
  say("%zu bytes in %d blocks until malloc(16) failed (%s), %zu bytes in %d blocks the second time (all "
      "allocation functions), %ld NULLs, all ENOMEM",
      first, first_n, first_exhausted ? "exhausted" : "NOT exhausted", second, second_n, pl.nulls);
}

/* ---------- (c) threads ---------- */

#define NT 4
#define ROUNDS 3
#define TPOOL_CAP 4096
static struct blk tblocks[NT][TPOOL_CAP];
static long round_allocs[ROUNDS][NT];
static long thread_nulls[NT];
static pthread_barrier_t start_barrier, go_barrier, round_barrier;
static int thread_resource;
static size_t thread_max_bytes = 512 * MiB; /* lowered when the limit does not bind */

static void *oom_thread(void *arg) {
  int id = (int)(intptr_t)arg;
  if (id < NT / 2) free(malloc(opq(64))); /* attach to an arena of its own now */
  pthread_barrier_wait(&start_barrier);
  pthread_barrier_wait(&go_barrier); /* the limit is now in force */
  struct pool pl = {.b = tblocks[id], .cap = TPOOL_CAP, .tag = 0xc0c0ull << (8 * id), .rotate = 1};
  for (int r = 0; r < ROUNDS; r++) {
    pool_exhaust(&pl, id * 3, thread_max_bytes);
    round_allocs[r][id] = pl.n;
    pool_verify(&pl, "thread's blocks after allocating until NULL");
    /* other threads may be freeing by now: realloc may go either way, but
     * must keep the contents, or fail cleanly */
    for (int i = 0; i < pl.n && i < 24; i++) {
      struct blk *b = &pl.b[(i * 7919) % pl.n];
      size_t n = i % 3 == 0 ? b->n / 3 + 1 : i % 3 == 1 ? b->n + 100000 : 2 * b->n + 2 * MiB;
      realloc_may_fail(b, n, "realloc in a thread under the limit");
    }
    pool_verify(&pl, "thread's blocks after realloc");
    pool_free(&pl, 2);
    pthread_barrier_wait(&round_barrier);
  }
  thread_nulls[id] = pl.nulls;
  return NULL;
}

static void part_threads(void) {
  pthread_t t[NT];
  int started = 0;
  void *w = malloc(100);
  free(w);
  pthread_barrier_init(&start_barrier, NULL, NT + 1);
  pthread_barrier_init(&go_barrier, NULL, NT + 1);
  pthread_barrier_init(&round_barrier, NULL, NT);
  for (int i = 0; i < NT; i++) {
    int e = pthread_create(&t[i], NULL, oom_thread, (void *)(intptr_t)i);
    if (e) {
      FAIL("%s: pthread_create #%d failed: %d", part, i, e);
      _exit(1); /* the barriers count on every thread */
    }
    started++;
  }
  pthread_barrier_wait(&start_barrier);
  size_t slack;
  if (thread_resource == RLIMIT_AS) {
    slack = 48 * MiB;
    set_limit(RLIMIT_AS, status_bytes("VmSize:") + slack, "RLIMIT_AS");
  } else {
    slack = 24 * MiB;
    set_limit(RLIMIT_DATA, status_bytes("VmData:") + slack, "RLIMIT_DATA");
  }
  int binds = mmap_refused(slack + 2 * MiB);
  if (!binds) {
    SKIP("threads-run-out", "the limit does not bind mmap: no thread will run out");
    thread_max_bytes = 32 * MiB;
  }
  pthread_barrier_wait(&go_barrier);
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);

  long nulls = 0;
  for (int i = 0; i < NT; i++) nulls += thread_nulls[i];
  for (int r = 0; r < ROUNDS; r++) {
    long total = 0;
    for (int i = 0; i < NT; i++) total += round_allocs[r][i];
    if (!total) FAIL("%s: round %d: no thread could allocate anything", part, r);
  }
  if (!nulls && binds) FAIL("%s: no thread ever got NULL", part);
  /* everything was freed: the main thread allocates again */
  MUST_SUCCEED(malloc(opq(100)), 100, 16);
  MUST_SUCCEED(malloc(opq(100000)), 100000, 16);
  MUST_SUCCEED(calloc(opq(1000), opq(50)), 50000, 16);
  say("%d threads, %s + %zu MiB, %d rounds: blocks per round and thread "
      "%ld/%ld/%ld/%ld, %ld/%ld/%ld/%ld, %ld/%ld/%ld/%ld; %ld NULLs, all ENOMEM",
      NT, thread_resource == RLIMIT_AS ? "RLIMIT_AS = VmSize" : "RLIMIT_DATA = VmData", slack / MiB, ROUNDS,
      round_allocs[0][0], round_allocs[0][1], round_allocs[0][2], round_allocs[0][3], round_allocs[1][0],
      round_allocs[1][1], round_allocs[1][2], round_allocs[1][3], round_allocs[2][0], round_allocs[2][1],
      round_allocs[2][2], round_allocs[2][3], nulls);
}

/* ---------- (e) a thread's first calls with nothing left ---------- */

static pthread_barrier_t late_barrier;

/* A request that may fail (NULL with ENOMEM) or succeed (written, freed). */
#define MAY_FAIL(call, n)                                                                          \
  do {                                                                                             \
    errno = 0;                                                                                     \
    unsigned char *r_ = (call);                                                                    \
    if (r_) {                                                                                      \
      memset(r_, 0x3c, (n));                                                                       \
      keep_stores(r_);                                                                             \
      free(r_);                                                                                    \
    } else if (errno != ENOMEM) {                                                                  \
      FAIL("%s: %s returned NULL with errno %d, expected ENOMEM (%d)", part, #call, errno, ENOMEM); \
    }                                                                                              \
  } while (0)

static void *late_thread(void *arg) {
  (void)arg;
  pthread_barrier_wait(&late_barrier); /* the main thread has used everything up */
  /* the thread's first calls: it has no arena and no tcache yet, and no
   * new arena can be made */
  MAY_FAIL(malloc(opq(16)), 16);
  MAY_FAIL(malloc(opq(1000)), 1000);
  MAY_FAIL(calloc(opq(1), opq(100)), 100);
  MAY_FAIL(memalign(opq(64), opq(100)), 100);
  MAY_FAIL(malloc(opq(40000)), 40000);
  MUST_FAIL(malloc(opq(BIG)));
  MUST_FAIL(calloc(opq(1), opq(BIG)));
  MUST_FAIL(realloc(NULL, opq(BIG)));
  posix_memalign_must_fail(64, BIG);
  pthread_barrier_wait(&late_barrier);
  pthread_barrier_wait(&late_barrier); /* the main thread has freed half */
  MUST_SUCCEED(malloc(opq(16)), 16, 16);
  MUST_SUCCEED(malloc(opq(1000)), 1000, 16);
  MUST_SUCCEED(calloc(opq(1), opq(100)), 100, 16);
  MUST_SUCCEED(memalign(opq(64), opq(100)), 100, 64);
  MUST_SUCCEED(malloc(opq(40000)), 40000, 16);
  MUST_SUCCEED(malloc(opq(300000)), 300000, 16);
  /* a block that outlives the thread, freed by the main thread */
  unsigned char *keep = malloc(opq(5000));
  if (keep) pat_fill(keep, 0x5000, 0, 5000);
  else FAIL("%s: malloc(5000) failed with memory available (errno %d)", part, errno);
  return keep;
}

static void part_late_thread(void) {
  struct pool pl = {.b = pool_blocks, .cap = POOL_CAP, .tag = 0xe0e0e0e0ull};
  void *w = malloc(100);
  free(w);
  pthread_barrier_init(&late_barrier, NULL, 2);
  pthread_t t;
  int e = pthread_create(&t, NULL, late_thread, NULL);
  if (e) {
    FAIL("%s: pthread_create failed: %d", part, e);
    return;
  }
  size_t slack = 32 * MiB;
  set_limit(RLIMIT_AS, status_bytes("VmSize:") + slack, "RLIMIT_AS");
  pool_exhaust(&pl, 0, SIZE_MAX);
  if (!pl.exhausted) FAIL("%s: the pool filled up (%d blocks, %zu bytes) without a NULL", part, pl.n, pl.bytes);
  size_t first = pl.bytes;
  pthread_barrier_wait(&late_barrier); /* the thread's first calls */
  pthread_barrier_wait(&late_barrier);
  pool_free(&pl, 1);
  pool_verify(&pl, "after the thread's failing calls and freeing half");
  pthread_barrier_wait(&late_barrier); /* the thread's calls, which must work */
  void *ret = NULL;
  pthread_join(t, &ret);
  if (ret) {
    size_t bad = pat_check(ret, 0x5000, 5000);
    if (bad != ALL_GOOD) FAIL("%s: the exited thread's block changed at byte %zu", part, bad);
    free(ret);
  }
  pool_verify(&pl, "after the thread exited");
  pool_free(&pl, 2);
  MUST_SUCCEED(malloc(opq(MiB)), MiB, 16);
  say("RLIMIT_AS = VmSize + %zu MiB: %zu bytes until malloc(16) failed; a new thread's first calls then failed "
      "cleanly, and worked once memory was freed",
      slack / MiB, first);
}

/* ---------- (f) a thread with its own arena, alone, until nothing is left ---------- */

static pthread_barrier_t lone_barrier;
static int lone_resource;

static void *lone_thread(void *arg) {
  struct pool *pl = arg;
  free(malloc(opq(64)));                /* its own arena, made before the limit */
  pthread_barrier_wait(&lone_barrier); /* the main thread sets the limit */
  pthread_barrier_wait(&lone_barrier);
  pool_exhaust(pl, 0, SIZE_MAX);
  if (!pl->exhausted) FAIL("%s: the pool filled up (%d blocks, %zu bytes) without a NULL", part, pl->n, pl->bytes);
  size_t first = pl->bytes;
  pool_verify(pl, "after allocating until NULL");
  apis_fail_when_exhausted(pl); /* realloc of blocks of a thread arena too */
  pool_verify(pl, "after the failing calls");
  pool_free(pl, 1);
  pool_verify(pl, "after freeing half of the blocks");
  apis_succeed(pl);
  pool_verify(pl, "after the recovery calls");
  pool_free(pl, 2);
  pl->bytes = first;
  return NULL;
}

static void part_lone_thread(void) {
  struct pool pl = {.b = pool_blocks, .cap = POOL_CAP, .tag = 0xf0f0f0f0ull};
  pthread_barrier_init(&lone_barrier, NULL, 2);
  pthread_t t;
  int e = pthread_create(&t, NULL, lone_thread, &pl);
  if (e) {
    FAIL("%s: pthread_create failed: %d", part, e);
    return;
  }
  pthread_barrier_wait(&lone_barrier);
  size_t slack;
  if (lone_resource == RLIMIT_AS) {
    slack = 48 * MiB;
    set_limit(RLIMIT_AS, status_bytes("VmSize:") + slack, "RLIMIT_AS");
  } else {
    slack = 16 * MiB;
    set_limit(RLIMIT_DATA, status_bytes("VmData:") + slack, "RLIMIT_DATA");
    if (!mmap_refused(slack + 2 * MiB)) {
      SKIP("rlimit-data-thread-arena", "RLIMIT_DATA does not bind mmap on this kernel");
      _exit(0); /* the thread waits at the barrier */
    }
  }
  pthread_barrier_wait(&lone_barrier);
  pthread_join(t, NULL);
  MUST_SUCCEED(malloc(opq(MiB)), MiB, 16);
  say("%s + %zu MiB: the thread got %zu bytes before malloc(16) failed, then every call failed cleanly, and "
      "worked again after freeing half",
      lone_resource == RLIMIT_AS ? "RLIMIT_AS = VmSize" : "RLIMIT_DATA = VmData", slack / MiB, pl.bytes);
}

/* ---------- (d) huge requests, no limit ---------- */

static void part_huge(void) {
  static const size_t huge[] = {SIZE_MAX, SIZE_MAX - 16, SIZE_MAX / 2 /* PTRDIFF_MAX */,
                                (size_t)PTRDIFF_MAX + 1, SIZE_MAX / 2 + 4096};
  struct blk small = {malloc(1000), 1000, 0x1111}, mapped = {malloc(MiB), MiB, 0x2222};
  if (!small.p || !mapped.p) {
    FAIL("%s: malloc(1000) or malloc(1 MiB) failed with no limit", part);
    return;
  }
  pat_fill(small.p, small.seed, 0, small.n);
  pat_fill(mapped.p, mapped.seed, 0, mapped.n);
  for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
    size_t n = opq(huge[i]);
    MUST_FAIL(malloc(n));
    MUST_FAIL(calloc(1, n));
    MUST_FAIL(calloc(n, 1));
    MUST_FAIL(memalign(64, n));
    MUST_FAIL(memalign(4096, n));
    MUST_FAIL(aligned_alloc(64, n));
    MUST_FAIL(valloc(n));
    MUST_FAIL(pvalloc(n));
    MUST_FAIL(realloc(NULL, n));
    MUST_FAIL(reallocarray(NULL, n, 1));
    posix_memalign_must_fail(64, n);
    posix_memalign_must_fail(4096, n);
    realloc_must_fail(&small, n, 1, 0, "realloc (huge size)");
    realloc_must_fail(&mapped, n, 1, 0, "realloc (huge size)");
    realloc_must_fail(&small, n, 1, 1, "reallocarray (huge size)");
  }
  MUST_FAIL(calloc(opq(SIZE_MAX / 2 + 1), opq(2)));
  MUST_FAIL(calloc(opq(2), opq(SIZE_MAX / 2 + 1)));
  MUST_FAIL(calloc(opq((size_t)1 << 32), opq((size_t)1 << 32)));
  MUST_FAIL(calloc(opq(SIZE_MAX), opq(SIZE_MAX)));
  MUST_FAIL(reallocarray(NULL, opq(SIZE_MAX), opq(SIZE_MAX)));
  MUST_FAIL(reallocarray(NULL, opq((size_t)1 << 32), opq((size_t)1 << 32)));
  MUST_FAIL(memalign(opq((size_t)1 << 62), opq(16)));
  realloc_must_fail(&small, (size_t)1 << 32, (size_t)1 << 32, 1, "reallocarray (n*size overflow)");
  realloc_must_fail(&mapped, SIZE_MAX / 2 + 1, 2, 1, "reallocarray (n*size overflow)");
  /* nothing broke */
  MUST_SUCCEED(malloc(opq(100)), 100, 16);
  MUST_SUCCEED(malloc(opq(200000)), 200000, 16);
  if (pat_check(small.p, small.seed, small.n) != ALL_GOOD || pat_check(mapped.p, mapped.seed, mapped.n) != ALL_GOOD)
    FAIL("%s: a block changed", part);
  free(small.p);
  free(mapped.p);
  say("huge sizes and n*size overflows: NULL and ENOMEM from every function");
}

/* ---------- the parent ---------- */

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void run_part(const char *name, void (*fn)(void)) {
  fflush(stdout);
  fflush(stderr);
  double t0 = now_s();
  pid_t pid = fork();
  if (pid < 0) {
    FAIL("%s: fork failed: errno %d", name, errno);
    return;
  }
  if (pid == 0) {
    part = name;
    failures = 0; /* the parent's count is not this child's */
    alarm(CHILD_ALARM_S);
    touch_stack();
    fn();
    _exit(failures ? 1 : 0);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0) {
    if (errno != EINTR) {
      FAIL("%s: waitpid failed: errno %d", name, errno);
      return;
    }
  }
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    if (sig == SIGALRM)
      FAIL("%s: the child was still running after %d s (watchdog): deadlock or livelock", name, CHILD_ALARM_S);
    else
      FAIL("%s: the child was killed by signal %d (%s)", name, sig, strsignal(sig));
  } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    FAIL("%s: the child failed (exit status %d)", name, WEXITSTATUS(status));
  }
  printf(TEST_NAME ": %s: %s in %.2f s\n", name, status == 0 ? "ok" : "FAILED", now_s() - t0);
  fflush(stdout);
}

static void part_data1(void) { data_variant = 1; part_data(); }
static void part_data2(void) { data_variant = 2; part_data(); }
static void part_data3(void) { data_variant = 3; part_data(); }
static void part_threads_as(void) { thread_resource = RLIMIT_AS; part_threads(); }
static void part_threads_data(void) { thread_resource = RLIMIT_DATA; part_threads(); }
static void part_lone_as(void) { lone_resource = RLIMIT_AS; part_lone_thread(); }
static void part_lone_data(void) { lone_resource = RLIMIT_DATA; part_lone_thread(); }

int main(void) {
  run_part("a: RLIMIT_AS", part_as);
  run_part("b1: RLIMIT_DATA at VmData", part_data1);
  run_part("b2: RLIMIT_DATA, brk blocked", part_data2);
  run_part("b3: RLIMIT_DATA above VmData", part_data3);
  run_part("c: threads, RLIMIT_AS", part_threads_as);
  run_part("c: threads, RLIMIT_DATA", part_threads_data);
  run_part("d: huge requests", part_huge);
  run_part("e: a new thread's first calls with nothing left", part_late_thread);
  run_part("f: a thread arena used up, RLIMIT_AS", part_lone_as);
  run_part("f: a thread arena used up, RLIMIT_DATA", part_lone_data);
  test_expect_reuse();
  return test_finish();
}
