// glibc: not detected (exit 0)
// hardened: free(): double free detected in fastbin
/* Fastbin dup: with the tcache bin full, free a, b, a.  glibc only compares a
 * freed chunk with the fastbin's first entry (b here), so a ends up twice in
 * the fastbin and two later mallocs would return the same block. */
#define TEST_NAME "fastbin_dup"
#include "misuse.h"

int main(void) {
  misuse_start();
  char *a = malloc(0x28), *b = malloc(0x28);
  if (!a || !b) SETUP_FAIL("malloc failed");
  fill_tcache(0x28); /* after taking a and b: not from the tcache */
  free(a);
  free(b);
  reached("free(a) again, with b at the head of the fastbin");
  free(a);
  return survived();
}
