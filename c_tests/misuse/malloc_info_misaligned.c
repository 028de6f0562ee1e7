// glibc: __malloc_info(): unaligned fastbin chunk detected
// hardened: __malloc_info(): unaligned fastbin chunk detected
/* a (0x30 bytes, its tcache bin full) is at the head of its fastbin; a
 * use-after-free write makes its safe-linked next reveal to a + 8.
 * malloc_info() counts the fastbin's chunks and finds a misaligned one.  (Its
 * output goes to /dev/null through a static buffer: no stdio allocation.) */
#define TEST_NAME "malloc_info_misaligned"
#include "misuse.h"

static char buf[1 << 16];

int main(void) {
  misuse_start();
  FILE *out = fopen("/dev/null", "w");
  if (!out || setvbuf(out, buf, _IOFBF, sizeof buf)) SETUP_FAIL("cannot open /dev/null");
  char *a = malloc(0x28);
  char *guard = malloc(0x18);
  if (!a || !guard) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a: not from the tcache */
  free(a);
  if (!(size_word(guard) & 1)) SETUP_FAIL("a is not in a fastbin");
  reached("a's next = a + 8, then malloc_info()");
  *(uintptr_t *)a = ((uintptr_t)a >> 12) ^ ((uintptr_t)(a - 16) + 8);
  malloc_info(0, out);
  fclose(out);
  return survived();
}
