// glibc: free(): invalid next size (fast)
// hardened: free(): invalid next size (fast)
/* As next_size_overwrite, with a fastbin-sized block (0x30-byte chunk, its
 * tcache bin full): the fastbin path checks the next chunk's size too. */
#define TEST_NAME "next_size_overwrite_fast"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x28);
  char *b = malloc(0x28);
  if (!a || !b) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a and b: not from the tcache */
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  reached("overflow a into b's size, then free(a)");
  memset(a, 'A', 0x28 + 8);
  keep_stores(a);
  free(a);
  return survived();
}
