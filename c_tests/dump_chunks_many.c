/* malloc_rs_dump_chunks tells every fastbin, unsorted and cached chunk by
 * its state, however many there are: 3000 freed 40-byte blocks show as
 * "fast" or "tcache" (none as "inuse"), 3000 freed 1000-byte blocks, kept
 * apart by blocks in use, as "unsorted" or "tcache". (The listing once knew
 * at most 2048 of each kind and showed the rest as in use or binned.)
 * Under plain glibc there is no such function: the test only says so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#define TEST_NAME "dump_chunks_many"
#include "testlib.h"

enum { N = 3000 };

/* How many of the chunks of `blocks` the listing in `f` shows in state s1
 * or s2; *inuse: how many it shows in use. */
static int count_states(FILE *f, void *const *blocks, const char *s1, const char *s2, int *inuse) {
  char line[256];
  int n = 0;
  *inuse = 0;
  rewind(f);
  while (fgets(line, sizeof line, f)) {
    unsigned long arena, heap, addr, size;
    char flags[8], state[16];
    if (sscanf(line, "chunk %lu %lx %lx %lu %7s %15s", &arena, &heap, &addr, &size, flags, state) != 6) continue;
    for (int i = 0; i < N; i++) {
      if ((unsigned long)blocks[i] - 16 != addr) continue;
      if (!strcmp(state, s1) || !strcmp(state, s2)) n++;
      if (!strcmp(state, "inuse")) (*inuse)++;
      break;
    }
  }
  return n;
}

static void *small[N], *mid[N], *guard[N];

int main(void) {
  void (*dump_chunks)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump_chunks");
  if (!dump_chunks) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("malloc_rs_dump_chunks is not exported");
    else printf(TEST_NAME ": plain glibc has no malloc_rs_dump_chunks: nothing to check\n");
    return test_finish();
  }
  for (int i = 0; i < N; i++) {
    small[i] = malloc_v(40);
    mid[i] = malloc_v(1000);
    guard[i] = malloc_v(24); /* keeps the 1000-byte chunks from merging */
    if (!small[i] || !mid[i] || !guard[i]) FAIL("malloc failed at %d", i);
  }
  /* Made (and its buffer allocated) first: a malloc after the frees would
     sort the unsorted bin. */
  FILE *f = tmpfile();
  if (!f || fputs("", f) < 0 || fflush(f)) FAIL("tmpfile");
  for (int i = 0; i < N; i++) {
    free_v(small[i]);
    free_v(mid[i]);
  }
  dump_chunks(fileno(f));
  int inuse;
  int fast = count_states(f, small, "fast", "tcache", &inuse);
  if (fast != N || inuse)
    FAIL("of %d freed 40-byte blocks, %d are listed as fast or tcache, %d as in use", N, fast, inuse);
  int unsorted = count_states(f, mid, "unsorted", "tcache", &inuse);
  if (unsorted != N || inuse)
    FAIL("of %d freed 1000-byte blocks, %d are listed as unsorted or tcache, %d as in use", N, unsorted, inuse);
  printf(TEST_NAME ": %d fastbin/tcache and %d unsorted/tcache chunks told apart\n", fast, unsorted);
  fclose(f);
  for (int i = 0; i < N; i++) free_v(guard[i]);
  test_expect_reuse();
  return test_finish();
}
