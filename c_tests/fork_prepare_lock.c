/* fork_prepare_lock: a lock that fork takes after the allocator's, held by
 * threads that allocate.  An atfork prepare handler registered before the
 * allocator's (from .preinit_array, which runs before any library's
 * constructor) takes mutex M; glibc runs it after the allocator's prepare
 * handler.  Worker threads allocate, reallocate and free (malloc, calloc,
 * realloc, memalign, sizes from 16 B to 300 KB, contents checked) while
 * holding M.  glibc's malloc takes its locks inside fork after every
 * handler, so a worker never waits for them while it holds M.  A
 * replacement that takes its locks in its prepare handler must not make a
 * worker wait for them either: the forking thread would wait for M, the
 * worker for the arena.  (glibc's own NSS lock, which fork takes after the
 * handlers, is the same case.)  The main thread forks ROUNDS times; each
 * child checks an inherited block, allocates and exits.  Then the program
 * runs itself again with PTMALLOC_RS_CHECK_HEAP=1 and fewer forks: every
 * call in parent and child checks the whole heap (what was allocated and
 * freed around the fork included). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

#define TEST_NAME "fork_prepare_lock"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define ROUNDS 200
#define CHECKED_ROUNDS 10
#define THREADS 2
#define SLOTS 48
#define WATCHDOG_S 90
#define CHILD_TIMEOUT_MS 20000

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static volatile int stop;
static int prepares;
static long worker_ops[THREADS];
static volatile int worker_failed;
static char worker_msg[200];

static void prepare(void) {
  pthread_mutex_lock(&m);
  prepares++;
}
static void release(void) { pthread_mutex_unlock(&m); }
static void early(void) { pthread_atfork(prepare, release, release); }
__attribute__((section(".preinit_array"), used)) static void (*const early_p)(void) = early;

static void worker_fail(const char *what, size_t n) {
  if (!__atomic_exchange_n(&worker_failed, 1, __ATOMIC_SEQ_CST))
    snprintf(worker_msg, sizeof worker_msg, "%s (%zu bytes)", what, n);
  stop = 1;
}

static void *worker(void *arg) {
  int id = (int)(intptr_t)arg;
  uint64_t st = 0x51ed270b27ull * (uint64_t)(id + 1);
  unsigned char *p[SLOTS] = {0};
  size_t n[SLOTS] = {0};
  uint64_t seed[SLOTS] = {0};
  while (!stop) {
    pthread_mutex_lock(&m);
    for (int i = 0; i < 16 && !stop; i++) {
      int k = (int)(rnd(&st) % SLOTS);
      uint64_t r = rnd(&st) % 100;
      size_t want = r < 60 ? 16 + rnd(&st) % 4000 : r < 90 ? 4000 + rnd(&st) % 60000 : 140000 + rnd(&st) % 160000;
      size_t keep = n[k] < 64 ? n[k] : 64;
      if (p[k] && pat_check(p[k], seed[k], n[k] < 64 ? n[k] : 64) != ALL_GOOD) {
        worker_fail("a block lost its contents", n[k]);
        break;
      }
      unsigned char *q;
      uint64_t how = rnd(&st) % 4;
      if (p[k] && how == 0) {
        q = realloc(p[k], want);
        if (q && pat_check(q, seed[k], keep < want ? keep : want) != ALL_GOOD) {
          worker_fail("realloc lost the contents", want);
          break;
        }
      } else {
        free(p[k]);
        if (how == 1) {
          q = calloc(1, want);
          if (q && first_byte_not(q, want, 0) != ALL_GOOD) {
            worker_fail("calloc gave a block not zeroed", want);
            break;
          }
        } else if (how == 2) {
          q = memalign(4096, want);
          if (q && ((uintptr_t)q & 4095)) {
            worker_fail("memalign(4096) gave a misaligned block", want);
            break;
          }
        } else {
          q = malloc(want);
        }
      }
      p[k] = q;
      if (!q) {
        worker_fail("an allocation returned NULL", want);
        n[k] = 0;
        break;
      }
      n[k] = want;
      seed[k] = ((uint64_t)id << 40) + (uint64_t)worker_ops[id];
      pat_fill(q, seed[k], 0, want < 64 ? want : 64);
      worker_ops[id]++;
    }
    pthread_mutex_unlock(&m);
  }
  for (int k = 0; k < SLOTS; k++) free(p[k]);
  return NULL;
}

int main(int argc, char **argv) {
  int checked = argc > 1 && strcmp(argv[1], "checked") == 0;
  int rounds = checked ? CHECKED_ROUNDS : ROUNDS;
  test_watchdog(WATCHDOG_S, "forks whose early prepare handler takes a mutex allocating threads hold");
  static const size_t inherited_n = 100000;
  unsigned char *inherited = malloc(inherited_n);
  if (!inherited) FAIL("malloc(%zu) failed", inherited_n);
  else pat_fill(inherited, 77, 0, inherited_n);
  pthread_t t[THREADS];
  int started = 0;
  for (int i = 0; i < THREADS; i++) {
    int e = pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    if (e) FAIL("pthread_create: %s", strerror(e));
    else started++;
  }
  int forks = 0;
  for (int r = 0; r < rounds && !stop; r++) {
    pid_t pid = fork();
    if (pid == 0) {
      test_watchdog(20, "a child allocating after the fork");
      if (inherited && pat_check(inherited, 77, inherited_n) != ALL_GOOD) _exit(10);
      void *a = malloc(3000), *b = malloc(200000), *c = calloc(1, 5000);
      if (!a || !b || !c) _exit(11);
      free(a);
      free(b);
      free(c);
      _exit(0);
    }
    if (pid < 0) {
      FAIL("fork #%d failed: %s", r, strerror(errno));
      continue;
    }
    forks++;
    char why[64];
    int code = test_wait_child(pid, CHILD_TIMEOUT_MS, why, sizeof why);
    if (code == 10) FAIL("child %d found an inherited block changed", r);
    else if (code) FAIL("child %d %s", r, why);
  }
  stop = 1;
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  test_watchdog(0, NULL);
  if (worker_failed) FAIL("a worker: %s", worker_msg);
  if (prepares != forks) FAIL("%d forks but %d runs of the early prepare handler", forks, prepares);
  long ops = 0;
  for (int i = 0; i < THREADS; i++) ops += worker_ops[i];
  if (inherited && pat_check(inherited, 77, inherited_n) != ALL_GOOD) FAIL("a block changed");
  free(inherited);
  printf(TEST_NAME "%s: %d forks; the workers made %ld allocator calls holding the mutex\n",
         checked ? " (heap checked)" : "", forks, ops);
  if (!checked && !failures) TEST_RERUN_WITH_HEAP_CHECK(argv[0]);
  test_expect_reuse();
  return test_finish();
}
