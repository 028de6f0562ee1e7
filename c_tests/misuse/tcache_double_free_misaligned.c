// glibc: free(): unaligned chunk detected in tcache 2
// hardened: free(): unaligned chunk detected in tcache 2
/* The tcache bin holds a -> c; a use-after-free write replaces a's next with
 * (safe-linking encoded) a + 8, then c is freed a second time: the
 * double-free check finds c's tcache key and walks the bin looking for c,
 * reaching the misaligned entry. */
#define TEST_NAME "tcache_double_free_misaligned"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x48), *c = malloc(0x48);
  if (!a || !c) SETUP_FAIL("malloc failed");
  free(c);
  free(a); /* the bin: a -> c */
  uintptr_t *an = (uintptr_t *)a;
  if ((*an ^ ((uintptr_t)an >> 12)) != (uintptr_t)c) SETUP_FAIL("a's next is not c");
  reached("a's next = a + 8, then free(c) a second time");
  *an = ((uintptr_t)an >> 12) ^ ((uintptr_t)a + 8);
  free(c);
  return survived();
}
