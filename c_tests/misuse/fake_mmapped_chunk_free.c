// glibc: not detected (exit 0)
// hardened: munmap_chunk(): invalid pointer
/* Freeing a faked mmap'd chunk: the program maps two pages itself, writes a
 * chunk header at their start (prev_size 0, size 0x2000 with IS_MMAPPED)
 * and frees the pointer after it.  glibc records no mappings: it checks the
 * header's shape (page-aligned, the pointer's offset a power of two) and
 * unmaps the two pages.  The default profile does the same; the hardened
 * one knows the mapping is not one of its own.  "survived" only when the
 * pages are gone, else exit 3. */
#define TEST_NAME "fake_mmapped_chunk_free"
#include "misuse.h"
#include <sys/mman.h>

int main(void) {
  misuse_start();
  free(malloc(16)); /* the allocator is set up */
  size_t *m = mmap(NULL, 2 * PAGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (m == MAP_FAILED) SETUP_FAIL("mmap failed");
  m[0] = 0;                 /* prev_size: no gap before the chunk */
  m[1] = 2 * PAGE | 2;      /* size, IS_MMAPPED */
  keep_stores(m);
  reached("free(a faked mmap'd chunk at the start of the program's own two pages)");
  free(&m[2]);
  unsigned char vec[2];
  int gone = mincore(m, 2 * PAGE, vec) != 0 && errno == ENOMEM;
  printf("the two pages are %s\n", gone ? "unmapped" : "still mapped");
  if (!gone) return 3;
  return survived();
}
