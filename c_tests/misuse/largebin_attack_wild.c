// glibc: not detected (SIGSEGV)
// default: malloc(): corrupted bin link (points outside the heap)
// hardened: malloc(): corrupted bin link (points outside the heap)
/* Large bin attack: l (0x510 bytes) is alone in its large bin; a
 * use-after-free write sets its bk_nextsize to 0x4141414141414141.  v (0x500
 * bytes, same large bin, smaller than all its chunks) is freed, and the next
 * malloc sorts it in at the end of the bin's size list, writing v's address
 * to l->bk_nextsize->fd_nextsize (glibc checks nothing on this path, and
 * faults on the wild address). */
#define TEST_NAME "largebin_attack_wild"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *l = large_bin_chunk_and_unsorted(0x508, 0x4f8, NULL);
  uintptr_t *ll = (uintptr_t *)l;
  reached("l->bk_nextsize = 0x4141414141414141, then malloc(0x600), which sorts v into l's bin");
  ll[3] = 0x4141414141414141;
  char *s2 = malloc(0x600);
  printf("malloc = %p\n", (void *)s2);
  return survived();
}
