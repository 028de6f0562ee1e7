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
  char *l = large_bin_chunk_and_unsorted(0x4f8, 0x508, NULL);
  uintptr_t *ll = (uintptr_t *)l;
  reached("l->bk = l, then malloc(0x600), which sorts v into l's bin");
  ll[1] = chunk_of_mem(l);
  char *s2 = malloc(0x600);
  printf("malloc = %p\n", (void *)s2);
  return survived();
}
