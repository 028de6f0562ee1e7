/* small: malloc/free pairs of one fixed small size at a time (16, 64 and
 * 256 bytes), the allocator's fast path and nothing else: each block is
 * written and read once, then freed at once.  Reports ns per pair for each
 * size (measured inside the program) besides the whole run's time.
 *
 *   small PAIRS_PER_SIZE */
#include "bench.h"

int main(int argc, char **argv) {
  long n = arg_or(argc, argv, 1, 10000000);
  static const size_t sizes[] = {16, 64, 256};
  uint64_t sum = 0, bad = 0;
  report_allocator();
  for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
    size_t sz = sizes[k];
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
      unsigned char *p = xmalloc(sz);
      p[0] = (unsigned char)i;
      p[sz - 1] = (unsigned char)(i >> 8);
      sum += p[0] + p[sz - 1];
      free(p);
    }
    double t = now_s() - t0;
    char name[32];
    snprintf(name, sizeof name, "pair_%zu", sz);
    report_metric(name, n ? t * 1e9 / (double)n : 0, "ns");
    sum = sum * 31 + sz;
  }
  report_checksum(sum, bad);
  return 0;
}
