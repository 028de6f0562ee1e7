// glibc: malloc(): invalid size (unsorted)
// hardened: malloc(): invalid size (unsorted)
/* a (0x510 bytes) is in the unsorted bin; p, the block before it, overflows
 * by 8 bytes and fills a's size word with 'A's.  The next malloc that sorts
 * the bin finds a chunk bigger than all the arena's memory. */
#define TEST_NAME "unsorted_invalid_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x18), *a = malloc(0x500);
  char *guard = malloc(0x18);
  if (!p || !a || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)a != (uintptr_t)p + chunk_size(p)) SETUP_FAIL("a does not follow p");
  free(a);
  if (size_word(guard) & 1) SETUP_FAIL("a is not free after free(a)");
  reached("memset(p, 'A', 0x18 + 8) over a's size, then malloc(0x100)");
  memset(p, 'A', opq(0x18 + 8));
  keep_stores(p);
  char *c = malloc(0x100);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
