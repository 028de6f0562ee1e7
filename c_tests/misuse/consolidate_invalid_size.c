// glibc: malloc_consolidate(): invalid chunk size
// hardened: malloc_consolidate(): invalid chunk size
/* a (0x30 bytes, its tcache bin full) is in its fastbin; p, the block
 * before it, overflows by 8 bytes and sets a's size to 0x41.  A large
 * malloc consolidates the fastbins and finds in the 0x30 fastbin a chunk of
 * another fastbin's size. */
#define TEST_NAME "consolidate_invalid_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x18), *a = malloc(0x28);
  char *guard = malloc(0x18);
  if (!p || !a || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)a != (uintptr_t)p + chunk_size(p)) SETUP_FAIL("a does not follow p");
  fill_tcache(0x28); /* after taking a: not from the tcache */
  free(a);
  reached("a's size = 0x41 (p overflows by 8), then malloc(0x600)");
  *(size_t *)(p + 0x18) = 0x41;
  char *c = malloc(0x600);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
