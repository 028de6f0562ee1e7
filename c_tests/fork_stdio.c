/* fork_stdio: fork while other threads are inside stdio and the allocator.
 * Threads, each in a loop until the end:
 *   - READERS threads read lines with getline(&line = NULL, ...) from a
 *     FILE of their own (fmemopen over a text of lines of 0..40000 bytes):
 *     getdelim holds the FILE's lock while it mallocs and reallocs the line
 *     (sizes past the tcache: the arena lock); every line's length and
 *     bytes are checked, then it is freed; at the end of the text, rewind;
 *   - a flusher: fprintf to a buffered FILE on /dev/null, then fflush(NULL)
 *     (which holds libio's list lock while it takes every FILE's lock);
 *   - an opener: fopen/fgets/fclose of /proc/self/stat, fopen/fclose of
 *     /dev/null, open_memstream + fprintf + fclose + free;
 *   - an allocator: malloc/calloc/realloc/free of 0..200000 bytes.
 * The main thread forks FORKS times (or for MAX_SECONDS; at least FORKS / 10
 * then).  Each child, under a watchdog of its own, at once: mallocs, reallocs
 * and frees blocks of several sizes (contents checked), fopen+fprintf+fclose
 * on /dev/null, reads two lines with getline from an fmemopen stream, and
 * _exit(0)s (another code per kind of failure; 3: its watchdog fired).  The
 * parent waits for each child for at most CHILD_TIMEOUT_MS (then kills it
 * and reports it hung) and checks its exit status.
 * Guards against the deadlock of fork handlers that take the arena locks
 * before glibc's fork takes libio's list lock (_IO_list_lock): the forking
 * thread holds every arena lock and waits for the list lock, held by a
 * thread in fflush(NULL) that waits for a FILE's lock, held by a thread in
 * getline that waits in realloc for an arena lock.  glibc's own fork takes
 * the list lock first, then the malloc locks.  Also: a child that cannot
 * allocate or use stdio after such a fork.
 * Then the program runs itself again ("checked") with PTMALLOC_RS_CHECK_HEAP=1
 * and CHECKED_FORKS forks: under ptmalloc-rs every call of the malloc family
 * then checks every arena, the arena ring and the free list first, so each
 * child's first malloc checks what it inherited and aborts on a fault (glibc
 * ignores the variable). */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "fork_stdio"
#define TEST_MAX_FAILURES 10
#define TEST_GIVE_UP()                                                         \
  do {                                                                         \
    stop = 1;                                                                  \
    goto out;                                                                  \
  } while (0)
static volatile int stop;
#include "testlib.h"

#define READERS 2
#define FORKS 300
#define CHECKED_FORKS 20
#define MAX_SECONDS 10.0
#define WATCHDOG_S 30
#define CHILD_WATCHDOG_S 10
#define CHILD_TIMEOUT_MS 20000
#define LINES 600
#define MAX_LINE 40000

static char *text;      /* LINES lines */
static size_t text_len;
static size_t line_len[LINES];
static long reader_lines[READERS], flushes, opens, allocs;
/* failures seen by the threads, reported by main (FAIL's goto is main's) */
static volatile int thread_failed;
static char thread_msg[256];

static void thread_fail(const char *msg) {
  if (__atomic_exchange_n(&thread_failed, 1, __ATOMIC_SEQ_CST) == 0) {
    snprintf(thread_msg, sizeof thread_msg, "%s", msg);
  }
  stop = 1;
}

static char line_byte(size_t line, size_t j) { return (char)('a' + (line * 7 + j) % 26); }

static void make_text(void) {
  uint64_t st = 0xF11E;
  size_t total = 0;
  for (int i = 0; i < LINES; i++) {
    uint64_t r = rnd(&st) % 100;
    line_len[i] = r < 30 ? rnd(&st) % 200 : r < 70 ? 1000 + rnd(&st) % 4000 : rnd(&st) % MAX_LINE;
    total += line_len[i] + 1;
  }
  text = malloc(total + 1);
  if (!text) {
    fprintf(stderr, TEST_NAME ": malloc(%zu) for the text failed\n", total + 1);
    exit(1);
  }
  size_t k = 0;
  for (int i = 0; i < LINES; i++) {
    for (size_t j = 0; j < line_len[i]; j++) text[k++] = line_byte(i, j);
    text[k++] = '\n';
  }
  text[k] = 0;
  text_len = k;
}

static void *reader(void *arg) {
  int self = (int)(intptr_t)arg;
  FILE *f = fmemopen(text, text_len, "r");
  if (!f) {
    thread_fail("fmemopen failed");
    return NULL;
  }
  size_t i = (size_t)self * 97 % LINES;
  /* start at line i */
  for (size_t skip = 0; skip < i; skip++) {
    char *l = NULL;
    size_t cap = 0;
    if (getline(&l, &cap, f) < 0) break;
    free(l);
  }
  while (!stop) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t n = getline(&line, &cap, f);
    if (n < 0) {
      free(line);
      rewind(f);
      i = 0;
      continue;
    }
    if ((size_t)n != line_len[i] + 1 || line[n - 1] != '\n') {
      char m[160];
      snprintf(m, sizeof m, "reader %d: line %zu: getline returned %zd bytes, expected %zu", self,
               i, n, line_len[i] + 1);
      thread_fail(m);
      free(line);
      break;
    }
    for (size_t j = 0; j < line_len[i]; j++)
      if (line[j] != line_byte(i, j)) {
        char m[160];
        snprintf(m, sizeof m, "reader %d: line %zu byte %zu is 0x%02x, expected 0x%02x", self, i, j,
                 (unsigned char)line[j], (unsigned char)line_byte(i, j));
        thread_fail(m);
        break;
      }
    free(line);
    i = (i + 1) % LINES;
    __atomic_add_fetch(&reader_lines[self], 1, __ATOMIC_RELAXED);
  }
  fclose(f);
  return NULL;
}

static void *flusher(void *arg) {
  (void)arg;
  FILE *out = fopen("/dev/null", "w");
  if (!out) {
    thread_fail("fopen(/dev/null, w) failed");
    return NULL;
  }
  for (long k = 0; !stop; k++) {
    fprintf(out, "flush %ld %s\n", k, "some text to buffer");
    fflush(NULL);
    __atomic_add_fetch(&flushes, 1, __ATOMIC_RELAXED);
  }
  fclose(out);
  return NULL;
}

static void *opener(void *arg) {
  (void)arg;
  char buf[512];
  for (long k = 0; !stop; k++) {
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f) {
      thread_fail("fopen(/proc/self/stat) failed");
      break;
    }
    if (!fgets(buf, sizeof buf, f)) thread_fail("fgets on /proc/self/stat read nothing");
    fclose(f);
    f = fopen("/dev/null", k % 2 ? "w" : "r");
    if (!f) {
      thread_fail("fopen(/dev/null) failed");
      break;
    }
    fclose(f);
    char *ms = NULL;
    size_t msz = 0;
    f = open_memstream(&ms, &msz);
    if (!f) {
      thread_fail("open_memstream failed");
      break;
    }
    for (int j = 0; j < 50; j++) fprintf(f, "memstream line %d of round %ld\n", j, k);
    fclose(f);
    if (!ms || msz < 50 * 20) thread_fail("open_memstream: short result");
    free(ms);
    __atomic_add_fetch(&opens, 1, __ATOMIC_RELAXED);
  }
  return NULL;
}

static void *allocator(void *arg) {
  (void)arg;
  uint64_t st = 0xA110C;
  void *keep[32] = {0};
  while (!stop) {
    int k = (int)(rnd(&st) % 32);
    uint64_t r = rnd(&st) % 100;
    size_t n = r < 50   ? rnd(&st) % 1024
               : r < 90 ? 1024 + rnd(&st) % 50000
                        : 131072 + rnd(&st) % 70000;
    if (keep[k] && r % 3 == 0) {
      void *q = realloc(keep[k], n);
      if (q || !n) keep[k] = q;
    } else {
      free(keep[k]);
      keep[k] = r % 4 == 0 ? calloc(1, n) : malloc(n);
    }
    if (keep[k]) memset(keep[k], 0x5c, n < 256 ? n : 256);
    __atomic_add_fetch(&allocs, 1, __ATOMIC_RELAXED);
  }
  for (int k = 0; k < 32; k++) free(keep[k]);
  return NULL;
}

/* exit codes of a child (3: its watchdog fired) */
enum { C_NULL = 10, C_CONTENTS, C_FOPEN, C_GETLINE, C_END };
static const char *const child_codes[] = {"an allocation returned NULL", "realloc lost contents",
                                          "fopen(/dev/null) failed", "getline on fmemopen failed"};

static int child(int n) {
  test_watchdog(CHILD_WATCHDOG_S, "a child's allocations and stdio right after the fork");
  static const size_t sizes[] = {24, 200, 1100, 9000, 70000, 200000};
  void *p[6];
  for (int i = 0; i < 6; i++) {
    p[i] = malloc(sizes[i]);
    if (!p[i]) return C_NULL;
    pat_fill(p[i], (uint64_t)n * 8 + i, 0, sizes[i]);
  }
  for (int i = 0; i < 6; i++) {
    unsigned char *q = realloc(p[i], sizes[i] * 2 + 8);
    if (!q) return C_NULL;
    if (pat_check(q, (uint64_t)n * 8 + i, sizes[i]) != ALL_GOOD) return C_CONTENTS;
    p[i] = q;
  }
  for (int i = 0; i < 6; i++) free(p[i]);
  FILE *f = fopen("/dev/null", "w");
  if (!f) return C_FOPEN;
  fprintf(f, "child %d: %s %d\n", n, "hello", 42);
  fclose(f);
  f = fmemopen(text, text_len, "r");
  if (!f) return C_GETLINE;
  for (int i = 0; i < 2; i++) {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got = getline(&line, &cap, f);
    if (got != (ssize_t)line_len[i] + 1) return C_GETLINE;
    free(line);
  }
  fclose(f);
  return 0;
}

int main(int argc, char **argv) {
  int checked = argc > 1 && strcmp(argv[1], "checked") == 0;
  int max_forks = checked ? CHECKED_FORKS : FORKS;
  test_watchdog(WATCHDOG_S,
                "the fork loop among threads in getline, fflush(NULL), fopen/fclose and malloc");
  make_text();
  pthread_t t[READERS + 3];
  int started = 0, forks = 0, hung = 0;
  double t0 = 0;
  for (int i = 0; i < READERS + 3; i++) {
    void *(*fn)(void *) = i < READERS          ? reader
                          : i == READERS       ? flusher
                          : i == READERS + 1   ? opener
                                               : allocator;
    int e = pthread_create(&t[started], NULL, fn, (void *)(intptr_t)i);
    if (e) FAIL("pthread_create: %s", strerror(e));
    else started++;
  }
  /* let every thread get going (at most 2 s) */
  t0 = test_now();
  while (test_now() - t0 < 2 &&
         !(reader_lines[0] && reader_lines[READERS - 1] && flushes && opens && allocs))
    usleep(1000);

  t0 = test_now();
  for (int n = 0; n < max_forks && test_now() - t0 < MAX_SECONDS && !stop; n++) {
    pid_t pid = fork();
    if (pid == 0) _exit(child(n));
    if (pid < 0) {
      FAIL("fork #%d failed: %s", n, strerror(errno));
      continue;
    }
    forks++;
    int status = 0;
    pid_t w = test_waitpid_bounded(pid, &status, CHILD_TIMEOUT_MS);
    if (w == 0) {
      FAIL("child %d hung (still running after %d ms; killed it)", n, CHILD_TIMEOUT_MS);
      if (++hung >= 3) {
        fprintf(stderr, TEST_NAME ": giving up after %d hung children\n", hung);
        goto out;
      }
    } else if (w < 0) {
      FAIL("waitpid for child %d failed", n);
    } else if (WIFSIGNALED(status)) {
      FAIL("child %d was killed by signal %d (%s)", n, WTERMSIG(status),
           strsignal(WTERMSIG(status)));
    } else if (WEXITSTATUS(status) == 3) {
      FAIL("child %d hung: its watchdog fired (its threads above)", n);
    } else if (WEXITSTATUS(status) >= C_NULL && WEXITSTATUS(status) < C_END) {
      FAIL("child %d: %s", n, child_codes[WEXITSTATUS(status) - C_NULL]);
    } else if (WEXITSTATUS(status) != 0) {
      FAIL("child %d exited with status %d", n, WEXITSTATUS(status));
    }
  }
out:;
  double ran = test_now() - t0;
  stop = 1;
  test_watchdog(WATCHDOG_S, "joining the threads after the fork loop");
  for (int i = 0; i < started; i++) pthread_join(t[i], NULL);
  test_watchdog(0, NULL);
  if (thread_failed) FAIL("%s", thread_msg);
  long lines = 0;
  for (int i = 0; i < READERS; i++) {
    lines += reader_lines[i];
    if (!reader_lines[i]) FAIL("reader %d read no line", i);
  }
  if (!flushes) FAIL("the flusher never flushed");
  if (!opens) FAIL("the opener never opened");
  if (!allocs) FAIL("the allocator thread never allocated");
  if (forks < max_forks / 10 && !failures) FAIL("only %d forks in %.1f s", forks, ran);
  printf(TEST_NAME "%s: %.1f s: %d forks; %ld lines read, %ld fflush(NULL), %ld fopen rounds, %ld "
         "allocations meanwhile\n",
         checked ? " (heap checked)" : "", ran, forks, lines, flushes, opens, allocs);
  free(text);
  if (!checked && !failures) TEST_RERUN_WITH_HEAP_CHECK(argv[0]);
  test_expect_reuse();
  return test_finish();
}
