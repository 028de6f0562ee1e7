/* heap_shrink_maps: a thread heap shrinks as glibc 2.36's does.  When a
 * thread frees a big block at the end of its heap, the heap gives the pages
 * back with MADV_DONTNEED and the tail stays read-write in /proc/PID/maps
 * (unless /proc/sys/vm/overcommit_memory is 2, when it is mapped PROT_NONE
 * again); growing back then needs no mprotect.
 * Guards against: a heap that mprotects its tail PROT_NONE on every trim
 * (thousands of mprotect calls in a loop of big blocks where glibc makes a
 * few dozen), and a trim that does not give the pages back (RSS). */
#define _GNU_SOURCE
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#define TEST_NAME "heap_shrink_maps"
#include "testlib.h"

#define BIG (8u << 20)

/* The read-write bytes and the resident KiB of the mapping that holds
 * `addr`'s 64 MiB-aligned heap start (from /proc/self/smaps, read with
 * open/read into a static buffer: stdio would malloc a FILE in this very
 * heap and keep the freed block from reaching the top). */
static char smaps[1 << 20];
static void heap_rw(uintptr_t addr, size_t *rw, long *rss_kib) {
  uintptr_t heap = addr & ~((uintptr_t)(64u << 20) - 1);
  *rw = 0;
  *rss_kib = -1;
  int fd = open("/proc/self/smaps", O_RDONLY);
  if (fd < 0) return;
  size_t n = 0;
  ssize_t k;
  while (n + 1 < sizeof smaps && (k = read(fd, smaps + n, sizeof smaps - 1 - n)) > 0) n += (size_t)k;
  close(fd);
  smaps[n] = 0;
  int in_it = 0;
  for (char *line = smaps; line && *line;) {
    char *end = strchr(line, '\n');
    if (end) *end = 0;
    unsigned long lo, hi;
    char perms[8];
    long kib;
    if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3) {
      in_it = lo == heap && perms[0] == 'r' && perms[1] == 'w';
      if (in_it) *rw = hi - lo;
    } else if (in_it && sscanf(line, "Rss: %ld kB", &kib) == 1) {
      *rss_kib = kib;
    }
    line = end ? end + 1 : NULL;
  }
}

static int strict_overcommit(void) {
  int fd = open("/proc/sys/vm/overcommit_memory", O_RDONLY);
  char c = 0;
  if (fd >= 0) {
    if (read(fd, &c, 1) != 1) c = 0;
    close(fd);
  }
  return c == '2';
}

static void *worker(void *arg) {
  (void)arg;
  void *small = malloc(100); /* the thread's arena and heap */
  unsigned char *big = malloc(BIG);
  if (!small || !big) {
    FAIL("malloc failed");
    return NULL;
  }
  memset(big, 1, BIG);
  size_t rw_full, rw_after;
  long rss_full, rss_after;
  heap_rw((uintptr_t)small, &rw_full, &rss_full);
  if (rw_full < BIG) FAIL("the thread heap's read-write part is %zu bytes with an 8 MiB block in it", rw_full);
  free(big); /* merges into top, past the trim threshold: the heap shrinks */
  heap_rw((uintptr_t)small, &rw_after, &rss_after);
  if (rss_after < 0 || rss_full < 0)
    FAIL("no Rss for the thread heap in /proc/self/smaps");
  else if (rss_full - rss_after < (long)(BIG / 1024) / 2)
    FAIL("freeing 8 MiB at the heap's end gave back only %ld KiB of RSS", rss_full - rss_after);
  if (strict_overcommit()) {
    if (rw_after >= rw_full)
      FAIL("overcommit_memory is 2 but the freed tail stayed read-write (%zu bytes)", rw_after);
  } else if (rw_after != rw_full) {
    FAIL("the thread heap's read-write part went from %zu to %zu bytes: glibc keeps the freed tail read-write "
         "(MADV_DONTNEED only)",
         rw_full, rw_after);
  }
  printf(TEST_NAME ": read-write %zu -> %zu bytes, RSS %ld -> %ld KiB\n", rw_full, rw_after, rss_full, rss_after);
  free(small);
  return NULL;
}

int main(void) {
  /* Big blocks from the heap, not mappings of their own. */
  test_watchdog(60, "the worker thread");
  if (mallopt(M_MMAP_THRESHOLD, 32 << 20) != 1) FAIL("mallopt(M_MMAP_THRESHOLD) failed");
  pthread_t t;
  if (pthread_create(&t, NULL, worker, NULL) != 0) {
    FAIL("pthread_create failed");
    return test_finish();
  }
  pthread_join(t, NULL);
  test_expect_reuse();
  return test_finish();
}
