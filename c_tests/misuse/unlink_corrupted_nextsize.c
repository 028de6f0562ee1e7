// glibc: corrupted double-linked list (not small)
// hardened: corrupted double-linked list (not small)
/* A 0x510-byte chunk a sits alone in its large bin (fd_nextsize and
 * bk_nextsize pointing to itself); a use-after-free write points its
 * fd_nextsize to a zeroed block z.  Freeing b, the chunk after a, merges it
 * with a and unlinks a: z's bk_nextsize is not a. */
#define TEST_NAME "unlink_corrupted_nextsize"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500), *b = malloc(0x500);
  char *z = malloc(0x48);
  if (!a || !b || !z) SETUP_FAIL("malloc failed");
  if ((uintptr_t)b != (uintptr_t)a + chunk_size(a)) SETUP_FAIL("b does not follow a");
  memset(z, 0, 0x48);
  keep_stores(z);
  free(a);
  char *big = malloc(0x600); /* not from the bins: sorts a into its large bin */
  if (!big) SETUP_FAIL("malloc failed");
  uintptr_t *la = (uintptr_t *)a;
  if (la[2] != chunk_of_mem(a) || la[3] != chunk_of_mem(a))
    SETUP_FAIL("a is not alone in a large bin (fd_nextsize %#lx)", (unsigned long)la[2]);
  reached("a->fd_nextsize = z, then free(b), which merges a");
  la[2] = chunk_of_mem(z);
  free(b);
  return survived();
}
