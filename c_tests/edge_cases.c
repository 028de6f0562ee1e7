/* edge_cases: free(NULL) is a no-op; free preserves errno (small, tcache,
 * large, consolidating, trimming and mmap'd blocks, in the main thread and in
 * a second thread); malloc(0) returns distinct, non-NULL, aligned, freeable
 * pointers; malloc(SIZE_MAX), malloc(PTRDIFF_MAX+1) and malloc(PTRDIFF_MAX)
 * return NULL with ENOMEM (glibc 2.36 fails PTRDIFF_MAX too: no such mapping
 * is possible); malloc_usable_size(NULL) == 0; the glibc aliases
 * __libc_malloc, __libc_free, __libc_calloc, __libc_realloc, __libc_memalign,
 * __libc_valloc, __libc_pvalloc (found with dlsym(RTLD_DEFAULT)) work and mix
 * freely with malloc/free; __posix_memalign, which glibc 2.36 does NOT export
 * (the design notes claim it does), is tested only when present; memory
 * allocated inside libc (strdup, strndup, getline, getdelim, asprintf,
 * open_memstream, realpath, getcwd, scandir) is released with free.
 * Guards against: clobbering errno in free (munmap/madvise/brk paths),
 * malloc(0) returning NULL or a shared sentinel, size overflow on huge
 * requests, __libc_* aliases still pointing into glibc's allocator (mixing
 * two heaps crashes), and libc's internal allocations not going through the
 * replacement. */
#define _GNU_SOURCE
#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define TEST_NAME "edge_cases"
#include "testlib.h"

/* ---- free preserves errno ---- */

static void free_keeps_errno(void *p, const char *what) {
  errno = 1234;
  free(p);
  if (errno != 1234) FAIL("free(%s) changed errno from 1234 to %d", what, errno);
}

static void errno_suite(const char *who) {
  char what[128];
  free_keeps_errno(NULL, "NULL");
  static const size_t sz[] = {1,      24,     100,     1000,     1032,    1040,     2000,
                              30000,  70000,  100000,  131072,   200000,  1 << 20,  8 << 20,
                              33 << 20};
  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
    void *p = malloc(sz[i]);
    if (!p) {
      FAIL("%s: malloc(%zu) returned NULL", who, sz[i]);
      continue;
    }
    memset(p, 1, sz[i]);
    snprintf(what, sizeof what, "%s: %zu-byte block", who, sz[i]);
    free_keeps_errno(p, what);
  }
  /* fill the tcache and fastbins, then free more: the frees go to bins */
  void *v[64];
  for (int i = 0; i < 64; i++) v[i] = malloc(opq(48));
  for (int i = 0; i < 64; i++) {
    snprintf(what, sizeof what, "%s: 48-byte block #%d", who, i);
    free_keeps_errno(v[i], what);
  }
  /* many large neighbours freed: coalescing, consolidation and trimming of
   * the top chunk (negative sbrk / MADV_DONTNEED / munmap of a heap) */
  void *l[40];
  for (int i = 0; i < 40; i++) {
    l[i] = malloc(opq(60000 + 1000 * i));
    if (l[i]) memset(l[i], 2, 60000);
  }
  for (int i = 40; i-- > 0;) {
    snprintf(what, sizeof what, "%s: large block #%d (coalescing/trim)", who, i);
    free_keeps_errno(l[i], what);
  }
  /* aligned blocks */
  void *a = memalign(opq(4096), opq(300));
  snprintf(what, sizeof what, "%s: memalign(4096, 300) block", who);
  free_keeps_errno(a, what);
  a = memalign(opq(1 << 20), opq(300000));
  snprintf(what, sizeof what, "%s: memalign(1 MiB, 300000) block", who);
  free_keeps_errno(a, what);
}

/* ---- huge requests ---- */

static void huge(const char *who) {
  static const size_t big[] = {SIZE_MAX, SIZE_MAX - 1, SIZE_MAX - 4096, (size_t)PTRDIFF_MAX + 1,
                               (size_t)PTRDIFF_MAX, (size_t)PTRDIFF_MAX - 4096 * 4};
  for (size_t i = 0; i < sizeof big / sizeof big[0]; i++) {
    errno = 0;
    void *p = malloc(opq(big[i]));
    int e = errno;
    if (p) {
      FAIL("%s: malloc(%zu) returned %p, expected NULL", who, big[i], p);
      free(p);
    } else if (e != ENOMEM) {
      FAIL("%s: malloc(%zu) returned NULL with errno %d, expected ENOMEM (%d)", who, big[i], e,
           ENOMEM);
    }
  }
  /* and allocation still works afterwards */
  void *p = malloc(opq(100));
  if (!p) FAIL("%s: malloc(100) after huge requests returned NULL", who);
  free(p);
}

static void *thread_main(void *arg) {
  (void)arg;
  void *warm = malloc(opq(10)); /* attach to an arena */
  errno_suite("second thread");
  huge("second thread");
  free(warm);
  return NULL;
}

/* ---- __libc_* aliases ---- */

typedef void *(*malloc_fn)(size_t);
typedef void (*free_fn)(void *);
typedef void *(*calloc_fn)(size_t, size_t);
typedef void *(*realloc_fn)(void *, size_t);
typedef void *(*memalign_fn)(size_t, size_t);
typedef int (*posix_memalign_fn)(void **, size_t, size_t);

static void *sym(const char *name, int required) {
  void *s = dlsym(RTLD_DEFAULT, name);
  if (!s && required) FAIL("dlsym(RTLD_DEFAULT, \"%s\") found nothing (%s)", name, dlerror());
  return s;
}

static void fillcheck(unsigned char *p, size_t n, unsigned char c, const char *what) {
  memset(p, c, n);
  size_t j = first_byte_not(p, n, c);
  if (j != ALL_GOOD) FAIL("%s: byte %zu not writable", what, j);
}

static void aliases(void) {
  malloc_fn lmalloc = (malloc_fn)sym("__libc_malloc", 1);
  free_fn lfree = (free_fn)sym("__libc_free", 1);
  calloc_fn lcalloc = (calloc_fn)sym("__libc_calloc", 1);
  realloc_fn lrealloc = (realloc_fn)sym("__libc_realloc", 1);
  memalign_fn lmemalign = (memalign_fn)sym("__libc_memalign", 1);
  malloc_fn lvalloc = (malloc_fn)sym("__libc_valloc", 1);
  malloc_fn lpvalloc = (malloc_fn)sym("__libc_pvalloc", 1);
  posix_memalign_fn lposix = (posix_memalign_fn)sym("__posix_memalign", 0);
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sz[] = {0, 1, 100, 5000, 200000, 3 << 20};

  for (size_t i = 0; i < sizeof sz / sizeof sz[0]; i++) {
    size_t n = sz[i];
    if (lmalloc) { /* __libc_malloc -> free */
      unsigned char *p = lmalloc(n);
      if (!p) FAIL("__libc_malloc(%zu) returned NULL", n);
      else {
        if (malloc_usable_size(p) < n)
          FAIL("__libc_malloc(%zu): malloc_usable_size %zu", n, malloc_usable_size(p));
        fillcheck(p, n, 0x11, "__libc_malloc block");
        free(p);
      }
    }
    if (lfree) { /* malloc -> __libc_free */
      unsigned char *p = malloc(n);
      if (!p) FAIL("malloc(%zu) returned NULL", n);
      else {
        fillcheck(p, n, 0x22, "malloc block");
        lfree(p);
      }
    }
    if (lcalloc) { /* __libc_calloc -> free, zeroed */
      unsigned char *d = malloc(n); /* dirty memory to be reused */
      if (d) memset(d, 0xAA, n);
      free(opqp(d));
      unsigned char *p = lcalloc(1, n);
      if (!p) FAIL("__libc_calloc(1, %zu) returned NULL", n);
      else {
        size_t j = first_byte_not(p, n, 0);
        if (j != ALL_GOOD)
          FAIL("__libc_calloc(1, %zu): byte %zu is 0x%02x, expected 0", n, j, p[j]);
        free(p);
      }
    }
    if (lrealloc) { /* malloc -> __libc_realloc -> free, and the reverse */
      unsigned char *p = malloc(n + 10);
      if (p) {
        memset(p, 0x33, n + 10);
        unsigned char *q = lrealloc(p, 2 * n + 100);
        if (!q) {
          FAIL("__libc_realloc(malloc'ed %zu-byte block, %zu) returned NULL", n + 10, 2 * n + 100);
          free(p);
        } else {
          size_t j = first_byte_not(q, n + 10, 0x33);
          if (j != ALL_GOOD)
            FAIL("__libc_realloc(%zu -> %zu) lost byte %zu", n + 10, 2 * n + 100, j);
          unsigned char *r = realloc(q, n / 2 + 1);
          if (!r) {
            FAIL("realloc(__libc_realloc'ed block, %zu) returned NULL", n / 2 + 1);
            free(q);
          } else {
            j = first_byte_not(r, n / 2 + 1, 0x33);
            if (j != ALL_GOOD) FAIL("realloc of a __libc_realloc'ed block lost byte %zu", j);
            void *z = lrealloc(r, opq(0));
            if (z) {
              FAIL("__libc_realloc(p, 0) returned %p, expected NULL", z);
              free(z);
            }
          }
        }
      }
    }
    if (lmemalign) {
      unsigned char *p = lmemalign(256, n);
      if (!p) FAIL("__libc_memalign(256, %zu) returned NULL", n);
      else {
        if ((uintptr_t)p % 256) FAIL("__libc_memalign(256, %zu) = %p not aligned", n, (void *)p);
        fillcheck(p, n, 0x44, "__libc_memalign block");
        free(p);
      }
    }
    if (lvalloc) {
      unsigned char *p = lvalloc(n);
      if (!p) FAIL("__libc_valloc(%zu) returned NULL", n);
      else {
        if ((uintptr_t)p % page) FAIL("__libc_valloc(%zu) = %p not page-aligned", n, (void *)p);
        fillcheck(p, n, 0x55, "__libc_valloc block");
        free(p);
      }
    }
    if (lpvalloc) {
      unsigned char *p = lpvalloc(n);
      size_t r = (n + page - 1) & ~(page - 1);
      if (!p) FAIL("__libc_pvalloc(%zu) returned NULL", n);
      else {
        if ((uintptr_t)p % page) FAIL("__libc_pvalloc(%zu) = %p not page-aligned", n, (void *)p);
        if (malloc_usable_size(p) < r)
          FAIL("__libc_pvalloc(%zu): usable %zu < %zu", n, malloc_usable_size(p), r);
        fillcheck(p, r, 0x66, "__libc_pvalloc block");
        lfree ? lfree(p) : free(p);
      }
    }
    if (lposix) {
      void *p = NULL;
      int r = lposix(&p, 64, n);
      if (r || !p) FAIL("__posix_memalign(64, %zu) returned %d", n, r);
      else {
        if ((uintptr_t)p % 64) FAIL("__posix_memalign(64, %zu) = %p not aligned", n, p);
        fillcheck(p, n, 0x77, "__posix_memalign block");
        free(p);
      }
      errno = 999;
      p = (void *)0x1;
      r = lposix(&p, 24, n);
      if (r != EINVAL || errno != 999 || p != (void *)0x1)
        FAIL("__posix_memalign(&p, 24, %zu) returned %d errno %d p %p; expected EINVAL, "
             "errno and p untouched",
             n, r, errno, p);
    }
  }
  /* memory from the public API freed with __libc_free */
  if (lfree) {
    void *p = memalign(opq(4096), opq(100));
    lfree(p);
    p = calloc(opq(3), opq(1000));
    lfree(p);
    p = realloc(NULL, opq(70000));
    lfree(p);
    lfree(NULL);
  }
}

/* ---- libc-internal allocations ---- */

static void libc_internal(void) {
  char *s = strdup("hello, allocator");
  if (!s || strcmp(s, "hello, allocator")) FAIL("strdup failed");
  free(s);
  s = strndup("abcdefghijklmnopqrstuvwxyz", 10);
  if (!s || strcmp(s, "abcdefghij")) FAIL("strndup failed");
  free(s);

  /* a long string forces getline/getdelim to grow their buffer with realloc */
  char text[20000];
  for (size_t i = 0; i < sizeof text - 1; i++) text[i] = (i % 7000 == 6999) ? '\n' : 'a' + i % 26;
  text[sizeof text - 1] = 0;
  FILE *f = fmemopen(text, strlen(text), "r");
  if (!f) FAIL("fmemopen failed");
  else {
    char *line = NULL;
    size_t cap = 0;
    ssize_t got, total = 0;
    while ((got = getline(&line, &cap, f)) > 0) total += got;
    if (total != (ssize_t)strlen(text)) FAIL("getline read %zd bytes, expected %zu", total, strlen(text));
    free(line);
    rewind(f);
    line = NULL;
    cap = 0;
    got = getdelim(&line, &cap, 'q', f);
    if (got <= 0) FAIL("getdelim failed");
    free(line);
    fclose(f);
  }

  char *a = NULL;
  int n = asprintf(&a, "%s-%d-%0500d", "asprintf", 42, 7);
  if (n < 0 || !a || strncmp(a, "asprintf-42-", 12) || (int)strlen(a) != n) FAIL("asprintf failed");
  free(a);

  char *buf = NULL;
  size_t len = 0;
  FILE *m = open_memstream(&buf, &len);
  if (!m) FAIL("open_memstream failed");
  else {
    for (int i = 0; i < 20000; i++) fprintf(m, "%d,", i);
    fclose(m);
    if (!buf || len < 20000 || strncmp(buf, "0,1,2,3,", 8)) FAIL("open_memstream buffer wrong");
    free(buf);
  }

  char *rp = realpath(".", NULL);
  if (!rp) FAIL("realpath(\".\", NULL) failed: %s", strerror(errno));
  free(rp);
  char *cwd = getcwd(NULL, 0);
  if (!cwd) FAIL("getcwd(NULL, 0) failed: %s", strerror(errno));
  free(cwd);

  struct dirent **list = NULL;
  int k = scandir("/", &list, NULL, alphasort);
  if (k < 0) FAIL("scandir(\"/\") failed: %s", strerror(errno));
  else {
    for (int i = 0; i < k; i++) free(list[i]);
    free(list);
  }
}

int main(void) {
  /* free(NULL) */
  free(NULL);
  free(opqp(NULL));

  /* malloc_usable_size(NULL) */
  if (malloc_usable_size(opqp(NULL)) != 0)
    FAIL("malloc_usable_size(NULL) = %zu, expected 0", malloc_usable_size(opqp(NULL)));

  /* malloc(0): 100 distinct pointers */
  void *z[100];
  for (int i = 0; i < 100; i++) {
    z[i] = malloc(opq(0));
    if (!z[i]) {
      FAIL("malloc(0) #%d returned NULL", i);
      continue;
    }
    if ((uintptr_t)z[i] % 16) FAIL("malloc(0) = %p, not 16-byte aligned", z[i]);
    size_t u = malloc_usable_size(z[i]);
    memset(z[i], i, u); /* its usable bytes are ours */
    for (int j = 0; j < i; j++)
      if (z[j] == z[i]) FAIL("malloc(0) returned %p twice (#%d and #%d) while both alive", z[i], j, i);
  }
  for (int i = 0; i < 100; i++) {
    size_t u = z[i] ? malloc_usable_size(z[i]) : 0;
    size_t j = first_byte_not(z[i], u, (unsigned char)i);
    if (j != ALL_GOOD) FAIL("malloc(0) block #%d byte %zu overwritten: blocks overlap", i, j);
  }
  for (int i = 0; i < 100; i++) free(z[i]);

  huge("main thread");
  errno_suite("main thread");

  pthread_t t;
  if (pthread_create(&t, NULL, thread_main, NULL)) FAIL("pthread_create failed");
  else pthread_join(t, NULL);

  aliases();
  libc_internal();

  test_expect_reuse();
  return test_finish();
}
