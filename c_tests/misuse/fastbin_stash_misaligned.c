// glibc: malloc(): unaligned fastbin chunk detected 3
// hardened: malloc(): unaligned fastbin chunk detected 3
/* With the 0x30 tcache bin full, a and b go to the fastbin (b -> a); a
 * use-after-free write makes b's safe-linked next reveal to a + 8.  Then
 * malloc(0x28) until the tcache bin is empty and a malloc takes b from the
 * fastbin: moving the rest of the fastbin into the tcache, it finds a + 8
 * at the fastbin's head. */
#define TEST_NAME "fastbin_stash_misaligned"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x28), *b = malloc(0x28);
  if (!a || !b || !malloc(24)) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a and b: not from the tcache */
  free(a);
  free(b);
  uintptr_t *bn = (uintptr_t *)b;
  if ((*bn ^ ((uintptr_t)bn >> 12)) != (uintptr_t)(a - 16)) SETUP_FAIL("b's next is not a's chunk");
  reached("b's next = a + 8, then malloc(0x28) until the fastbin is used");
  *bn = ((uintptr_t)bn >> 12) ^ ((uintptr_t)(a - 16) + 8);
  for (int i = 0; i < TCACHE_FILL + 1; i++) {
    void *volatile c = malloc(0x28);
    if (c == b) printf("malloc = b, from the fastbin\n");
  }
  return survived();
}
