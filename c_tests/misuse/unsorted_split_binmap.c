// glibc: malloc(): corrupted unsorted chunks 2
// hardened: malloc(): corrupted unsorted chunks 2
/* A use-after-free write sets the bk link of the newest of 10016 chunks in
 * the unsorted bin (0x90 bytes each, their tcache bin full) to the chunk
 * itself.  malloc(0x100) sorts at most 10000 unsorted chunks, so the newest
 * stay; its own small bin being empty, it takes the 0x530-byte chunk from the
 * next non-empty bin (found in the binmap) and puts the 0x420 bytes it does
 * not need at the front of the unsorted bin, whose first chunk's bk is not
 * the bin's head. */
#define TEST_NAME "unsorted_split_binmap"
#include "misuse.h"

#define N 10016

static char *chunks[N];

int main(void) {
  misuse_start();
  char *last = large_and_unsorted_chunks(chunks, N);
  reached("newest unsorted chunk's bk = itself, then malloc(0x100)");
  ((uintptr_t *)last)[1] = chunk_of_mem(last);
  char *v = malloc(0x100);
  printf("malloc = %p\n", (void *)v);
  return survived();
}
