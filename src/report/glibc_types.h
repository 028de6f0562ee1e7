/*
 * glibc 2.36's malloc types, with glibc's names and layouts: what
 * glibc_types.c gives debuggers as DWARF, and what c_tests/glibc_layouts.c
 * reads the library's objects through (so a field of ours that moved, or a
 * type here that is wrong, fails that test).
 */
#ifndef PTMALLOC_RS_GLIBC_TYPES_H
#define PTMALLOC_RS_GLIBC_TYPES_H

#include <stddef.h>
#include <stdint.h>

#define NFASTBINS 10
#define NBINS 128
#define BINMAPSIZE 4
#define TCACHE_MAX_BINS 64

typedef size_t INTERNAL_SIZE_T;
typedef int __libc_lock_t;

/* A chunk's header, and the free chunk's list links after it. */
struct malloc_chunk {
  INTERNAL_SIZE_T mchunk_prev_size;
  INTERNAL_SIZE_T mchunk_size;
  struct malloc_chunk *fd;
  struct malloc_chunk *bk;
  struct malloc_chunk *fd_nextsize;
  struct malloc_chunk *bk_nextsize;
};
typedef struct malloc_chunk *mchunkptr;
typedef struct malloc_chunk *mfastbinptr;

/* An arena. */
struct malloc_state {
  __libc_lock_t mutex;
  int flags;
  int have_fastchunks;
  mfastbinptr fastbinsY[NFASTBINS];
  mchunkptr top;
  mchunkptr last_remainder;
  mchunkptr bins[NBINS * 2 - 2];
  unsigned int binmap[BINMAPSIZE];
  struct malloc_state *next;
  struct malloc_state *next_free;
  INTERNAL_SIZE_T attached_threads;
  INTERNAL_SIZE_T system_mem;
  INTERNAL_SIZE_T max_system_mem;
};
typedef struct malloc_state *mstate;

/* The process-wide parameters. */
struct malloc_par {
  unsigned long trim_threshold;
  INTERNAL_SIZE_T top_pad;
  INTERNAL_SIZE_T mmap_threshold;
  INTERNAL_SIZE_T arena_test;
  INTERNAL_SIZE_T arena_max;
  size_t thp_pagesize;
  size_t hp_pagesize;
  int hp_flags;
  int n_mmaps;
  int n_mmaps_max;
  int max_n_mmaps;
  int no_dyn_threshold;
  INTERNAL_SIZE_T mmapped_mem;
  INTERNAL_SIZE_T max_mmapped_mem;
  char *sbrk_base;
  size_t tcache_bins;
  size_t tcache_max_bytes;
  size_t tcache_count;
  size_t tcache_unsorted_limit;
};

/* The header at the start of each thread heap. */
typedef struct _heap_info {
  mstate ar_ptr;
  struct _heap_info *prev;
  size_t size;
  size_t mprotect_size;
  size_t pagesize;
  char pad[8];
} heap_info;

/* A chunk in a tcache bin, seen from its user pointer. */
typedef struct tcache_entry {
  struct tcache_entry *next;
  uintptr_t key;
} tcache_entry;

/* A thread's cache. */
typedef struct tcache_perthread_struct {
  uint16_t counts[TCACHE_MAX_BINS];
  tcache_entry *entries[TCACHE_MAX_BINS];
} tcache_perthread_struct;

#endif
