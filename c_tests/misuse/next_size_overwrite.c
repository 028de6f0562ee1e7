// glibc: free(): invalid next size (normal)
// hardened: free(): invalid next size (normal)
/* A memset 8 bytes past the end of a 0x508-byte block (too big for the
 * tcache) overwrites the next chunk's size with 0x4141414141414141; freeing
 * the block finds its neighbour's size beyond all the arena's memory. */
#define TEST_NAME "next_size_overwrite"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x508);
  char *b = malloc(0x508);
  char *guard = malloc(0x18);
  if (!a || !b || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  reached("overflow a into b's size, then free(a)");
  memset(a, 'A', 0x508 + 8);
  keep_stores(a);
  free(a);
  return survived();
}
