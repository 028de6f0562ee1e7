#!/usr/bin/env bash
# Not under the fast profile: it checks glibc's layout of a known sequence.
# gdb reads our heap by glibc's names, as it reads glibc's: `main_arena`,
# `mp_`, `global_max_fast`, `__malloc_initialized`, and in each thread
# `tcache` and `thread_arena`, typed as glibc 2.36's structs, with no
# address typed in and no function called in the process.
#
# One two-thread program runs under gdb twice, with glibc's malloc (whose
# objects gdb knows from Debian's libc6-dbg) and under the preload, and stops
# at `malloc_usable_size` (inside the allocator: glibc's malloc.c, or our
# library). gdb prints the same list of values both times, heap addresses as
# offsets from their heap's start (a tcache entry's safe-linked `next`
# revealed); the two lists must be identical. The
# preloaded run is repeated with glibc's debugging information kept out
# (the library's own DWARF must suffice) and must print the same list again.
# Its absolute addresses must be the ones malloc_rs_dump reports, and
# Python's gdb.lookup_static_symbol (how pwndbg looks) must find the same.
set -u
lib=${LIB:?LIB must name the library}
command -v gdb >/dev/null || { echo "gdb is not installed"; exit 1; }
work=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$work"' EXIT
cat > "$work/prog.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
static pthread_barrier_t met;
static void *thread_main(void *arg) {
  void *volatile x = malloc(100), *volatile y = malloc(100);
  free(x);                      /* thread tcache, 112-byte bin */
  void *volatile z = malloc(5000);
  (void)y; (void)z;
  pthread_barrier_wait(&met);
  pause();
  return arg;
}
int main(int argc, char **argv) {
  mallopt(M_MXFAST, 64);        /* global_max_fast 80 */
  void *volatile big = malloc(300000); /* mmap'd */
  void *volatile keep = malloc(24), *volatile p[8];
  for (int i = 0; i < 8; i++) p[i] = malloc(40);
  void *volatile d = malloc(1500), *volatile guard = malloc(24);
  free(malloc(24));             /* tcache bin 0 */
  free(d);                      /* the unsorted bin */
  for (int i = 0; i < 8; i++) free(p[i]); /* 7 in tcache bin 1, 1 in a fastbin */
  (void)keep; (void)guard; (void)big;
  pthread_barrier_init(&met, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_barrier_wait(&met);
  malloc_usable_size(guard);    /* gdb stops here */
  if (argc > 1) {               /* after gdb has read: the dump */
    void (*dump)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump");
    int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (!dump || fd < 0) return 2;
    dump(fd);
  }
  return 0;
}
C
gcc -O1 -pthread -o "$work/prog" "$work/prog.c" -ldl || exit 1
# pthread_create callocs the new thread's DTV, one slot per module with
# TLS: the library is one, so under the preload that block is 16 bytes
# larger (README, "Same heap as glibc"). The glibc run preloads a stand-in
# with TLS and nothing else (loaded before glibc's malloc is in use), so
# that both runs make the same requests.
printf '__thread int tls_like_the_library;\n' > "$work/pad.c"
gcc -shared -fPIC -o "$work/pad.so" "$work/pad.c" || exit 1

# The values, heap addresses as offsets: main arena from mp_.sbrk_base,
# the thread's from its heap (64 MiB-aligned, glibc's HEAP_MAX_SIZE).
reads=(
  -ex 'printf "initialized %d\n", __malloc_initialized'
  -ex 'printf "global_max_fast %lu\n", global_max_fast'
  -ex 'printf "thread_arena_is_main %d\n", thread_arena == &main_arena'
  -ex 'set $base = (unsigned long) mp_.sbrk_base'
  -ex 'printf "top %#lx %#lx\n", (unsigned long) main_arena.top - $base, main_arena.top->mchunk_size'
  -ex 'printf "system_mem %lu\n", main_arena.system_mem'
  -ex 'printf "fastbin1 %#lx %#lx\n", (unsigned long) main_arena.fastbinsY[1] - $base, main_arena.fastbinsY[1]->mchunk_size'
  -ex 'printf "unsorted %#lx %#lx\n", (unsigned long) main_arena.bins[0] - $base, main_arena.bins[0]->mchunk_size'
  -ex 'printf "binmap %#x\n", main_arena.binmap[0]'
  -ex 'printf "tcache %#lx\n", (unsigned long) tcache - $base'
  -ex 'printf "tcache_bin0 %u %#lx\n", tcache->counts[0], (unsigned long) tcache->entries[0] - $base'
  -ex 'set $e = tcache->entries[1]'
  -ex 'printf "tcache_bin1 %u %#lx %#lx\n", tcache->counts[1], (unsigned long) $e - $base, ((unsigned long) $e->next ^ ((unsigned long) &$e->next >> 12)) - $base'
  -ex 'printf "mmaps %d %lu\n", mp_.n_mmaps, mp_.mmapped_mem'
  -ex 'printf "thresholds %lu %lu %lu\n", mp_.mmap_threshold, mp_.trim_threshold, mp_.tcache_count'
  -ex 'printf "sizes %lu %lu %lu %lu\n", sizeof(struct malloc_state), sizeof(struct malloc_par), sizeof(heap_info), sizeof(*tcache)'
  -ex 'printf "abs main_arena %#lx\n", &main_arena'
  -ex 'printf "abs top %#lx\n", main_arena.top'
  -ex 'printf "abs tcache %#lx\n", tcache'
  -ex 'python print("abs static_main_arena %#x" % int(gdb.lookup_static_symbol("main_arena").value().address))'
  -ex 'python print("abs static_tcache %#x" % int(gdb.lookup_static_symbol("tcache").value()))'
  -ex 'thread 2'
  -ex 'set $heap = (unsigned long) thread_arena & ~0x3ffffffUL'
  -ex 'printf "t2 arena %#lx is_next %d\n", (unsigned long) thread_arena - $heap, thread_arena == main_arena.next'
  -ex 'printf "t2 heap_info %#lx %#lx\n", (unsigned long) ((heap_info *) $heap)->ar_ptr - $heap, ((heap_info *) $heap)->size'
  -ex 'printf "t2 top %#lx %#lx\n", (unsigned long) thread_arena->top - $heap, thread_arena->top->mchunk_size'
  -ex 'printf "t2 system_mem %lu\n", thread_arena->system_mem'
  -ex 'printf "t2 tcache %#lx\n", (unsigned long) tcache - $heap'
  -ex 'printf "t2 tcache_bin5 %u %#lx\n", tcache->counts[5], (unsigned long) tcache->entries[5] - $heap'
  -ex 'printf "abs t2 arena %#lx\n", thread_arena'
  -ex 'python print("abs static_t2_arena %#x" % int(gdb.lookup_static_symbol("thread_arena").value()))'
)
rungdb() { # out-file, extra gdb options...
  local out=$1; shift
  timeout 120 gdb -q -batch -nx "$@" \
    -ex 'set breakpoint pending on' -ex 'set startup-with-shell off' \
    -ex 'break malloc_usable_size' -ex run -ex 'info sharedlibrary' \
    "${reads[@]}" -ex 'delete' -ex 'continue' \
    --args "$work/prog" "$work/dump.txt" >"$out" 2>"$out.err"
  [ $? = 124 ] && echo "FAIL: gdb did not finish within 120 s (its output: $out)"
  return 0
}
keys() { grep -E '^(initialized|global_max_fast|thread_arena_is_main|top|system_mem|fastbin1|unsorted|binmap|tcache|tcache_bin[0-9]|mmaps|thresholds|sizes|t2) ' "$1"; }

fail=0
rungdb "$work/glibc.txt" -ex "set environment LD_PRELOAD=$work/pad.so"
rungdb "$work/ours.txt" -ex "set environment LD_PRELOAD=$lib"
# Without glibc's debugging information: only the library's DWARF.
rungdb "$work/ours-nodbg.txt" -iex 'set debug-file-directory /nonexistent' \
  -ex "set environment LD_PRELOAD=$lib"

if [ "$(keys "$work/glibc.txt" | wc -l)" != 20 ]; then
  echo "FAIL: gdb could not read glibc's own heap by name (is libc6-dbg installed?):"
  tail -n 8 "$work/glibc.txt" "$work/glibc.txt.err"
  exit 1
fi
grep -q 'libptmalloc_rs' "$work/ours.txt" || { echo "FAIL: the library was not loaded under gdb"; tail -n 8 "$work/ours.txt.err"; exit 1; }
if diff <(keys "$work/glibc.txt") <(keys "$work/ours.txt") >"$work/diff"; then
  echo "ok   glibc's names give the same $(keys "$work/ours.txt" | wc -l) values as under glibc (libc6-dbg loaded)"
else
  echo "FAIL: by glibc's names gdb reads different values under the preload (< glibc, > preload):"
  cat "$work/diff"; fail=1
fi
# The third run really had no glibc debugging information: gdb marks libc.
if ! grep -E '^0x.*\(\*\) +/.*libc\.so\.6' "$work/ours-nodbg.txt" >/dev/null; then
  echo "FAIL: glibc's debugging information was not kept out of the third run"; fail=1
elif diff <(keys "$work/ours.txt") <(keys "$work/ours-nodbg.txt") >"$work/diff"; then
  echo "ok   the same values without glibc's debugging information"
else
  echo "FAIL: without libc6-dbg's symbols gdb reads differently (< with, > without):"
  cat "$work/diff"; fail=1
fi

# Absolute addresses against the dump the program wrote after gdb read.
abs() { awk -v k="$1" '$1 == "abs" && $2 == k { print $3 }' "$work/ours.txt"; }
abs2() { awk '$1 == "abs" && $2 == "t2" { print $4 }' "$work/ours.txt"; }
d=$work/dump.txt
if [ ! -s "$d" ]; then
  echo "FAIL: the program wrote no dump"; fail=1
else
  check() {
    if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: the dump says '$2', gdb '$3'"; fail=1; fi
  }
  check "&main_arena" "$(awk '/^arena 0 /{print $6}' "$d" | tr -d :)" "$(abs main_arena)"
  check "main_arena.top" "$(awk '/^arena 0 /{a=1} a && /^  top /{print $2; exit}' "$d" | tr -d ,)" "$(abs top)"
  check "tcache (main thread)" "$(awk '/^tcache of thread .*this thread/{print $NF}' "$d" | tr -d :)" "$(abs tcache)"
  check "thread_arena (second thread)" "$(awk '/^arena 1 at/{print $4}' "$d" | tr -d :)" "$(abs2)"
fi
# pwndbg asks for glibc's statics by gdb.lookup_static_symbol before all
# else: that must find ours too, not libc6-dbg's unused copies.
for k in main_arena tcache; do
  if [ "$(abs "static_$k")" != "$(abs "$k")" ] || [ -z "$(abs "$k")" ]; then
    echo "FAIL gdb.lookup_static_symbol(\"$k\") gives '$(abs "static_$k")', not '$(abs "$k")'"; fail=1
  fi
done
if [ "$(abs static_t2_arena)" != "$(abs2)" ]; then
  echo "FAIL gdb.lookup_static_symbol(\"thread_arena\") in thread 2 gives '$(abs static_t2_arena)', not '$(abs2)'"; fail=1
else
  echo "ok   gdb.lookup_static_symbol finds ours: main_arena, tcache, thread_arena"
fi
[ "$fail" = 0 ] && echo "gdb-names: gdb reads the heap by glibc's names as under glibc"
exit "$fail"
