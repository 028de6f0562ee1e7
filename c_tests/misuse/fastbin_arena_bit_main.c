// glibc: not detected (SIGSEGV)
// default: Fatal glibc error: malloc assertion failure in __libc_malloc: !victim || chunk_is_mmapped (mem2chunk (victim)) || &main_arena == arena_for_chunk (mem2chunk (victim))
/* A chunk at the head of a main-arena fastbin gets the NON_MAIN_ARENA bit
 * in its size word (a write after free). The fastbin's size check masks the
 * flag bits, so malloc hands the chunk out; glibc then asserts that the
 * chunk names the arena that served it, and arena_for_chunk looks for a
 * thread heap's header at the 64 MiB boundary below the chunk: nothing is
 * mapped there, and glibc faults inside the allocator. Both profiles stop
 * with the assertion's line instead. */
#define TEST_NAME "fastbin_arena_bit_main"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p[9];
  for (int i = 0; i < 9; i++)
    if (!(p[i] = malloc(0x28))) SETUP_FAIL("malloc failed");
  for (int i = 0; i < 9; i++) free(p[i]); /* 7 in the tcache, 2 in a fastbin */
  for (int i = 0; i < 7; i++)
    if (malloc(0x28) != p[6 - i]) SETUP_FAIL("the tcache did not give back its 7 chunks");
  reached("p[8]'s size word |= NON_MAIN_ARENA, then malloc(0x28) from the fastbin");
  ((size_t *)p[8])[-1] |= opq(4);
  keep_stores(p[8]);
  char *q = malloc(0x28);
  printf("malloc = %p\n", (void *)q);
  return survived();
}
