// glibc: not detected (exit 0)
// hardened: realloc(): invalid pointer
/* realloc() of a fake chunk on the stack with plausible headers (size 0x50,
 * next chunk's size 0x20): glibc takes it for a main-arena chunk big enough
 * already and hands the stack pointer back. */
#define TEST_NAME "realloc_stack_fake_chunk"
#include "misuse.h"

int main(void) {
  misuse_start();
  free(malloc(16)); /* the arena is set up */
  _Alignas(16) size_t fake[16] = {0};
  fake[1] = 0x50 | 1;      /* size 0x50, PREV_INUSE */
  fake[10 + 1] = 0x20 | 1; /* the next chunk, at fake + 0x50 */
  keep_stores(fake);
  reached("realloc(fake chunk on the stack, 0x40)");
  char *q = realloc(&fake[2], 0x40);
  printf("realloc = %s\n", q == (char *)&fake[2] ? "the stack chunk" : "another block");
  return survived();
}
