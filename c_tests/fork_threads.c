/* fork_threads: 4 threads allocate and free in tight loops (tcache sizes,
 * bin sizes, mmap'd sizes, realloc, memalign) while the main thread forks 200
 * times.  Each child checks and frees a block inherited from the parent,
 * mallocs, frees, callocs, reallocs, creates and joins a thread that mallocs
 * and frees, and _exit(0)s.  The parent waits for every child for at most
 * 10 s (polling waitpid with WNOHANG); a child that is still running then is
 * killed and reported as hung.  Every child must exit with status 0.
 * Guards against: an arena lock (or any allocator lock) held by another
 * thread at the moment of fork and inherited locked by the child (deadlock in
 * the child's first malloc), missing or wrong pthread_atfork handlers, atfork
 * handlers that allocate, and a corrupt arena list/free list in the child. */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define WORKERS 4
#define FORKS 200
#define CHILD_TIMEOUT_MS 10000

static volatile int stop;
static long loops[WORKERS];

/* FAIL is used in main only: at the 10th failure it stops the workers and
 * jumps to main's clean-up */
#define TEST_NAME "fork_threads"
#define TEST_MAX_FAILURES 10
#define TEST_GIVE_UP()                                                         \
  do {                                                                         \
    stop = 1;                                                                  \
    goto out;                                                                  \
  } while (0)
#include "testlib.h"

/* in the child: report with write(2) from a stack buffer, no stdio */
static void child_fail(int n, const char *fmt, ...) {
  char buf[256];
  int k = snprintf(buf, sizeof buf, TEST_NAME ": child %d: ", n);
  va_list ap;
  va_start(ap, fmt);
  k += vsnprintf(buf + k, sizeof buf - k, fmt, ap);
  va_end(ap);
  if (k > (int)sizeof buf - 2) k = sizeof buf - 2;
  buf[k++] = '\n';
  ssize_t w = write(2, buf, k);
  (void)w;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t st = 0x1234567 + self * 0x9E3779B97F4A7C15ull;
  void *keep[32] = {0};
  while (!stop) {
    for (int i = 0; i < 64; i++) {
      int k = (int)(rnd(&st) % 32);
      free(keep[k]);
      uint64_t r = rnd(&st) % 100;
      size_t n;
      if (r < 60) n = rnd(&st) % 512;
      else if (r < 90) n = 1024 + rnd(&st) % 30000;
      else if (r < 97) n = 140000 + rnd(&st) % 200000; /* mmap'd */
      else n = 0;
      if (r % 5 == 0) keep[k] = calloc(1, n);
      else if (r % 7 == 0) keep[k] = memalign(64, n);
      else keep[k] = malloc(n);
      if (keep[k]) memset(keep[k], 0x5a, n < 64 ? n : 64);
      if (keep[k] && r % 3 == 0) {
        void *q = realloc(keep[k], n + 100);
        if (q) keep[k] = q;
      }
    }
    loops[self]++;
  }
  for (int k = 0; k < 32; k++) free(keep[k]);
  return NULL;
}

static void *child_thread(void *arg) {
  (void)arg;
  void *p[16];
  for (int i = 0; i < 16; i++) {
    p[i] = malloc(100 + 5000 * i);
    if (!p[i]) return (void *)1;
    memset(p[i], i, 100);
  }
  for (int i = 0; i < 16; i++) free(p[i]);
  return NULL;
}

static int child(int n, unsigned char *inherited, size_t isize) {
  /* the parent's block is intact and ours to free */
  size_t bad = pat_check(inherited, n, isize);
  if (bad != ALL_GOOD) {
    child_fail(n, "inherited block byte %zu is 0x%02x, expected 0x%02x", bad, inherited[bad],
               pat_byte(n, bad));
    return 1;
  }
  free(inherited);
  static const size_t sz[] = {0, 16, 100, 1000, 5000, 70000, 200000, 2 << 20};
  void *p[sizeof sz / sizeof sz[0]];
  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
    p[i] = malloc(sz[i]);
    if (!p[i]) {
      child_fail(n, "malloc(%zu) returned NULL", sz[i]);
      return 1;
    }
    memset(p[i], 0x33, sz[i]);
  }
  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) free(p[i]);
  unsigned char *c = calloc(1000, 10);
  if (!c) {
    child_fail(n, "calloc(1000, 10) returned NULL");
    return 1;
  }
  bad = first_byte_not(c, 10000, 0);
  if (bad != ALL_GOOD) {
    child_fail(n, "calloc byte %zu is 0x%02x, expected 0", bad, c[bad]);
    return 1;
  }
  unsigned char *r = realloc(c, 300000);
  if (!r) {
    child_fail(n, "realloc(calloc'ed block, 300000) returned NULL");
    return 1;
  }
  free(r);
  pthread_t t;
  int e = pthread_create(&t, NULL, child_thread, NULL);
  if (e) {
    child_fail(n, "pthread_create failed: %d", e);
    return 1;
  }
  void *ret = NULL;
  pthread_join(t, &ret);
  if (ret) {
    child_fail(n, "the child's thread failed to malloc");
    return 1;
  }
  return 0;
}

static long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(void) {
  pthread_t t[WORKERS];
  int started = 0, hung = 0;
  for (int i = 0; i < WORKERS; i++) {
    if (pthread_create(&t[started], NULL, worker, (void *)(intptr_t)i)) {
      FAIL("pthread_create #%d failed", i);
      continue;
    }
    started++;
  }
  /* let the workers get going */
  {
    long t0 = now_ms();
    while (now_ms() - t0 < 2000) {
      int all = 1;
      for (int i = 0; i < started; i++)
        if (__atomic_load_n(&loops[i], __ATOMIC_RELAXED) == 0) all = 0;
      if (all) break;
      usleep(1000);
    }
  }
  for (int n = 0; n < FORKS; n++) {
    size_t isize = 100 + 997 * (n % 50);
    unsigned char *inherited = malloc(isize);
    if (!inherited) {
      FAIL("parent: malloc(%zu) returned NULL", isize);
      continue;
    }
    pat_fill(inherited, n, 0, isize);
    pid_t pid = fork();
    if (pid < 0) {
      FAIL("fork #%d failed: %s", n, strerror(errno));
      free(inherited);
      continue;
    }
    if (pid == 0) _exit(child(n, inherited, isize));
    free(inherited);
    long t0 = now_ms();
    int status = 0;
    for (;;) {
      pid_t w = waitpid(pid, &status, WNOHANG);
      if (w == pid) break;
      if (w < 0 && errno != EINTR) {
        FAIL("waitpid for child %d failed: %s", n, strerror(errno));
        break;
      }
      if (now_ms() - t0 > CHILD_TIMEOUT_MS) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        FAIL("child %d hung (still running after %d ms; killed it)", n, CHILD_TIMEOUT_MS);
        if (++hung >= 3) {
          fprintf(stderr, TEST_NAME ": giving up after %d hung children\n", hung);
          goto out;
        }
        status = 0;
        break;
      }
      usleep(200);
    }
    if (WIFSIGNALED(status))
      FAIL("child %d was killed by signal %d (%s)", n, WTERMSIG(status), strsignal(WTERMSIG(status)));
    else if (WIFEXITED(status) && WEXITSTATUS(status) != 0)
      FAIL("child %d exited with status %d", n, WEXITSTATUS(status));
  }
out:
  stop = 1;
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < started; i++)
    if (loops[i] == 0 && failures == 0) {
      fprintf(stderr, TEST_NAME ": worker %d never completed a loop\n", i);
      failures++;
    }
  test_expect_reuse();
  return test_finish();
}
