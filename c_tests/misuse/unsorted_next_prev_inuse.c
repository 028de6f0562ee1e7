// glibc: malloc(): invalid next->prev_inuse (unsorted)
// hardened: malloc(): invalid next->prev_inuse (unsorted)
/* a (0x510 bytes) is in the unsorted bin; a write through b, the block after
 * it, sets b's PREV_INUSE bit again.  The next malloc that sorts the bin finds
 * a free chunk whose neighbour says it is in use. */
#define TEST_NAME "unsorted_next_prev_inuse"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *b;
  freed_chunk_before(&b);
  reached("b's size word |= PREV_INUSE, then malloc(0x100)");
  ((size_t *)b)[-1] |= 1;
  char *c = malloc(0x100);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
