// glibc: malloc(): unsorted double linked list corrupted
// hardened: malloc(): unsorted double linked list corrupted
/* A use-after-free write sets the bk link of a chunk in the unsorted bin to
 * another live chunk of the same heap (valid memory, wrong place, as in the
 * unsorted-bin attack); the next malloc that sorts the bin finds that chunk's
 * fd does not point back. */
#define TEST_NAME "unsorted_bk_heap"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500); /* too big for the tcache */
  char *other = malloc(0x100);
  if (!a || !other) SETUP_FAIL("malloc failed");
  memset(other, 0, 0x100);
  keep_stores(other);
  free(a);
  reached("a->bk = another live chunk, then malloc(0x100)");
  ((uintptr_t *)a)[1] = chunk_of_mem(other);
  char *b = malloc(0x100);
  printf("malloc = %p\n", (void *)b);
  return survived();
}
