// glibc: double free or corruption (fasttop)
// hardened: double free or corruption (fasttop)
/* With the tcache bin full, the same block freed twice in a row goes to the
 * fastbin twice: the second free finds it at the head of the bin. */
#define TEST_NAME "fastbin_double_free_top"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x28);
  if (!a) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a: not from the tcache */
  free(a);
  reached("free(a) a second time");
  free(a);
  return survived();
}
