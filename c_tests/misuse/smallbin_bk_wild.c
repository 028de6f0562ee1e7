// glibc: not detected (SIGSEGV)
// default: malloc(): corrupted bin link (points outside the heap)
// hardened: malloc(): corrupted bin link (points outside the heap)
/* With the tcache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0), s
 * (0x100 bytes) is alone in its small bin; a use-after-free write sets its
 * bk link to 0x4141414141414141.  malloc(0xf8) takes s from the small bin
 * (glibc reads bk->fd for its check, and faults). */
#define TEST_NAME "smallbin_bk_wild"
#include "misuse.h"

int main(int argc, char **argv) {
  (void)argc;
  restart_without_tcache(argv);
  misuse_start();
  char *s = lone_smallbin_chunk();
  uintptr_t *ls = (uintptr_t *)s;
  reached("s->bk = 0x4141414141414141, then malloc(0xf8)");
  ls[1] = 0x4141414141414141;
  char *c = malloc(0xf8);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
