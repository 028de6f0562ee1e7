/* fork_signal: fork() from a signal handler that interrupted the allocator,
 * in a single-threaded process.
 * The process never creates a thread.  Its main loop does random malloc,
 * calloc, realloc, memalign, posix_memalign and free of 0..300000 bytes
 * (tcache, bins, the top chunk, mmap'd chunks) on a table of blocks whose
 * contents are checked before every free and realloc, and forks now and then
 * (the child checks an inherited block, mallocs, frees, _exit(0)s; the parent
 * waits for it).  A one-shot ITIMER_REAL, re-armed by its handler with a
 * random 30..400 µs, sends SIGALRM; the handler (errno saved and restored)
 * calls fork(): its child _exit(0)s at once (async-signal-safe only), its
 * parent waits for it (at most CHILD_TIMEOUT_MS, else kills it and counts a
 * hung child).  So SIGALRM lands anywhere: in malloc, free, realloc, in the
 * main loop's own fork (its atfork handlers), in waitpid.
 * glibc allows this: in a single-threaded process its fork takes no malloc
 * and no stdio lock (and runs its atfork list without its lock), so a fork
 * from a handler that interrupted malloc or fork works.  An allocator whose
 * prepare handler waits for a lock the interrupted malloc (or the
 * interrupted fork's own prepare handler) holds deadlocks here.
 * Runs until SIGNAL_FORKS forks from the handler are done (or MAX_SECONDS
 * pass; then at least SIGNAL_FORKS / 10 must have been done); every child of
 * either kind must exit 0, every block must keep its contents.  The watchdog
 * (testlib.h) ends a hang after WATCHDOG_S with every thread's state. */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "fork_signal"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

#define SIGNAL_FORKS 3000
#define MAX_SECONDS 12.0
#define WATCHDOG_S 30
#define CHILD_TIMEOUT_MS 10000
#define SLOTS 64

/* What the handler saw; read by main after the timer is off. */
static volatile long sig_forks, sig_fork_errors, sig_bad_status, sig_hung, sig_wait_errors;
static volatile int sig_last_status;
static volatile int timer_on;
static uint64_t sig_rng = 0x5151;

static void arm_timer(void) {
  struct itimerval it;
  memset(&it, 0, sizeof it);
  it.it_value.tv_usec = 30 + (long)(rnd(&sig_rng) % 370);
  setitimer(ITIMER_REAL, &it, NULL);
}

static void on_alarm(int sig) {
  (void)sig;
  int saved = errno;
  pid_t pid = fork();
  if (pid == 0) _exit(0);
  if (pid < 0) {
    sig_fork_errors++;
  } else {
    int st = 0;
    pid_t r = test_waitpid_bounded(pid, &st, CHILD_TIMEOUT_MS);
    if (r == 0) {
      sig_hung++;
    } else if (r < 0) {
      sig_wait_errors++;
    } else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
      sig_bad_status++;
      sig_last_status = st;
    }
    sig_forks++;
  }
  if (timer_on) arm_timer();
  errno = saved;
}

struct blk {
  unsigned char *p;
  size_t n;
  uint64_t seed;
};

static size_t pick_size(uint64_t *st) {
  uint64_t r = rnd(st) % 100;
  if (r < 50) return rnd(st) % 600;
  if (r < 80) return 600 + rnd(st) % 4000;
  if (r < 95) return 4600 + rnd(st) % 60000;
  return 131072 + rnd(st) % 170000; /* mmap'd */
}

static void describe_status(const char *who, int st) {
  if (WIFSIGNALED(st))
    FAIL("%s was killed by signal %d (%s)", who, WTERMSIG(st), strsignal(WTERMSIG(st)));
  else
    FAIL("%s exited with status %d", who, WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

int main(void) {
  test_watchdog(WATCHDOG_S, "the single-threaded malloc/fork loop with forks from SIGALRM");
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);

  struct blk tab[SLOTS];
  memset(tab, 0, sizeof tab);
  uint64_t st = 0xF0F0F0F1ull, next_seed = 1;
  long ops = 0, main_forks = 0, checked = 0;
  double t0 = test_now();
  timer_on = 1;
  arm_timer();
  while (sig_forks < SIGNAL_FORKS && test_now() - t0 < MAX_SECONDS) {
    for (int i = 0; i < 32; i++, ops++) {
      struct blk *b = &tab[rnd(&st) % SLOTS];
      uint64_t r = rnd(&st) % 100;
      if (b->p) {
        size_t bad = pat_check(b->p, b->seed, b->n);
        checked++;
        if (bad != ALL_GOOD) {
          FAIL("block %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x", (void *)b->p, b->n,
               bad, b->p[bad], pat_byte(b->seed, bad));
          b->p = NULL; /* leaked on purpose: it is not ours any more */
          continue;
        }
        if (r < 60) {
          free(b->p);
          b->p = NULL;
        } else {
          size_t m = pick_size(&st);
          unsigned char *q = realloc(b->p, m);
          if (!q && m) {
            FAIL("realloc(%p, %zu) returned NULL", (void *)b->p, m);
            continue;
          }
          size_t keep = b->n < m ? b->n : m;
          bad = pat_check(q, b->seed, keep);
          if (bad != ALL_GOOD) FAIL("realloc %zu -> %zu lost byte %zu", b->n, m, bad);
          pat_fill(q, b->seed, 0, m);
          b->p = q;
          b->n = m;
        }
        continue;
      }
      size_t n = pick_size(&st);
      void *p = NULL;
      if (r < 45) p = malloc(n);
      else if (r < 60) p = calloc(1, n);
      else if (r < 75) p = memalign((size_t)16 << (rnd(&st) % 8), n);
      else if (r < 90) {
        int e = posix_memalign(&p, (size_t)32 << (rnd(&st) % 6), n);
        if (e) FAIL("posix_memalign(%zu) returned %d", n, e);
      } else p = realloc(NULL, n);
      if (!p) {
        FAIL("allocation of %zu bytes (kind %d) returned NULL", n, (int)r);
        continue;
      }
      b->p = p;
      b->n = n;
      b->seed = next_seed++;
      pat_fill(b->p, b->seed, 0, n);
    }
    /* a fork of our own now and then: the handler may interrupt it */
    if (rnd(&st) % 4 == 0) {
      struct blk *b = &tab[rnd(&st) % SLOTS];
      pid_t pid = fork();
      if (pid == 0) {
        int code = 0;
        if (b->p && pat_check(b->p, b->seed, b->n) != ALL_GOOD) code = 2;
        void *x = malloc(100), *y = malloc(5000), *z = malloc(200000);
        if (!x || !y || !z) code = 4;
        free(x);
        free(y);
        free(z);
        if (b->p) free(b->p);
        _exit(code);
      }
      if (pid < 0) {
        FAIL("fork #%ld failed: %s", main_forks, strerror(errno));
      } else {
        int s = 0;
        pid_t w = test_waitpid_bounded(pid, &s, CHILD_TIMEOUT_MS);
        if (w == 0) {
          FAIL("the main loop's child #%ld hung (killed after %d ms)", main_forks,
               CHILD_TIMEOUT_MS);
        } else if (w < 0) {
          FAIL("waitpid for the main loop's child #%ld failed", main_forks);
        } else if (!WIFEXITED(s) || WEXITSTATUS(s) != 0) {
          char who[64];
          snprintf(who, sizeof who, "the main loop's child #%ld", main_forks);
          if (WIFEXITED(s) && WEXITSTATUS(s) == 2) FAIL("%s found an inherited block changed", who);
          else if (WIFEXITED(s) && WEXITSTATUS(s) == 4) FAIL("%s could not malloc", who);
          else describe_status(who, s);
        }
        main_forks++;
      }
    }
  }
  timer_on = 0;
  struct itimerval off;
  memset(&off, 0, sizeof off);
  setitimer(ITIMER_REAL, &off, NULL);
  double ran = test_now() - t0;

  for (int i = 0; i < SLOTS; i++)
    if (tab[i].p) {
      size_t bad = pat_check(tab[i].p, tab[i].seed, tab[i].n);
      if (bad != ALL_GOOD) FAIL("final check: block of %zu bytes, byte %zu changed", tab[i].n, bad);
      free(tab[i].p);
    }
  test_watchdog(0, NULL);

  printf(TEST_NAME ": %.1f s: %ld allocator operations (%ld blocks checked), %ld forks of the "
         "main loop, %ld forks from the SIGALRM handler\n",
         ran, ops, checked, main_forks, sig_forks);
  if (sig_fork_errors) FAIL("%ld forks in the handler failed", sig_fork_errors);
  if (sig_wait_errors) FAIL("%ld waitpids in the handler failed", sig_wait_errors);
  if (sig_hung)
    FAIL("%ld children of handler forks hung (killed after %d ms)", sig_hung, CHILD_TIMEOUT_MS);
  if (sig_bad_status) {
    FAIL("%ld children of handler forks did not exit 0; the last:", sig_bad_status);
    describe_status("a handler fork's child", sig_last_status);
  }
  if (sig_forks < SIGNAL_FORKS / 10)
    FAIL("only %ld forks from the handler in %.1f s (expected %d, at least %d)", sig_forks, ran,
         SIGNAL_FORKS, SIGNAL_FORKS / 10);
  if (main_forks == 0) FAIL("the main loop never forked");
  test_expect_reuse();
  return test_finish();
}
