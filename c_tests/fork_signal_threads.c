/* fork_signal_threads: fork() from a signal handler in a multithreaded
 * process, and a child that allocates.
 * WORKERS threads run malloc/calloc/realloc/memalign/free loops (sizes up to
 * 300000 bytes: tcache, bins, mmap'd chunks; contents checked) with SIGALRM
 * blocked.  The main thread alternates between work that does not allocate
 * (checking its blocks' contents, getppid(), arithmetic), during which
 * SIGALRM may come, and allocator calls (malloc, free, realloc, memalign)
 * made with SIGALRM blocked by pthread_sigmask: the signal never interrupts
 * the main thread inside the allocator, nor inside stdio.  A one-shot
 * ITIMER_REAL, re-armed by its handler with a random 100..900 µs, sends
 * SIGALRM; the handler (errno saved and restored) forks.  Its child, with a
 * watchdog of its own: checks four of the main thread's blocks it inherited
 * and frees them, then mallocs, callocs (zeroed), reallocs (contents kept),
 * memaligns and frees blocks of 16 bytes .. 300000 bytes, and _exit(0)s (a
 * code of its own for each kind of failure).  Its parent waits for it for
 * at most CHILD_TIMEOUT_MS (then kills it: hung).
 * glibc allows this: its fork takes the malloc locks (waiting for the
 * workers, which are only ever briefly inside the allocator) and resets them
 * in the child, where the main thread's own state (its tcache) is
 * consistent because the handler did not interrupt it in the allocator.
 * An allocator whose fork handlers miss a lock, or whose child cannot
 * allocate after a fork from a handler, hangs or fails here.
 * Runs until SIGNAL_FORKS forks from the handler (or MAX_SECONDS; then at
 * least SIGNAL_FORKS / 10); every child must exit 0, no block may change. */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "fork_signal_threads"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define WORKERS 3
#define SIGNAL_FORKS 600
#define MAX_SECONDS 15.0
#define WATCHDOG_S 35
#define CHILD_WATCHDOG_S 10
#define CHILD_TIMEOUT_MS 20000
#define SLOTS 48

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

static volatile int stop;
static long worker_ops[WORKERS];

/* the main thread's blocks: changed only with SIGALRM blocked */
static struct blk mine[SLOTS];

/* what the handler saw; read by main after the timer is off */
static volatile long sig_forks, sig_fork_errors, sig_hung, sig_wait_errors;
static volatile long child_bad[256]; /* by exit code */
static volatile long child_killed;
static volatile int child_last_signal;
static volatile int timer_on;
static uint64_t sig_rng = 0xABCDEF;

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 100;
  if (r < 50) return rnd(st) % 600;
  if (r < 80) return 600 + rnd(st) % 4000;
  if (r < 95) return 4600 + rnd(st) % 60000;
  return 131072 + rnd(st) % 170000; /* mmap'd */
}

static void arm_timer(void) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  it.it_value.tv_usec = 100 + (long)(rnd(&sig_rng) % 800);
  setitimer(ITIMER_REAL, &it, NULL);
}

/* exit codes of the handler's child (3: its watchdog fired) */
enum { C_OK = 0, C_INHERITED = 10, C_NULL, C_CALLOC, C_REALLOC, C_OWN, C_MAX };
static const char *const child_code_names[] = {
    "an inherited block of the main thread had changed", "an allocation returned NULL",
    "calloc memory was not zero", "realloc lost contents", "its own blocks were corrupted"};

static int handler_child(void) {
  test_watchdog(CHILD_WATCHDOG_S, "the allocations of a child forked in the SIGALRM handler");
  uint64_t st = (uint64_t)getpid() * 0x9E3779B97F4A7C15ull + 1;
  /* four inherited blocks: intact, and ours to free */
  for (int k = 0; k < 4; k++) {
    struct blk *b = &mine[rnd(&st) % SLOTS];
    if (!b->p) continue;
    if (pat_check(b->p, b->seed, b->n) != ALL_GOOD) return C_INHERITED;
    free(b->p);
    b->p = NULL;
  }
  static const size_t sizes[] = {16, 100, 1000, 1040, 5000, 40000, 140000, 300000};
  void *p[8];
  for (int i = 0; i < 8; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i]) return C_NULL;
    pat_fill(p[i], 77 + i, 0, sizes[i]);
  }
  unsigned char *c = calloc(1, 70000);
  if (!c) return C_NULL;
  if (first_byte_not(c, 70000, 0) != ALL_GOOD) return C_CALLOC;
  pat_fill(c, 5, 0, 3000);
  unsigned char *r = realloc(c, 250000);
  if (!r) return C_NULL;
  if (pat_check(r, 5, 3000) != ALL_GOOD) return C_REALLOC;
  free(r);
  void *m = memalign(4096, 10000);
  if (!m) return C_NULL;
  free(m);
  for (int i = 0; i < 8; i++) {
    if (pat_check(p[i], 77 + i, sizes[i]) != ALL_GOOD) return C_OWN;
    free(p[i]);
  }
  return C_OK;
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) _exit(handler_child());
  if (pid < 0) {
    sig_fork_errors++;
  } else {
    int st = 0;
    pid_t r = test_waitpid_bounded(pid, &st, CHILD_TIMEOUT_MS);
    if (r == 0) {
      sig_hung++;
    } else if (r < 0) {
      sig_wait_errors++;
    } else if (WIFSIGNALED(st)) {
      child_killed++;
      child_last_signal = WTERMSIG(st);
    } else if (WEXITSTATUS(st) != 0) {
      child_bad[WEXITSTATUS(st)]++;
    }
    sig_forks++;
  }
  if (timer_on) arm_timer();
  errno = saved;
}

static void *worker(void *arg) {
  int self = (int)(intptr_t)arg;
  uint64_t st = 0x77 + (uint64_t)self * 0x9E3779B97F4A7C15ull, next = 1;
  struct blk t[32];
  memset(t, 0, sizeof t);
  while (!stop) {
    struct blk *b = &t[rnd(&st) % 32];
    if (b->p) {
      size_t bad = pat_check(b->p, b->seed, b->n);
      if (bad != ALL_GOOD) {
        FAIL("worker %d: block of %zu bytes: byte %zu changed", self, b->n, bad);
        b->p = NULL;
        continue;
      }
      if (rnd(&st) % 3 == 0) {
        size_t m = pick_size(&st);
        unsigned char *q = realloc(b->p, m);
        if (!q && m) {
          FAIL("worker %d: realloc(%zu) returned NULL", self, m);
          continue;
        }
        size_t keep = b->n < m ? b->n : m;
        if (pat_check(q, b->seed, keep) != ALL_GOOD) FAIL("worker %d: realloc lost contents", self);
        pat_fill(q, b->seed, 0, m);
        b->p = q;
        b->n = m;
      } else {
        free(b->p);
        b->p = NULL;
      }
    } else {
      size_t n = pick_size(&st);
      uint64_t r = rnd(&st) % 4;
      void *p = r == 0 ? calloc(1, n) : r == 1 ? memalign(64, n) : malloc(n);
      if (!p) {
        FAIL("worker %d: allocation of %zu bytes returned NULL", self, n);
        continue;
      }
      b->p = p;
      b->n = n;
      b->seed = next++ * 1000 + (uint64_t)self;
      pat_fill(b->p, b->seed, 0, n);
    }
    __atomic_add_fetch(&worker_ops[self], 1, __ATOMIC_RELAXED);
  }
  for (int i = 0; i < 32; i++) free(t[i].p);
  return NULL;
}

int main(void) {
  test_watchdog(WATCHDOG_S, "the run with forks from SIGALRM among allocating threads");
  sigset_t alrm;
  sigemptyset(&alrm);
  sigaddset(&alrm, SIGALRM);
  pthread_sigmask(SIG_BLOCK, &alrm, NULL); /* the workers inherit it blocked */
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);

  pthread_t t[WORKERS];
  int started = 0;
  for (int i = 0; i < WORKERS; i++) {
    int e = pthread_create(&t[i], NULL, worker, (void *)(intptr_t)i);
    if (e) {
      FAIL("pthread_create: %s", strerror(e));
      break;
    }
    started++;
  }

  uint64_t st = 0x1234, next = 1;
  long main_ops = 0, checks = 0;
  size_t first_bad = ALL_GOOD, bad_n = 0;
  double t0 = test_now();
  timer_on = 1;
  arm_timer();
  while (sig_forks < SIGNAL_FORKS && test_now() - t0 < MAX_SECONDS && !stop) {
    /* SIGALRM may come now: nothing here allocates or uses stdio */
    pthread_sigmask(SIG_UNBLOCK, &alrm, NULL);
    for (int k = 0; k < 8; k++) {
      struct blk *b = &mine[rnd(&st) % SLOTS];
      if (b->p) {
        size_t bad = pat_check(b->p, b->seed, b->n);
        checks++;
        if (bad != ALL_GOOD && first_bad == ALL_GOOD) first_bad = bad, bad_n = b->n;
      }
      volatile uint64_t x = st;
      for (int j = 0; j < 200; j++) x = x * 6364136223846793005ull + 1;
      (void)getppid();
    }
    pthread_sigmask(SIG_BLOCK, &alrm, NULL);
    /* the allocator, with SIGALRM blocked */
    for (int k = 0; k < 4; k++, main_ops++) {
      struct blk *b = &mine[rnd(&st) % SLOTS];
      if (b->p) {
        if (rnd(&st) % 2) {
          free(b->p);
          b->p = NULL;
          continue;
        }
        size_t m = pick_size(&st);
        unsigned char *q = realloc(b->p, m);
        if (!q && m) {
          FAIL("main: realloc(%zu) returned NULL", m);
          continue;
        }
        size_t keep = b->n < m ? b->n : m;
        if (pat_check(q, b->seed, keep) != ALL_GOOD) FAIL("main: realloc lost contents");
        pat_fill(q, b->seed, 0, m);
        b->p = q;
        b->n = m;
      } else {
        size_t n = pick_size(&st);
        void *p = rnd(&st) % 3 ? malloc(n) : memalign(128, n);
        if (!p) {
          FAIL("main: allocation of %zu bytes returned NULL", n);
          continue;
        }
        b->p = p;
        b->n = n;
        b->seed = 0xBEEF00000000ull + next++;
        pat_fill(b->p, b->seed, 0, n);
      }
    }
  }
  timer_on = 0;
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, NULL);
  double ran = test_now() - t0;
  stop = 1;
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  for (int i = 0; i < SLOTS; i++)
    if (mine[i].p) {
      if (pat_check(mine[i].p, mine[i].seed, mine[i].n) != ALL_GOOD && first_bad == ALL_GOOD)
        first_bad = 0, bad_n = mine[i].n;
      free(mine[i].p);
    }
  test_watchdog(0, NULL);

  long wops = 0;
  for (int i = 0; i < started; i++) wops += worker_ops[i];
  printf(TEST_NAME ": %.1f s: %ld forks from the SIGALRM handler; main thread: %ld allocator "
         "operations, %ld checks; workers: %ld operations\n",
         ran, sig_forks, main_ops, checks, wops);
  if (first_bad != ALL_GOOD)
    FAIL("a main-thread block of %zu bytes changed (byte %zu)", bad_n, first_bad);
  if (sig_fork_errors) FAIL("%ld forks in the handler failed", sig_fork_errors);
  if (sig_wait_errors) FAIL("%ld waitpids in the handler failed", sig_wait_errors);
  if (sig_hung) FAIL("%ld children hung (killed after %d ms)", sig_hung, CHILD_TIMEOUT_MS);
  if (child_killed)
    FAIL("%ld children were killed by a signal (the last: %d, %s)", child_killed, child_last_signal,
         strsignal(child_last_signal));
  for (int c = 1; c < 256; c++) {
    if (!child_bad[c]) continue;
    if (c == 3)
      FAIL("%ld children hung in their allocations (their watchdog fired: see above)",
           child_bad[c]);
    else if (c >= C_INHERITED && c < C_MAX)
      FAIL("%ld children exited %d: %s", child_bad[c], c, child_code_names[c - C_INHERITED]);
    else
      FAIL("%ld children exited %d", child_bad[c], c);
  }
  if (sig_forks < SIGNAL_FORKS / 10)
    FAIL("only %ld forks from the handler in %.1f s (expected %d, at least %d)", sig_forks, ran,
         SIGNAL_FORKS, SIGNAL_FORKS / 10);
  for (int i = 0; i < started; i++)
    if (worker_ops[i] == 0) FAIL("worker %d did nothing", i);
  test_expect_reuse();
  return test_finish();
}
