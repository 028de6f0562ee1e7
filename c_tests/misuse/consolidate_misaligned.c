// glibc: malloc_consolidate(): unaligned fastbin chunk detected
// hardened: malloc_consolidate(): unaligned fastbin chunk detected
/* a (0x30 bytes, its tcache bin full) is at the head of its fastbin; a
 * use-after-free write makes its safe-linked next reveal to a + 8.  A large
 * malloc consolidates the fastbins, follows a's link and finds a misaligned
 * chunk. */
#define TEST_NAME "consolidate_misaligned"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x28);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a: not from the tcache */
  free(a);
  if (!(size_word(guard) & 1)) SETUP_FAIL("a is not in a fastbin");
  reached("a's next = a + 8, then malloc(0x600)");
  *(uintptr_t *)a = ((uintptr_t)a >> 12) ^ ((uintptr_t)(a - 16) + 8);
  char *c = malloc(0x600);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
