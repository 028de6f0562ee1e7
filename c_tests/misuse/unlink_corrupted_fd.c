// glibc: corrupted double-linked list
// hardened: corrupted double-linked list
/* A use-after-free write sets the fd link of a chunk in the unsorted bin (a,
 * 0x510 bytes) to a itself; freeing b, the chunk after a, merges it with a
 * and unlinks a, whose fd->bk is the bin's head, not a. */
#define TEST_NAME "unlink_corrupted_fd"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500), *b = malloc(0x500);
  char *guard = malloc(0x18);
  if (!a || !b || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  free(a);
  if (size_word(b) & 1) SETUP_FAIL("a is not free after free(a)");
  reached("a->fd = a, then free(b), which merges a");
  ((uintptr_t *)a)[0] = chunk_of_mem(a);
  free(b);
  return survived();
}
