// Not under the fast profile: it checks the exact bins and tcache of a known
// sequence (the fast profile caches differently).
/* heap_dump: malloc_rs_dump(fd) names the arenas and the threads on them,
 * the free chunks in their bins, every thread's tcache and the mmap'd
 * chunks of a known allocation sequence; it reports an arena another thread
 * holds locked, naming the holder, instead of waiting for it; and
 * PTMALLOC_RS_DUMP_SIGNAL /
 * PTMALLOC_RS_DUMP_AT_EXIT make a process print it on a signal and at exit.
 * Under plain glibc there is no such function: the test only says so. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#define TEST_NAME "heap_dump"
#include "testlib.h"

static char text[1 << 16];

/* Runs the dump into a pipe and returns its text. */
static const char *dump_text(void (*dump)(int)) { return fd_output(dump, text, sizeof text); }

static void expect(const char *dump, const char *what) {
  if (!strstr(dump, what)) FAIL("the dump does not contain \"%s\":\n%s", what, dump);
}

static pthread_barrier_t ready, done;
static pid_t thread_tid;
static void *thread_small;
static void *thread_main(void *arg) {
  (void)arg;
  thread_tid = (pid_t)syscall(SYS_gettid);
  void *p = malloc_v(5000);
  void *q = malloc_v(300);
  thread_small = malloc_v(72); /* an 80-byte chunk: the thread's tcache bin 3 */
  free_v(p);
  free_v(thread_small);
  pthread_barrier_wait(&ready); /* the main thread dumps now */
  pthread_barrier_wait(&done);
  free_v(q);
  return NULL;
}

int main(int argc, char **argv) {
  void (*dump)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump");
  if (argc > 1) { /* the child of the environment check */
    void *p = malloc_v(100);
    free_v(p);
    raise(SIGUSR1);
    return 0;
  }
  if (!dump) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("malloc_rs_dump is not exported");
    else printf("heap_dump: plain glibc has no malloc_rs_dump: nothing to check\n");
    return test_finish();
  }
  /* The thread first: pthread_create itself allocates (the new thread's
   * DTV), which would otherwise take a piece of the chunks freed below. */
  pthread_t t;
  pthread_barrier_init(&ready, NULL, 2);
  pthread_barrier_init(&done, NULL, 2);
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_barrier_wait(&ready);
  unsigned char *a = malloc_v(3000), *b = malloc_v(3000), *c = malloc_v(3000);
  unsigned char *small = malloc_v(40);
  void *big = malloc_v(1 << 20);
  free_v(b);     /* 3008-byte chunk: into the unsorted bin */
  free_v(small); /* 48-byte chunk: into this thread's tcache, bin 1 */

  const char *d = dump_text(dump);
  char want[128];
  /* the profile in force, named */
  const char *profile = getenv("PTMALLOC_RS_PROFILE");
  char named[64];
  snprintf(named, sizeof named, "\nprofile: %s\n", profile && *profile ? profile : "glibc");
  expect(d, named);
  expect(d, "arena 0 (main arena)");
  expect(d, "arena 1 at");
  expect(d, "heap 0 0x");
  snprintf(want, sizeof want, "unsorted bin: %#lx (3008 P)", (unsigned long)(uintptr_t)(b - 16));
  expect(d, want);
  snprintf(want, sizeof want, "bin 1 (chunk size 48): 1 chunk(s): %#lx", (unsigned long)(uintptr_t)(small - 16));
  expect(d, want);
  expect(d, "mmap'd chunks: 1 (1052672 bytes)");
  snprintf(want, sizeof want, "mmap'd chunk %#lx (1052672 M)", (unsigned long)(uintptr_t)((char *)big - 16));
  expect(d, want);
  snprintf(want, sizeof want, "threads with a tcache here: %d\n", (int)thread_tid);
  expect(d, want);
  snprintf(want, sizeof want, "threads with a tcache here: %d\n", (int)syscall(SYS_gettid));
  expect(d, want);
  snprintf(want, sizeof want, "tcache of thread %d (a snapshot: it runs on)", (int)thread_tid);
  expect(d, want);
  snprintf(want, sizeof want, "bin 3 (chunk size 80): 1 chunk(s): %#lx",
           (unsigned long)(uintptr_t)((char *)thread_small - 16));
  expect(d, want);
  snprintf(want, sizeof want, "tcache of thread %d (this thread)", (int)syscall(SYS_gettid));
  expect(d, want);
  expect(d, "totals (arenas shown):");

  /* An arena whose lock another thread holds: the mutex word holds the
   * holder's thread id, so write the parked thread's id into main_arena's
   * mutex (the thread is at a barrier and allocates nothing). The lock
   * taken for real by a thread inside malloc is dump_interrupted's test. */
  int *mutex = dlsym(RTLD_DEFAULT, "main_arena");
  if (!mutex) FAIL("main_arena is not exported");
  else {
    __atomic_store_n(mutex, (int)thread_tid, __ATOMIC_SEQ_CST);
    d = dump_text(dump);
    __atomic_store_n(mutex, 0, __ATOMIC_SEQ_CST);
    expect(d, "arena 0 at");
    snprintf(want, sizeof want, "locked by thread %d, skipped", (int)thread_tid);
    expect(d, want);
    expect(d, "arena 1 at");
  }
  pthread_barrier_wait(&done);
  pthread_join(t, NULL);

  /* The environment: a child that raises SIGUSR1 and exits. */
  const char *env[] = {"PTMALLOC_RS_DUMP_SIGNAL=USR1", "PTMALLOC_RS_DUMP_AT_EXIT=1", NULL};
  int st;
  run_self_stderr(argv[0], "child", env, text, sizeof text, &st);
  if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) FAIL("the child exited with status %#x", st);
  const char *first = strstr(text, "ptmalloc-rs heap dump");
  if (!first || !strstr(first + 1, "ptmalloc-rs heap dump"))
    FAIL("expected two dumps on the child's stderr (SIGUSR1, then exit), got:\n%s", text);
  free_v(a);
  free_v(c);
  free_v(big);
  if (!failures) printf("heap_dump: arenas, bins, tcache, mmap'd chunks, a locked arena, signal and exit dumps\n");
  return test_finish();
}
