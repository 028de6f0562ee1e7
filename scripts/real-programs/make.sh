#!/usr/bin/env bash
# make -j4 (make, its job server, sh, gcc, cc1, as, collect2, ld, ar: the
# preload reaches every process make starts) under glibc and under the
# preload: build a generated C project of 40 source files, a shared header,
# a generator program that make builds and runs to produce one more source
# file, a static library and an executable.  Each build runs in the same
# directory (build/, recreated), so the outputs must be byte-identical: every
# object file, the library and the executable.  The build's own stdout and
# stderr (make -s: only what the tools print; the executable's output at the
# end) must agree, and both builds must succeed.
. "$(dirname "$0")/common.bash"

command -v make >/dev/null || { echo "make is not installed"; exit 1; }
command -v gcc >/dev/null || { echo "gcc is not installed"; exit 1; }

mkdir -p proj
# proj.h: shared declarations.
{
  echo '#ifndef PROJ_H'
  echo '#define PROJ_H'
  echo '#include <stddef.h>'
  echo '#include <stdint.h>'
  echo 'struct node { struct node *next; uint64_t key; char *name; };'
  echo 'uint64_t mix64(uint64_t h, uint64_t v);'
  echo 'extern const uint32_t gen_table[256];'
  for i in $(seq -w 1 39); do echo "uint64_t mod$i(int n);"; done
  echo '#endif'
} >proj/proj.h

# gen_table.c: a host program make builds and runs to write table.c.
cat >proj/gen_table.c <<'EOF'
#include <stdio.h>
#include <stdint.h>
int main(void) {
  printf("#include \"proj.h\"\nconst uint32_t gen_table[256] = {\n");
  for (uint32_t i = 0; i < 256; i++) {
    uint32_t c = i;
    for (int k = 0; k < 8; k++) c = c & 1 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    printf("  0x%08xu,%s", c, i % 4 == 3 ? "\n" : "");
  }
  printf("};\n");
  return 0;
}
EOF

# mod00.c (main) and 39 modules, each with four functions -- a sorted linked
# list, a realloc'd string buffer, an open hash table of strdup'd keys, qsort
# and a recursive split -- all allocating with malloc/calloc/realloc/free.
cat >proj/mod00.c <<'EOF'
#include <stdio.h>
#include "proj.h"
uint64_t mix64(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}
int main(void) {
  uint64_t (*const mods[])(int) = {
EOF
for i in $(seq -w 1 39); do echo "    mod$i," >>proj/mod00.c; done
cat >>proj/mod00.c <<'EOF'
  };
  uint64_t all = 0;
  for (size_t i = 0; i < sizeof mods / sizeof mods[0]; i++) {
    uint64_t h = mods[i](200 + (int)i * 13);
    printf("mod%02zu %016llx\n", i + 1, (unsigned long long)h);
    all = mix64(all, h);
  }
  printf("all %016llx crc0x%08x\n", (unsigned long long)all, gen_table[77]);
  return 0;
}
EOF
for i in $(seq 1 39); do
  f=proj/mod$(printf %02d "$i").c
  {
    echo '#include <stdio.h>'
    echo '#include <stdlib.h>'
    echo '#include <string.h>'
    echo '#include "proj.h"'
    for kind in 0 1 2 3; do
    name=k${kind}_$i
    case $kind in
      0) # linked list of named nodes, sorted insertion
        cat <<EOF
static uint64_t $name(int n) {
  struct node *head = NULL;
  for (int i = 0; i < n; i++) {
    struct node *x = malloc(sizeof *x);
    x->key = mix64($i, (uint64_t)i) % 100000;
    x->name = malloc(24 + i % 40);
    snprintf(x->name, 24 + i % 40, "n%d-%llu", i, (unsigned long long)x->key);
    struct node **pp = &head;
    while (*pp && (*pp)->key < x->key) pp = &(*pp)->next;
    x->next = *pp;
    *pp = x;
  }
  uint64_t h = 0;
  while (head) {
    struct node *x = head;
    head = x->next;
    h = mix64(h, x->key + strlen(x->name));
    free(x->name);
    free(x);
  }
  return h;
}
EOF
        ;;
      1) # growing buffer with realloc and string formatting
        cat <<EOF
static uint64_t $name(int n) {
  size_t cap = 16, len = 0;
  char *buf = malloc(cap);
  for (int i = 0; i < n * 4; i++) {
    char tmp[64];
    int k = snprintf(tmp, sizeof tmp, "[%d:%x]", i * $i, (unsigned)(i ^ $i));
    if (len + (size_t)k + 1 > cap) { cap = cap * 3 / 2 + (size_t)k; buf = realloc(buf, cap); }
    memcpy(buf + len, tmp, (size_t)k + 1);
    len += (size_t)k;
  }
  uint64_t h = len;
  for (size_t i = 0; i < len; i++) h = h * 131 + (unsigned char)buf[i] + gen_table[(unsigned char)buf[i]];
  free(buf);
  return h;
}
EOF
        ;;
      2) # open hash table of strdup'd keys
        cat <<EOF
struct ent$i { char *k; int v; };
static uint64_t $name(int n) {
  size_t cap = 64, used = 0;
  struct ent$i *t = calloc(cap, sizeof *t);
  for (int i = 0; i < n * 2; i++) {
    char key[32];
    snprintf(key, sizeof key, "key%d", (i * $i) % (n + 7));
    if ((used + 1) * 2 > cap) {
      struct ent$i *o = t;
      size_t oc = cap;
      cap *= 2;
      t = calloc(cap, sizeof *t);
      for (size_t j = 0; j < oc; j++)
        if (o[j].k) {
          size_t h = 5381;
          for (const char *c = o[j].k; *c; c++) h = h * 33 + (unsigned char)*c;
          while (t[h & (cap - 1)].k) h++;
          t[h & (cap - 1)] = o[j];
        }
      free(o);
    }
    size_t h = 5381;
    for (const char *c = key; *c; c++) h = h * 33 + (unsigned char)*c;
    while (t[h & (cap - 1)].k && strcmp(t[h & (cap - 1)].k, key)) h++;
    if (t[h & (cap - 1)].k) t[h & (cap - 1)].v++;
    else { t[h & (cap - 1)].k = strdup(key); t[h & (cap - 1)].v = 1; used++; }
  }
  uint64_t r = used;
  for (size_t j = 0; j < cap; j++)
    if (t[j].k) { r = mix64(r, (uint64_t)t[j].v * strlen(t[j].k) + j); free(t[j].k); }
  free(t);
  return r;
}
EOF
        ;;
      3) # arrays sorted with qsort, recursive merge of halves
        cat <<EOF
static int cmp$i(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}
static uint64_t rec$i(const uint64_t *v, int n) {
  if (n < 8) { uint64_t h = 0; for (int i = 0; i < n; i++) h = mix64(h, v[i]); return h; }
  uint64_t *c = malloc(sizeof *c * (size_t)n);
  memcpy(c, v, sizeof *c * (size_t)n);
  uint64_t h = rec$i(c, n / 2) ^ rec$i(c + n / 2, n - n / 2);
  free(c);
  return h;
}
static uint64_t $name(int n) {
  uint64_t *v = malloc(sizeof *v * (size_t)n);
  for (int i = 0; i < n; i++) v[i] = mix64($i, (uint64_t)i);
  qsort(v, (size_t)n, sizeof *v, cmp$i);
  uint64_t h = rec$i(v, n);
  free(v);
  return h;
}
EOF
        ;;
    esac
    done
    # the module's entry point uses all four, in an order of its own
    echo "uint64_t mod$(printf %02d "$i")(int n) {"
    echo "  uint64_t h = $i;"
    for kind in $(printf '%s\n' 0 1 2 3 | awk -v s="$i" 'BEGIN { srand(s) } { print rand(), $0 }' | sort | awk '{ print $2 }'); do
      echo "  h = mix64(h, k${kind}_$i(n + $kind));"
    done
    echo "  return h;"
    echo "}"
  } >"$f"
done

cat >proj/Makefile <<'EOF'
CC = gcc
CFLAGS = -std=gnu11 -O2 -g -Wall
MODS = $(sort $(wildcard mod[0-3][0-9].c))
LIBOBJS = $(filter-out mod00.o,$(MODS:.c=.o)) table.o

prog: mod00.o libmods.a
	$(CC) $(CFLAGS) -o $@ mod00.o libmods.a

libmods.a: $(LIBOBJS)
	rm -f $@
	ar rcsD $@ $^

%.o: %.c proj.h
	$(CC) $(CFLAGS) -c $< -o $@

table.c: gen_table
	./gen_table >$@

gen_table: gen_table.c
	$(CC) -O2 -o $@ $<

clean:
	rm -f *.o *.a prog gen_table table.c
.PHONY: clean
EOF
echo "project: $(ls proj/*.c | wc -l) C files ($(cat proj/*.c | wc -l) lines), proj.h, Makefile"

# Both builds in the same directory (build/), one after the other, so that
# debug info and everything else that names the build directory agrees.
tag='$(test -n "${LD_PRELOAD:-}" && echo preload || echo glibc)'
run_both --name "make -j4 (40 modules, generator, ar, link) and run the program" bash -c "
  rm -rf build && cp -r proj build && cd build && make -j4 -s && ./prog &&
  mkdir -p ../out-$tag && cp *.o libmods.a prog table.c ../out-$tag/"

objs=0
differ=()
for o in out-glibc/*.o; do
  [ -f "$o" ] || continue
  objs=$((objs + 1))
  cmp -s "$o" "out-preload/$(basename "$o")" || differ+=("$(basename "$o")")
done
if [ "$objs" -lt 41 ]; then
  echo "FAIL only $objs object files from the glibc build (expected 41)"
  real_failures=$((real_failures + 1))
elif [ ${#differ[@]} = 0 ]; then
  cat out-glibc/*.o >all-glibc.o
  cat out-preload/*.o >all-preload.o 2>/dev/null
  same_file all-glibc.o all-preload.o "all $objs object files from make under glibc and the preload"
else
  for o in "${differ[@]}"; do same_file "out-glibc/$o" "out-preload/$o" "object file $o"; done
fi
same_file out-glibc/table.c out-preload/table.c "generated table.c"
same_file out-glibc/libmods.a out-preload/libmods.a "static libraries (ar)"
same_file out-glibc/prog out-preload/prog "executables"
# The two executables, both without the preload: same output.
./out-glibc/prog >run-glibc.txt 2>&1; echo "status $?" >>run-glibc.txt
./out-preload/prog >run-preload.txt 2>&1; echo "status $?" >>run-preload.txt
same_file run-glibc.txt run-preload.txt "output of the two executables ($(tail -n 2 run-glibc.txt | head -n 1))"
finish
