// glibc: realloc(): invalid old size
// hardened: realloc(): invalid old size
/* o overflows by 8 bytes and fills the size word of p, the block after it,
 * with 'A's; realloc(p, 0x200) finds p bigger than all the arena's memory. */
#define TEST_NAME "realloc_old_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *o = malloc(0x18), *p = malloc(0x108);
  char *guard = malloc(0x18);
  if (!o || !p || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)p != (uintptr_t)o + chunk_size(o)) SETUP_FAIL("p does not follow o");
  reached("memset(o, 'A', 0x18 + 8) over p's size, then realloc(p, 0x200)");
  memset(o, 'A', opq(0x18 + 8));
  keep_stores(o);
  char *r = realloc(p, 0x200);
  printf("realloc = %p\n", (void *)r);
  return survived();
}
