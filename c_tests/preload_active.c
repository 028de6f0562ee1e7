/* preload_active: proves which allocator the test programs really run on.
 * With PTMALLOC_RS_EXPECT_PRELOAD set (scripts/run-tests sets it together
 * with LD_PRELOAD), malloc, free, calloc, realloc, posix_memalign,
 * aligned_alloc, memalign, valloc, pvalloc and malloc_usable_size, as found
 * by dlsym(RTLD_DEFAULT, ...), must all lie in a file whose name contains
 * "libptmalloc_rs.so" (checked with dladdr); without it they must lie in
 * libc.so.6.  It also checks that the functions this program itself calls
 * (through its PLT/GOT) are the same ones.
 * Guards against: a test run that silently exercises glibc instead of the
 * library under test (LD_PRELOAD not applied, a symbol not exported by the
 * library so one function falls back to glibc, or a mixed set where e.g.
 * malloc is ours but free is glibc's). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TEST_NAME "preload_active"
#define TEST_MAX_FAILURES 0 /* report every function that is wrong */
#include "testlib.h"

int main(void) {
  const char *expect_env = getenv("PTMALLOC_RS_EXPECT_PRELOAD");
  int want_preload = expect_env != NULL;
  const char *want = want_preload ? "libptmalloc_rs.so" : "libc.so.6";

  struct {
    const char *name;
    void *direct; /* the address this program's own calls go to */
  } fns[] = {
      {"malloc", (void *)malloc},
      {"free", (void *)free},
      {"calloc", (void *)calloc},
      {"realloc", (void *)realloc},
      {"posix_memalign", (void *)posix_memalign},
      {"aligned_alloc", (void *)aligned_alloc},
      {"memalign", (void *)memalign},
      {"valloc", (void *)valloc},
      {"pvalloc", (void *)pvalloc},
      {"malloc_usable_size", (void *)malloc_usable_size},
  };

  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    void *addr = dlsym(RTLD_DEFAULT, fns[i].name);
    if (!addr) {
      FAIL("dlsym(RTLD_DEFAULT, \"%s\") found nothing: %s", fns[i].name, dlerror());
      continue;
    }
    Dl_info info;
    memset(&info, 0, sizeof info);
    if (!dladdr(addr, &info) || !info.dli_fname) {
      FAIL("dladdr(%p) for %s found no object", addr, fns[i].name);
      continue;
    }
    if (!strstr(info.dli_fname, want)) {
      FAIL("%s resolves to %p in \"%s\", expected a file containing \"%s\" "
           "(PTMALLOC_RS_EXPECT_PRELOAD is %s)",
           fns[i].name, addr, info.dli_fname, want, want_preload ? "set" : "not set");
    }
    /* In a PIE (the default here) &malloc is loaded from the GOT and equals
     * the resolved definition; in a non-PIE it may be a canonical PLT entry
     * in the executable, which dladdr attributes to the executable itself:
     * only compare when the direct address is not inside the executable. */
    Dl_info dinfo;
    memset(&dinfo, 0, sizeof dinfo);
    if (dladdr(fns[i].direct, &dinfo) && dinfo.dli_fname && dinfo.dli_fbase != NULL) {
      Dl_info self;
      memset(&self, 0, sizeof self);
      dladdr((void *)main, &self);
      if (dinfo.dli_fbase != self.dli_fbase && fns[i].direct != addr) {
        FAIL("this program's %s is %p (in \"%s\") but dlsym finds %p (in \"%s\")", fns[i].name,
             fns[i].direct, dinfo.dli_fname, addr, info.dli_fname);
      }
    }
  }

  /* and it is used: a block from malloc is known to malloc_usable_size */
  void *p = malloc(100);
  if (!p || malloc_usable_size(p) < 100)
    FAIL("malloc(100) = %p, usable %zu, expected a block of at least 100 bytes", p,
         p ? malloc_usable_size(p) : 0);
  free(p);

  test_expect_reuse();
  return test_finish();
}
