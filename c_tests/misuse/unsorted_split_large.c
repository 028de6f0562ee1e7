// glibc: malloc(): corrupted unsorted chunks
// hardened: malloc(): corrupted unsorted chunks
/* A use-after-free write sets the bk link of the newest of 10016 chunks in
 * the unsorted bin (0x90 bytes each, their tcache bin full) to the chunk
 * itself.  malloc(0x4f8) sorts at most 10000 unsorted chunks, so the newest
 * stay, then takes a 0x530-byte chunk from its large bin and puts the 0x30
 * bytes it does not need at the front of the unsorted bin, whose first
 * chunk's bk is not the bin's head. */
#define TEST_NAME "unsorted_split_large"
#include "misuse.h"

#define N 10016

static char *chunks[N];

int main(void) {
  misuse_start();
  char *last = large_and_unsorted_chunks(chunks, N);
  reached("newest unsorted chunk's bk = itself, then malloc(0x4f8)");
  ((uintptr_t *)last)[1] = chunk_of_mem(last);
  char *v = malloc(0x4f8);
  printf("malloc = %p\n", (void *)v);
  return survived();
}
