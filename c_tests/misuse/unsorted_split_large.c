// glibc: malloc(): corrupted unsorted chunks
// ptmalloc-rs: malloc(): corrupted unsorted chunks
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
  char *big = malloc(0x528); /* 0x530 bytes: the large bin of 0x500..0x53f */
  if (!big || !malloc(0x18)) SETUP_FAIL("malloc failed");
  for (int i = 0; i < N; i++) {
    chunks[i] = malloc(0x88);
    if (!chunks[i] || !malloc(0x18)) SETUP_FAIL("malloc failed");
  }
  fill_tcache(0x88); /* after taking the chunks: not from the tcache */
  free(big);
  char *sorter = malloc(0x600); /* not from the bins: sorts big into its large bin */
  if (!sorter) SETUP_FAIL("malloc failed");
  uintptr_t *lb = (uintptr_t *)big;
  if (lb[2] != chunk_of_mem(big) || lb[3] != chunk_of_mem(big)) SETUP_FAIL("big is not alone in a large bin");
  for (int i = 0; i < N; i++) free(chunks[i]);
  char *last = chunks[N - 1];
  if (((uintptr_t *)last)[1] != ((uintptr_t *)chunks[0])[0]) /* both the bin's head */
    SETUP_FAIL("the chunks are not all in the unsorted bin");
  reached("newest unsorted chunk's bk = itself, then malloc(0x4f8)");
  ((uintptr_t *)last)[1] = chunk_of_mem(last);
  char *v = malloc(0x4f8);
  printf("malloc = %p\n", (void *)v);
  return survived();
}
