/* large: random sizes 128 KiB..4 MiB with a live set of LIVE blocks: the
 * mmap threshold, mmap/munmap (or mremap) versus reuse, and page faults.
 * Each new block gets one byte written in every 4 KiB page.
 *
 *   large OPS LIVE */
#include "bench.h"

int main(int argc, char **argv) {
  long ops = arg_or(argc, argv, 1, 20000);
  long live = arg_or(argc, argv, 2, 24);
  report_allocator();
  unsigned char **slot = calloc((size_t)live, sizeof *slot);
  size_t *len = calloc((size_t)live, sizeof *len);
  uint64_t st = seed_of(5, 6), sum = 0, bad = 0;
  for (long i = 0; i < ops; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)live);
    if (slot[k]) {
      bad += !stamp_check(slot[k], len[k], k);
      free(slot[k]);
    }
    size_t n = rnd_range(&st, 128 << 10, 4 << 20);
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
