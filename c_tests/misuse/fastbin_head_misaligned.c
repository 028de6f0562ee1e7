// glibc: malloc(): unaligned fastbin chunk detected 2
// hardened: malloc(): unaligned fastbin chunk detected 2
/* With the tcache off (GLIBC_TUNABLES=glibc.malloc.tcache_count=0), a and b
 * go to the fastbin (b -> a); a use-after-free write makes b's safe-linked
 * next reveal to a + 8.  The first malloc takes b (single-threaded glibc does
 * not check the link it follows) and leaves a + 8 at the head of the
 * fastbin; the second finds the head misaligned. */
#define TEST_NAME "fastbin_head_misaligned"
#include "misuse.h"
#include <unistd.h>

int main(int argc, char **argv) {
  (void)argc;
  restart_without_tcache(argv);
  misuse_start();
  char *b;
  char *a = fastbin_pair(&b);
  reached("b's next = a + 8, then malloc twice");
  *(uintptr_t *)b = ((uintptr_t)b >> 12) ^ ((uintptr_t)(a - 16) + 8);
  void *volatile c = malloc(0x28);
  void *volatile d = malloc(0x28);
  (void)c;
  (void)d;
  return survived();
}
