/* realloc: growth by realloc.
 *  1. strings: STRINGS live strings; each step appends 1..40 characters to a
 *     random one (realloc to the exact new length + 1), and a string that has
 *     passed its random limit (256 B..16 KiB) is hashed, freed and restarted.
 *  2. vectors: 4 vectors grown in turn by a factor of 1.5 (16 B up to a random
 *     64 KiB..16 MiB), the new part filled, then hashed, freed and restarted:
 *     copies, in-place growth, and mremap for the big ones.
 * Reports ns per string append and ms for the vector phase.
 *
 *   realloc APPENDS STRINGS VECTOR_ROUNDS */
#include "bench.h"

static uint64_t hash(const unsigned char *p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; i += 61) h = (h ^ p[i]) * 0x100000001B3ull;
  return h ^ n;
}

int main(int argc, char **argv) {
  long appends = arg_or(argc, argv, 1, 5000000);
  long nstr = arg_or(argc, argv, 2, 2000);
  long vrounds = arg_or(argc, argv, 3, 200);
  report_allocator();
  uint64_t st = seed_of(7, 8), sum = 0, bad = 0;

  char **s = calloc((size_t)nstr, sizeof *s);
  size_t *len = calloc((size_t)nstr, sizeof *len), *lim = calloc((size_t)nstr, sizeof *lim);
  double t0 = now_s();
  for (long i = 0; i < appends; i++) {
    size_t k = (size_t)(rnd(&st) % (uint64_t)nstr);
    size_t m = rnd_range(&st, 1, 40);
    if (!s[k]) lim[k] = rnd_range(&st, 256, 16384);
    char *p = realloc(s[k], len[k] + m + 1);
    if (!p) exit(3);
    if (len[k] && p[0] != (char)('a' + k % 26)) bad++;
    for (size_t j = 0; j < m; j++) p[len[k] + j] = (char)('a' + (k + len[k] + j) % 26);
    len[k] += m;
    p[len[k]] = 0;
    s[k] = p;
    if (len[k] > lim[k]) {
      sum = hash((unsigned char *)p, len[k], sum);
      free(p);
      s[k] = NULL;
      len[k] = 0;
    }
  }
  double t1 = now_s();
  for (long k = 0; k < nstr; k++)
    if (s[k]) {
      sum = hash((unsigned char *)s[k], len[k], sum);
      free(s[k]);
    }
  report_metric("string_append", appends ? (t1 - t0) * 1e9 / (double)appends : 0, "ns");

  enum { NV = 4 };
  unsigned char *v[NV] = {0};
  size_t cap[NV] = {0}, target[NV] = {0};
  long done = 0;
  t0 = now_s();
  while (done < vrounds) {
    for (int k = 0; k < NV; k++) {
      if (!v[k]) target[k] = rnd_range(&st, 64 << 10, 16 << 20);
      size_t nc = cap[k] ? cap[k] + cap[k] / 2 : 16;
      unsigned char *p = realloc(v[k], nc);
      if (!p) exit(3);
      if (cap[k] && (p[0] != (unsigned char)k || p[cap[k] - 1] != (unsigned char)(cap[k] + k)))
        bad++;
      memset(p + cap[k], (int)(nc + k), nc - cap[k]);
      p[0] = (unsigned char)k;
      v[k] = p;
      cap[k] = nc;
      if (nc >= target[k]) {
        sum = hash(p, nc, sum);
        free(p);
        v[k] = NULL;
        cap[k] = 0;
        done++;
      }
    }
  }
  for (int k = 0; k < NV; k++) free(v[k]);
  report_metric("vectors", (now_s() - t0) * 1e3, "ms");
  report_checksum(sum, bad);
  return 0;
}
