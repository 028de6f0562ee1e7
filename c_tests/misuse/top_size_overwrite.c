// glibc: malloc(): corrupted top size
// hardened: malloc(): corrupted top size
/* House of force: an overflow from the last block before top sets top's size
 * to ~0, then a huge malloc would carve an arbitrary address out of "top".
 * The malloc finds top bigger than all the memory the arena has. */
#define TEST_NAME "top_size_overwrite"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x18); /* nothing is free yet: carved from top */
  if (!a) SETUP_FAIL("malloc failed");
  uintptr_t top = chunk_of_mem(a) + chunk_size(a);
  size_t *top_size = (size_t *)(top + 8);
  size_t ts = *top_size & ~(size_t)7;
  /* top ends the heap: a page boundary (main arena) */
  if (!(*top_size & 1) || ts < MINSIZE || (top + ts) % PAGE != 0)
    SETUP_FAIL("the chunk after a (size word %#zx) is not top", *top_size);
  reached("overwrite top's size with ~0, then malloc(16 MiB)");
  *top_size = ~(size_t)0;
  char *b = malloc(opq(16 * MiB));
  printf("malloc(16 MiB) = %p\n", (void *)b);
  return survived();
}
