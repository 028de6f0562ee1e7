/* large: random sizes 128 KiB..4 MiB with a live set of LIVE blocks: the
 * mmap threshold, mmap/munmap (or mremap) versus reuse, and page faults.
 * Each new block gets one byte written in every 4 KiB page.
 *
 *   large OPS LIVE */
#include "bench.h"

int main(int argc, char **argv) {
  return replace_blocks(argc, argv, 20000, 24, 128 << 10, 4 << 20, 5, 6);
}
