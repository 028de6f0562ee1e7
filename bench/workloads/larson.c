/* larson: the Larson & Krishnan server workload.  A shared array of slots
 * holds live blocks (24..1000 bytes); worker threads repeatedly pick a random
 * slot, allocate a new block, swap it in (atomically) and free the block that
 * was there, which another thread, or the main thread, had allocated: most
 * frees cross threads.  As in larson, the workers are replaced: the work is
 * done in ROUNDS, each by fresh threads (the old ones exit), so arenas and
 * thread caches are left behind and taken over.  The body is in larson.h,
 * shared with larson_sized.cc (the same with C++'s new and sized delete).
 *
 *   larson THREADS SLOTS ROUNDS OPS_PER_THREAD_PER_ROUND */
#include "bench.h"

static inline unsigned char *block_new(size_t n) {
  return (unsigned char *)xmalloc(n);
}

static inline void block_delete(unsigned char *p, size_t n) {
  (void)n;
  free(p);
}

#include "larson.h"

int main(int argc, char **argv) {
  return larson_main(argc, argv);
}
