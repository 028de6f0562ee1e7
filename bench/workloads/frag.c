/* frag: fragmentation.  Allocate N blocks of 1000 bytes (all written), free
 * 90 % of them at random (the survivors are scattered over the whole heap),
 * then allocate blocks of 1500..2500 bytes (all written) until as many bytes
 * are live again as were freed.  A perfect allocator would put them in the
 * freed space; how much it cannot is the growth from rss_after_free to
 * rss_final.  Prints VmRSS (from /proc/self/status) after each phase; the
 * script reports the peak too.
 *
 *   frag N */
#include "bench.h"

int main(int argc, char **argv) {
  long n = arg_or(argc, argv, 1, 100000);
  report_allocator();
  uint64_t st = seed_of(9, 10), sum = 0, bad = 0;
  unsigned char **a = calloc((size_t)n, sizeof *a);
  for (long i = 0; i < n; i++) {
    a[i] = xmalloc(1000);
    memset(a[i], (int)i, 1000);
    stamp_put(a[i], 1000, (uint64_t)i);
  }
  report_metric("rss_allocated", vm_rss_kib() / 1024.0, "MiB");
  /* Free a random 90 %: shuffle the indexes, free the first 90 %. */
  long *idx = calloc((size_t)n, sizeof *idx);
  for (long i = 0; i < n; i++) idx[i] = i;
  for (long i = n - 1; i > 0; i--) {
    long j = (long)(rnd(&st) % (uint64_t)(i + 1)), t = idx[i];
    idx[i] = idx[j];
    idx[j] = t;
  }
  long nfree = n / 10 * 9;
  size_t freed = 0;
  for (long i = 0; i < nfree; i++) {
    long k = idx[i];
    bad += !stamp_check(a[k], 1000, (uint64_t)k);
    free(a[k]);
    a[k] = NULL;
    freed += 1000;
  }
  report_metric("rss_after_free", vm_rss_kib() / 1024.0, "MiB");
  /* Bigger blocks, as many bytes as were freed. */
  long cap = n, nb = 0;
  unsigned char **b = calloc((size_t)cap, sizeof *b);
  size_t *blen = calloc((size_t)cap, sizeof *blen);
  for (size_t got = 0; got < freed && nb < cap; nb++) {
    size_t sz = rnd_range(&st, 1500, 2500);
    b[nb] = xmalloc(sz);
    blen[nb] = sz;
    memset(b[nb], (int)nb, sz);
    stamp_put(b[nb], sz, (uint64_t)nb);
    got += sz;
    sum += sz;
  }
  report_metric("rss_final", vm_rss_kib() / 1024.0, "MiB");
  for (long i = 0; i < nb; i++) {
    bad += !stamp_check(b[i], blen[i], (uint64_t)i);
    free(b[i]);
  }
  for (long i = 0; i < n; i++)
    if (a[i]) {
      bad += !stamp_check(a[i], 1000, (uint64_t)i);
      free(a[i]);
    }
  report_checksum(sum * 31 + (uint64_t)nb, bad);
  return 0;
}
