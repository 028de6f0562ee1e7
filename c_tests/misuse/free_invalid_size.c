// glibc: free(): invalid size
// hardened: free(): invalid size
/* An underflow writes 0x11 into a block's size word: a chunk of 16 bytes,
 * smaller than any chunk.  free() rejects it. */
#define TEST_NAME "free_invalid_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x18);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  reached("a's size word = 0x11, then free(a)");
  ((size_t *)a)[-1] = 0x11;
  free(a);
  return survived();
}
