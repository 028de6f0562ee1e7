// glibc: double free or corruption (top)
// hardened: double free or corruption (top)
/* A 0x510-byte block next to top, freed: it merges into top, and top's chunk
 * now starts where the block did.  Freeing the block again frees top. */
#define TEST_NAME "free_top_double"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500);
  if (!a) SETUP_FAIL("malloc failed");
  uintptr_t top = chunk_of_mem(a) + chunk_size(a);
  size_t ts = *(size_t *)(top + 8) & ~(size_t)7;
  if (!(*(size_t *)(top + 8) & 1) || ts < MINSIZE || (top + ts) % PAGE != 0)
    SETUP_FAIL("the chunk after a is not top");
  free(a);
  if (chunk_size(a) != 0x510 + ts) SETUP_FAIL("a did not merge into top");
  reached("free(a) again, a now top");
  free(a);
  return survived();
}
