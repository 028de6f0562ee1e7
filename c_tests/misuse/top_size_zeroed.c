// glibc: Fatal glibc error: malloc assertion failure in sysmalloc: (old_top == initial_top (av) && old_size == 0) || ((unsigned long) (old_size) >= MINSIZE && prev_inuse (old_top) && ((unsigned long) old_end & (pagesize - 1)) == 0)
/* An overflow zeroes the top chunk's size; the next request top cannot
 * serve reaches sysmalloc, whose assertion (glibc 2.36 keeps malloc.c's
 * asserts on) stops the program with glibc's "Fatal glibc error" line, in
 * both profiles, instead of growing a heap whose top is garbage. */
#define TEST_NAME "top_size_zeroed"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x18);
  if (!p) SETUP_FAIL("malloc failed");
  size_t *top_size = (size_t *)(p + 0x18); /* the chunk after p's is top */
  if (*top_size < 0x1000 || !(*top_size & 1)) SETUP_FAIL("p is not followed by top (size word %#zx)", *top_size);
  reached("top's size = 0, then malloc(0x1000)");
  *top_size = 0;
  char *q = malloc(0x1000);
  printf("malloc = %p\n", (void *)q);
  return survived();
}
