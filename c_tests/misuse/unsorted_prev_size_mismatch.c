// glibc: malloc(): mismatching next->prev_size (unsorted)
// hardened: malloc(): mismatching next->prev_size (unsorted)
/* a (0x510 bytes) is in the unsorted bin; a use-after-free write to its last
 * 8 bytes changes the prev_size of the chunk after it.  The next malloc that
 * sorts the bin finds a's size and its neighbour's prev_size differ. */
#define TEST_NAME "unsorted_prev_size_mismatch"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *b;
  char *a = freed_chunk_before(&b);
  if (((size_t *)b)[-2] != 0x510) SETUP_FAIL("a is not free after free(a)");
  reached("a's last word (b's prev_size) = 0x4242424242424242, then malloc(0x100)");
  *(size_t *)(a + 0x500) = 0x4242424242424242;
  char *c = malloc(0x100);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
