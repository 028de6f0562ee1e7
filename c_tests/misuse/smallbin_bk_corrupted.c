// glibc: malloc(): smallbin double linked list corrupted
// ptmalloc-rs: malloc(): smallbin double linked list corrupted
/* With the tcache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0), s
 * (0x100 bytes) is alone in its small bin; a use-after-free write sets its
 * bk link to s itself.  malloc(0xf8) takes s from the small bin: s's bk->fd
 * is the bin's head, not s. */
#define TEST_NAME "smallbin_bk_corrupted"
#include "misuse.h"
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  if (!getenv("GLIBC_TUNABLES")) {
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
    execv("/proc/self/exe", argv);
    SETUP_FAIL("execv failed");
  }
  misuse_start();
  char *s = malloc(0xf8);
  char *guard = malloc(0x18);
  if (!s || !guard) SETUP_FAIL("malloc failed");
  free(s);
  char *big = malloc(0x300); /* not from the bins: sorts s into its small bin */
  if (!big) SETUP_FAIL("malloc failed");
  uintptr_t *ls = (uintptr_t *)s;
  if ((size_word(guard) & 1) || ls[0] != ls[1]) SETUP_FAIL("s is not alone in a bin (tcache still on?)");
  reached("s->bk = s, then malloc(0xf8)");
  ls[1] = chunk_of_mem(s);
  char *c = malloc(0xf8);
  printf("malloc = %p\n", (void *)c);
  return survived();
}
