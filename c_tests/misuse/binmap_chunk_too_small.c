// glibc: Fatal glibc error: malloc assertion failure in _int_malloc: (unsigned long) (size) >= (unsigned long) (nb)
/* l (0x500 bytes) is alone in its large bin; a write after free shrinks its
 * size word to 0x21. A malloc(0x300) (a 0x310-byte chunk: its tcache bin,
 * small bin and the unsorted bin are empty) searches the binmap upwards,
 * finds l's bin marked and takes its smallest chunk: every chunk there is
 * bigger than the request, and glibc asserts it before splitting, as both
 * profiles do. */
#define TEST_NAME "binmap_chunk_too_small"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *l = malloc(0x4f8);
  char *g1 = malloc(0x18);
  if (!l || !g1) SETUP_FAIL("malloc failed");
  if (chunk_size(l) != 0x500) SETUP_FAIL("unexpected chunk size");
  sort_alone_into_large_bin(l, "l");
  reached("l's size word = 0x21, then malloc(0x300), found through the binmap");
  ((size_t *)l)[-1] = opq(0x21);
  keep_stores(l);
  char *p = malloc(0x300);
  printf("malloc = %p\n", (void *)p);
  return survived();
}
