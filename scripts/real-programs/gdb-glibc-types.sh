#!/usr/bin/env bash
# Not under the fast profile: it checks glibc's layout of a known sequence.
# gdb reads ptmalloc-rs's heap with glibc's own struct definitions: with
# Debian's libc6-dbg, gdb knows glibc 2.36's `struct malloc_state`,
# `struct malloc_par`, `heap_info` and `struct malloc_chunk` (the types
# pwndbg and GEF read the heap through). A two-thread program under the
# preload writes malloc_rs_dump and waits; gdb attaches and, casting our
# exported `main_arena` and `mp_` to glibc's types, must find the same main
# arena top and size, system_mem, thread arena (via `next`), its heap_info,
# its top, its unsorted bin's chunk and the mmap'd chunk count as the dump.
# (The addresses come from the library's dynamic symbols, as a tool without
# DWARF would find them; gdb-names.sh reads the same objects by name.)
set -u
lib=${LIB:?LIB must name the library}
command -v gdb >/dev/null || { echo "gdb is not installed"; exit 1; }
work=$(mktemp -d)
pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT
cat > "$work/two.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>
static pthread_barrier_t done;
static void *thread_main(void *arg) {
  void *volatile p[6];
  for (int i = 0; i < 6; i++) p[i] = malloc(2000);
  free(p[2]); /* a 2016-byte chunk in the thread arena's unsorted bin */
  pthread_barrier_wait(&done);
  pause();
  return arg;
}
int main(int argc, char **argv) {
  void *volatile big = malloc(300000); /* an mmap'd chunk */
  void *volatile a = malloc(3000);
  (void)big; (void)a;
  pthread_barrier_init(&done, NULL, 2);
  pthread_t t;
  pthread_create(&t, NULL, thread_main, NULL);
  pthread_barrier_wait(&done);
  void (*dump)(int) = (void (*)(int))dlsym(RTLD_DEFAULT, "malloc_rs_dump");
  if (!dump) return 2;
  int fd = open(argv[1], O_WRONLY | O_CREAT | O_TRUNC, 0644);
  dump(fd);
  close(fd);
  write(1, "ready\n", 6); /* not stdio: its buffer would move top */
  pause();
  return argc;
}
C
gcc -O1 -pthread -o "$work/two" "$work/two.c" -ldl || exit 1
LD_PRELOAD="$lib" "$work/two" "$work/dump.txt" >"$work/out" 2>"$work/err" &
pid=$!
for _ in $(seq 100); do grep -q ready "$work/out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/out" || { echo "the program did not start:"; cat "$work/err"; exit 1; }

base=$(awk -v f="$(readlink -f "$lib")" '$6 == f { split($1, r, "-"); print r[1]; exit }' /proc/$pid/maps)
sym() { nm -D --defined-only "$lib" | awk -v s="$1" '$3 == s { print $1 }'; }
[ -n "$base" ] || { echo "the library is not mapped in the program"; exit 1; }
ma=$(printf '0x%x' $((0x$base + 0x$(sym main_arena))))
mp=$(printf '0x%x' $((0x$base + 0x$(sym mp_))))

timeout 60 gdb -q -batch -p "$pid" \
  -ex "set \$a = (struct malloc_state *) $ma" \
  -ex "set \$m = (struct malloc_par *) $mp" \
  -ex 'printf "sizes %d %d %d\n", sizeof(struct malloc_state), sizeof(struct malloc_par), sizeof(heap_info)' \
  -ex 'printf "main_top %#lx %#lx\n", $a->top, $a->top->mchunk_size & ~7UL' \
  -ex 'printf "main_system %lu\n", $a->system_mem' \
  -ex 'printf "arena1 %#lx\n", $a->next' \
  -ex 'printf "arena1_top %#lx %#lx\n", $a->next->top, $a->next->top->mchunk_size & ~7UL' \
  -ex 'printf "arena1_system %lu\n", $a->next->system_mem' \
  -ex 'printf "arena1_unsorted %#lx %lu\n", $a->next->bins[0], $a->next->bins[0]->mchunk_size & ~7UL' \
  -ex 'set $h = (heap_info *)((unsigned long)$a->next & ~0x3ffffffUL)' \
  -ex 'printf "heap %#lx %#lx %#lx\n", $h, $h->ar_ptr, $h->size' \
  -ex 'printf "n_mmaps %d\n", $m->n_mmaps' \
  >"$work/gdb.txt" 2>"$work/gdb.err"
kill "$pid"; pid=

fail=0
check() { # what expected got
  if [ "$2" = "$3" ]; then echo "ok   $1: $2"; else echo "FAIL $1: the dump says '$2', glibc's types in gdb '$3'"; fail=1; fi
}
g() { awk -v k="$1" -v n="$2" '$1 == k { print $n }' "$work/gdb.txt"; }
if [ "$(g sizes 2)" != 2200 ]; then
  echo "FAIL: gdb does not know glibc's struct malloc_state (is libc6-dbg installed?):"
  cat "$work/gdb.txt" "$work/gdb.err" | tail -n 5
  exit 1
fi
check "sizeof(struct malloc_state), malloc_par, heap_info" "2200 136 48" "$(g sizes 2) $(g sizes 3) $(g sizes 4)"
d=$work/dump.txt
a0=$(sed -n '/^arena 0 /,/^arena 1 /p' "$d")
a1=$(sed -n '/^arena 1 /,/^tcache of/p' "$d")
check "main arena top and size" "$(awk '/^  top /{print $2, $4}' <<<"$a0" | tr -d ,)" "$(g main_top 2) $(g main_top 3)"
check "main arena system_mem" "$(awk '/^arena 0/{print $8}' <<<"$a0")" "$(g main_system 2)"
check "thread arena (main_arena.next)" "$(awk '/^arena 1 at/{print $4}' <<<"$a1" | tr -d :)" "$(g arena1 2)"
check "thread arena top and size" "$(awk '/^  top /{print $2, $4}' <<<"$a1" | tr -d ,)" "$(g arena1_top 2) $(g arena1_top 3)"
check "thread arena system_mem" "$(awk '/^arena 1/{print $6}' <<<"$a1")" "$(g arena1_system 2)"
check "thread arena unsorted bin" "$(awk '/^  unsorted bin:/{print $3, substr($4, 2)}' <<<"$a1")" "$(g arena1_unsorted 2) $(g arena1_unsorted 3)"
check "heap_info of the thread heap (start, ar_ptr, size)" \
  "$(awk '/^  heap 0 /{split($3, r, "-"); print r[1], $0}' <<<"$a1" | awk '{print $1}') $(g arena1 2) $(awk '/^  heap 0 /{print $5}' <<<"$a1" | tr -d ,)" \
  "$(g heap 2) $(g heap 3) $(g heap 4)"
check "mp_.n_mmaps" "$(awk '/^mmap.d chunks:/{print $3}' "$d")" "$(g n_mmaps 2)"
[ "$fail" = 0 ] && echo "gdb-glibc-types: glibc's struct definitions read the same heap as the dump"
exit "$fail"
