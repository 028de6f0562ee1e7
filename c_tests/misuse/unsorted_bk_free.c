// glibc: free(): corrupted unsorted chunks
// hardened: free(): corrupted unsorted chunks
/* A use-after-free write sets the bk link of the (only) chunk in the unsorted
 * bin to the chunk itself; freeing another 0x510-byte block puts it at the
 * front of the bin, whose first chunk's bk is not the bin's head. */
#define TEST_NAME "unsorted_bk_free"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500);
  char *g1 = malloc(0x18);
  char *b = malloc(0x500);
  char *g2 = malloc(0x18);
  if (!a || !g1 || !b || !g2) SETUP_FAIL("malloc failed");
  free(a);
  if (size_word(g1) & 1) SETUP_FAIL("a is not free after free(a)");
  reached("a->bk = a, then free(b)");
  ((uintptr_t *)a)[1] = chunk_of_mem(a);
  free(b);
  return survived();
}
