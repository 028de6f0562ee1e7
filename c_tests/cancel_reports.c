/* cancel_reports: no function of the malloc family is a cancellation point.
 * Each step runs in a thread of its own with deferred cancellation: the
 * step's setup, then a cancellation request made pending (by
 * pthread_cancel(pthread_self()), or by the main thread while this one
 * waits in a spin loop, which is no cancellation point), then the step's
 * calls, then pthread_testcancel().  A cleanup handler records how far the
 * thread got.  After pthread_join, each step must show: the calls all
 * returned (the thread was not cancelled inside them), the thread was then
 * cancelled by pthread_testcancel (the join gives PTHREAD_CANCELED), and
 * the calls' results are right:
 *   malloc (the thread's first allocation: arena attach), calloc (zeroed),
 *   realloc (contents kept, into an mmap'd size), reallocarray, free
 *   (small, large and mmap'd blocks), memalign, posix_memalign,
 *   aligned_alloc, valloc, pvalloc (alignment), malloc_usable_size,
 *   mallopt(M_MXFAST, its default) == 1, malloc_trim, mallinfo, mallinfo2;
 *   malloc_stats with fd 2 redirected to a memfd: the same lines (digits
 *   and spacing aside) as a call without a pending cancellation just
 *   before it in the same thread, which includes the "Total (incl. mmap):"
 *   block and the "max mmap regions" / "max mmap bytes" lines;
 *   malloc_info(0, fp) to an open_memstream FILE and to a file FILE with a
 *   1 MiB buffer (glibc writes through the FILE: neither reaches a write()
 *   before the main thread's fclose): "<malloc version=\"1\">" .. the
 *   "<system type=\"max\"" total .. "</malloc>";
 *   malloc_rs_dump(fd) and malloc_rs_dump_chunks(fd) (found with dlsym;
 *   under plain glibc they do not exist and are skipped, which the test
 *   prints; under the preload they must exist): output with as many lines
 *   as an uncancelled call just before, the dump's "totals" line included.
 * Then all the steps at once in one thread, once per way of cancelling.
 * Finally the main thread allocates and frees across all sizes (the
 * allocator is not left locked by a cancelled thread).
 * glibc: malloc_stats sets _IO_FLAGS2_NOTCANCEL on stderr while it prints;
 * nothing else in the family reaches a cancellation point here.  A
 * malloc_stats that writes through stderr without it is cancelled at its
 * first write and prints nothing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define TEST_NAME "cancel_reports"
#define TEST_MAX_FAILURES 40
#include "testlib.h"

#define WATCHDOG_S 30

static void (*dump_fn)(int), (*dump_chunks_fn)(int);
static int expect_preload;

/* ---------- captured output ---------- */

static int new_memfd(const char *name) {
  int fd = memfd_create(name, MFD_CLOEXEC);
  if (fd < 0) {
    FAIL("memfd_create: %s", strerror(errno));
    exit(1);
  }
  return fd;
}

/* The whole of a memfd, NUL-terminated; the caller frees it. */
static char *memfd_text(int fd) {
  off_t n = lseek(fd, 0, SEEK_END);
  if (n < 0) n = 0;
  char *s = malloc((size_t)n + 1);
  if (!s) exit(1);
  ssize_t got = pread(fd, s, (size_t)n, 0);
  s[got > 0 ? got : 0] = 0;
  return s;
}

/* Digit runs become one '#', blank runs one ' ': the shape of a report. */
static void normalise(const char *in, char *out, size_t cap) {
  size_t k = 0;
  for (const char *p = in; *p && k + 1 < cap;) {
    if (*p >= '0' && *p <= '9') {
      while (*p >= '0' && *p <= '9') p++;
      out[k++] = '#';
    } else if (*p == ' ') {
      while (*p == ' ') p++;
      out[k++] = ' ';
    } else {
      out[k++] = *p++;
    }
  }
  out[k] = 0;
}

static int count_lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

/* ---------- steps ---------- */

struct job;
struct step {
  const char *name;
  void (*setup)(struct job *); /* before the cancellation request (may be NULL) */
  void (*call)(struct job *);  /* with the request pending */
  void (*check)(struct job *); /* in main, after the join (may be NULL) */
};

struct job {
  const struct step *s;
  const char *label; /* the step and how it ran, for messages */
  int alone;         /* the only step of its thread */
  void *p[8];
  size_t n[8];
  long r[4];
  int fd_ref, fd_out, saved_fd2;
  FILE *fp;
  char *ms;
  size_t mslen;
  struct mallinfo2 mi2;
  volatile int returned; /* the call returned */
};

static void s_malloc(struct job *j) {
  static const size_t sz[] = {24, 5000, 300000};
  for (int i = 0; i < 3; i++) {
    j->n[i] = sz[i];
    j->p[i] = malloc(sz[i]);
    if (j->p[i]) memset(j->p[i], 0x11 * (i + 1), sz[i]);
  }
}
static void c_malloc(struct job *j) {
  for (int i = 0; i < 3; i++) {
    if (!j->p[i]) FAIL("%s: malloc(%zu) returned NULL", j->label, j->n[i]);
    else if (first_byte_not(j->p[i], j->n[i], (unsigned char)(0x11 * (i + 1))) != ALL_GOOD)
      FAIL("%s: block of %zu bytes lost its contents", j->label, j->n[i]);
    free(j->p[i]);
  }
}

static void s_calloc(struct job *j) {
  j->n[0] = 1000, j->n[1] = 200000;
  j->p[0] = calloc(10, 100);
  j->p[1] = calloc(1000, 200);
}
static void c_calloc(struct job *j) {
  for (int i = 0; i < 2; i++) {
    if (!j->p[i]) FAIL("%s: calloc of %zu bytes returned NULL", j->label, j->n[i]);
    else if (first_byte_not(j->p[i], j->n[i], 0) != ALL_GOOD)
      FAIL("%s: calloc'ed block of %zu bytes is not zero", j->label, j->n[i]);
    free(j->p[i]);
  }
}

static void setup_pattern(struct job *j) {
  j->n[0] = 3000;
  j->p[0] = malloc(3000);
  if (j->p[0]) pat_fill(j->p[0], 99, 0, 3000);
  j->n[1] = 200;
  j->p[1] = malloc(200);
  if (j->p[1]) pat_fill(j->p[1], 98, 0, 200);
}
static void r_realloc(struct job *j) {
  j->p[2] = j->p[0] ? realloc(j->p[0], 250000) : NULL;
  j->p[3] = j->p[1] ? realloc(j->p[1], 5000) : NULL;
}
static void c_realloc(struct job *j) {
  if (!j->p[2] || !j->p[3]) {
    FAIL("%s: realloc returned NULL", j->label);
    return;
  }
  if (pat_check(j->p[2], 99, 3000) != ALL_GOOD || pat_check(j->p[3], 98, 200) != ALL_GOOD)
    FAIL("%s: realloc lost contents", j->label);
  free(j->p[2]);
  free(j->p[3]);
}
static void r_reallocarray(struct job *j) {
  j->p[2] = j->p[0] ? reallocarray(j->p[0], 1000, 300) : NULL;
  j->p[3] = j->p[1] ? reallocarray(j->p[1], 10, 100) : NULL;
}

static void s_free(struct job *j) {
  static const size_t sz[] = {16, 100, 1100, 20000, 140000, 1 << 20};
  for (int i = 0; i < 6; i++) j->p[i] = malloc(sz[i]);
}
static void r_free(struct job *j) {
  for (int i = 0; i < 6; i++) free(j->p[i]);
}

static void r_memalign(struct job *j) {
  j->n[0] = 64, j->n[1] = 4096, j->n[2] = 65536;
  j->p[0] = memalign(64, 100);
  j->p[1] = memalign(4096, 5000);
  j->p[2] = memalign(65536, 200000);
}
static void r_posix_memalign(struct job *j) {
  j->n[0] = 32, j->n[1] = 8192, j->n[2] = 4096;
  j->r[0] = posix_memalign(&j->p[0], 32, 10);
  j->r[1] = posix_memalign(&j->p[1], 8192, 300000);
  j->r[2] = posix_memalign(&j->p[2], 4096, 4096);
}
static void r_aligned_alloc(struct job *j) {
  j->n[0] = 256, j->n[1] = 2048, j->n[2] = 16;
  j->p[0] = aligned_alloc(256, 512);
  j->p[1] = aligned_alloc(2048, 150000);
  j->p[2] = aligned_alloc(16, 32);
}
static void r_valloc(struct job *j) {
  j->n[0] = j->n[1] = j->n[2] = (size_t)sysconf(_SC_PAGESIZE);
  j->p[0] = valloc(10);
  j->p[1] = valloc(200000);
  j->p[2] = pvalloc(5000);
}
static void c_aligned(struct job *j) {
  for (int i = 0; i < 3; i++) {
    if (j->r[i]) FAIL("%s: call %d returned %ld", j->label, i, j->r[i]);
    else if (!j->p[i]) FAIL("%s: call %d returned NULL", j->label, i);
    else if ((uintptr_t)j->p[i] % j->n[i])
      FAIL("%s: %p is not %zu-aligned", j->label, j->p[i], j->n[i]);
    free(j->p[i]);
  }
}

static void s_usable(struct job *j) {
  j->p[0] = malloc(100);
  j->p[1] = malloc(200000);
}
static void r_usable(struct job *j) {
  j->n[0] = malloc_usable_size(j->p[0]);
  j->n[1] = malloc_usable_size(j->p[1]);
}
static void c_usable(struct job *j) {
  if (j->n[0] < 100 || j->n[1] < 200000)
    FAIL("%s: malloc_usable_size gave %zu and %zu", j->label, j->n[0], j->n[1]);
  free(j->p[0]);
  free(j->p[1]);
}

static void r_mallopt(struct job *j) { j->r[0] = mallopt(M_MXFAST, 64 * sizeof(size_t) / 4); }
static void c_mallopt(struct job *j) {
  if (j->r[0] != 1) FAIL("%s: mallopt(M_MXFAST, default) returned %ld", j->label, j->r[0]);
}

static void s_trim(struct job *j) {
  for (int i = 0; i < 8; i++) j->p[i] = malloc(30000);
  for (int i = 0; i < 8; i += 2) free(j->p[i]);
}
static void r_trim(struct job *j) { j->r[0] = malloc_trim(0); }
static void c_trim(struct job *j) {
  for (int i = 1; i < 8; i += 2) free(j->p[i]);
}

static void r_mallinfo(struct job *j) {
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
  struct mallinfo mi = mallinfo();
#pragma GCC diagnostic pop
  j->r[0] = mi.arena;
  j->mi2 = mallinfo2();
}
static void c_mallinfo(struct job *j) {
  if (j->r[0] <= 0 || j->mi2.arena == 0 || j->mi2.uordblks == 0)
    FAIL("%s: mallinfo arena %ld, mallinfo2 arena %zu, uordblks %zu", j->label, j->r[0],
         j->mi2.arena, j->mi2.uordblks);
}

/* malloc_stats: a reference call without a pending request, then the call */
static void s_stats(struct job *j) {
  j->p[0] = malloc(300000); /* an mmap'd block: nonzero mmap figures */
  j->fd_ref = new_memfd("stats-ref");
  j->fd_out = new_memfd("stats");
  j->saved_fd2 = dup(2);
  fflush(stderr);
  dup2(j->fd_ref, 2);
  malloc_stats();
  dup2(j->fd_out, 2);
}
static void r_stats(struct job *j) {
  (void)j;
  malloc_stats();
}
static void c_stats(struct job *j) {
  dup2(j->saved_fd2, 2);
  close(j->saved_fd2);
  free(j->p[0]);
  char *ref = memfd_text(j->fd_ref), *out = memfd_text(j->fd_out);
  static char nref[16384], nout[16384];
  normalise(ref, nref, sizeof nref);
  normalise(out, nout, sizeof nout);
  if (!strstr(ref, "Total (incl. mmap):\n") || !strstr(ref, "max mmap bytes"))
    FAIL("%s: even the call without a pending cancellation printed no total:\n%s", j->label, ref);
  else if (strcmp(nref, nout) != 0)
    FAIL("%s: with a cancellation pending it printed %zu bytes:\n%s\n-- where the same call "
         "without one printed:\n%s",
         j->label, strlen(out), out, ref);
  if (!strstr(out, "Total (incl. mmap):\nsystem bytes") || !strstr(out, "max mmap regions =") ||
      !strstr(out, "max mmap bytes   ="))
    FAIL("%s: the output lacks the \"Total (incl. mmap):\" block or the max mmap lines", j->label);
  free(ref);
  free(out);
  close(j->fd_ref);
  close(j->fd_out);
}

static void check_info(struct job *j, const char *xml, size_t len, const char *what) {
  if (len < 30 || strncmp(xml, "<malloc version=\"1\">\n", 21) != 0 ||
      strcmp(xml + len - 10, "</malloc>\n") != 0 || !strstr(xml, "<system type=\"max\"") ||
      !strstr(xml, "<total type=\"mmap\""))
    FAIL("%s: malloc_info into %s: incomplete XML (%zu bytes):\n%s", j->label, what, len, xml);
}

/* malloc_info into an open_memstream FILE */
static void s_info_mem(struct job *j) {
  j->fp = open_memstream(&j->ms, &j->mslen);
  if (!j->fp) FAIL("open_memstream: %s", strerror(errno));
}
static void r_info(struct job *j) { j->r[0] = j->fp ? malloc_info(0, j->fp) : -1; }
static void c_info_mem(struct job *j) {
  if (!j->fp) return;
  fclose(j->fp);
  if (j->r[0] != 0) FAIL("%s: malloc_info returned %ld", j->label, j->r[0]);
  check_info(j, j->ms ? j->ms : "", j->ms ? j->mslen : 0, "an open_memstream FILE");
  free(j->ms);
}

/* malloc_info into a file FILE with a 1 MiB buffer */
static char info_buf[1 << 20];
static void s_info_file(struct job *j) {
  j->fd_out = new_memfd("info");
  j->fp = fdopen(dup(j->fd_out), "w");
  if (!j->fp) {
    FAIL("fdopen: %s", strerror(errno));
    return;
  }
  setvbuf(j->fp, info_buf, _IOFBF, sizeof info_buf);
}
static void c_info_file(struct job *j) {
  if (!j->fp) return;
  fclose(j->fp);
  if (j->r[0] != 0) FAIL("%s: malloc_info returned %ld", j->label, j->r[0]);
  char *xml = memfd_text(j->fd_out);
  check_info(j, xml, strlen(xml), "a file FILE with a 1 MiB buffer");
  free(xml);
  close(j->fd_out);
}

/* malloc_rs_dump / malloc_rs_dump_chunks: a reference call, then the call */
static void s_dump(struct job *j) {
  j->p[0] = malloc(300000);
  j->fd_ref = new_memfd("dump-ref");
  j->fd_out = new_memfd("dump");
  void (*fn)(int) = strstr(j->label, "chunks") ? dump_chunks_fn : dump_fn;
  if (fn) fn(j->fd_ref);
}
static void r_dump(struct job *j) {
  void (*fn)(int) = strstr(j->label, "chunks") ? dump_chunks_fn : dump_fn;
  if (fn) fn(j->fd_out);
}
static void c_dump(struct job *j) {
  free(j->p[0]);
  char *ref = memfd_text(j->fd_ref), *out = memfd_text(j->fd_out);
  int is_chunks = strstr(j->label, "chunks") != NULL;
  const char *marker = is_chunks ? " top\n" : "\ntotals (arenas shown): ";
  if (!strstr(ref, marker))
    FAIL("%s: even the call without a pending cancellation lacks \"%s\"", j->label, marker);
  else if (!strstr(out, marker) || (j->alone && count_lines(out) != count_lines(ref)))
    FAIL("%s: with a cancellation pending it printed %d lines (%zu bytes) (just before, without "
         "one: %d):\n%s",
         j->label, count_lines(out), strlen(out), count_lines(ref), out);
  free(ref);
  free(out);
  close(j->fd_ref);
  close(j->fd_out);
}

static const struct step steps[] = {
    {"malloc", NULL, s_malloc, c_malloc},
    {"calloc", NULL, s_calloc, c_calloc},
    {"realloc", setup_pattern, r_realloc, c_realloc},
    {"reallocarray", setup_pattern, r_reallocarray, c_realloc},
    {"free", s_free, r_free, NULL},
    {"memalign", NULL, r_memalign, c_aligned},
    {"posix_memalign", NULL, r_posix_memalign, c_aligned},
    {"aligned_alloc", NULL, r_aligned_alloc, c_aligned},
    {"valloc/pvalloc", NULL, r_valloc, c_aligned},
    {"malloc_usable_size", s_usable, r_usable, c_usable},
    {"mallopt", NULL, r_mallopt, c_mallopt},
    {"malloc_trim", s_trim, r_trim, c_trim},
    {"mallinfo/mallinfo2", NULL, r_mallinfo, c_mallinfo},
    {"malloc_stats", s_stats, r_stats, c_stats},
    {"malloc_info (open_memstream)", s_info_mem, r_info, c_info_mem},
    {"malloc_info (file, 1 MiB buffer)", s_info_file, r_info, c_info_file},
    {"malloc_rs_dump", s_dump, r_dump, c_dump},
    {"malloc_rs_dump_chunks", s_dump, r_dump, c_dump},
};
#define NSTEPS (int)(sizeof steps / sizeof steps[0])

/* ---------- the thread ---------- */

enum { ST_START, ST_PENDING, ST_CALLS_DONE, ST_NOT_CANCELLED };
struct run {
  struct job *jobs;
  int njobs;
  int by_main;               /* the main thread makes the request */
  volatile int waiting;      /* by_main: the thread is spinning, set up */
  volatile int requested;    /* by_main: pthread_cancel was called */
  volatile int stage;        /* how far the thread got */
  volatile int current;      /* the job whose call was running */
  volatile int cancelled_at; /* stage seen by the cleanup handler, -1: none */
  volatile int cancelled_in; /* current job then */
};

static void on_cancel(void *arg) {
  struct run *r = arg;
  r->cancelled_at = r->stage;
  r->cancelled_in = r->current;
}

static void *thread_main(void *arg) {
  struct run *r = arg;
  pthread_setcanceltype(PTHREAD_CANCEL_DEFERRED, NULL);
  pthread_cleanup_push(on_cancel, r);
  for (int i = 0; i < r->njobs; i++)
    if (r->jobs[i].s->setup) r->jobs[i].s->setup(&r->jobs[i]);
  if (r->by_main) {
    r->waiting = 1;
    while (!r->requested) sched_yield(); /* no cancellation point */
  } else {
    pthread_cancel(pthread_self());
  }
  r->stage = ST_PENDING;
  for (int i = 0; i < r->njobs; i++) {
    r->current = i;
    r->jobs[i].s->call(&r->jobs[i]);
    r->jobs[i].returned = 1;
  }
  r->stage = ST_CALLS_DONE;
  pthread_testcancel();
  r->stage = ST_NOT_CANCELLED;
  pthread_cleanup_pop(0);
  return NULL;
}

static void run_jobs(struct job *jobs, int njobs, int by_main, const char *label) {
  struct run r;
  memset(&r, 0, sizeof r);
  r.jobs = jobs;
  r.njobs = njobs;
  r.by_main = by_main;
  r.cancelled_at = -1;
  r.cancelled_in = -1;
  pthread_t t;
  int e = pthread_create(&t, NULL, thread_main, &r);
  if (e) {
    FAIL("pthread_create: %s", strerror(e));
    return;
  }
  if (by_main) {
    while (!r.waiting) sched_yield();
    e = pthread_cancel(t);
    if (e) FAIL("%s: pthread_cancel: %s", label, strerror(e));
    r.requested = 1;
  }
  void *ret = NULL;
  pthread_join(t, &ret);
  /* malloc_stats' setup redirected fd 2: put it back if its check will not */
  for (int i = 0; i < njobs; i++)
    if (jobs[i].s->setup == s_stats && !jobs[i].returned) dup2(jobs[i].saved_fd2, 2);
  int cancelled_inside = r.cancelled_at == ST_PENDING;
  for (int i = 0; i < njobs; i++)
    if (jobs[i].returned && jobs[i].s->check) jobs[i].s->check(&jobs[i]);
  if (cancelled_inside) {
    const char *in = r.cancelled_in >= 0 ? jobs[r.cancelled_in].s->name : "?";
    if (r.cancelled_in >= 0 && jobs[r.cancelled_in].s->setup == s_stats) {
      char *out = memfd_text(jobs[r.cancelled_in].fd_out);
      if (!*out)
        FAIL("%s: the thread was cancelled inside %s (a cancellation point) before it printed "
             "anything",
             label, in);
      else
        FAIL("%s: the thread was cancelled inside %s (a cancellation point), after it printed "
             "%zu bytes:\n%s",
             label, in, strlen(out), out);
      free(out);
    } else {
      FAIL("%s: the thread was cancelled inside %s (a cancellation point)", label, in);
    }
  } else if (ret != PTHREAD_CANCELED) {
    FAIL("%s: the thread was not cancelled by pthread_testcancel (join gave %p, stage %d)", label,
         ret, r.stage);
  } else if (r.cancelled_at != ST_CALLS_DONE) {
    FAIL("%s: cancelled at stage %d, expected %d", label, r.cancelled_at, ST_CALLS_DONE);
  }
}

int main(void) {
  test_watchdog(WATCHDOG_S, "the malloc-family calls with a cancellation pending");
  const char *ep = getenv("PTMALLOC_RS_EXPECT_PRELOAD");
  expect_preload = ep && *ep == '1';
  dump_fn = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump");
  dump_chunks_fn = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump_chunks");
  int have_dump = dump_fn && dump_chunks_fn;
  if (!have_dump && expect_preload)
    FAIL("malloc_rs_dump or malloc_rs_dump_chunks not found under the preload");
  int ran = 0, skipped = 0;

  /* each step alone, with a self-made request; every tenth also by main */
  for (int i = 0; i < NSTEPS; i++) {
    if (steps[i].setup == s_dump && !have_dump) {
      SKIP("step", "%s: not found (plain glibc)", steps[i].name);
      skipped++;
      continue;
    }
    for (int by_main = 0; by_main < 2; by_main++) {
      struct job j;
      memset(&j, 0, sizeof j);
      j.s = &steps[i];
      j.alone = 1;
      char label[96];
      snprintf(label, sizeof label, "%s (cancelled by %s)", steps[i].name,
               by_main ? "main" : "itself");
      j.label = label;
      run_jobs(&j, 1, by_main, label);
      ran++;
    }
  }

  /* every step in one thread, one request for all */
  for (int by_main = 0; by_main < 2; by_main++) {
    struct job jobs[NSTEPS];
    static char labels[NSTEPS][96];
    int n = 0;
    memset(jobs, 0, sizeof jobs);
    for (int i = 0; i < NSTEPS; i++) {
      if (steps[i].setup == s_dump && !have_dump) continue;
      if (steps[i].setup == s_info_file) continue; /* one 1 MiB buffer */
      jobs[n].s = &steps[i];
      snprintf(labels[n], sizeof labels[n], "%s (all steps in one thread, cancelled by %s)",
               steps[i].name, by_main ? "main" : "itself");
      jobs[n].label = labels[n];
      n++;
    }
    run_jobs(jobs, n, by_main, by_main ? "all steps in one thread (cancelled by main)"
                                       : "all steps in one thread (cancelled by itself)");
    ran++;
  }

  /* the allocator still works for everyone */
  test_watchdog(WATCHDOG_S, "the main thread's allocations after the cancelled threads");
  for (size_t n = 1; n < (4u << 20); n = n * 3 / 2 + 1) {
    unsigned char *p = malloc(n);
    if (!p) {
      FAIL("malloc(%zu) returned NULL at the end", n);
      continue;
    }
    pat_fill(p, n, 0, n);
    if (pat_check(p, n, n) != ALL_GOOD) FAIL("malloc(%zu): contents", n);
    free(p);
  }
  test_watchdog(0, NULL);
  printf(TEST_NAME ": %d threads ran a step with a cancellation pending; %d step(s) skipped\n", ran,
         skipped);
  test_expect_reuse();
  return test_finish();
}
