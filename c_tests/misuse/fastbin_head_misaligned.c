// glibc: malloc(): unaligned fastbin chunk detected 2
// ptmalloc-rs: malloc(): unaligned fastbin chunk detected 2
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
  if (!getenv("GLIBC_TUNABLES")) {
    setenv("GLIBC_TUNABLES", "glibc.malloc.tcache_count=0", 1);
    execv("/proc/self/exe", argv);
    SETUP_FAIL("execv failed");
  }
  misuse_start();
  char *a = malloc(0x28), *b = malloc(0x28);
  if (!a || !b || !malloc(24)) SETUP_FAIL("malloc failed");
  free(a);
  free(b);
  uintptr_t stored = ((uintptr_t)b >> 12) ^ (uintptr_t)(a - 16);
  if (*(uintptr_t *)b != stored) SETUP_FAIL("b's next is not the safe-linked a (tcache still on?)");
  reached("b's next = a + 8, then malloc twice");
  *(uintptr_t *)b = ((uintptr_t)b >> 12) ^ ((uintptr_t)(a - 16) + 8);
  void *volatile c = malloc(0x28);
  void *volatile d = malloc(0x28);
  (void)c;
  (void)d;
  return survived();
}
