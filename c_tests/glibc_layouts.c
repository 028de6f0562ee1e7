// Not under the fast profile: it checks a freed block's place in glibc's bins
// (the fast profile may cache it).
/* glibc_layouts: the exported `main_arena` and `mp_`, and a thread arena's
 * heap_info and malloc_state, read through glibc 2.36's struct layouts
 * (src/report/glibc_types.h, the types the library's DWARF gives gdb), hold
 * the values the allocator's behaviour implies. This is what gdb heap tools (pwndbg, GEF) rely on; it
 * guards against a field moved, resized or left out.
 * Under plain glibc (no preload) main_arena is not exported: the test then
 * only says so (make test always runs it under the preload). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#define TEST_NAME "glibc_layouts"
#include "testlib.h"

#include "../src/report/glibc_types.h"
#define HEAP_MAX_SIZE (64UL << 20)

static struct malloc_state *thread_arena_seen;
static heap_info *thread_heap_seen;
static void *thread_main(void *arg) {
  (void)arg;
  unsigned char *p = malloc_v(2000);
  thread_heap_seen = (heap_info *)((uintptr_t)p & ~(HEAP_MAX_SIZE - 1));
  thread_arena_seen = thread_heap_seen->ar_ptr;
  struct malloc_state *a = thread_arena_seen;
  if ((char *)a != (char *)thread_heap_seen + sizeof(heap_info))
    FAIL("thread arena %p is not right after its heap_info %p", (void *)a, (void *)thread_heap_seen);
  if (thread_heap_seen->prev != NULL) FAIL("the first heap's prev is %p, expected NULL", (void *)thread_heap_seen->prev);
  if (thread_heap_seen->size != 0x21000 || thread_heap_seen->mprotect_size < thread_heap_seen->size)
    FAIL("heap_info size %#zx mprotect_size %#zx, expected 0x21000 and at least that",
         thread_heap_seen->size, thread_heap_seen->mprotect_size);
  if (a->system_mem != thread_heap_seen->size)
    FAIL("thread arena system_mem %zu, heap size %zu", a->system_mem, thread_heap_seen->size);
  uintptr_t top = (uintptr_t)a->top;
  if (top <= (uintptr_t)p || top + (a->top->mchunk_size & ~7UL) != (uintptr_t)thread_heap_seen + thread_heap_seen->size)
    FAIL("thread arena top %#lx (size %#zx) does not end the heap", (unsigned long)top, a->top->mchunk_size);
  free_v(p);
  return NULL;
}

int main(void) {
  struct malloc_state *ma = dlsym(RTLD_DEFAULT, "main_arena");
  struct malloc_par *mp = dlsym(RTLD_DEFAULT, "mp_");
  if (!ma || !mp) {
    if (getenv("PTMALLOC_RS_EXPECT_PRELOAD")) FAIL("main_arena/mp_ are not exported");
    else printf("glibc_layouts: main_arena is not exported by plain glibc: nothing to compare\n");
    return test_finish();
  }
  /* mp_: the defaults and the knobs. */
  if (mp->trim_threshold != 128 * 1024 || mp->top_pad != 128 * 1024 || mp->mmap_threshold != 128 * 1024)
    FAIL("mp_ thresholds %lu %zu %zu, expected 131072 each", mp->trim_threshold, mp->top_pad, mp->mmap_threshold);
  if (mp->arena_test != 8 || mp->n_mmaps_max != 65536 || mp->tcache_bins != 64 || mp->tcache_max_bytes != 1032)
    FAIL("mp_ arena_test %zu n_mmaps_max %d tcache_bins %zu tcache_max_bytes %zu", mp->arena_test,
         mp->n_mmaps_max, mp->tcache_bins, mp->tcache_max_bytes);
  if (mallopt(M_TOP_PAD, 4096 * 7) != 1 || mp->top_pad != 4096 * 7 || mp->no_dyn_threshold != 1)
    FAIL("mallopt(M_TOP_PAD) not seen in mp_.top_pad (%zu) / no_dyn_threshold (%d)", mp->top_pad, mp->no_dyn_threshold);
  mallopt(M_TOP_PAD, 128 * 1024);
  int before = mp->n_mmaps;
  void *big = malloc_v(1 << 20);
  if (mp->n_mmaps != before + 1 || mp->mmapped_mem < (1u << 20))
    FAIL("mp_.n_mmaps %d (was %d), mmapped_mem %zu after a 1 MiB malloc", mp->n_mmaps, before, mp->mmapped_mem);
  free_v(big);

  /* main_arena: top, system_mem, the unsorted bin, the ring. */
  unsigned char *a = malloc_v(3000), *b = malloc_v(3000), *c = malloc_v(3000);
  (void)c;
  struct mallinfo2 mi = mallinfo2();
  if (ma->system_mem == 0 || ma->system_mem > mi.arena || ma->max_system_mem < ma->system_mem)
    FAIL("main_arena system_mem %zu max %zu, mallinfo2 arena %zu", ma->system_mem, ma->max_system_mem, mi.arena);
  uintptr_t top = (uintptr_t)ma->top;
  if (top <= (uintptr_t)c || (ma->top->mchunk_size & 1) == 0)
    FAIL("main_arena.top %#lx is not above the last block %p with PREV_INUSE", (unsigned long)top, (void *)c);
  free_v(a);
  free_v(b); /* merges with a: one 6016-byte chunk (2 x 3008, beyond the tcache) */
  mchunkptr unsorted = (mchunkptr)((char *)&ma->bins[0] - 2 * sizeof(size_t));
  mchunkptr first = ma->bins[0];
  if (first == unsorted || (uintptr_t)first != (uintptr_t)a - 16 || first->bk != unsorted)
    FAIL("unsorted bin fd %p, expected the merged chunk at %p", (void *)first, (void *)(a - 16));
  else if ((first->mchunk_size & ~7UL) != 6016)
    FAIL("merged free chunk size %#zx, expected 6016", first->mchunk_size);

  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_join(t, NULL);
  int found = 0;
  for (struct malloc_state *r = ma->next; r && r != ma; r = r->next)
    if (r == thread_arena_seen) found = 1;
  if (!found) FAIL("the thread's arena %p is not on main_arena's ring", (void *)thread_arena_seen);
  if (!failures)
    printf("glibc_layouts: main_arena, mp_, heap_info and a thread's malloc_state read through glibc's structs\n");
  return test_finish();
}
