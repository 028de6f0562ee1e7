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
 *    keep their contents; and with the address space limited to 48 MiB
 *    more than in use, a 20 MiB block after a freed 40 MiB one is made
 *    (the fast profile gives its kept mappings back when a request finds
 *    no memory).
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
#include <sys/wait.h>
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

/* In a child: RLIMIT_AS = VmSize + 48 MiB; malloc and free 40 MiB, then
 * malloc 20 MiB (too short to reuse the 40 MiB mapping). */
static void limited(void) {
  pid_t pid = fork();
  if (pid == 0) {
    long pages = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f || fscanf(f, "%ld", &pages) != 1) _exit(2);
    fclose(f);
    struct rlimit rl = {(rlim_t)pages * 4096 + (48u << 20), (rlim_t)pages * 4096 + (48u << 20)};
    if (setrlimit(RLIMIT_AS, &rl) != 0) _exit(2);
    unsigned char *p = malloc(BIG);
    if (!p) _exit(3);
    write_pages(p, BIG, 5);
    free(p);
    unsigned char *q = malloc((size_t)20 << 20);
    if (!q) _exit(4);
    write_pages(q, (size_t)20 << 20, 6);
    free(q);
    _exit(0);
  }
  char why[128];
  int rc = test_wait_child(pid, 30000, why, sizeof why);
  if (rc == 3) FAIL("under the limit: malloc(40 MiB) failed");
  else if (rc == 4) FAIL("under the limit: malloc(20 MiB) after freeing 40 MiB failed (kept mappings not given back)");
  else if (rc != 0) FAIL("the limited child %s", why);
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
  limited();
  test_expect_reuse();
  return test_finish();
}
