/* testlib.h: what the test programs in c_tests/ share.  Header-only (each
 * test is one file that scripts/run-tests compiles alone), so everything here
 * is a macro or a static inline function or an unused-tolerant static.
 *
 * Use, after the test's own system headers (the allocator macros below would
 * break a system header included after them):
 *
 *   #define TEST_NAME "size_sweep"   required: every message starts "size_sweep: "
 *   #define TEST_MAX_FAILURES 10     optional: FAIL gives up at the 10th failure
 *                                    (default 20; 1: the first failure ends the
 *                                    test; 0: never give up)
 *   #define TEST_GIVE_UP() ...       optional: what giving up does (default exit(1))
 *   #include "testlib.h"
 *   ...
 *   int main(void) { ...; return test_finish(); }
 *
 * Also usable from C++ (cxx_containers.cc), without the allocator macros.
 *
 * The watchdog (for tests that could hang: fork, signals, cancellation):
 *
 *   test_watchdog(30, "the fork loop");   arms (or re-arms) a one-shot timer of
 *                                         30 s; a later call replaces it, and
 *                                         test_watchdog(0, NULL) disarms it
 *
 * When it fires, the thread that takes its signal writes
 *   NAME: HANG: the fork loop did not finish in 30 s (pid P); its threads:
 * then one line per thread of the process, from /proc/self/task/TID: its
 * name (comm), state, wchan, the system call it is blocked in (name and
 * arguments), its pc as "libc.so.6+0x8612b" (the address less the file's
 * load address: addr2line -f -e FILE 0x8612b names the function) and a
 * rough backtrace (the words of its stack that point into code, innermost
 * first, stale ones included); it then SIGKILLs the children registered
 * with test_watch_child(), repeats the HANG line (scripts/run-tests shows
 * only the last 20 lines of a log) and _exit(3)s.
 * It allocates nothing and uses no stdio (the allocator or a stdio lock may
 * be what is stuck): openat/read/write/getdents64 made with syscall() (no
 * cancellation point) on stack buffers, writing to a copy of fd 2 made when
 * first armed (a test may redirect fd 2 later).
 * The timer is a POSIX timer (raw timer_create, CLOCK_MONOTONIC) that
 * signals the process with TEST_WATCHDOG_SIGNAL (SIGRTMAX unless the test
 * defines it): no thread is created (a single-threaded test stays single-
 * threaded), SIGALRM and ITIMER_REAL stay free for the test, and a thread
 * that has the signal blocked does not stop another from taking it (a test
 * must not block it in every thread, e.g. with sigfillset in a handler's
 * sa_mask).  Timers are not inherited across fork: a child that may hang
 * calls test_watchdog() again (everything it does is async-signal-safe, so
 * a child forked in a signal handler may); its HANG line names its pid.
 *   test_dump_threads("why")     the same report without exiting
 *   test_watch_child(pid), test_unwatch_child(pid)
 *                                children to SIGKILL when the watchdog fires
 *   test_waitpid_bounded(pid, &status, ms)
 *                                waitpid with a deadline: pid, or 0 when the
 *                                child was still running after ms (it is then
 *                                SIGKILLed and reaped), or -1; the child is
 *                                watched meanwhile; async-signal-safe
 *   test_wait_child(pid, ms, why, n)
 *                                the same, told in words: 0 when the child
 *                                exited 0, else its exit status (or -1)
 *                                with how it ended in why
 *   test_now()                   CLOCK_MONOTONIC in seconds
 */
#ifndef TESTLIB_H
#define TESTLIB_H

#ifndef TEST_NAME
#error "#define TEST_NAME \"name\" before #include \"testlib.h\""
#endif
#ifndef TEST_MAX_FAILURES
#define TEST_MAX_FAILURES 20
#endif
#ifndef TEST_GIVE_UP
#define TEST_GIVE_UP() exit(1)
#endif

#include <malloc.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TESTLIB_UNUSED __attribute__((unused))

/* ---------- failures ---------- */

/* How many checks have failed.  Updated atomically: FAIL may be called from
 * several threads at once. */
static int failures TESTLIB_UNUSED;

/* Counts one failure; true when the test should give up now. */
static inline int test_count_failure(void) {
  int n = __atomic_add_fetch(&failures, 1, __ATOMIC_SEQ_CST);
#if TEST_MAX_FAILURES > 1
  if (n < TEST_MAX_FAILURES) return 0;
  fprintf(stderr, TEST_NAME ": too many failures, giving up\n");
  return 1;
#elif TEST_MAX_FAILURES == 1
  (void)n;
  return 1;
#else
  (void)n;
  return 0;
#endif
}

/* FAIL("malloc(%zu) returned NULL", n): one line on stderr, prefixed with
 * the test's name, then counts the failure (and may give up).  The message
 * must be a string literal. */
#define FAIL(...)                                                              \
  do {                                                                         \
    fprintf(stderr, TEST_NAME ": " __VA_ARGS__);                               \
    fputc('\n', stderr);                                                       \
    if (test_count_failure()) TEST_GIVE_UP();                                  \
  } while (0)

/* SKIP("arena-limit", "%d CPUs need %d threads", ...): a check this machine
 * cannot make.  One line on stdout, "SKIP <test>/<check>: <reason>", which
 * scripts/run-tests counts apart from the passes (and lists); the test goes
 * on with its other checks.  Flushed at once: the process may exit or fork
 * next. */
#define SKIP(check, ...)                                                       \
  do {                                                                         \
    printf("SKIP " TEST_NAME "/" check ": " __VA_ARGS__);                      \
    fputc('\n', stdout);                                                       \
    fflush(stdout);                                                            \
  } while (0)

/* Checks that free gives memory back: for a few sizes (tcache, small bin,
 * past the tcache, large, just below the mmap threshold), the memory of a
 * block just freed is handed out again by one of the next mallocs of that
 * size (the first, from the tcache; after the cached and binned chunks of
 * that size, from the bins, in whatever state the test left them: after
 * many threads a bin can hold hundreds of chunks of one size, so up to 4096
 * mallocs are tried, at most 64 MiB of them). A free that does nothing
 * never gives it back: the program still holds it.
 * Call it once the test's other threads have ended.  A test of free must
 * fail when free does nothing: contents and alignment alone do not show
 * that it worked. */
static inline void test_expect_reuse(void) {
  static const size_t sizes[] = {24, 200, 1000, 5000, 100000};
  enum { TRIES = 4096 };
  static void *got[TRIES];
  for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
    size_t n = sizes[i];
    int tries = (64 << 20) / n < TRIES ? (int)((64 << 20) / n) : TRIES;
    void *volatile p = malloc(n);
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    free(p);
    int k = 0, found = 0;
    while (k < tries && !found) {
      void *q = malloc(n);
      if (!q) break;
      got[k++] = q;
      found = (uintptr_t)q < hi && lo < (uintptr_t)q + n;
    }
    for (int j = 0; j < k; j++) free(got[j]);
    if (!found) {
      /* FAIL's give-up may be a goto in the caller: count, never jump. */
      fprintf(stderr, TEST_NAME ": free(%p) of %zu bytes did not give its memory back: none of the next %d mallocs of that size reused it\n",
              (void *)lo, n, k);
      (void)test_count_failure();
    }
  }
}

/* main's result: 1 (after a summary line) when any check failed, else 0. */
static inline int test_finish(void) {
  int n = __atomic_load_n(&failures, __ATOMIC_SEQ_CST);
  if (n) {
    fprintf(stderr, TEST_NAME ": %d failure(s)\n", n);
    return 1;
  }
  return 0;
}

/* ---------- keeping the optimiser from knowing too much ---------- */

#ifndef __cplusplus
/* All allocator calls go through volatile function pointers: GCC knows
 * malloc & co. as builtins and, with direct calls, folds alignment checks
 * (aligned_alloc(64, n) % 64 == 0), comparisons of two malloc results, reads
 * of calloc'ed memory and errno reads after free/posix_memalign, or deletes
 * malloc/free pairs (seen with gcc 12 -O2).  An indirect call has none of
 * that knowledge.  (Not in C++: the C++ test allocates through new/delete,
 * and a macro named free would break std::free.) */
static void *(*volatile malloc_v)(size_t) TESTLIB_UNUSED = malloc;
static void (*volatile free_v)(void *) TESTLIB_UNUSED = free;
static void *(*volatile calloc_v)(size_t, size_t) TESTLIB_UNUSED = calloc;
static void *(*volatile realloc_v)(void *, size_t) TESTLIB_UNUSED = realloc;
static void *(*volatile reallocarray_v)(void *, size_t, size_t) TESTLIB_UNUSED = reallocarray;
static void *(*volatile memalign_v)(size_t, size_t) TESTLIB_UNUSED = memalign;
static void *(*volatile aligned_alloc_v)(size_t, size_t) TESTLIB_UNUSED = aligned_alloc;
static int (*volatile posix_memalign_v)(void **, size_t, size_t) TESTLIB_UNUSED = posix_memalign;
static void *(*volatile valloc_v)(size_t) TESTLIB_UNUSED = valloc;
static void *(*volatile pvalloc_v)(size_t) TESTLIB_UNUSED = pvalloc;
#define malloc(a0) malloc_v(a0)
#define free(a0) free_v(a0)
#define calloc(a0, a1) calloc_v(a0, a1)
#define realloc(a0, a1) realloc_v(a0, a1)
#define reallocarray(a0, a1, a2) reallocarray_v(a0, a1, a2)
#define memalign(a0, a1) memalign_v(a0, a1)
#define aligned_alloc(a0, a1) aligned_alloc_v(a0, a1)
#define posix_memalign(a0, a1, a2) posix_memalign_v(a0, a1, a2)
#define valloc(a0) valloc_v(a0)
#define pvalloc(a0) pvalloc_v(a0)
#endif

/* Hide a value from the optimiser (no constant folding, no warnings about
 * huge constant sizes). */
static inline size_t opq(size_t x) {
  __asm__("" : "+r"(x));
  return x;
}
static inline void *opqp(void *x) {
  __asm__("" : "+r"(x));
  return x;
}

/* Make the stores to *p count as used, so that writes into a block that is
 * about to be freed are not deleted. */
static inline void keep_stores(const void *p) { __asm__ volatile("" : : "r"(p) : "memory"); }

/* ---------- a fixed-seed PRNG ---------- */

/* xorshift64*; *st must not be 0. */
static inline uint64_t rnd(uint64_t *st) {
  uint64_t x = *st;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *st = x;
  return x * 0x2545F4914F6CDD1Dull;
}

/* ---------- block contents ---------- */

/* What the checks below return when every byte is as expected. */
#define ALL_GOOD ((size_t)-1)

/* The byte pattern a block is filled with: 8-byte word k (bytes 8k..8k+7) of
 * the pattern with seed s is pat_word(s, k), so byte j depends on the seed and
 * on j: the wrong block's bytes, or the right ones at a shifted offset, do not
 * match. */
static inline uint64_t pat_word(uint64_t seed, size_t k) {
  uint64_t x = seed ^ (k * 0x9E3779B97F4A7C15ull);
  return x ^ (x >> 29);
}
static inline uint8_t pat_byte(uint64_t seed, size_t j) {
  return (uint8_t)(pat_word(seed, j >> 3) >> ((j & 7) * 8));
}

/* Writes the pattern to bytes [from, to) of p. */
static inline void pat_fill(unsigned char *p, uint64_t seed, size_t from, size_t to) {
  size_t j = from;
  for (; j < to && (j & 7); j++) p[j] = pat_byte(seed, j);
  for (; j + 8 <= to; j += 8) {
    uint64_t w = pat_word(seed, j >> 3);
    memcpy(p + j, &w, 8);
  }
  for (; j < to; j++) p[j] = pat_byte(seed, j);
}

/* The first of bytes [0, n) of p that does not hold the pattern, or ALL_GOOD. */
static inline size_t pat_check(const unsigned char *p, uint64_t seed, size_t n) {
  size_t j = 0;
  for (; j + 8 <= n; j += 8) {
    uint64_t w;
    memcpy(&w, p + j, 8);
    if (w != pat_word(seed, j >> 3)) break;
  }
  for (; j < n; j++)
    if (p[j] != pat_byte(seed, j)) return j;
  return ALL_GOOD;
}

/* The first of bytes [0, n) of p that is not c, or ALL_GOOD. */
static inline size_t first_byte_not(const unsigned char *p, size_t n, unsigned char c) {
  for (size_t j = 0; j < n; j++)
    if (p[j] != c) return j;
  return ALL_GOOD;
}

/* ---------- the process ---------- */

/* The resident set size in KiB (from /proc/self/statm), or -1. */
static inline long rss_kib(void) {
  long size = 0, pages = -1;
  FILE *f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &pages) != 2) pages = -1;
  fclose(f);
  return pages < 0 ? -1 : pages * (sysconf(_SC_PAGESIZE) / 1024);
}

/* ---------- the watchdog (see the top of this file) ---------- */

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <time.h>
#include <ucontext.h>

#ifndef TEST_WATCHDOG_SIGNAL
#define TEST_WATCHDOG_SIGNAL (SIGRTMAX)
#endif
#define TEST_WD_CHILDREN 64

static const char *volatile test_wd_what TESTLIB_UNUSED;
static volatile int test_wd_secs TESTLIB_UNUSED;
static int test_wd_timer TESTLIB_UNUSED;           /* the kernel's timer id */
static volatile pid_t test_wd_timer_pid TESTLIB_UNUSED; /* the process that owns it */
static volatile int test_wd_fd TESTLIB_UNUSED = -1;  /* a copy of the original fd 2 */
static volatile pid_t test_wd_children[TEST_WD_CHILDREN] TESTLIB_UNUSED;

static inline double test_now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* The watchdog's system calls, made with syscall(): unlike libc's open,
 * read, write and close they are no cancellation point (the watchdog may run
 * in a thread with a cancellation pending). */
static inline int test_wd_open(const char *path, int flags) {
  return (int)syscall(SYS_openat, AT_FDCWD, path, flags | O_CLOEXEC);
}
static inline ssize_t test_wd_read(int fd, void *buf, size_t n) {
  return (ssize_t)syscall(SYS_read, fd, buf, n);
}
static inline ssize_t test_wd_write(int fd, const void *buf, size_t n) {
  return (ssize_t)syscall(SYS_write, fd, buf, n);
}
static inline void test_wd_close(int fd) { syscall(SYS_close, fd); }

/* An output line built on the stack. */
struct test_wd_out {
  char b[1024];
  int n;
};
static inline void test_wd_flush(struct test_wd_out *o) {
  int fd = test_wd_fd >= 0 ? test_wd_fd : 2;
  int k = 0;
  while (k < o->n) {
    ssize_t w = test_wd_write(fd, o->b + k, (size_t)(o->n - k));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) break;
    k += (int)w;
  }
  o->n = 0;
}
static inline void test_wd_put(struct test_wd_out *o, const char *s) {
  for (; s && *s; s++) {
    if (o->n == (int)sizeof o->b) test_wd_flush(o);
    o->b[o->n++] = *s;
  }
}
static inline void test_wd_num(struct test_wd_out *o, unsigned long v, int base) {
  char t[24];
  int k = sizeof t - 1;
  t[k] = 0;
  do {
    t[--k] = "0123456789abcdef"[v % (unsigned)base];
    v /= (unsigned)base;
  } while (v);
  if (base == 16) test_wd_put(o, "0x");
  test_wd_put(o, t + k);
}
/* Reads a small file into buf (NUL-terminated, newlines turned into spaces,
 * trailing ones dropped); its length, or -1. */
static inline int test_wd_slurp(const char *path, char *buf, int cap) {
  int fd = test_wd_open(path, O_RDONLY);
  if (fd < 0) return -1;
  int n = 0;
  for (;;) {
    ssize_t r = test_wd_read(fd, buf + n, (size_t)(cap - 1 - n));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    n += (int)r;
    if (n == cap - 1) break;
  }
  test_wd_close(fd);
  while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ')) n--;
  buf[n] = 0;
  for (int i = 0; i < n; i++)
    if (buf[i] == '\n') buf[i] = ' ';
  return n;
}
static inline unsigned long test_wd_hex(const char *s, const char **end) {
  unsigned long v = 0;
  if (s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) s += 2;
  for (;; s++) {
    int d;
    if (*s >= '0' && *s <= '9') d = *s - '0';
    else if (*s >= 'a' && *s <= 'f') d = *s - 'a' + 10;
    else if (*s >= 'A' && *s <= 'F') d = *s - 'A' + 10;
    else break;
    v = v * 16 + (unsigned long)d;
  }
  if (end) *end = s;
  return v;
}
/* The executable mappings of /proc/self/maps (each with the address its
 * file is loaded at: that of the file's mapping at offset 0), and the end of
 * the mapping holding a given stack pointer. */
struct test_wd_map {
  unsigned long lo, hi, base;
  char name[40];
};
#define TEST_WD_MAPS 96
static inline int test_wd_load_maps(struct test_wd_map *m, unsigned long sp,
                                    unsigned long *sp_end) {
  int fd = test_wd_open("/proc/self/maps", O_RDONLY);
  int n = 0;
  *sp_end = 0;
  if (fd < 0) return 0;
  char chunk[2048], line[320], first_name[40] = "";
  unsigned long first_lo = 0;
  int ln = 0;
  for (;;) {
    ssize_t r = test_wd_read(fd, chunk, sizeof chunk);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (ssize_t i = 0; i < r; i++) {
      if (chunk[i] != '\n') {
        if (ln < (int)sizeof line - 1) line[ln++] = chunk[i];
        continue;
      }
      line[ln] = 0;
      ln = 0;
      /* start-end perms offset dev inode path */
      const char *p;
      unsigned long lo = test_wd_hex(line, &p);
      if (*p != '-') continue;
      unsigned long hi = test_wd_hex(p + 1, &p);
      if (sp >= lo && sp < hi) *sp_end = hi;
      while (*p == ' ') p++;
      int exec = p[0] && p[1] && p[2] == 'x';
      while (*p && *p != ' ') p++; /* perms */
      while (*p == ' ') p++;
      unsigned long off = test_wd_hex(p, &p);
      for (int f = 0; f < 2 && *p; f++) { /* dev, inode */
        while (*p == ' ') p++;
        while (*p && *p != ' ') p++;
      }
      while (*p == ' ') p++;
      const char *base = p;
      for (const char *q = p; *q; q++)
        if (*q == '/') base = q + 1;
      if (!*base) base = "anonymous";
      char name[40];
      size_t bl = strlen(base) < sizeof name - 1 ? strlen(base) : sizeof name - 1;
      memcpy(name, base, bl);
      name[bl] = 0;
      if (off == 0) {
        first_lo = lo;
        memcpy(first_name, name, sizeof name);
      }
      if (!exec || n == TEST_WD_MAPS) continue;
      m[n].lo = lo;
      m[n].hi = hi;
      m[n].base = strcmp(name, first_name) == 0 ? first_lo : lo - off;
      memcpy(m[n].name, name, sizeof name);
      n++;
    }
  }
  test_wd_close(fd);
  return n;
}
static inline const struct test_wd_map *test_wd_find(const struct test_wd_map *m, int n,
                                                      unsigned long a) {
  for (int i = 0; i < n; i++)
    if (a >= m[i].lo && a < m[i].hi) return &m[i];
  return NULL;
}
/* Appends "FILE+0xOFFSET" (pc minus the file's load address: what
 * addr2line -e FILE wants) or the address. */
static inline void test_wd_where(struct test_wd_out *o, const struct test_wd_map *m, int n,
                                 unsigned long pc) {
  const struct test_wd_map *e = test_wd_find(m, n, pc);
  if (!e) {
    test_wd_num(o, pc, 16);
    return;
  }
  test_wd_put(o, e->name);
  test_wd_put(o, "+");
  test_wd_num(o, pc - e->base, 16);
}
/* Appends pc, then the words of the stack above sp that point into
 * executable mappings (return addresses, and some stale ones): a rough
 * backtrace, innermost first, for a thread that is not running. */
static inline void test_wd_pc_stack(struct test_wd_out *o, unsigned long pc, unsigned long sp) {
  struct test_wd_map m[TEST_WD_MAPS];
  unsigned long sp_end;
  int n = test_wd_load_maps(m, sp, &sp_end);
  test_wd_put(o, " pc ");
  test_wd_where(o, m, n, pc);
  if (!sp || !sp_end) return;
  unsigned long end = sp_end - sp > 32768 ? sp + 32768 : sp_end;
  int shown = 0;
  test_wd_put(o, "; stack:");
  for (unsigned long a = (sp + 7) & ~7ul; a + 8 <= end && shown < 16; a += 8) {
    unsigned long w = *(volatile unsigned long *)a;
    if (!test_wd_find(m, n, w)) continue;
    test_wd_put(o, " ");
    test_wd_where(o, m, n, w);
    shown++;
  }
}
static inline const char *test_wd_syscall_name(long nr) {
  static const struct {
    long nr;
    const char *name;
  } names[] = {
      {SYS_futex, "futex"},
      {SYS_wait4, "wait4"},
      {SYS_waitid, "waitid"},
      {SYS_read, "read"},
      {SYS_write, "write"},
      {SYS_openat, "openat"},
      {SYS_close, "close"},
      {SYS_nanosleep, "nanosleep"},
      {SYS_clock_nanosleep, "clock_nanosleep"},
      {SYS_sched_yield, "sched_yield"},
      {SYS_ppoll, "ppoll"},
      {SYS_pselect6, "pselect6"},
      {SYS_rt_sigtimedwait, "rt_sigtimedwait"},
      {SYS_rt_sigsuspend, "rt_sigsuspend"},
      {SYS_clone, "clone"},
      {SYS_exit_group, "exit_group"},
      {SYS_mmap, "mmap"},
      {SYS_munmap, "munmap"},
      {SYS_mprotect, "mprotect"},
      {SYS_madvise, "madvise"},
      {SYS_mremap, "mremap"},
      {SYS_brk, "brk"},
#ifdef SYS_clone3
      {SYS_clone3, "clone3"},
#endif
#ifdef SYS_fork
      {SYS_fork, "fork"},
#endif
#ifdef SYS_poll
      {SYS_poll, "poll"},
#endif
#ifdef SYS_pause
      {SYS_pause, "pause"},
#endif
#ifdef SYS_select
      {SYS_select, "select"},
#endif
  };
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (names[i].nr == nr) return names[i].name;
  return NULL;
}

/* One line per thread of this process (see the top of this file).
 * interrupted_pc: where the calling thread was when the signal came (0:
 * unknown). */
static inline void test_wd_threads(struct test_wd_out *o, unsigned long interrupted_pc,
                                   unsigned long interrupted_sp) {
  long self = (long)syscall(SYS_gettid);
  int dfd = test_wd_open("/proc/self/task", O_RDONLY | O_DIRECTORY);
  if (dfd < 0) {
    test_wd_put(o, TEST_NAME ":   (cannot open /proc/self/task)\n");
    test_wd_flush(o);
    return;
  }
  char dents[4096];
  for (;;) {
    long nread = (long)syscall(SYS_getdents64, dfd, dents, sizeof dents);
    if (nread <= 0) break;
    for (long pos = 0; pos < nread;) {
      /* struct linux_dirent64: ino (8), off (8), reclen (2), type (1), name */
      unsigned short reclen;
      memcpy(&reclen, dents + pos + 16, sizeof reclen);
      const char *name = dents + pos + 19;
      pos += reclen;
      if (name[0] < '0' || name[0] > '9') continue;
      char path[64], comm[64], stat[512], wchan[128], sc[256];
      struct test_wd_out pb;
      pb.n = 0;
      /* the paths, built with the same appender */
#define TEST_WD_PATH(leaf)                                                     \
  do {                                                                         \
    pb.n = 0;                                                                  \
    test_wd_put(&pb, "/proc/self/task/");                                      \
    test_wd_put(&pb, name);                                                    \
    test_wd_put(&pb, leaf);                                                    \
    pb.b[pb.n] = 0;                                                            \
    memcpy(path, pb.b, (size_t)pb.n + 1);                                      \
  } while (0)
      TEST_WD_PATH("/comm");
      if (test_wd_slurp(path, comm, sizeof comm) < 0) strcpy(comm, "?");
      TEST_WD_PATH("/stat");
      char state = '?';
      if (test_wd_slurp(path, stat, sizeof stat) > 0) {
        const char *rp = strrchr(stat, ')');
        if (rp && rp[1] == ' ') state = rp[2];
      }
      TEST_WD_PATH("/wchan");
      if (test_wd_slurp(path, wchan, sizeof wchan) < 0) strcpy(wchan, "?");
      TEST_WD_PATH("/syscall");
      if (test_wd_slurp(path, sc, sizeof sc) < 0) strcpy(sc, "?");
#undef TEST_WD_PATH
      long tid = 0;
      for (const char *q = name; *q >= '0' && *q <= '9'; q++) tid = tid * 10 + (*q - '0');
      test_wd_put(o, TEST_NAME ":   thread ");
      test_wd_put(o, name);
      test_wd_put(o, " \"");
      test_wd_put(o, comm);
      test_wd_put(o, "\" state ");
      char st[2] = {state, 0};
      test_wd_put(o, st);
      test_wd_put(o, " wchan ");
      test_wd_put(o, wchan);
      if (tid == self) {
        test_wd_put(o, ": this thread, reporting");
        if (interrupted_pc) {
          test_wd_put(o, "; the watchdog's signal interrupted it at");
          test_wd_pc_stack(o, interrupted_pc, interrupted_sp);
        }
      } else if ((sc[0] >= '0' && sc[0] <= '9') || sc[0] == '-') {
        /* "NR ARG1 .. ARG6 SP PC": blocked in system call NR;
         * "-1 SP PC": stopped outside a system call */
        unsigned long f[9];
        int nf = 0;
        long nr = 0;
        const char *q = sc;
        if (*q == '-') {
          nr = -1;
          q += 2;
        } else {
          for (; *q >= '0' && *q <= '9'; q++) nr = nr * 10 + (*q - '0');
        }
        while (*q && nf < 9) {
          while (*q == ' ') q++;
          if (!*q) break;
          f[nf++] = test_wd_hex(q, &q);
          while (*q && *q != ' ') q++;
        }
        if (nr < 0) {
          test_wd_put(o, ": not in a system call;");
        } else {
          const char *sname = test_wd_syscall_name(nr);
          test_wd_put(o, ": in syscall ");
          if (sname) test_wd_put(o, sname);
          else test_wd_num(o, (unsigned long)nr, 10);
          test_wd_put(o, "(");
          for (int i = 0; i < 6 && i < nf - 2; i++) {
            if (i) test_wd_put(o, ", ");
            test_wd_num(o, f[i], 16);
          }
          test_wd_put(o, ")");
        }
        if (nf >= 2) test_wd_pc_stack(o, f[nf - 1], f[nf - 2]);
      } else {
        test_wd_put(o, ": ");
        test_wd_put(o, sc); /* "running" */
      }
      test_wd_put(o, "\n");
      test_wd_flush(o);
    }
  }
  test_wd_close(dfd);
}

static inline void test_wd_header(struct test_wd_out *o, const char *kind, const char *what) {
  test_wd_put(o, TEST_NAME ": ");
  test_wd_put(o, kind);
  test_wd_put(o, what ? what : "?");
}

/* The watchdog's report without exiting: "NAME: THREADS: why (pid P)" and a
 * line per thread.  Async-signal-safe. */
static inline TESTLIB_UNUSED void test_dump_threads(const char *why) {
  int saved = errno;
  struct test_wd_out o;
  o.n = 0;
  test_wd_header(&o, "THREADS: ", why);
  test_wd_put(&o, " (pid ");
  test_wd_num(&o, (unsigned long)getpid(), 10);
  test_wd_put(&o, ")\n");
  test_wd_flush(&o);
  test_wd_threads(&o, 0, 0);
  errno = saved;
}

static inline void test_wd_fire(int sig, siginfo_t *si, void *ucv) {
  (void)sig;
  (void)si;
  unsigned long pc = 0, sp = 0;
#if defined(__x86_64__) && defined(REG_RIP)
  if (ucv) {
    pc = (unsigned long)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RIP];
    sp = (unsigned long)((ucontext_t *)ucv)->uc_mcontext.gregs[REG_RSP];
  }
#elif defined(__aarch64__)
  if (ucv) {
    pc = (unsigned long)((ucontext_t *)ucv)->uc_mcontext.pc;
    sp = (unsigned long)((ucontext_t *)ucv)->uc_mcontext.sp;
  }
#else
  (void)ucv;
#endif
  struct test_wd_out o;
  o.n = 0;
  for (int pass = 0; pass < 2; pass++) {
    test_wd_header(&o, "HANG: ", test_wd_what);
    test_wd_put(&o, " did not finish in ");
    test_wd_num(&o, (unsigned long)test_wd_secs, 10);
    test_wd_put(&o, " s (pid ");
    test_wd_num(&o, (unsigned long)getpid(), 10);
    test_wd_put(&o, pass ? "; its threads are listed above)\n" : "); its threads:\n");
    test_wd_flush(&o);
    if (pass) break;
    test_wd_threads(&o, pc, sp);
    for (int i = 0; i < TEST_WD_CHILDREN; i++) {
      pid_t c = test_wd_children[i];
      if (c > 0 && kill(c, SIGKILL) == 0) {
        test_wd_put(&o, TEST_NAME ":   killed child ");
        test_wd_num(&o, (unsigned long)c, 10);
        test_wd_put(&o, "\n");
        test_wd_flush(&o);
      }
    }
  }
  _exit(3);
}

/* Arms (seconds > 0) or disarms (0) the watchdog; see the top of the file.
 * Async-signal-safe.  0, or -1 when the timer could not be made. */
static inline TESTLIB_UNUSED int test_watchdog(int seconds, const char *what) {
  int saved = errno;
  if (test_wd_fd < 0) test_wd_fd = fcntl(2, F_DUPFD_CLOEXEC, 10);
  test_wd_what = what;
  test_wd_secs = seconds;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = test_wd_fire;
  sa.sa_flags = SA_SIGINFO;
  sigemptyset(&sa.sa_mask);
  sigaction(TEST_WATCHDOG_SIGNAL, &sa, NULL);
  sigset_t un;
  sigemptyset(&un);
  sigaddset(&un, TEST_WATCHDOG_SIGNAL);
  sigprocmask(SIG_UNBLOCK, &un, NULL);
  pid_t me = getpid();
  if (test_wd_timer_pid != me) {
    if (!seconds) {
      errno = saved;
      return 0;
    }
    /* raw timer_create: the kernel's sigevent is glibc's, its timer id an int */
    struct sigevent sev;
    memset(&sev, 0, sizeof sev);
    sev.sigev_notify = SIGEV_SIGNAL;
    sev.sigev_signo = TEST_WATCHDOG_SIGNAL;
    int id = -1;
    if (syscall(SYS_timer_create, CLOCK_MONOTONIC, &sev, &id) != 0) {
      static const char msg[] = TEST_NAME ": test_watchdog: timer_create failed\n";
      ssize_t w = test_wd_write(test_wd_fd >= 0 ? test_wd_fd : 2, msg, sizeof msg - 1);
      (void)w;
      errno = saved;
      return -1;
    }
    test_wd_timer = id;
    test_wd_timer_pid = me;
  }
  struct itimerspec its;
  memset(&its, 0, sizeof its);
  its.it_value.tv_sec = seconds;
  syscall(SYS_timer_settime, test_wd_timer, 0, &its, NULL);
  errno = saved;
  return 0;
}

/* Children the watchdog SIGKILLs before it exits (a hung child would live
 * on).  Async-signal-safe. */
static inline TESTLIB_UNUSED void test_watch_child(pid_t pid) {
  for (int i = 0; i < TEST_WD_CHILDREN; i++) {
    pid_t zero = 0;
    if (__atomic_compare_exchange_n(&test_wd_children[i], &zero, pid, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      return;
  }
}
static inline TESTLIB_UNUSED void test_unwatch_child(pid_t pid) {
  for (int i = 0; i < TEST_WD_CHILDREN; i++) {
    pid_t p = pid;
    if (__atomic_compare_exchange_n(&test_wd_children[i], &p, 0, 0, __ATOMIC_SEQ_CST,
                                    __ATOMIC_SEQ_CST))
      return;
  }
}

/* waitpid(pid) for at most timeout_ms: pid when it ended (*status set), 0
 * when it was still running (then SIGKILLed and reaped, *status = that), -1
 * on error.  The child is watched meanwhile (test_watch_child).  Polls with
 * WNOHANG; async-signal-safe; keeps errno. */
static inline TESTLIB_UNUSED pid_t test_waitpid_bounded(pid_t pid, int *status, long timeout_ms) {
  int saved = errno;
  test_watch_child(pid);
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  long sleep_ns = 20000;
  pid_t r;
  for (;;) {
    r = waitpid(pid, status, WNOHANG);
    if (r == pid) break;
    if (r < 0 && errno != EINTR) break;
    clock_gettime(CLOCK_MONOTONIC, &t);
    long ms = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    if (ms > timeout_ms) {
      kill(pid, SIGKILL);
      while (waitpid(pid, status, 0) < 0 && errno == EINTR) {}
      r = 0;
      break;
    }
    struct timespec d = {0, sleep_ns};
    nanosleep(&d, NULL);
    if (sleep_ns < 2000000) sleep_ns *= 2;
  }
  test_unwatch_child(pid);
  errno = saved;
  return r;
}

/* Waits for child pid at most timeout_ms (test_waitpid_bounded): 0 when it
 * exited 0; otherwise how it ended, in why (n bytes: "hung (killed after
 * N ms)", "was killed by signal S", "exited with status N", "could not be
 * waited for"), and the return value is its exit status, or -1. */
static inline TESTLIB_UNUSED int test_wait_child(pid_t pid, long timeout_ms, char *why, size_t n) {
  int st = 0;
  pid_t w = test_waitpid_bounded(pid, &st, timeout_ms);
  if (w == 0) {
    snprintf(why, n, "hung (killed after %ld ms)", timeout_ms);
    return -1;
  }
  if (w < 0) {
    snprintf(why, n, "could not be waited for");
    return -1;
  }
  if (WIFSIGNALED(st)) {
    snprintf(why, n, "was killed by signal %d", WTERMSIG(st));
    return -1;
  }
  snprintf(why, n, "exited with status %d", WEXITSTATUS(st));
  return WEXITSTATUS(st);
}

#ifndef __cplusplus
/* Calls fn(fd) with the write end of a pipe (for malloc_rs_dump and the
 * like) and returns what it wrote, NUL-terminated in buf (at most n - 1
 * bytes; the pipe must not fill up: 64 KiB). */
static inline const char *fd_output(void (*fn)(int), char *buf, size_t n) {
  int fds[2];
  buf[0] = 0;
  if (pipe(fds)) return buf;
  fn(fds[1]);
  close(fds[1]);
  size_t got = 0;
  ssize_t r;
  while (got < n - 1 && (r = read(fds[0], buf + got, n - 1 - got)) > 0) got += (size_t)r;
  close(fds[0]);
  buf[got] = 0;
  return buf;
}

/* Runs this program again (/proc/self/exe with argv, NULL-terminated) with
 * the environment changed by `env` ("NAME=VALUE" sets, "NAME" unsets;
 * NULL-terminated, or NULL), and captures what the child writes on file
 * descriptor `fd` (1 or 2) in buf (NUL-terminated).  Waits at most
 * `timeout_ms` for it to end, then SIGKILLs it.  Returns its wait status,
 * or -1 when it did not start or was killed for the time limit. */
static inline TESTLIB_UNUSED int run_self_capture(int fd, char *const *argv, const char *const *env, char *buf,
                                                  size_t cap, long timeout_ms) {
  int fds[2];
  buf[0] = 0;
  if (pipe(fds)) return -1;
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    dup2(fds[1], fd);
    close(fds[0]);
    close(fds[1]);
    for (; env && *env; env++) {
      const char *eq = strchr(*env, '=');
      if (eq) {
        char name[128];
        size_t n = (size_t)(eq - *env) < sizeof name - 1 ? (size_t)(eq - *env) : sizeof name - 1;
        memcpy(name, *env, n);
        name[n] = 0;
        setenv(name, eq + 1, 1);
      } else {
        unsetenv(*env);
      }
    }
    execv("/proc/self/exe", argv);
    _exit(127);
  }
  close(fds[1]);
  double end = test_now() + timeout_ms / 1000.0;
  size_t n = 0;
  for (;;) {
    long left = (long)((end - test_now()) * 1000);
    struct pollfd p = {fds[0], POLLIN, 0};
    if (left <= 0 || poll(&p, 1, (int)left) <= 0) break;
    ssize_t r = read(fds[0], buf + n, cap - 1 - n);
    if (r <= 0) break;
    n += (size_t)r;
    if (n >= cap - 1) break;
  }
  buf[n] = 0;
  close(fds[0]);
  long left = (long)((end - test_now()) * 1000);
  int status = -1;
  if (test_waitpid_bounded(pid, &status, left > 0 ? left : 1) != pid) return -1;
  return status;
}

/* Runs this program again as "ARGV0 ARG" (see run_self_capture, with a
 * limit of 120 s) and returns what it wrote on stderr, its wait status in
 * *status. */
static inline const char *run_self_stderr(const char *argv0, const char *arg, const char *const *env,
                                          char *buf, size_t cap, int *status) {
  char *const argv[] = {(char *)argv0, (char *)arg, NULL};
  *status = run_self_capture(2, argv, env, buf, cap, 120000);
  return buf;
}

/* Runs this program again as "ARGV0 checked" with PTMALLOC_RS_CHECK_HEAP=1
 * (ptmalloc-rs then checks every arena after every call of the malloc
 * family; glibc ignores it), and fails the test if that run fails. */
#define TEST_RERUN_WITH_HEAP_CHECK(argv0)                                                  \
  do {                                                                                     \
    static char err_[8192];                                                                \
    static const char *const env_[] = {"PTMALLOC_RS_CHECK_HEAP=1", NULL};                  \
    int st_;                                                                               \
    fflush(stdout);                                                                        \
    run_self_stderr(argv0, "checked", env_, err_, sizeof err_, &st_);                      \
    if (!WIFEXITED(st_) || WEXITSTATUS(st_) != 0)                                          \
      FAIL("the run with PTMALLOC_RS_CHECK_HEAP=1 ended with status %#x; its stderr:\n%s", \
           st_, err_);                                                                     \
  } while (0)
#endif

#ifdef TESTLIB_CHUNKS
/* ---------- chunk headers (glibc's layout, which ptmalloc-rs keeps) ---------- */

#define KiB ((size_t)1024)
#define MiB ((size_t)1024 * 1024)
#define PAGE ((size_t)4096)
#define HEAP_MAX ((uintptr_t)64 << 20)
#define IS_MMAPPED ((size_t)2)
#define NON_MAIN_ARENA ((size_t)4)
#define MINSIZE ((size_t)32)

/* The size word of the chunk holding user pointer p, flags included. */
static inline size_t size_word(const void *p) { return ((const size_t *)p)[-1]; }
static inline size_t chunk_size(const void *p) { return size_word(p) & ~(size_t)7; }
static inline int is_mmapped(const void *p) { return (size_word(p) & IS_MMAPPED) != 0; }
static inline uintptr_t brk_now(void) { return (uintptr_t)sbrk(0); }
static inline size_t align_up(size_t x, size_t a) { return (x + a - 1) & ~(a - 1); }
/* glibc's request2size. */
static inline size_t req2size(size_t n) { return n + 8 + 15 < MINSIZE ? MINSIZE : (n + 8 + 15) & ~(size_t)15; }
#endif

#endif /* TESTLIB_H */
