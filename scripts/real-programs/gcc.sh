#!/usr/bin/env bash
# gcc (cc1, as, collect2, ld: the preload reaches every process of the
# driver) under glibc and under the preload: compile a generated C file of
# 400 functions with -O2 -g to an object file and to an executable.  GCC's
# output does not depend on where its memory lies, so the object files and
# executables must be byte-identical, and the executables must print the
# same.  If g++ is installed, the same for a generated C++ file using the
# standard library (more, and more varied, allocation in cc1plus).
. "$(dirname "$0")/common.bash"

command -v gcc >/dev/null || { echo "gcc is not installed"; exit 1; }

# 400 functions mixing loops, switches, arrays, structs, strings, recursion.
awk -v N=400 'BEGIN {
  srand(7)
  print "#include <stdio.h>\n#include <string.h>\n#include <stdlib.h>\n#include <stdint.h>"
  print "struct pt { int x, y; double w; char tag[16]; };"
  print "static uint64_t mix(uint64_t h, uint64_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); return h; }"
  for (f = 0; f < N; f++) {
    a = 1 + int(rand() * 97); b = 1 + int(rand() * 89); c = 2 + int(rand() * 13); k = f % 5
    printf "static uint64_t f%d(uint64_t n) {\n", f
    printf "  uint64_t acc = %d;\n", a
    if (k == 0) {
      printf "  for (uint64_t i = 0; i < n %% 64 + 8; i++) acc = acc * %d + (i ^ %d);\n", c, b
    } else if (k == 1) {
      printf "  int v[32]; for (int i = 0; i < 32; i++) v[i] = (int)((n * %d + i * %d) %% 1000);\n", a, b
      printf "  for (int i = 0; i < 32; i++) for (int j = i + 1; j < 32; j++) if (v[j] < v[i]) { int t = v[i]; v[i] = v[j]; v[j] = t; }\n"
      printf "  for (int i = 0; i < 32; i++) acc = mix(acc, (uint64_t)v[i]);\n"
    } else if (k == 2) {
      printf "  switch (n %% %d) {\n", c
      for (s = 0; s < c; s++) printf "  case %d: acc += %d * n + %d; break;\n", s, 1 + int(rand() * 50), int(rand() * 1000)
      printf "  default: acc = 0;\n  }\n"
    } else if (k == 3) {
      printf "  struct pt p[8]; for (int i = 0; i < 8; i++) { p[i].x = (int)(n + i * %d); p[i].y = i - %d; p[i].w = p[i].x * 0.5 + p[i].y; snprintf(p[i].tag, sizeof p[i].tag, \"t%%d-%%d\", i, (int)(n %% %d)); }\n", a, b, c
      printf "  for (int i = 0; i < 8; i++) acc = mix(acc, (uint64_t)(p[i].w * 8) + strlen(p[i].tag));\n"
    } else {
      printf "  if (n < 2) return acc;\n  acc += f%d(n / 3) + (f%d(n / 2) ^ %d);\n", (f > 0 ? f - 1 : 0), (f > 1 ? f - 2 : 0), b
    }
    printf "  return acc ^ (n * %d);\n}\n", b
  }
  print "int main(void) {\n  uint64_t h = 0;"
  for (f = 0; f < N; f++) printf "  h = mix(h, f%d(%d));\n", f, 1 + int(rand() * 5000)
  print "  printf(\"checksum %016llx\\n\", (unsigned long long)h);\n  return 0;\n}"
}' >gen.c
echo "gen.c: $(wc -l <gen.c) lines"

tag='$(test -n "${LD_PRELOAD:-}" && echo preload || echo glibc)'
run_both --name "gcc -O2 -g -c gen.c" bash -c "gcc -std=gnu11 -O2 -g -Wall -c gen.c -o gen-$tag.o"
run_both --name "gcc -O2 gen.c -o gen (compile and link)" bash -c "gcc -std=gnu11 -O2 -Wall gen.c -o gen-$tag"

same_file gen-glibc.o gen-preload.o "object files from gcc under glibc and the preload"
same_file gen-glibc gen-preload "executables from gcc under glibc and the preload"
# Each executable run as it was built (glibc-built one without the preload):
# their outputs and statuses must agree.
./gen-glibc >run-glibc.txt 2>&1; echo "status $?" >>run-glibc.txt
./gen-preload >run-preload.txt 2>&1; echo "status $?" >>run-preload.txt
same_file run-glibc.txt run-preload.txt "output of the two executables ($(head -n 1 run-glibc.txt))"

if command -v g++ >/dev/null; then
  # A C++ file using std::map, std::string, std::vector, std::function and
  # templates: cc1plus allocates far more, and more kinds of, objects.
  awk -v N=60 'BEGIN {
    print "#include <map>\n#include <string>\n#include <vector>\n#include <functional>\n#include <algorithm>\n#include <numeric>\n#include <cstdio>"
    print "template <typename T, int K> struct Box { T v; T get() const { return v * K; } };"
    for (f = 0; f < N; f++) {
      printf "static long g%d(int n) {\n", f
      printf "  std::map<std::string, std::vector<int>> m;\n"
      printf "  for (int i = 0; i < n; i++) m[\"k\" + std::to_string(i %% %d)].push_back(i * %d);\n", 3 + f % 11, 1 + f
      printf "  std::vector<long> v; for (auto &kv : m) v.push_back(std::accumulate(kv.second.begin(), kv.second.end(), 0L));\n"
      printf "  std::sort(v.begin(), v.end()); std::function<long(long)> fn = [](long x) { return Box<long, %d>{x}.get(); };\n", 2 + f % 7
      printf "  long s = 0; for (long x : v) s = s * 31 + fn(x); return s;\n}\n"
    }
    print "int main() {\n  long h = 0;"
    for (f = 0; f < N; f++) printf "  h = h * 131 + g%d(%d);\n", f, 50 + f * 3
    print "  std::printf(\"checksum %ld\\n\", h);\n  return 0;\n}"
  }' >gen.cc
  run_both --name "g++ -O2 gen.cc -o genxx (compile and link)" bash -c "g++ -std=c++17 -O2 gen.cc -o genxx-$tag && ./genxx-$tag"
  same_file genxx-glibc genxx-preload "C++ executables from g++ under glibc and the preload"
else
  echo "SKIP real:gcc/g++: g++ is not installed"
fi
finish
