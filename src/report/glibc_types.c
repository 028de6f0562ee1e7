/*
 * Debugger view: glibc 2.36's malloc types and objects, as DWARF, for gdb,
 * pwndbg and GEF.
 *
 * This file yields no code and no data. scripts/build.rs compiles it with -g
 * to assembly and keeps only the debugging information: the struct types
 * glibc's heap is made of (glibc_types.h, which c_tests/glibc_layouts.c also
 * reads our objects through) and, below, the objects debuggers look for
 * under glibc's names, each a `static` of glibc's type, as glibc declares
 * them. The script deletes the storage the compiler gives each of them, so
 * that the location the DWARF records for a name refers to a symbol defined
 * elsewhere in the library: our own objects (`main_arena` and `mp_`, and the
 * hidden aliases src/report/debuginfo.rs defines for the rest: the
 * thread-locals `tcache` and `thread_arena` are words of the calling
 * thread's state).
 *
 * Why statics: glibc's own are statics, and heap tools look them up as such
 * (pwndbg asks gdb for a static `main_arena`, `tcache`, ... before any
 * other). gdb searches the loaded objects in load order, and a preloaded
 * library comes before libc, so ours are found first, also where Debian's
 * libc6-dbg describes glibc's (unused) copies.
 */
#include "glibc_types.h"

/* The names (scripts/build.rs lists them too and checks that it removed
 * the storage of each). */
static struct malloc_state main_arena __attribute__((used));
static struct malloc_par mp_ __attribute__((used));
static INTERNAL_SIZE_T global_max_fast __attribute__((used));
static _Bool __malloc_initialized __attribute__((used));
static __thread tcache_perthread_struct *tcache __attribute__((used));
static __thread mstate thread_arena __attribute__((used));
