/* medium: random sizes 1..64 KiB with a live set of LIVE blocks; each new
 * block gets one byte written in every 4 KiB page (a program using it would
 * touch it), its stamp is checked when it is freed.
 *
 *   medium OPS LIVE */
#include "bench.h"

int main(int argc, char **argv) {
  long ops = arg_or(argc, argv, 1, 2000000);
  long live = arg_or(argc, argv, 2, 1000);
  report_allocator();
  unsigned char **slot = calloc((size_t)live, sizeof *slot);
  size_t *len = calloc((size_t)live, sizeof *len);
  uint64_t st = seed_of(3, 4), sum = 0, bad = 0;
  for (long i = 0; i < ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)live);
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], k);
      free(slot[k]);
    }
    size_t n = rnd_range(&st, 1024, 65536);
    slot[k] = xmalloc(n);
    len[k] = n;
    touch_pages(slot[k], n, (unsigned char)i);
    stamp_put(slot[k], n, k);
    sum += n;
  }
  for (long k = 0; k < live; k++)
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], (uint64_t)k);
      free(slot[k]);
    }
  report_checksum(sum, bad);
  return 0;
}
