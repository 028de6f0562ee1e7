#!/usr/bin/env bash
# sort(1) under glibc and under the preload: 300k generated lines (fixed seed)
# sorted plainly, numerically, uniquely, by keys, with a small buffer that
# forces temporary files and a merge, and with threads; outputs must be
# byte-identical.  LC_ALL=C (set in common.bash).
. "$(dirname "$0")/common.bash"

# 300,000 lines: "<number> <word> <word> <number>", many duplicates.
awk 'BEGIN {
  srand(42)
  split("alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega", w, " ")
  for (i = 0; i < 300000; i++) {
    n = int(rand() * 1000000) - 200000
    printf "%d %s%d %s %.3f\n", n, w[1 + int(rand() * 24)], int(rand() * 500), w[1 + int(rand() * 24)], rand() * 1000
  }
}' >lines.txt
# the same lines with the number moved to the end (sort -n of mixed text)
awk '{ print $2 " " $3 " " $1 }' lines.txt >words.txt
echo "input: $(wc -l <lines.txt) lines, $(wc -c <lines.txt) bytes"
mkdir -p tmp

run_both --name "sort" sort lines.txt
run_both --name "sort -n" sort -n lines.txt
run_both --name "sort -u" sort -u words.txt
run_both --name "sort -n -u (by number only)" sort -n -u lines.txt
run_both --name "sort -k2,2 -k1,1nr (keys)" sort -t ' ' -k2,2 -k1,1nr lines.txt
run_both --name "sort -g -k4 (floats)" sort -g -k4,4 -k1,1n lines.txt
run_both --name "sort -S 512K --parallel=2 (temp files, merge)" sort -S 512K --parallel=2 -T tmp -k3,3 -k1,1n lines.txt
run_both --name "sort -R --random-source (shuffle)" sort -R --random-source=lines.txt words.txt
run_both --name "sort | uniq -c | sort -rn" bash -c 'sort words.txt | cut -d" " -f1 | uniq -c | sort -rn -k1,1 -k2,2'
finish
