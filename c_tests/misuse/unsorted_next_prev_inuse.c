// glibc: malloc(): invalid next->prev_inuse (unsorted)
// ptmalloc-rs: malloc(): invalid next->prev_inuse (unsorted)
/* a (0x510 bytes) is in the unsorted bin; a write through b, the block after
 * it, sets b's PREV_INUSE bit again.  The next malloc that sorts the bin finds
 * a free chunk whose neighbour says it is in use. */
#define TEST_NAME "unsorted_next_prev_inuse"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500), *b = malloc(0x18);
  if (!a || !b) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  free(a);
  if (size_word(b) & 1) SETUP_FAIL("a is not free after free(a)");
  reached("b's size word |= PREV_INUSE, then malloc(0x100)");
  ((size_t *)b)[-1] |= 1;
  char *c = malloc(0x100);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
