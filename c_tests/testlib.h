/* testlib.h: what the test programs in c_tests/ share.  Header-only (each
 * test is one file that scripts/run-tests compiles alone), so everything here
 * is a macro or a static inline function or an unused-tolerant static.
 *
 * Use, after the test's own system headers (the allocator macros below would
 * break a system header included after them):
 *
 *   #define TEST_NAME "size_sweep"   required: every message starts "size_sweep: "
 *   #define TEST_MAX_FAILURES 10     optional: FAIL gives up at the 10th failure
 *                                    (default 20; 1: the first failure ends the
 *                                    test; 0: never give up)
 *   #define TEST_GIVE_UP() ...       optional: what giving up does (default exit(1))
 *   #include "testlib.h"
 *   ...
 *   int main(void) { ...; return test_finish(); }
 *
 * Also usable from C++ (cxx_containers.cc), without the allocator macros.
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#ifndef TEST_NAME
#error "#define TEST_NAME \"name\" before #include \"testlib.h\""
#endif
#ifndef TEST_MAX_FAILURES
#define TEST_MAX_FAILURES 20
#endif
#ifndef TEST_GIVE_UP
#define TEST_GIVE_UP() exit(1)
#endif

#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TESTLIB_UNUSED __attribute__((unused))

/* ---------- failures ---------- */

/* How many checks have failed.  Updated atomically: FAIL may be called from
 * several threads at once. */
static int failures TESTLIB_UNUSED;

/* Counts one failure; true when the test should give up now. */
static inline int test_count_failure(void) {
  int n = __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
#if TEST_MAX_FAILURES > 1
  if (n < TEST_MAX_FAILURES) return 0;
  fprintf(stderr, TEST_NAME ": too many failures, giving up\n");
  return 1;
#elif TEST_MAX_FAILURES == 1
  (void)n;
  return 1;
#else
  (void)n;
  return 0;
#endif
}

/* FAIL("malloc(%zu) returned NULL", n): one line on stderr, prefixed with
 * the test's name, then counts the failure (and may give up).  The message
 * must be a string literal. */
#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, TEST_NAME ": " __VA_ARGS__);                               \
    fputc('\n', stderr);                                                       \
    if (test_count_failure()) TEST_GIVE_UP();                                  \
  } while (0)

/* main's result: 1 (after a summary line) when any check failed, else 0. */
static inline int test_finish(void) {
  int n = __atomic_load_n(&failures, __ATOMIC_SEQ_CST);
  if (n) {
    fprintf(stderr, TEST_NAME ": %d failure(s)\n", n);
    return 1;
  }
  return 0;
}

/* ---------- keeping the optimiser from knowing too much ---------- */

#ifndef __cplusplus
/* All allocator calls go through volatile function pointers: GCC knows
 * malloc & co. as builtins and, with direct calls, folds alignment checks
 * (aligned_alloc(64, n) % 64 == 0), comparisons of two malloc results, reads
 * of calloc'ed memory and errno reads after free/posix_memalign, or deletes
 * malloc/free pairs (seen with gcc 12 -O2).  An indirect call has none of
 * that knowledge.  (Not in C++: the C++ test allocates through new/delete,
 * and a macro named free would break std::free.) */
static void *(*volatile malloc_v)(size_t) TESTLIB_UNUSED = malloc;
static void (*volatile free_v)(void *) TESTLIB_UNUSED = free;
static void *(*volatile calloc_v)(size_t, size_t) TESTLIB_UNUSED = calloc;
static void *(*volatile realloc_v)(void *, size_t) TESTLIB_UNUSED = realloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) TESTLIB_UNUSED = reallocarray;
static void *(*volatile memalign_v)(size_t, size_t) TESTLIB_UNUSED = memalign;
static void *(*volatile aligned_alloc_v)(size_t, size_t) TESTLIB_UNUSED = aligned_alloc;
static int (*volatile posix_memalign_v)(void **, size_t, size_t) TESTLIB_UNUSED = posix_memalign;
static void *(*volatile valloc_v)(size_t) TESTLIB_UNUSED = valloc;
static void *(*volatile pvalloc_v)(size_t) TESTLIB_UNUSED = pvalloc;
#define malloc(a0) malloc_v(a0)
#define free(a0) free_v(a0)
#define calloc(a0, a1) calloc_v(a0, a1)
#define realloc(a0, a1) realloc_v(a0, a1)
#define reallocarray(a0, a1, a2) reallocarray_v(a0, a1, a2)
#define memalign(a0, a1) memalign_v(a0, a1)
#define aligned_alloc(a0, a1) aligned_alloc_v(a0, a1)
#define posix_memalign(a0, a1, a2) posix_memalign_v(a0, a1, a2)
#define valloc(a0) valloc_v(a0)
#define pvalloc(a0) pvalloc_v(a0)
#endif

/* Hide a value from the optimiser (no constant folding, no warnings about
 * huge constant sizes). */
static inline size_t opq(size_t x) {
  __asm__("" : "+r"(x));
  return x;
}
static inline void *opqp(void *x) {
  __asm__("" : "+r"(x));
  return x;
}

/* Make the stores to *p count as used, so that writes into a block that is
 * about to be freed are not deleted. */
static inline void keep_stores(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---------- a fixed-seed PRNG ---------- */

/* xorshift64*; *st must not be 0. */
static inline uint64_t rnd(uint64_t *st) {
  uint64_t x = *st;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *st = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* ---------- block contents ---------- */

/* What the checks below return when every byte is as expected. */
#define ALL_GOOD ((size_t)-1)

/* The byte pattern a block is filled with: 8-byte word k (bytes 8k..8k+7) of
 * the pattern with seed s is pat_word(s, k), so byte j depends on the seed and
 * on j: the wrong block's bytes, or the right ones at a shifted offset, do not
 * match. */
static inline uint64_t pat_word(uint64_t seed, size_t k) {
  uint64_t x = seed ^ (k * 0x9E3779B97F4A7C15ull);
  return x ^ (x >> 29);
}
static inline uint8_t pat_byte(uint64_t seed, size_t j) {
  return (uint8_t)(pat_word(seed, j >> 3) >> ((j & 7) * 8));
}

/* Writes the pattern to bytes [from, to) of p. */
static inline void pat_fill(unsigned char *p, uint64_t seed, size_t from, size_t to) {
  size_t j = from;
  for (; j < to && (j & 7); j++) p[j] = pat_byte(seed, j);
  for (; j + 8 <= to; j += 8) {
    uint64_t w = pat_word(seed, j >> 3);
    memcpy(p + j, &w, 8);
  }
  for (; j < to; j++) p[j] = pat_byte(seed, j);
}

/* The first of bytes [0, n) of p that does not hold the pattern, or ALL_GOOD. */
static inline size_t pat_check(const unsigned char *p, uint64_t seed, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    uint64_t w;
    memcpy(&w, p + j, 8);
    if (w != pat_word(seed, j >> 3)) break;
  }
  for (; j < n; j++)
    if (p[j] != pat_byte(seed, j)) return j;
  return ALL_GOOD;
}

/* The first of bytes [0, n) of p that is not c, or ALL_GOOD. */
static inline size_t first_byte_not(const unsigned char *p, size_t n, unsigned char c) {
  for (size_t j = 0; j < n; j++)
    if (p[j] != c) return j;
  return ALL_GOOD;
}

/* ---------- the process ---------- */

/* The resident set size in KiB (from /proc/self/statm), or -1. */
static inline long rss_kib(void) {
  long size = 0, pages = -1;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &pages) != 2) pages = -1;
  fclose(f);
  return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

#ifndef __cplusplus
/* Calls fn(fd) with the write end of a pipe (for malloc_rs_dump and the
 * like) and returns what it wrote, NUL-terminated in buf (at most n - 1
 * bytes; the pipe must not fill up: 64 KiB). */
static inline const char *fd_output(void (*fn)(int), char *buf, size_t n) {
  int fds[2];
  buf[0] = 0;
  if (pipe(fds)) return buf;
  fn(fds[1]);
  close(fds[1]);
  size_t got = 0;
  ssize_t r;
  while (got < n - 1 && (r = read(fds[0], buf + got, n - 1 - got)) > 0) got += (size_t)r;
  close(fds[0]);
  buf[got] = 0;
  return buf;
}

/* Runs this program again (/proc/self/exe ARGV0 ARG) with the environment
 * changed by `env` ("NAME=VALUE" sets, "NAME" unsets; NULL-terminated), and
 * returns what the child wrote on stderr (NUL-terminated in buf) and its
 * wait status in *status. */
static inline const char *run_self_stderr(const char *argv0, const char *arg, const char *const *env,
                                          char *buf, size_t cap, int *status) {
  int fds[2];
  buf[0] = 0;
  *status = -1;
  if (pipe(fds)) return buf;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(fds[1], 2);
    close(fds[0]);
    for (; env && *env; env++) {
      const char *eq = strchr(*env, '=');
      if (eq) {
        char name[128];
        size_t n = (size_t)(eq - *env) < sizeof name - 1 ? (size_t)(eq - *env) : sizeof name - 1;
        memcpy(name, *env, n);
        name[n] = 0;
        setenv(name, eq + 1, 1);
      } else {
        unsetenv(*env);
      }
    }
    execl("/proc/self/exe", argv0, arg, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  size_t n = 0;
  ssize_t r;
  while (n < cap - 1 && (r = read(fds[0], buf + n, cap - 1 - n)) > 0) n += (size_t)r;
  buf[n] = 0;
  close(fds[0]);
  waitpid(pid, status, 0);
  return buf;
}
#endif

#ifdef TESTLIB_CHUNKS
/* ---------- chunk headers (glibc's layout, which ptmalloc-rs keeps) ---------- */

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)
#define HEAP_MAX ((uintptr_t)64 << 20)
#define IS_MMAPPED ((size_t)2)
#define NON_MAIN_ARENA ((size_t)4)
#define MINSIZE ((size_t)32)

/* The size word of the chunk holding user pointer p, flags included. */
static inline size_t size_word(const void *p) { return ((const size_t *)p)[-1]; }
static inline size_t chunk_size(const void *p) { return size_word(p) & ~(size_t)7; }
static inline int is_mmapped(const void *p) { return (size_word(p) & IS_MMAPPED) != 0; }
static inline uintptr_t brk_now(void) { return (uintptr_t)sbrk(0); }
static inline size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
/* glibc's request2size. */
static inline size_t req2size(size_t n) { return n + 8 + 15 < MINSIZE ? MINSIZE : (n + 8 + 15) & ~(size_t)15; }
#endif

#endif /* TESTLIB_H */
