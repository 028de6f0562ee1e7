/* huge: random sizes 33..48 MiB with a live set of LIVE blocks: above the
 * largest dynamic mmap threshold (32 MiB), so every block is a mapping of
 * its own under glibc's policy; what a freed mapping is worth to the next
 * block (a new mapping faults its pages in again).
 * Each new block gets one byte written in every 4 KiB page.
 *
 *   huge OPS LIVE */
#include "bench.h"

int main(int argc, char **argv) {
  return replace_blocks(argc, argv, 300, 2, (size_t)33 << 20, (size_t)48 << 20, 9, 10);
}
