// glibc: realloc(): invalid next size
// hardened: realloc(): invalid next size
/* p overflows by 8 bytes and fills the size word of q, the block after it,
 * with 'A's; realloc(p, 0x200) finds p's neighbour bigger than all the
 * arena's memory. */
#define TEST_NAME "realloc_next_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x108), *q = malloc(0x108);
  char *guard = malloc(0x18);
  if (!p || !q || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)q != (uintptr_t)p + chunk_size(p)) SETUP_FAIL("q does not follow p");
  reached("memset(p, 'A', 0x108 + 8) over q's size, then realloc(p, 0x200)");
  memset(p, 'A', opq(0x108 + 8));
  keep_stores(p);
  char *r = realloc(p, 0x200);
  printf("realloc = %p\n", (void *)r);
  return survived();
}
