/* medium: random sizes 1..64 KiB with a live set of LIVE blocks; each new
 * block gets one byte written in every 4 KiB page (a program using it would
 * touch it), its stamp is checked when it is freed.
 *
 *   medium OPS LIVE */
#include "bench.h"

int main(int argc, char **argv) {
  return replace_blocks(argc, argv, 2000000, 1000, 1024, 65536, 3, 4);
}
