/* fork_atfork_malloc: atfork handlers that allocate, registered before the
 * allocator's own.  glibc runs prepare handlers in the reverse order of
 * registration and parent and child handlers in that order; a handler that
 * was registered before the preloaded allocator's (here from the program's
 * .preinit_array, which runs before any library's constructor; in real
 * programs from the constructor of a library that initialises first) has
 * its prepare handler run while the forking thread already holds every
 * allocator lock, and its parent and child handlers before the allocator
 * has let go of them.  glibc's malloc takes its locks inside fork after all
 * handlers, so such handlers may allocate and free, small and large; under
 * a replacement that took its locks in a handler, the forking thread would
 * wait for itself.  Other threads allocate meanwhile (so the locks are
 * really taken), and the main thread forks ROUNDS times; each child
 * allocates and exits.  The handlers check and count what they did. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>

#define TEST_NAME "fork_atfork_malloc"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define ROUNDS 100
#define THREADS 2
#define WATCHDOG_S 60
#define CHILD_TIMEOUT_MS 20000

static volatile int stop;
static int handler_prepare, handler_parent, handler_bad;

/* Small (tcache, bins) and large (mmap'd: 300000 bytes is above the
 * default mmap threshold) blocks, filled and checked, then freed. */
static int churn(uint64_t seed) {
  static const size_t sizes[] = {24, 100, 2000, 40000, 300000};
  void *p[5];
  for (int i = 0; i < 5; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i]) return 0;
    pat_fill(p[i], seed + (uint64_t)i, 0, sizes[i]);
  }
  int ok = 1;
  for (int i = 0; i < 5; i++) {
    if (pat_check(p[i], seed + (uint64_t)i, sizes[i]) != ALL_GOOD) ok = 0;
    free(p[i]);
  }
  return ok;
}

static void prepare(void) {
  if (!churn(1000 + (uint64_t)handler_prepare)) handler_bad++;
  handler_prepare++;
}
static void parent(void) {
  if (!churn(2000 + (uint64_t)handler_parent)) handler_bad++;
  handler_parent++;
}
static void child(void) {
  /* a child handler that allocates; the child _exits 5 if this failed */
  if (!churn(3000)) _exit(5);
}

static void early(void) {
  if (pthread_atfork(prepare, parent, child) != 0) handler_bad = 1000;
}
__attribute__((section(".preinit_array"), used)) static void (*const early_p)(void) = early;

static void *worker(void *arg) {
  uint64_t st = 0x1234567ull + (uint64_t)(intptr_t)arg;
  void *keep[16] = {0};
  while (!stop) {
    int k = (int)(rnd(&st) % 16);
    free(keep[k]);
    keep[k] = malloc(rnd(&st) % 3 ? rnd(&st) % 2000 : 140000 + rnd(&st) % 100000);
  }
  for (int k = 0; k < 16; k++) free(keep[k]);
  return NULL;
}

int main(void) {
  test_watchdog(WATCHDOG_S, "forks whose atfork handlers, registered first, allocate");
  pthread_t t[THREADS];
  int started = 0;
  for (int i = 0; i < THREADS; i++) {
    int e = pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    if (e) FAIL("pthread_create: %s", strerror(e));
    else started++;
  }
  int forks = 0;
  for (int n = 0; n < ROUNDS; n++) {
    pid_t pid = fork();
    if (pid == 0) _exit(churn(4000) ? 0 : 6);
    if (pid < 0) {
      FAIL("fork #%d failed: %s", n, strerror(errno));
      continue;
    }
    forks++;
    char why[64];
    int code = test_wait_child(pid, CHILD_TIMEOUT_MS, why, sizeof why);
    if (code == 5) FAIL("child %d: its atfork child handler's blocks went wrong", n);
    else if (code) FAIL("child %d %s", n, why);
  }
  stop = 1;
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  test_watchdog(0, NULL);
  if (handler_bad >= 1000) FAIL("pthread_atfork failed in .preinit_array");
  else if (handler_bad) FAIL("%d handler runs found their blocks wrong", handler_bad);
  if (handler_prepare != forks || handler_parent != forks)
    FAIL("%d forks, but the prepare handler ran %d times and the parent handler %d", forks,
         handler_prepare, handler_parent);
  printf(TEST_NAME ": %d forks, each with atfork handlers allocating small and mmap'd blocks\n",
         forks);
  test_expect_reuse();
  return test_finish();
}
