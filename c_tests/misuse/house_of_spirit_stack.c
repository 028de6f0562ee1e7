// glibc: not detected (exit 0)
// hardened: free(): invalid pointer
/* House of spirit: a fake chunk on the stack (size 0x40, next chunk's size
 * plausible) is freed; glibc puts it in the tcache and the next malloc of its
 * size returns the stack. */
#define TEST_NAME "house_of_spirit_stack"
#include "misuse.h"

int main(void) {
  misuse_start();
  free(malloc(16)); /* the arena and tcache are set up */
  _Alignas(16) size_t fake[16] = {0};
  fake[1] = 0x40;          /* size 0x40 */
  fake[8 + 1] = 0x20 | 1;  /* the next chunk, at fake + 0x40 */
  keep_stores(fake);
  reached("free(fake chunk on the stack)");
  free(&fake[2]);
  char *q = malloc(0x38);
  printf("malloc(0x38) = %s\n", q == (char *)&fake[2] ? "the stack chunk" : "another block");
  return survived();
}
