// glibc: free(): invalid pointer
// hardened: free(): invalid pointer
/* free() of a pointer 16 bytes into a live 1 MiB (mmap'd) block: its
 * "header" is the block's own zeroed data, a chunk of size 0. */
#define TEST_NAME "mmap_free_interior"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(MiB);
  if (!p || !is_mmapped(p)) SETUP_FAIL("malloc(1 MiB) is not an mmap'd chunk");
  memset(p, 0, 64);
  keep_stores(p);
  reached("free(p + 16)");
  free(p + 16);
  return survived();
}
