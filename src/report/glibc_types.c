/*
 * Debugger view: glibc 2.36's malloc types, as DWARF, for gdb, pwndbg and GEF.
 *
 * This file holds no code and no data. It is compiled with -g only for the
 * debugging information it produces, which scripts/build.rs links into
 * libptmalloc_rs.so: the struct types glibc's heap is made of (glibc_types.h,
 * which c_tests/glibc_layouts.c reads our objects through), and the names of
 * the objects debuggers look for, each declared `extern` with its type and
 * no address.
 *
 * gdb enters such a declaration as a global symbol whose address it looks up
 * by name in the library's symbol table when the symbol is used. The library
 * defines those names (src/report/debuginfo.rs) as hidden symbols at our own
 * objects: `main_arena`, `mp_`, `global_max_fast`, `__malloc_initialized`,
 * and the thread-locals `tcache` and `thread_arena` at the words of the
 * calling thread's state that hold its cache and its arena. glibc keeps its
 * own copies `static`, so where both are loaded (Debian's libc6-dbg), gdb's
 * search for a global finds ours first: `p main_arena`, `p *tcache` and the
 * heap commands built on them read the allocator that is in use.
 */
#include "glibc_types.h"

extern struct malloc_state main_arena;
extern struct malloc_par mp_;
extern INTERNAL_SIZE_T global_max_fast;
extern _Bool __malloc_initialized;
extern __thread tcache_perthread_struct *tcache;
extern __thread mstate thread_arena;
