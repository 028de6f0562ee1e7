// glibc: malloc(): largebin double linked list corrupted (nextsize)
// hardened: malloc(): largebin double linked list corrupted (nextsize)
/* l (0x500 bytes) is alone in its large bin; a use-after-free write points
 * its bk_nextsize to a zeroed block z.  v (0x510 bytes, same large bin,
 * bigger) is freed, and the next malloc sorts it into the bin's size list in
 * front of l: z's fd_nextsize is not l. */
#define TEST_NAME "largebin_nextsize"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *l = malloc(0x4f8);
  char *g1 = malloc(0x18);
  char *v = malloc(0x508);
  char *z = malloc(0x48);
  if (!l || !g1 || !v || !z) SETUP_FAIL("malloc failed");
  if (chunk_size(l) != 0x500 || chunk_size(v) != 0x510) SETUP_FAIL("unexpected chunk sizes");
  memset(z, 0, 0x48);
  keep_stores(z);
  sort_alone_into_large_bin(l, "l");
  uintptr_t *ll = (uintptr_t *)l;
  free(v);
  reached("l->bk_nextsize = z, then malloc(0x600), which sorts v into l's bin");
  ll[3] = chunk_of_mem(z);
  char *s2 = malloc(0x600);
  printf("malloc = %p\n", (void *)s2);
  return survived();
}
