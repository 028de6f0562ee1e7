/* cross_thread_double_free: a block of one thread's arena freed twice by
 * another thread, whose tcache bin for the size is full, stops the program
 * with a message (SIGABRT), in every profile, and never hangs.
 * Thread A allocates the block (200 bytes: past the fastbins, so glibc's
 * free takes it to the bins, where the second free is caught: "double free
 * or corruption (out)" under glibc 2.36); thread B fills its tcache bin
 * with 64 blocks of its own (more than any profile's tcache keeps) and then
 * frees A's block twice. In the fast profile B's frees of
 * another arena's chunks gather in a batch handed over later: a chunk
 * linked into it twice would make a cycle, and whoever takes the batch
 * would go round it for ever; the second free must be caught instead.
 * Each case runs in a child process, watched for 10 s: it must be killed
 * by SIGABRT with a message on stderr naming a double free (or, in the
 * hardened profile, whose ownership check comes first, an invalid
 * pointer). */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define TEST_NAME "cross_thread_double_free"
#include "testlib.h"

static void *volatile block;
static pthread_barrier_t made, b_done;

/* Allocates the block, then stays (so that B gets an arena of its own)
 * until B is done. */
static void *thread_a(void *arg) {
  (void)arg;
  block = malloc(200);
  void *guard = malloc(200); /* keeps the block off the top */
  (void)guard;
  pthread_barrier_wait(&made);
  pthread_barrier_wait(&b_done);
  return NULL;
}

static void *thread_c(void *arg) {
  (void)arg;
  free(malloc(200));
  return NULL;
}

static void *thread_b(void *arg) {
  (void)arg;
  void *own[64];
  for (int i = 0; i < 64; i++) own[i] = malloc(200);
  for (int i = 0; i < 64; i++) free(own[i]); /* the tcache bin is full now */
  free(block);
  free(block);
  return NULL;
}

static void child(void) {
  pthread_t a, b, c;
  pthread_barrier_init(&made, NULL, 2);
  pthread_barrier_init(&b_done, NULL, 2);
  pthread_create(&a, NULL, thread_a, NULL);
  pthread_barrier_wait(&made);
  pthread_create(&b, NULL, thread_b, NULL);
  pthread_join(b, NULL);
  pthread_barrier_wait(&b_done);
  pthread_join(a, NULL);
  /* The batch (fast) is handed over at B's exit; a thread of A's arena
   * taking it would loop on a cycle. Take it from a new thread, which gets
   * A's (now free) arena. */
  pthread_create(&c, NULL, thread_c, NULL);
  pthread_join(c, NULL);
  _exit(0);
}

int main(void) {
  int err[2];
  if (pipe(err) != 0) {
    FAIL("pipe failed");
    return test_finish();
  }
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    dup2(err[1], 2);
    close(err[0]);
    child();
  }
  close(err[1]);
  int st = 0;
  pid_t w = test_waitpid_bounded(pid, &st, 10000);
  char msg[512] = "";
  ssize_t n = read(err[0], msg, sizeof msg - 1);
  if (n > 0) msg[n] = 0;
  close(err[0]);
  if (w == 0) FAIL("the program hung after a cross-thread double free (killed after 10 s)");
  else if (w < 0) FAIL("could not wait for the child");
  else if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGABRT)
    FAIL("a cross-thread double free did not abort (status %#x; stderr: %s)", st, msg);
  else if (!strstr(msg, "double free") && !strstr(msg, "free(): invalid pointer"))
    FAIL("the abort's message does not name a double free: %s", msg);
  else
    printf(TEST_NAME ": aborted with: %s", msg);
  test_expect_reuse();
  return test_finish();
}
