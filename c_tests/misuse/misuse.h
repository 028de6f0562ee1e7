/* misuse.h: what the heap-misuse programs in c_tests/misuse/ share.
 *
 * Each program commits one heap misuse and declares, in its first lines, what
 * each allocator does about it (scripts/run-tests reads these):
 *
 *   // glibc: <the exact line glibc 2.36 prints before SIGABRT>
 *   // ptmalloc-rs: <the exact line ptmalloc-rs must print before SIGABRT>
 *
 * or, instead of a line, `not detected (exit 0)` (the program goes on and
 * ends normally) or `not detected (SIGSEGV)` (it dies of a wild access).
 *
 * A program prints "reached: ..." on stdout just before the misuse (so dying
 * earlier, for another reason, does not count) and "survived" at the end.
 * Layout assumptions are checked, not hoped for: a program whose heap does not
 * look as expected (or that runs on the wrong allocator) says so and exits 2.
 * Nothing depends on ASLR.
 *
 * Use: #define TEST_NAME "name", then #include "misuse.h".
 */
#ifndef MISUSE_H
#define MISUSE_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* dladdr */
#endif
#include <dlfcn.h>
#define TESTLIB_CHUNKS
#include "../testlib.h"

/* More than either allocator's tcache holds per bin (glibc 7, ptmalloc-rs 16):
 * freeing this many chunks of one size fills that size's tcache bin. */
#define TCACHE_FILL 16

/* The heap is not laid out as the program assumes: not a result, a broken
 * test. */
#define SETUP_FAIL(...)                                                        \
  do {                                                                         \
    fprintf(stderr, TEST_NAME ": setup: " __VA_ARGS__);                        \
    fputc('\n', stderr);                                                       \
    exit(2);                                                                   \
  } while (0)

/* stdout unbuffered (so that "reached" is out before an abort, and stdio
 * allocates no buffer in the middle of the heap layout), and the allocator
 * the one scripts/run-tests means: with PTMALLOC_RS_EXPECT_PRELOAD set,
 * malloc must be ptmalloc-rs's (otherwise a misuse both allocators treat
 * alike would pass on glibc), else glibc's. */
static inline void misuse_start(void) {
  setvbuf(stdout, NULL, _IONBF, 0);
  const char *want = getenv("PTMALLOC_RS_EXPECT_PRELOAD") ? "libptmalloc_rs.so" : "libc.so.6";
  Dl_info info;
  memset(&info, 0, sizeof info);
  if (!dladdr((void *)malloc_v, &info) || !info.dli_fname || !strstr(info.dli_fname, want))
    SETUP_FAIL("malloc is in %s, not in %s", info.dli_fname ? info.dli_fname : "?", want);
}

static inline void reached(const char *what) {
  printf("reached: %s\n", what);
}

static inline int survived(void) {
  printf("survived\n");
  return 0;
}

/* Fills the tcache bin of request size n: allocates TCACHE_FILL blocks of n
 * bytes, each followed by a small guard block that stays allocated (so that
 * the blocks the tcache cannot take do not merge with each other or with top),
 * then frees the TCACHE_FILL blocks. */
static inline void fill_tcache(size_t n) {
  void *blocks[TCACHE_FILL];
  for (int i = 0; i < TCACHE_FILL; i++) {
    blocks[i] = malloc(n);
    if (!blocks[i] || !malloc(24)) SETUP_FAIL("malloc failed");
  }
  for (int i = 0; i < TCACHE_FILL; i++) free(blocks[i]);
}

/* The chunk address (where the header starts) of user pointer p. */
static inline uintptr_t chunk_of_mem(const void *p) { return (uintptr_t)p - 16; }

#endif /* MISUSE_H */
