// glibc: corrupted size vs. prev_size in fastbins
// hardened: corrupted size vs. prev_size in fastbins
/* f (a 0x30-byte chunk, its tcache bin full) is in a fastbin, after p (0x510
 * bytes, zeroed) in the unsorted bin, so f's PREV_INUSE is clear.  A
 * use-after-free write to p's last word sets f's prev_size to 0x400; a large
 * malloc consolidates the fastbins and merges f backward with the "chunk"
 * 0x400 bytes before it, inside p, whose size is 0. */
#define TEST_NAME "fastbin_consolidate_prev_size"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *p = malloc(0x500), *f = malloc(0x28);
  char *guard = malloc(0x18);
  if (!p || !f || !guard) SETUP_FAIL("malloc failed");
  if ((uintptr_t)f != (uintptr_t)p + chunk_size(p)) SETUP_FAIL("f does not follow p");
  memset(p, 0, 0x500);
  keep_stores(p);
  fill_tcache(0x28); /* after taking f: not from the tcache */
  free(f);
  free(p);
  if (size_word(f) != 0x30 || ((size_t *)f)[-2] != 0x510)
    SETUP_FAIL("f's header is %#zx/%#zx, not a fastbin chunk after a free p",
               ((size_t *)f)[-2], size_word(f));
  reached("f's prev_size = 0x400, then malloc(0x600), which consolidates the fastbins");
  *(size_t *)(p + 0x500) = 0x400;
  char *big = malloc(0x600);
  printf("malloc = %p\n", (void *)big);
  return survived();
}
