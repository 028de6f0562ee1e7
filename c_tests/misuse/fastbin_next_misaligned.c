// glibc: malloc(): unaligned fastbin chunk detected
// hardened: malloc(): unaligned fastbin chunk detected
/* With threads running, a fastbin chunk's next pointer poisoned with a
 * misaligned value is caught when the chunk before it is taken: a and b go
 * to the fastbin (tcache off: GLIBC_TUNABLES=glibc.malloc.tcache_count=0),
 * b's safe-linked next is made to reveal to a + 8, and malloc takes b. */
#define TEST_NAME "fastbin_next_misaligned"
#include "misuse.h"
#include <pthread.h>
#include <unistd.h>

static void *idle(void *arg) {
  (void)arg;
  pause();
  return NULL;
}

int main(int argc, char **argv) {
  (void)argc;
  restart_without_tcache(argv);
  misuse_start();
  pthread_t t;
  if (pthread_create(&t, NULL, idle, NULL)) SETUP_FAIL("pthread_create failed");
  char *b;
  char *a = fastbin_pair(&b);
  *(uintptr_t *)b = ((uintptr_t)b >> 12) ^ ((uintptr_t)(a - 16) + 8);
  reached("malloc takes b, whose next is misaligned");
  void *volatile c = malloc(0x28);
  (void)c;
  return survived();
}
