/* mp_overwritten: a program that writes wild values straight into the
 * exported `mp_` (glibc's struct malloc_par, as some heap write-ups do to
 * widen the tcache) gets an allocator that goes on working: the tcache's
 * bin count is clamped to the cache's 64 bins, so requests past them are
 * served by the arena, with their contents intact, instead of indexing past
 * the cache's arrays.
 * Guards against: a bounds check compiled into malloc ("ptmalloc-rs:
 * internal error" when tcache_bins was 1000), or an index past the arrays.
 * Under glibc's own malloc `mp_` is not exported: the whole test is skipped
 * (exit 77) there. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "mp_overwritten"
#include "testlib.h"

/* glibc 2.36's struct malloc_par, up to the tcache fields. */
struct malloc_par {
  unsigned long trim_threshold;
  size_t top_pad, mmap_threshold, arena_test, arena_max;
  size_t thp_pagesize, hp_pagesize;
  int hp_flags;
  int n_mmaps, n_mmaps_max, max_n_mmaps, no_dyn_threshold;
  size_t mmapped_mem, max_mmapped_mem;
  char *sbrk_base;
  size_t tcache_bins, tcache_max_bytes, tcache_count, tcache_unsorted_limit;
};

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 7);
}

static int intact(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 7)) return 0;
  return 1;
}

/* Rounds of malloc/free of sizes inside and past the real tcache range,
 * every block filled and checked before it is freed. */
static void rounds(const char *what) {
  enum { N = 64 };
  static const size_t sizes[] = {24, 1000, 1032, 1040, 2000, 10000, 60000, 100000};
  unsigned char *b[N] = {0};
  size_t len[N] = {0};
  for (int r = 0; r < 2000; r++) {
    int i = r % N;
    if (b[i]) {
      if (!intact(b[i], len[i], (unsigned)i)) FAIL("[%s] block %d of %zu bytes changed", what, i, len[i]);
      free(b[i]);
    }
    len[i] = sizes[(unsigned)(r / N + i * 3) % (sizeof sizes / sizeof *sizes)];
    b[i] = malloc(len[i]);
    if (!b[i]) {
      FAIL("[%s] malloc(%zu) returned NULL", what, len[i]);
      continue;
    }
    fill(b[i], len[i], (unsigned)i);
  }
  for (int i = 0; i < N; i++) {
    if (b[i] && !intact(b[i], len[i], (unsigned)i)) FAIL("[%s] block %d of %zu bytes changed", what, i, len[i]);
    free(b[i]);
  }
}

int main(void) {
  struct malloc_par *mp = dlsym(RTLD_DEFAULT, "mp_");
  if (!mp) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) {
      FAIL("mp_ is not exported");
      return test_finish();
    }
    printf("mp_overwritten: mp_ is not exported (glibc's own malloc): skipped\n");
    return 77;
  }
  if (mp->tcache_bins != 64) FAIL("mp_.tcache_bins is %zu before the test, expected 64", mp->tcache_bins);
  size_t saved_bins = mp->tcache_bins, saved_bytes = mp->tcache_max_bytes;

  /* As the write-ups do: a huge bin count and byte limit. */
  mp->tcache_bins = 1000;
  mp->tcache_max_bytes = (size_t)-1;
  rounds("tcache_bins = 1000");

  mp->tcache_bins = (size_t)-1;
  rounds("tcache_bins = SIZE_MAX");

  mp->tcache_bins = saved_bins;
  mp->tcache_max_bytes = saved_bytes;
  rounds("restored");
  test_expect_reuse();
  printf("mp_overwritten: malloc and free kept working with tcache_bins 1000 and SIZE_MAX\n");
  return test_finish();
}
