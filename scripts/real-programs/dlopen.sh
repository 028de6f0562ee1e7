#!/usr/bin/env bash
# The library loaded with dlopen (not LD_PRELOAD) into a threaded program:
# its thread state lives in static TLS, so glibc must find room for it in the
# surplus it reserves for dlopen'ed libraries; its malloc/free, called through
# dlsym from several threads, must work, and fork after dlclose must not run
# handlers of the unloaded library.
set -u
lib=${LIB:?LIB must name the library}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cat > "$work/dl.c" <<'C'
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
static void *(*m)(size_t);
static void (*f)(void *);
static pthread_barrier_t loaded;
static void *work(void *arg) {
  if ((size_t)arg < 2) pthread_barrier_wait(&loaded); /* started before dlopen */
  for (int i = 0; i < 100000; i++) {
    size_t n = 1 + (i * 7919u + (unsigned)(size_t)arg) % 3000;
    unsigned char *p = m(n);
    if (!p) { printf("malloc(%zu) failed\n", n); exit(1); }
    memset(p, i & 0xff, n);
    if (p[n - 1] != (i & 0xff)) { printf("lost data\n"); exit(1); }
    f(p);
  }
  return NULL;
}
int main(int argc, char **argv) {
  pthread_t t[4];
  pthread_barrier_init(&loaded, NULL, 3);
  for (long i = 0; i < 2; i++) pthread_create(&t[i], NULL, work, (void *)i);
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) { printf("dlopen: %s\n", dlerror()); return 1; }
  m = (void *(*)(size_t))dlsym(h, "malloc");
  f = (void (*)(void *))dlsym(h, "free");
  if (!m || !f) { printf("dlsym failed\n"); return 1; }
  pthread_barrier_wait(&loaded);
  for (long i = 2; i < 4; i++) pthread_create(&t[i], NULL, work, (void *)i);
  work((void *)4);
  for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
  dlclose(h);
  pid_t pid = fork();
  if (pid == 0) { void *q = malloc(10); free(q); _exit(0); }
  int st = 0;
  waitpid(pid, &st, 0);
  printf("dlopen: 5 threads x 100000 malloc/free through dlsym, fork after dlclose: status %d\n", st);
  return st != 0;
}
C
gcc -O1 -pthread -o "$work/dl" "$work/dl.c" -ldl || exit 1
"$work/dl" "$lib"
