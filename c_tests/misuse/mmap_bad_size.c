// glibc: munmap_chunk(): invalid pointer
// hardened: munmap_chunk(): invalid pointer
/* An underflow overwrites the size in the header of a 1 MiB (mmap'd) block,
 * IS_MMAPPED kept, with a size 16 bytes bigger: freeing it finds that the
 * mapping it describes is not made of whole pages. */
#define TEST_NAME "mmap_bad_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(MiB);
  if (!p || !is_mmapped(p)) SETUP_FAIL("malloc(1 MiB) is not an mmap'd chunk");
  reached("size of p's header += 16, then free(p)");
  ((size_t *)p)[-1] += 16;
  free(p);
  return survived();
}
