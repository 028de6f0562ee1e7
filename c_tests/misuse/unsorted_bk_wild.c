// glibc: not detected (SIGSEGV)
// default: malloc(): corrupted bin link (points outside the heap)
// hardened: malloc(): corrupted bin link (points outside the heap)
/* A use-after-free write sets the bk link of a chunk in the unsorted bin to
 * 0x4141414141414141; the next malloc that sorts the bin follows it (glibc
 * reads bk->fd for its check, and faults). */
#define TEST_NAME "unsorted_bk_wild"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = unsorted_chunk();
  reached("a->bk = 0x4141414141414141, then malloc(0x100)");
  ((uintptr_t *)a)[1] = 0x4141414141414141;
  char *b = malloc(0x100);
  printf("malloc = %p\n", (void *)b);
  return survived();
}
