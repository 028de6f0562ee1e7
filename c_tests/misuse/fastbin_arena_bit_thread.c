// glibc: Fatal glibc error: malloc assertion failure in __libc_malloc: !victim || chunk_is_mmapped (mem2chunk (victim)) || ar_ptr == arena_for_chunk (mem2chunk (victim))
/* In a second thread (its own arena), a chunk at the head of a fastbin
 * loses the NON_MAIN_ARENA bit of its size word (a write after free). The
 * fastbin's size check masks the flag bits, so malloc hands the chunk out;
 * it now claims the main arena, and glibc's assertion that it names the
 * arena that served it stops the program, as both profiles do. */
#define TEST_NAME "fastbin_arena_bit_thread"
#include "misuse.h"

static void *thread_main(void *arg) {
  (void)arg;
  char *p[9];
  for (int i = 0; i < 9; i++)
    if (!(p[i] = malloc(0x28))) SETUP_FAIL("malloc failed");
  if (!(size_word(p[8]) & 4)) SETUP_FAIL("the thread's chunks are not in a thread arena");
  for (int i = 0; i < 9; i++) free(p[i]); /* 7 in the tcache, 2 in a fastbin */
  for (int i = 0; i < 7; i++)
    if (malloc(0x28) != p[6 - i]) SETUP_FAIL("the tcache did not give back its 7 chunks");
  reached("p[8]'s size word &= ~NON_MAIN_ARENA, then malloc(0x28) from the fastbin");
  ((size_t *)p[8])[-1] &= ~opq(4);
  keep_stores(p[8]);
  char *q = malloc(0x28);
  printf("malloc = %p\n", (void *)q);
  return NULL;
}

int main(void) {
  misuse_start();
  in_new_thread(thread_main);
  return survived();
}
