// glibc: Fatal glibc error: malloc assertion failure in _int_malloc: chunk_main_arena (bck->bk)
/* l (0x500 bytes) is alone in its large bin of the main arena; a write after
 * free sets the NON_MAIN_ARENA bit of its size word (0x501 -> 0x505), which
 * no free chunk has. v (0x510 bytes, same large bin) is freed, and the next
 * malloc sorts it into the bin: glibc asserts that the bin's smallest chunk,
 * l, belongs to the main arena before comparing sizes with it, and both
 * profiles stop with glibc's line. */
#define TEST_NAME "largebin_size_arena_bit"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *l = large_bin_chunk_and_unsorted(0x4f8, 0x508, NULL);
  reached("l's size word |= NON_MAIN_ARENA, then malloc(0x600), which sorts v into l's bin");
  ((size_t *)l)[-1] |= opq(4);
  keep_stores(l);
  char *s2 = malloc(0x600);
  printf("malloc = %p\n", (void *)s2);
  return survived();
}
