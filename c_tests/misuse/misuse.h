/* misuse.h: what the heap-misuse programs in c_tests/misuse/ share.
 *
 * Each program commits one heap misuse and declares, in its first lines, what
 * each allocator does about it (scripts/run-tests reads these):
 *
 *   // glibc: <the exact line glibc 2.36 prints before SIGABRT>
 *   // default: <ptmalloc-rs's default profile, only where it differs: where
 *   //           glibc faults inside the allocator, a clean abort instead>
 *   // hardened: <the exact line ptmalloc-rs's hardened profile prints>
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
#include <pthread.h>
#define TESTLIB_CHUNKS
#include "../testlib.h"

/* More than the tcache holds per bin (7, glibc's and the default profile's):
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

/* Runs the program again with the tcache off (GLIBC_TUNABLES=
 * glibc.malloc.tcache_count=0) unless GLIBC_TUNABLES is already set. */
static inline void restart_without_tcache(char **argv) {
  if (!getenv("GLIBC_TUNABLES")) {
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
    execv("/proc/self/exe", argv);
    SETUP_FAIL("execv failed");
  }
}

/* With the tcache off: a 0x100-byte chunk s, alone in its small bin (freed,
 * then sorted there by a malloc(0x300) not served from the bins), checked. */
static inline char *lone_smallbin_chunk(void) {
  char *s = malloc(0xf8);
  char *guard = malloc(0x18);
  if (!s || !guard) SETUP_FAIL("malloc failed");
  free(s);
  char *big = malloc(0x300); /* not from the bins: sorts s into its small bin */
  if (!big) SETUP_FAIL("malloc failed");
  uintptr_t *ls = (uintptr_t *)s;
  if ((size_word(guard) & 1) || ls[0] != ls[1]) SETUP_FAIL("s is not alone in a bin (tcache still on?)");
  return s;
}

/* A 0x510-byte chunk a (too big for the tcache), guarded from top, freed
 * into the unsorted bin. */
static inline char *unsorted_chunk(void) {
  char *a = malloc(0x500); /* too big for the tcache */
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  free(a);
  return a;
}

/* Frees p (a large chunk, guarded) and sorts it into its large bin with a
 * malloc(0x600) not served from the bins; checks that it is alone there. */
static inline void sort_alone_into_large_bin(char *p, const char *name) {
  free(p);
  char *sorter = malloc(0x600); /* not from the bins: sorts p into its large bin */
  if (!sorter) SETUP_FAIL("malloc failed");
  uintptr_t *lp = (uintptr_t *)p;
  if (lp[2] != chunk_of_mem(p) || lp[3] != chunk_of_mem(p)) SETUP_FAIL("%s is not alone in a large bin", name);
}

/* Two guarded chunks of the large bin of 0x500..0x53f, made in this order:
 * l (a request of l_req bytes) sorted alone into that bin, and v (v_req
 * bytes) freed into the unsorted bin, so that the next malloc not served
 * from the bins (a malloc(0x600)) sorts v into l's bin. Returns l, and v
 * in *v_out unless v_out is NULL. */
static inline char *large_bin_chunk_and_unsorted(size_t l_req, size_t v_req, char **v_out) {
  char *l = malloc(l_req), *g1 = malloc(0x18), *v = malloc(v_req), *g2 = malloc(0x18);
  if (!l || !g1 || !v || !g2) SETUP_FAIL("malloc failed");
  if (chunk_size(l) != l_req + 8 || chunk_size(v) != v_req + 8) SETUP_FAIL("unexpected chunk sizes");
  sort_alone_into_large_bin(l, "l");
  free(v);
  if (v_out) *v_out = v;
  return l;
}

/* A 0x530-byte chunk alone in the large bin of 0x500..0x53f, and n chunks of
 * 0x90 bytes (each guarded) in the unsorted bin, their tcache bin full.
 * Returns the newest of them (chunks[n - 1]). */
static inline char *large_and_unsorted_chunks(char **chunks, int n) {
  char *big = malloc(0x528); /* 0x530 bytes: the large bin of 0x500..0x53f */
  if (!big || !malloc(0x18)) SETUP_FAIL("malloc failed");
  for (int i = 0; i < n; i++) {
    chunks[i] = malloc(0x88);
    if (!chunks[i] || !malloc(0x18)) SETUP_FAIL("malloc failed");
  }
  fill_tcache(0x88); /* after taking the chunks: not from the tcache */
  sort_alone_into_large_bin(big, "big");
  for (int i = 0; i < n; i++) free(chunks[i]);
  char *last = chunks[n - 1];
  if (((uintptr_t *)last)[1] != ((uintptr_t *)chunks[0])[0]) /* both the bin's head */
    SETUP_FAIL("the chunks are not all in the unsorted bin");
  return last;
}

/* A live block of n bytes, zeroed (so that its data reads as chunk headers of
 * size 0). */
static inline char *zeroed_block(size_t n) {
  char *p = malloc(n);
  if (!p) SETUP_FAIL("malloc failed");
  memset(p, 0, n);
  keep_stores(p);
  return p;
}

/* A 0x510-byte chunk a, freed into the unsorted bin, and the 0x20-byte chunk
 * *b that follows it (still allocated, PREV_INUSE clear). Returns a. */
static inline char *freed_chunk_before(char **b_out) {
  char *a = malloc(0x500), *b = malloc(0x18);
  if (!a || !b) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  free(a);
  if (size_word(b) & 1) SETUP_FAIL("a is not free after free(a)");
  *b_out = b;
  return a;
}

/* With the tcache off: two 0x30-byte chunks a and *b_out, freed (a first)
 * into their fastbin, b's next checked to be the safe-linked a. Returns a. */
static inline char *fastbin_pair(char **b_out) {
  char *a = malloc(0x28), *b = malloc(0x28);
  if (!a || !b || !malloc(24)) SETUP_FAIL("malloc failed");
  free(a);
  free(b);
  uintptr_t stored = ((uintptr_t)b >> 12) ^ (uintptr_t)(a - 16);
  if (*(uintptr_t *)b != stored) SETUP_FAIL("b's next is not the safe-linked a (tcache still on?)");
  *b_out = b;
  return a;
}

/* Runs f in a new thread (its own arena) and waits for it. */
static inline void in_new_thread(void *(*f)(void *)) {
  pthread_t t;
  if (pthread_create(&t, NULL, f, NULL)) SETUP_FAIL("pthread_create failed");
  pthread_join(t, NULL);
}

#endif /* MISUSE_H */
