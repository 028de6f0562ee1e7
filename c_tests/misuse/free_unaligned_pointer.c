// glibc: free(): invalid pointer
// ptmalloc-rs: free(): invalid pointer
/* free() of a pointer one byte into a live block: the chunk is misaligned. */
#define TEST_NAME "free_unaligned_pointer"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x100);
  if (!p) SETUP_FAIL("malloc failed");
  memset(p, 0, 0x100);
  keep_stores(p);
  reached("free(p + 1)");
  free(p + 1);
  return survived();
}
