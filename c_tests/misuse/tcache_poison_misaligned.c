// glibc: malloc(): unaligned tcache chunk detected
// hardened: malloc(): unaligned tcache chunk detected
/* Tcache poisoning with a misaligned target: a use-after-free write replaces
 * the next pointer of the first tcache entry with (safe-linking encoded) b + 8.
 * The first malloc returns the entry, the second would return b + 8. */
#define TEST_NAME "tcache_poison_misaligned"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x48), *b = malloc(0x48);
  if (!a || !b) SETUP_FAIL("malloc failed");
  free(b);
  free(a); /* the bin: a -> b */
  uintptr_t *next = (uintptr_t *)a;
  uintptr_t target = (uintptr_t)b + 8;
  /* safe-linking: the stored link is (its own address >> 12) ^ pointer */
  if ((*next ^ ((uintptr_t)next >> 12)) != (uintptr_t)b) SETUP_FAIL("a's next is not b");
  reached("poison a's next with b + 8, then malloc twice");
  *next = ((uintptr_t)next >> 12) ^ target;
  char *x = malloc(0x48);
  char *y = malloc(0x48);
  printf("malloc = %p, malloc = %p\n", (void *)x, (void *)y);
  return survived();
}
