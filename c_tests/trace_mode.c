/* trace_mode: with PTMALLOC_RS_TRACE=1 every system call the allocator makes
 * is announced on stderr with its reason: the first malloc's brk growth,
 * an mmap'd chunk and its munmap, a thread heap's reservation. Without the
 * variable nothing is printed. Under plain glibc there is no trace: the
 * test only says so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#define TEST_NAME "trace_mode"
#include "testlib.h"

static void *thread_main(void *arg) {
  (void)arg;
  free_v(malloc_v(100));
  return NULL;
}

static char text[1 << 16];

/* What this program run as "child" writes on stderr with PTMALLOC_RS_TRACE
 * set to `trace` (NULL: unset). */
static const char *run_child(const char *self, const char *trace) {
  char setting[64];
  snprintf(setting, sizeof setting, "PTMALLOC_RS_TRACE=%s", trace ? trace : "");
  const char *env[] = {trace ? setting : "PTMALLOC_RS_TRACE", NULL};
  int st;
  run_self_stderr(self, "child", env, text, sizeof text, &st);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) FAIL("the child exited with status %#x", st);
  return text;
}

int main(int argc, char **argv) {
  if (argc > 1) {
    void *p = malloc_v(1000);
    void *big = malloc_v(200000);
    free_v(big);
    pthread_t t;
    pthread_create(&t, NULL, thread_main, NULL);
    pthread_join(t, NULL);
    free_v(p);
    return 0;
  }
  if (!dlsym(RTLD_DEFAULT, "malloc_rs_dump")) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("not running on ptmalloc-rs");
    else printf("trace_mode: plain glibc has no trace mode: nothing to check\n");
    return test_finish();
  }
  const char *t = run_child(argv[0], "1");
  const char *want[] = {
      "ptmalloc-rs: brk +0x21000  main arena: top (0 bytes) too small",
      "ptmalloc-rs: mmap 0x31000  a chunk of its own for a 200016-byte chunk (mmap threshold 131072)",
      "ptmalloc-rs: munmap ",
      "ptmalloc-rs: mmap threshold raised to 200704",
      "ptmalloc-rs: mmap 128 MiB PROT_NONE  new thread heap",
  };
  for (size_t i = 0; i < sizeof want / sizeof *want; i++)
    if (!strstr(t, want[i])) FAIL("the trace lacks \"%s\":\n%s", want[i], t);
  t = run_child(argv[0], NULL);
  if (strstr(t, "ptmalloc-rs:")) FAIL("without PTMALLOC_RS_TRACE something was traced:\n%s", t);
  t = run_child(argv[0], "0");
  if (strstr(t, "ptmalloc-rs:")) FAIL("with PTMALLOC_RS_TRACE=0 something was traced:\n%s", t);
  if (!failures) printf("trace_mode: brk, mmap, munmap and thread-heap calls traced with their reasons\n");
  return test_finish();
}
