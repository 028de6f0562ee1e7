// glibc: malloc(): memory corruption (fast)
// hardened: malloc(): memory corruption (fast)
/* With the tcache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0), a
 * (0x30 bytes) is in its fastbin; p, the block before it, overflows by 8
 * bytes and sets a's size to 0x41.  malloc(0x28) takes a from the 0x30
 * fastbin and finds the size of another fastbin. */
#define TEST_NAME "fastbin_size_mismatch"
#include "misuse.h"
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  restart_without_tcache(argv);
  misuse_start();
  char *p = malloc(0x18), *a = malloc(0x28);
  char *guard = malloc(0x18);
  if (!p || !a || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)a != (uintptr_t)p + chunk_size(p)) SETUP_FAIL("a does not follow p");
  free(a);
  if (*(uintptr_t *)a != ((uintptr_t)a >> 12)) SETUP_FAIL("a is not alone in its fastbin (tcache still on?)");
  reached("a's size = 0x41 (p overflows by 8), then malloc(0x28)");
  *(size_t *)(p + 0x18) = 0x41;
  char *c = malloc(0x28);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
