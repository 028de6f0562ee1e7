// glibc: tcache_thread_shutdown(): unaligned tcache chunk detected
// hardened: tcache_thread_shutdown(): unaligned tcache chunk detected
/* A thread's tcache poisoned with a misaligned next pointer, found when the
 * thread exits and its cache is emptied: free b then a (a's next is b), make
 * a's safe-linked next reveal to b + 8, and let the thread end. */
#define TEST_NAME "tcache_shutdown_misaligned"
#include "misuse.h"

static void *thread_main(void *arg) {
  (void)arg;
  char *a = malloc(0x48), *b = malloc(0x48);
  if (!a || !b) SETUP_FAIL("malloc failed");
  free(b);
  free(a);
  uintptr_t stored = ((uintptr_t)a >> 12) ^ (uintptr_t)b;
  if (*(uintptr_t *)a != stored) SETUP_FAIL("a's next is not the safe-linked b");
  *(uintptr_t *)a = ((uintptr_t)a >> 12) ^ ((uintptr_t)b + 8);
  reached("the thread exits with a poisoned tcache");
  return NULL;
}

int main(void) {
  misuse_start();
  in_new_thread(thread_main);
  return survived();
}
