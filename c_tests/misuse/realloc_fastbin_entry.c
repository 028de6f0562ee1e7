// glibc: invalid fastbin entry (free)
// hardened: invalid fastbin entry (free)
/* x (a 0x30-byte chunk, its tcache bin full) is at the head of its fastbin;
 * p, the 0x60-byte block before it, writes 8 bytes past its end and sets x's
 * size to 0x41.  realloc(p, 0x28) shrinks p and frees the 0x30-byte rest
 * (arena locked) into the same fastbin, whose old head now has the size of
 * another fastbin. */
#define TEST_NAME "realloc_fastbin_entry"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x58), *x = malloc(0x28);
  char *guard = malloc(0x18);
  if (!p || !x || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)x != (uintptr_t)p + chunk_size(p) || chunk_size(p) != 0x60)
    SETUP_FAIL("x does not follow a 0x60-byte p");
  fill_tcache(0x28); /* after taking x: not from the tcache */
  free(x);
  reached("x's size = 0x41 (p overflows by 8), then realloc(p, 0x28)");
  *(size_t *)(p + 0x58) = 0x41;
  char *q = realloc(p, 0x28);
  printf("realloc = %p\n", (void *)q);
  return survived();
}
