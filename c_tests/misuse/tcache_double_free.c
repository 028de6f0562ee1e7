// glibc: free(): double free detected in tcache 2
// hardened: free(): double free detected in tcache 2
/* The same block freed twice in a row, into the tcache: the second free finds
 * the tcache key in the block and the block in its bin. */
#define TEST_NAME "tcache_double_free"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x40);
  if (!a) SETUP_FAIL("malloc failed");
  free(a);
  reached("free(a) a second time");
  free(a);
  return survived();
}
