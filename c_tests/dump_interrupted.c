/* dump_interrupted: a heap dump taken while the allocator is busy neither
 * deadlocks nor reads half-updated lists.
 *  1. Another thread holds an arena: a thread allocating in a loop is
 *     stopped by a signal whose handler waits; the main thread dumps. When
 *     the stop caught it inside malloc/free, the dump must name it as the
 *     arena's lock holder (tried until seen, at most 2000 times).
 *  2. The dump's own thread is inside the allocator: a single-threaded
 *     child allocating in a loop dumps from a SIGPROF handler; some dumps
 *     must say the arena was skipped because this very thread was in it,
 *     none may crash, and the blocks' contents must survive.
 * Under plain glibc there is no dump: the test only says so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#define TEST_NAME "dump_interrupted"
#include "testlib.h"

static void (*dump)(int);
static char text[1 << 16];

static const char *dump_text(void) { return fd_output(dump, text, sizeof text); }

/* 1. */
static sem_t stopped, go_on;
static volatile int stop_worker;
static pid_t worker_tid;
static unsigned long rounds; /* the worker's loop count (atomic) */

static void park(int sig) {
  (void)sig;
  sem_post(&stopped);
  while (sem_wait(&go_on) != 0) {}
}

static void *worker(void *arg) {
  (void)arg;
  worker_tid = (pid_t)syscall(SYS_gettid);
  uint64_t st = 7;
  void *keep[16] = {0};
  while (!stop_worker) {
    unsigned i = (unsigned)(rnd(&st) % 16);
    free_v(keep[i]);
    /* calloc, past the tcache: through the arena and its lock in every
     * profile (the fast one's large cache serves malloc, not calloc). */
    keep[i] = calloc_v(1, 2000 + (size_t)(rnd(&st) % 60000));
    __atomic_add_fetch(&rounds, 1, __ATOMIC_RELAXED);
  }
  for (int i = 0; i < 16; i++) free_v(keep[i]);
  return NULL;
}

static void other_thread_holds(void) {
  sem_init(&stopped, 0, 0);
  sem_init(&go_on, 0, 0);
  struct sigaction sa = {0};
  sa.sa_handler = park;
  sigaction(SIGUSR2, &sa, NULL);
  pthread_t t;
  pthread_create(&t, NULL, worker, NULL);
  while (!__atomic_load_n(&worker_tid, __ATOMIC_SEQ_CST)) usleep(100);
  char want[96];
  snprintf(want, sizeof want, "locked by thread %d, skipped", (int)worker_tid);
  int seen = 0, tries = 0;
  uint64_t pace = 11;
  for (; tries < 2000 && !seen; tries++) {
    pthread_kill(t, SIGUSR2);
    while (sem_wait(&stopped) != 0) {}
    const char *d = dump_text();
    if (!strstr(d, "ptmalloc-rs heap dump") || !strstr(d, "totals (arenas shown)"))
      FAIL("an incomplete dump while the worker was stopped:\n%s", d);
    if (strstr(d, want)) seen = 1;
    else if (strstr(d, "locked by"))
      FAIL("a locked arena names the wrong holder (want \"%s\"):\n%s", want, d);
    /* Let the worker go on for a round or more, and a random while, before
     * the next stop: a signal sent at once would find it where the last one
     * left it (still returning from the handler), and the stops would land
     * at the same point again and again. */
    unsigned long before = __atomic_load_n(&rounds, __ATOMIC_RELAXED);
    sem_post(&go_on);
    while (__atomic_load_n(&rounds, __ATOMIC_RELAXED) == before) sched_yield();
    for (volatile unsigned spin = (unsigned)(rnd(&pace) % 20000); spin; spin--) {}
  }
  stop_worker = 1;
  pthread_join(t, NULL);
  if (!seen) FAIL("in %d stops the dump never named thread %d as a lock holder", tries, (int)worker_tid);
  else printf("dump_interrupted: the holder was named after %d stop(s)\n", tries);
}

/* 2. (in a child process, which stays single-threaded) */
static int dump_fd;
static volatile int dumps;
static void dump_now(int sig) {
  (void)sig;
  dump(dump_fd);
  dumps++;
}

static int self_interrupted(void) {
  char path[] = "/tmp/dump_interrupted.XXXXXX";
  dump_fd = mkstemp(path);
  if (dump_fd < 0) { perror("mkstemp"); return 1; }
  unlink(path);
  struct sigaction sa = {0};
  sa.sa_handler = dump_now;
  sa.sa_flags = SA_RESTART;
  sigaction(SIGPROF, &sa, NULL);
  struct itimerval it = {{0, 2000}, {0, 2000}};
  setitimer(ITIMER_PROF, &it, NULL);
  uint64_t st = 11;
  unsigned char *keep[32] = {0};
  size_t len[32] = {0};
  int bad = 0;
  while (dumps < 400) {
    unsigned i = (unsigned)(rnd(&st) % 32);
    if (keep[i] && pat_check(keep[i], i, len[i]) != ALL_GOOD) bad++;
    free_v(keep[i]);
    len[i] = 2000 + (size_t)(rnd(&st) % 60000);
    keep[i] = calloc_v(1, len[i]); /* through the arena: see worker() */
    if (!keep[i]) return 3;
    pat_fill(keep[i], i, 0, len[i] < 64 ? len[i] : 64);
    len[i] = len[i] < 64 ? len[i] : 64;
  }
  struct itimerval off = {{0, 0}, {0, 0}};
  setitimer(ITIMER_PROF, &off, NULL);
  static char all[1 << 22];
  ssize_t n = pread(dump_fd, all, sizeof all - 1, 0);
  all[n > 0 ? n : 0] = 0;
  int complete = 0, skipped = 0;
  for (const char *p = all; (p = strstr(p, "totals (arenas shown)")); p++) complete++;
  for (const char *p = all; (p = strstr(p, "the one dumping (interrupted inside the allocator)")); p++) skipped++;
  printf("self: %d dumps, %d complete, %d found this thread inside the allocator, %d damaged blocks\n",
         dumps, complete, skipped, bad);
  if (bad) return 4;
  if (complete < 400) return 5;
  if (skipped == 0) return 6;
  return 0;
}

int main(int argc, char **argv) {
  dump = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump");
  if (argc > 1) return self_interrupted();
  if (!dump) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("malloc_rs_dump is not exported");
    else printf("dump_interrupted: plain glibc has no malloc_rs_dump: nothing to check\n");
    return test_finish();
  }
  /* The child first, while this process has one thread to fork from. */
  pid_t pid = fork();
  if (pid == 0) {
    execl(argv[0], argv[0], "self", (char *)NULL);
    _exit(127);
  }
  char why[128];
  int rc = test_wait_child(pid, 60000, why, sizeof why);
  if (rc != 0)
    FAIL("the self-interrupting child %s (exit status 3: out of memory, 4 damaged blocks, "
         "5 incomplete dumps, 6 never inside the allocator)", why);
  /* The stops wait for the worker (semaphores, its rounds): bounded. */
  test_watchdog(120, "the stops of the allocating thread");
  other_thread_holds();
  test_watchdog(0, NULL);
  if (!failures) printf("dump_interrupted: holder named, self-interruption reported, no crash\n");
  test_expect_reuse();
  return test_finish();
}
