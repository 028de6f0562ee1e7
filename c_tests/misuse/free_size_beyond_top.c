// glibc: double free or corruption (out)
// hardened: double free or corruption (out)
/* An underflow sets the size of a 0x510-byte block to reach 4 KiB past the
 * end of the heap (top's end); freeing it finds its next chunk outside the
 * arena. */
#define TEST_NAME "free_size_beyond_top"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  uintptr_t top = chunk_of_mem(guard) + chunk_size(guard);
  size_t ts = *(size_t *)(top + 8) & ~(size_t)7;
  if (!(*(size_t *)(top + 8) & 1) || ts < MINSIZE || (top + ts) % PAGE != 0)
    SETUP_FAIL("the chunk after guard is not top");
  size_t fake = top + ts - chunk_of_mem(a) + PAGE;
  reached("a's size = top's end - a + 4 KiB, then free(a)");
  ((size_t *)a)[-1] = fake | 1;
  free(a);
  return survived();
}
