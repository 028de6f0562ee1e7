// glibc: double free or corruption (!prev)
// hardened: double free or corruption (!prev)
/* A chunk too big for the tcache (0x510 bytes), freed twice: the first free
 * puts it in the unsorted bin, the second finds the next chunk's PREV_INUSE
 * clear. */
#define TEST_NAME "unsorted_double_free"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x500);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  free(a);
  reached("free(a) again, a in the unsorted bin");
  free(a);
  return survived();
}
