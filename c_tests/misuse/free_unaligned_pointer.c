// glibc: free(): invalid pointer
// hardened: free(): invalid pointer
/* free() of a pointer one byte into a live block: the chunk is misaligned. */
#define TEST_NAME "free_unaligned_pointer"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = zeroed_block(0x100);
  reached("free(p + 1)");
  free(p + 1);
  return survived();
}
