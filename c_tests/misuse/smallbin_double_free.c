// glibc: double free or corruption (!prev)
// hardened: double free or corruption (!prev)
/* A 0x100-byte chunk freed with its tcache bin full goes to the unsorted bin;
 * a bigger malloc sorts it into its small bin; freeing it again finds the next
 * chunk's PREV_INUSE clear. */
#define TEST_NAME "smallbin_double_free"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0xf8);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  fill_tcache(0xf8); /* after taking a: not from the tcache */
  free(a);
  char *big = malloc(0x300); /* not from the bins: sorts a into a small bin */
  if (!big) SETUP_FAIL("malloc failed");
  if (size_word(guard) & 1) SETUP_FAIL("a is not free after free(a)");
  reached("free(a) again, a in a small bin");
  free(a);
  return survived();
}
