// glibc: malloc(): invalid next size (unsorted)
// hardened: malloc(): invalid next size (unsorted)
/* a (0x510 bytes) is in the unsorted bin; an underflow from b, the block
 * after it, zeroes b's size word.  The next malloc that sorts the bin finds
 * the size of a's neighbour below a chunk header's. */
#define TEST_NAME "unsorted_next_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *b;
  freed_chunk_before(&b);
  reached("b's size word = 0, then malloc(0x100)");
  ((size_t *)b)[-1] = 0;
  char *c = malloc(0x100);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
