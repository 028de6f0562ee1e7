// glibc: corrupted size vs. prev_size
// hardened: corrupted size vs. prev_size
/* b (0x510 bytes) is in the unsorted bin; a use-after-free write to its last
 * 8 bytes changes the prev_size of the chunk after it.  Freeing a, the chunk
 * before b, merges b forward and unlinks it: b's size no longer matches the
 * next chunk's prev_size. */
#define TEST_NAME "unlink_forward_prev_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500), *b = malloc(0x500);
  char *guard = malloc(0x18);
  if (!a || !b || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a) || (uintptr_t)guard != (uintptr_t)b + chunk_size(b))
    SETUP_FAIL("a, b, guard are not adjacent");
  free(b);
  if ((size_word(guard) & 1) || ((size_t *)guard)[-2] != chunk_size(b))
    SETUP_FAIL("b is not free after free(b)");
  reached("b's last word (the next chunk's prev_size) = 0x4242424242424242, then free(a)");
  *(size_t *)(b + 0x500) = 0x4242424242424242;
  free(a);
  return survived();
}
