/* check_action: the check action chooses what a misuse does. ptmalloc-rs
 * takes glibc's check-action bits (1 print the message, 2 abort; default 3)
 * from MALLOC_CHECK_, GLIBC_TUNABLES=glibc.malloc.check and
 * mallopt(M_CHECK_ACTION). Each case runs a child that frees a block twice
 * (a tcache double free) and then a stack address, and checks its stderr and
 * how it ended:
 *   default             message, SIGABRT
 *   MALLOC_CHECK_=3     message, SIGABRT
 *   MALLOC_CHECK_=2     no message, SIGABRT
 *   MALLOC_CHECK_=1     both messages, the child goes on and exits 0
 *   MALLOC_CHECK_=0     no message, exit 0
 *   glibc.malloc.check=1 via GLIBC_TUNABLES: as MALLOC_CHECK_=1
 *   mallopt(M_CHECK_ACTION, 1) in the child: as MALLOC_CHECK_=1
 * and after an ignored double free the heap still works (the block was not
 * cached twice: two mallocs of its size return different blocks).
 * The children run in the hardened profile, whose ownership check refuses
 * the stack chunk (the default profile, like glibc, caches it).
 * glibc 2.36 ignores all of these without libc_malloc_debug.so: under plain
 * glibc the test is skipped (exit 77). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#define TEST_NAME "check_action"
#include "testlib.h"

static const char *DOUBLE = "free(): double free detected in tcache 2";
static const char *STACK = "free(): invalid pointer";

static int child(const char *how) {
  if (strcmp(how, "mallopt") == 0 && mallopt(M_CHECK_ACTION, 1) != 1) return 10;
  char *a = malloc_v(40);
  free_v(a);
  free_v(a); /* a double free */
  size_t fake[8] = {0, 0x41, 0, 0, 0, 0, 0, 0x21};
  free_v(&fake[2]); /* a chunk on the stack */
  /* Still usable: `a` is cached once, not twice. */
  char *b = malloc_v(40), *c = malloc_v(40);
  if (b == c) return 11;
  if ((void *)b == (void *)&fake[2] || (void *)c == (void *)&fake[2]) return 12;
  memset(b, 1, 40);
  memset(c, 2, 40);
  free_v(b);
  free_v(c);
  return 0;
}

static void expect(const char *name, const char *const *env, int aborts, int prints) {
  static char err[4096];
  int st;
  run_self_stderr("check_action", name, env, err, sizeof err, &st);
  int got_abort = WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT;
  int got_exit0 = WIFEXITED(st) && WEXITSTATUS(st) == 0;
  if (aborts && !got_abort) FAIL("%s: expected SIGABRT, got status %#x; stderr:\n%s", name, st, err);
  if (!aborts && !got_exit0) FAIL("%s: expected exit 0, got status %#x; stderr:\n%s", name, st, err);
  int has_double = strstr(err, DOUBLE) != NULL, has_stack = strstr(err, STACK) != NULL;
  if (prints && !has_double) FAIL("%s: expected \"%s\" on stderr, got:\n%s", name, DOUBLE, err);
  if (prints && !aborts && !has_stack) FAIL("%s: expected \"%s\" too, got:\n%s", name, STACK, err);
  if (!prints && (has_double || has_stack)) FAIL("%s: expected no message, got:\n%s", name, err);
}

int main(int argc, char **argv) {
  if (argc > 1) return child(argv[1]);
  if (!dlsym(RTLD_DEFAULT, "malloc_rs_dump")) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("not running under ptmalloc-rs");
    else {
      printf("check_action: plain glibc ignores the check action: skipped\n");
      return 77;
    }
    return test_finish();
  }
  /* The stack chunk is refused only by the hardened profile's ownership
   * check (glibc, and the default profile, cache it). */
  setenv("PTMALLOC_RS_PROFILE", "hardened", 1);
  const char *none[] = {"MALLOC_CHECK_", "GLIBC_TUNABLES", NULL};
  const char *e3[] = {"MALLOC_CHECK_=3", NULL};
  const char *e2[] = {"MALLOC_CHECK_=2", NULL};
  const char *e1[] = {"MALLOC_CHECK_=1", NULL};
  const char *e0[] = {"MALLOC_CHECK_=0", NULL};
  const char *t1[] = {"MALLOC_CHECK_", "GLIBC_TUNABLES=glibc.malloc.check=1", NULL};
  expect("default", none, 1, 1);
  expect("env3", e3, 1, 1);
  expect("env2", e2, 1, 0);
  expect("env1", e1, 0, 1);
  expect("env0", e0, 0, 0);
  expect("tunable1", t1, 0, 1);
  expect("mallopt", none, 0, 1);
  if (!failures) printf("check_action: abort/print bits from MALLOC_CHECK_, the tunable and mallopt\n");
  test_expect_reuse();
  return test_finish();
}
