// glibc: malloc(): largebin double linked list corrupted (bk)
// hardened: malloc(): largebin double linked list corrupted (bk)
/* l (0x500 bytes) is alone in its large bin; a use-after-free write sets its
 * bk link to l itself.  v (0x510 bytes, same large bin) is freed, and the
 * next malloc sorts it into the bin in front of l: l's bk->fd is the bin's
 * head, not l. */
#define TEST_NAME "largebin_bk"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *l = malloc(0x4f8);
  char *g1 = malloc(0x18);
  char *v = malloc(0x508);
  char *g2 = malloc(0x18);
  if (!l || !g1 || !v || !g2) SETUP_FAIL("malloc failed");
  if (chunk_size(l) != 0x500 || chunk_size(v) != 0x510) SETUP_FAIL("unexpected chunk sizes");
  sort_alone_into_large_bin(l, "l");
  uintptr_t *ll = (uintptr_t *)l;
  free(v);
  reached("l->bk = l, then malloc(0x600), which sorts v into l's bin");
  ll[1] = chunk_of_mem(l);
  char *s2 = malloc(0x600);
  printf("malloc = %p\n", (void *)s2);
  return survived();
}
