/* outcome_equivalence: corner cases end as under glibc 2.36.  Each case
 * runs in a fresh process twice, on the system glibc's malloc (LD_PRELOAD
 * removed) and under the library, and prints what the program sees (NULL
 * or not, errno, return values); the two listings must be equal.
 *   top_pad_huge    MALLOC_TOP_PAD_=PTRDIFF_MAX, then malloc(100): glibc's
 *                   single-threaded malloc does not try another arena, so
 *                   it fails with ENOMEM (the tcache's creation made one)
 *   trim_after_thread  malloc_trim(0) after a second thread's workload
 *   huge_requests   malloc/calloc/realloc/memalign of sizes near SIZE_MAX
 * Guards against: a different result or errno where glibc's policies
 * decide it.  Without LD_PRELOAD there is nothing to compare with: skipped
 * (exit 77). */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "outcome_equivalence"
#include "testlib.h"

static void say_result(const char *what, void *p, int err) {
  printf("%s: %s, errno %d\n", what, p ? "a block" : "NULL", p ? 0 : err);
}

static void *workload(void *arg) {
  void *p[200];
  for (int i = 0; i < 200; i++) p[i] = malloc(5000 + (size_t)i * 37);
  for (int i = 0; i < 200; i += 2) free(p[i]);
  for (int i = 1; i < 200; i += 2) free(p[i]);
  return arg;
}

static int run_case(const char *name) {
  setvbuf(stdout, NULL, _IONBF, 0);
  if (strcmp(name, "top_pad_huge") == 0) {
    errno = 0;
    void *p = malloc(100);
    say_result("malloc(100)", p, errno);
  } else if (strcmp(name, "trim_after_thread") == 0) {
    pthread_t t;
    if (pthread_create(&t, NULL, workload, NULL) != 0) return 4;
    pthread_join(t, NULL);
    printf("malloc_trim(0) = %d\n", malloc_trim(0));
    printf("malloc_trim(0) again = %d\n", malloc_trim(0));
  } else if (strcmp(name, "huge_requests") == 0) {
    size_t sizes[] = {SIZE_MAX, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX + 1, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
      char what[64];
      errno = 0;
      snprintf(what, sizeof what, "malloc(%#zx)", sizes[i]);
      say_result(what, malloc(sizes[i]), errno);
      errno = 0;
      snprintf(what, sizeof what, "calloc(2, %#zx)", sizes[i] / 2 + 1);
      say_result(what, calloc(2, sizes[i] / 2 + 1), errno);
      errno = 0;
      snprintf(what, sizeof what, "memalign(64, %#zx)", sizes[i]);
      say_result(what, memalign(64, sizes[i]), errno);
      void *q = malloc(16);
      errno = 0;
      void *r = realloc(q, sizes[i]);
      snprintf(what, sizeof what, "realloc(16 bytes, %#zx)", sizes[i]);
      say_result(what, r, errno);
      free(r ? r : q);
    }
  } else {
    return 5;
  }
  return 0;
}

/* Runs one case in a fresh process (testlib's run_self_capture), its stdout
 * into buf; `preload` NULL runs on glibc's malloc.  `env` is one
 * NAME=VALUE (or NULL). */
static int run(char *buf, size_t cap, const char *preload, const char *env, const char *name) {
  char lp[4096];
  snprintf(lp, sizeof lp, "LD_PRELOAD=%s", preload ? preload : "");
  const char *envs[] = {preload ? lp : "LD_PRELOAD", env, NULL};
  char *const args[] = {"outcome_equivalence", "case", (char *)name, NULL};
  int st = run_self_capture(1, args, envs, buf, cap, 60000);
  if (st == -1 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
    FAIL("%s: the %s run ended with status %#x", name, preload ? "preload" : "glibc", st);
    return 0;
  }
  return 1;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "case") == 0) return run_case(argv[2]);
  test_watchdog(120, "the comparison runs");
  const char *lib = getenv("LD_PRELOAD");
  if (!lib || !*lib) {
    printf(TEST_NAME ": nothing to compare with glibc without LD_PRELOAD: skipped\n");
    return 77;
  }
  static char a[1 << 16], b[1 << 16];
  struct {
    const char *name, *env;
  } cases[] = {
      {"top_pad_huge", "MALLOC_TOP_PAD_=9223372036854775807"},
      {"trim_after_thread", NULL},
      {"huge_requests", NULL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    if (!run(a, sizeof a, NULL, cases[i].env, cases[i].name) || !run(b, sizeof b, lib, cases[i].env, cases[i].name))
      continue;
    if (strcmp(a, b) != 0)
      FAIL("%s: glibc printed\n%s--- the preload printed\n%s", cases[i].name, a, b);
    else
      printf(TEST_NAME ": %s: as glibc\n%s", cases[i].name, a);
  }
  test_expect_reuse();
  return test_finish();
}
