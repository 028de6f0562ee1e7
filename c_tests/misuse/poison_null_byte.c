// glibc: corrupted size vs. prev_size while consolidating
// hardened: corrupted size vs. prev_size while consolidating
/* Poison null byte: memset(a, 0, n + 1) on a block of n usable bytes clears
 * the low byte of the next chunk's size (0x501 -> 0x500: PREV_INUSE gone) and
 * its prev_size (0).  Freeing that chunk (too big for the tcache) tries to
 * merge it with a "free" previous chunk of size 0: the chunk itself, whose
 * size is not 0. */
#define TEST_NAME "poison_null_byte"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x108); /* 0x110-byte chunk, 0x108 usable */
  char *b = malloc(0x4f8); /* 0x500-byte chunk */
  char *guard = malloc(0x18);
  if (!a || !b || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a) || size_word(b) != 0x501)
    SETUP_FAIL("b does not follow a, or its size word is %#zx", size_word(b));
  reached("memset(a, 0, 0x108 + 1), then free(b)");
  memset(a, 0, opq(0x108 + 1));
  keep_stores(a);
  free(b);
  return survived();
}
