// glibc: free(): too many chunks detected in tcache
// hardened: free(): too many chunks detected in tcache
/* The tcache bin holds a -> b -> c; a use-after-free write points b's next
 * back to a (a cycle that leaves c out), then c is freed a second time: the
 * double-free check finds c's tcache key and walks the bin looking for c,
 * counting more entries than a bin can hold. */
#define TEST_NAME "tcache_double_free_cycle"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x48), *b = malloc(0x48), *c = malloc(0x48);
  if (!a || !b || !c) SETUP_FAIL("malloc failed");
  free(c);
  free(b);
  free(a); /* the bin: a -> b -> c */
  uintptr_t *an = (uintptr_t *)a, *bn = (uintptr_t *)b;
  /* safe-linking: the stored link is (its own address >> 12) ^ pointer */
  if ((*an ^ ((uintptr_t)an >> 12)) != (uintptr_t)b || (*bn ^ ((uintptr_t)bn >> 12)) != (uintptr_t)c)
    SETUP_FAIL("the tcache bin is not a -> b -> c");
  reached("b's next = a, then free(c) a second time");
  *bn = ((uintptr_t)bn >> 12) ^ (uintptr_t)a;
  free(c);
  return survived();
}
