/* larson-sized: the larson workload (larson.h, see larson.c) in C++: blocks
 * come from ::operator new(size) and go back through the sized
 * ::operator delete(p, size), as a C++ program built with sized deallocation
 * frees them (a delete of an object whose type has a known size).  An
 * allocator with its own sized delete (tcmalloc, mimalloc, jemalloc) can use
 * the size instead of looking it up; under glibc and an allocator without
 * one, libstdc++'s sized delete just calls free.  The program reports which
 * file provides operator new and the sized delete ("provider" lines).
 * Built with g++ -O2 -fsized-deallocation -pthread; new and delete are
 * called through volatile function pointers like malloc in the C programs,
 * so that the compiler cannot remove a new/delete pair.
 *
 *   larson_sized THREADS SLOTS ROUNDS OPS_PER_THREAD_PER_ROUND */
#include <cstddef>
#include <new>

#include "bench.h"

static void *(*volatile new_v)(std::size_t) = ::operator new;
static void (*volatile delete_v)(void *, std::size_t) noexcept = ::operator delete;

static inline unsigned char *block_new(size_t n) {
  return static_cast<unsigned char *>(new_v(n));
}

static inline void block_delete(unsigned char *p, size_t n) {
  delete_v(p, n);
}

#include "larson.h"

int main(int argc, char **argv) {
  report_provider("operator_new", reinterpret_cast<void *>(new_v));
  report_provider("sized_delete", reinterpret_cast<void *>(delete_v));
  return larson_main(argc, argv);
}
