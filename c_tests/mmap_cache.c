/* mmap_cache: what becomes of a freed mmap'd block.  Blocks of 40 MiB
 * (above the largest dynamic mmap threshold, 32 MiB: always a mapping of
 * their own) are malloc'd, every page written, and freed.
 *  - default and hardened (glibc's policy): the free unmaps the block (its
 *    pages are gone: mincore fails on them), and the next block of the
 *    size is a new mapping whose pages fault in again (more than 5000
 *    minor faults to write its 10240 pages).
 *  - fast: the free keeps the mapping; the next block of nearly the same
 *    size (12 KiB more) reuses it, faulting fewer than 500 pages;
 *    malloc_trim(0) gives the kept mapping back (mincore fails).
 *  - every profile: a calloc after such a free reads all zero, and blocks
 *    keep their contents.
 * The profile is read from PTMALLOC_RS_PROFILE, as scripts/run-tests sets
 * it. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#define TEST_NAME "mmap_cache"
#include "testlib.h"

#define BIG ((size_t)40 << 20)

static long minflt(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_minflt;
}

/* Whether the page at p is still mapped. */
static int mapped(void *p) {
  unsigned char v;
  void *page = (void *)((uintptr_t)p & ~(uintptr_t)4095);
  return mincore(page, 4096, &v) == 0 || errno != ENOMEM;
}

/* Writes every page of a fresh block of n bytes; returns the faults it took. */
static long write_pages(unsigned char *p, size_t n, unsigned char v) {
  long before = minflt();
  for (size_t i = 0; i < n; i += 4096) p[i] = v;
  return minflt() - before;
}

int main(void) {
  const char *prof = getenv("PTMALLOC_RS_PROFILE");
  int fast = prof && strcmp(prof, "fast") == 0;

  unsigned char *a = malloc(BIG);
  if (!a) {
    FAIL("malloc(40 MiB) returned NULL");
    return test_finish();
  }
  write_pages(a, BIG, 1);
  void *a_page = a + BIG / 2;
  free(a);
  if (!fast && mapped(a_page)) FAIL("the freed 40 MiB block is still mapped (want it unmapped at once)");

  unsigned char *b = malloc(BIG + 12288);
  long faults = write_pages(b, BIG + 12288, 2);
  printf(TEST_NAME ": %ld minor faults writing the second block\n", faults);
  if (fast && faults >= 500) FAIL("fast: %ld faults writing a block that could reuse the freed mapping (want < 500)", faults);
  if (!fast && faults <= 5000) FAIL("%ld faults writing a new 40 MiB block (want > 5000: a new mapping)", faults);
  for (size_t i = 0; i < BIG; i += 4096)
    if (b[i] != 2) {
      FAIL("the second block lost its contents at %zu", i);
      break;
    }
  free(b);

  /* calloc after a free of a written block: zeros. */
  unsigned char *c = calloc(1, BIG);
  if (!c) FAIL("calloc(40 MiB) returned NULL");
  else {
    for (size_t i = 0; i < BIG; i += 512)
      if (c[i] != 0) {
        FAIL("calloc'd block not zero at %zu (%#x)", i, c[i]);
        break;
      }
    write_pages(c, BIG, 3);
    free(c);
  }

  /* malloc_trim gives a kept mapping back. */
  unsigned char *d = malloc(BIG);
  write_pages(d, BIG, 4);
  void *d_page = d + BIG / 2;
  free(d);
  malloc_trim(0);
  if (mapped(d_page)) FAIL("a freed 40 MiB block is still mapped after malloc_trim(0)");
  test_expect_reuse();
  return test_finish();
}
