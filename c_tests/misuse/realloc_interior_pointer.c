// glibc: realloc(): invalid pointer
// hardened: realloc(): invalid pointer
/* realloc() of a pointer 16 bytes into a live block: its "header" is the
 * block's own zeroed data, a chunk of size 0. */
#define TEST_NAME "realloc_interior_pointer"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = zeroed_block(0x100);
  reached("realloc(p + 16, 0x200)");
  char *q = realloc(p + 16, 0x200);
  printf("realloc = %p\n", (void *)q);
  return survived();
}
