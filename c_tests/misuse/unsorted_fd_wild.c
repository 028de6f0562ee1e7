// glibc: malloc(): unsorted double linked list corrupted
// hardened: malloc(): unsorted double linked list corrupted
/* A use-after-free write sets the fd link of the (only) chunk in the unsorted
 * bin to 0x4141414141414141; the next malloc that sorts the bin finds that
 * fd is not the bin's head, without following it. */
#define TEST_NAME "unsorted_fd_wild"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = unsorted_chunk();
  reached("a->fd = 0x4141414141414141, then malloc(0x100)");
  ((uintptr_t *)a)[0] = 0x4141414141414141;
  char *b = malloc(0x100);
  printf("malloc = %p\n", (void *)b);
  return survived();
}
