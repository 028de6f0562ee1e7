// glibc: malloc(): smallbin double linked list corrupted
// hardened: malloc(): smallbin double linked list corrupted
/* With the tcache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0), s
 * (0x100 bytes) is alone in its small bin; a use-after-free write sets its
 * bk link to s itself.  malloc(0xf8) takes s from the small bin: s's bk->fd
 * is the bin's head, not s. */
#define TEST_NAME "smallbin_bk_corrupted"
#include "misuse.h"

int main(int argc, char **argv) {
  (void)argc;
  restart_without_tcache(argv);
  misuse_start();
  char *s = lone_smallbin_chunk();
  uintptr_t *ls = (uintptr_t *)s;
  reached("s->bk = s, then malloc(0xf8)");
  ls[1] = chunk_of_mem(s);
  char *c = malloc(0xf8);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
