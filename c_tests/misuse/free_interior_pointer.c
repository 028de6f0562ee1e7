// glibc: free(): invalid pointer
// hardened: free(): invalid pointer
/* free() of a pointer 16 bytes into a live block: its "header" is the block's
 * own (zeroed) data, a chunk of size 0, which wraps around the address space. */
#define TEST_NAME "free_interior_pointer"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = zeroed_block(0x100);
  reached("free(p + 16)");
  free(p + 16);
  return survived();
}
