// cxx_containers: C++17 programs run on the replacement malloc.  new/delete
// of objects and arrays (constructor/destructor counts checked), explicit
// sized delete (::operator delete(p, size), ::operator delete[](p, size)),
// over-aligned types (alignas(64), alignas(4096)) through new/delete and
// new[]/delete[], ::operator new(size, std::align_val_t) with aligned and
// sized+aligned delete, nothrow new, new of an impossible size throwing
// std::bad_alloc, and std::vector / std::string / std::map /
// std::unordered_map / std::shared_ptr workloads with content checks, in the
// main thread and in 4 threads at once.
// Guards against: libstdc++'s operator new/delete (which call malloc, free
// and aligned_alloc) not round-tripping through the replacement, aligned
// allocation returning misaligned memory or memory free cannot take back,
// malloc returning garbage instead of NULL on impossible sizes, and
// container reallocation (realloc-like growth through new/delete) corrupting
// data.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <new>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#define TEST_NAME "cxx_containers"
#include "testlib.h"

// Obj objects alive: in total, and created by this thread (each thread
// destroys the objects it creates, so the per-thread count must return to 0)
static std::atomic<long> live_objects{0};
static thread_local long live_here = 0;

struct Obj {
  std::uint64_t a[5];
  Obj() {
    for (int i = 0; i < 5; i++) a[i] = 0x1111111111111111ull * (i + 1);
    live_objects++;
    live_here++;
  }
  ~Obj() {
    for (int i = 0; i < 5; i++)
      if (a[i] != 0x1111111111111111ull * (i + 1)) FAIL("Obj field %d corrupted before delete", i);
    live_objects--;
    live_here--;
  }
};

struct alignas(64) A64 {
  unsigned char b[100];
  A64() { std::memset(b, 0x64, sizeof b); }
};
struct alignas(4096) A4096 {
  unsigned char b[5000];
  A4096() { std::memset(b, 0x40, sizeof b); }
};

// The address is laundered through an empty asm: the compiler assumes that
// new of an alignas(64) type returns 64-aligned memory and would otherwise
// fold the check away.
template <class T> static void check_aligned(const T *p, std::size_t al, const char *what) {
  std::uintptr_t v = reinterpret_cast<std::uintptr_t>(p);
  __asm__("" : "+r"(v));
  if (v % al) FAIL("%s = %p not %zu-aligned", what, (const void *)p, al);
}

static void new_delete() {
  // single objects and arrays
  for (int round = 0; round < 100; round++) {
    Obj *o = new Obj;
    Obj *arr = new Obj[1 + round * 3];
    check_aligned(o, 16, "new Obj");
    // new[] of a type with a destructor stores an 8-byte element count in
    // front of the array: only alignof(Obj) is promised for the result
    check_aligned(arr, alignof(Obj), "new Obj[]");
    delete o;
    delete[] arr;
  }
  if (live_here != 0)
    FAIL("%ld Obj still alive after delete (constructor/destructor mismatch)", live_here);

  int *pi = new int(42);
  if (*pi != 42) FAIL("new int(42) reads %d", *pi);
  delete pi;
  char *pc = new char[0];
  delete[] pc;

  // explicit sized delete
  static const std::size_t sz[] = {1, 8, 24, 100, 1000, 5000, 70000, 200000, 3 << 20};
  for (std::size_t n : sz) {
    void *p = ::operator new(n);
    std::memset(p, 0x21, n);
    if (malloc_usable_size(p) < n) FAIL("operator new(%zu): usable %zu", n, malloc_usable_size(p));
    ::operator delete(p, n);
    void *q = ::operator new[](n);
    std::memset(q, 0x22, n);
    ::operator delete[](q, n);
  }

  // over-aligned types
  for (int round = 0; round < 20; round++) {
    A64 *a = new A64;
    check_aligned(a, 64, "new A64");
    A64 *aa = new A64[3 + round];
    check_aligned(aa, 64, "new A64[]");
    A4096 *b = new A4096;
    check_aligned(b, 4096, "new A4096");
    A4096 *bb = new A4096[1 + round % 4];
    check_aligned(bb, 4096, "new A4096[]");
    for (unsigned char c : a->b)
      if (c != 0x64) FAIL("A64 contents corrupted");
    for (unsigned char c : b->b)
      if (c != 0x40) FAIL("A4096 contents corrupted");
    delete a;
    delete[] aa;
    delete b;
    delete[] bb;
  }

  // operator new with std::align_val_t, aligned and sized+aligned delete
  for (std::size_t al = 16; al <= (1u << 16); al <<= 1) {
    for (std::size_t n : {std::size_t(1), std::size_t(100), std::size_t(4096), std::size_t(200000)}) {
      void *p = ::operator new(n, std::align_val_t(al));
      check_aligned(static_cast<char *>(p), al, "operator new(n, align_val_t)");
      std::memset(p, 0x5a, n);
      if (malloc_usable_size(p) < n)
        FAIL("operator new(%zu, align %zu): usable %zu", n, al, malloc_usable_size(p));
      if (n % 2) ::operator delete(p, std::align_val_t(al));
      else ::operator delete(p, n, std::align_val_t(al));
      void *q = ::operator new[](n, std::align_val_t(al));
      check_aligned(static_cast<char *>(q), al, "operator new[](n, align_val_t)");
      std::memset(q, 0x5b, n);
      ::operator delete[](q, n, std::align_val_t(al));
    }
  }

  // nothrow new and impossible sizes
  void *nt = ::operator new(100, std::nothrow);
  if (!nt) FAIL("operator new(100, nothrow) returned nullptr");
  ::operator delete(nt);
  void *huge = ::operator new(opq(SIZE_MAX / 2), std::nothrow);
  if (huge) {
    FAIL("operator new(SIZE_MAX/2, nothrow) returned %p, expected nullptr", huge);
    ::operator delete(huge);
  }
  bool threw = false;
  try {
    void *h = ::operator new(opq(SIZE_MAX - 4096));
    FAIL("operator new(SIZE_MAX-4096) returned %p, expected std::bad_alloc", h);
    ::operator delete(h);
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  if (!threw) FAIL("operator new(SIZE_MAX-4096) did not throw std::bad_alloc");
  threw = false;
  try {
    void *h = ::operator new(opq(SIZE_MAX / 4), std::align_val_t(4096));
    FAIL("aligned operator new(SIZE_MAX/4, 4096) returned %p, expected std::bad_alloc", h);
    ::operator delete(h, std::align_val_t(4096));
  } catch (const std::bad_alloc &) {
    threw = true;
  }
  if (!threw) FAIL("aligned operator new(SIZE_MAX/4) did not throw std::bad_alloc");
}

static std::string make_str(unsigned i) {
  std::string s = "key-" + std::to_string(i) + "-";
  s.append(i % 97, static_cast<char>('a' + i % 26)); // lengths 0..96: SSO and heap
  return s;
}

static void containers(unsigned seed, const char *who) {
  // vector<int> growth and shrink
  std::vector<int> v;
  for (int i = 0; i < 300000; i++) v.push_back(i * 3 + static_cast<int>(seed));
  for (int i = 0; i < 300000; i++)
    if (v[i] != i * 3 + static_cast<int>(seed)) {
      FAIL("%s: vector<int>[%d] = %d, expected %d", who, i, v[i], i * 3 + static_cast<int>(seed));
      break;
    }
  v.resize(1000);
  v.shrink_to_fit();
  for (int i = 0; i < 1000; i++)
    if (v[i] != i * 3 + static_cast<int>(seed)) {
      FAIL("%s: vector<int> after shrink_to_fit [%d] = %d", who, i, v[i]);
      break;
    }

  // vector<string>
  std::vector<std::string> vs;
  for (unsigned i = 0; i < 20000; i++) vs.push_back(make_str(i + seed));
  for (unsigned i = 0; i < 20000; i++)
    if (vs[i] != make_str(i + seed)) {
      FAIL("%s: vector<string>[%u] = \"%.40s\"", who, i, vs[i].c_str());
      break;
    }

  // string concatenation (repeated reallocation)
  std::string big;
  for (unsigned i = 0; i < 50000; i++) big += static_cast<char>('A' + (i * 7 + seed) % 26);
  for (unsigned i = 0; i < 50000; i++)
    if (big[i] != static_cast<char>('A' + (i * 7 + seed) % 26)) {
      FAIL("%s: concatenated string byte %u wrong", who, i);
      break;
    }

  // map<int, string>
  std::map<int, std::string> m;
  for (unsigned i = 0; i < 20000; i++) m[static_cast<int>((i * 7919u + seed) % 100003)] = make_str(i);
  for (unsigned i = 0; i < 20000; i += 2) m.erase(static_cast<int>((i * 7919u + seed) % 100003));
  for (unsigned i = 1; i < 20000; i += 2) {
    auto it = m.find(static_cast<int>((i * 7919u + seed) % 100003));
    if (it == m.end() || it->second != make_str(i)) {
      FAIL("%s: map lost key for i=%u", who, i);
      break;
    }
  }
  if (m.size() != 10000) FAIL("%s: map size %zu, expected 10000", who, m.size());

  // unordered_map<string, int> (rehashing)
  std::unordered_map<std::string, int> um;
  for (unsigned i = 0; i < 30000; i++) um[make_str(i + seed)] = static_cast<int>(i);
  for (unsigned i = 0; i < 30000; i++) {
    auto it = um.find(make_str(i + seed));
    if (it == um.end() || it->second != static_cast<int>(i)) {
      FAIL("%s: unordered_map lost %u", who, i);
      break;
    }
  }
  um.clear();
  um.rehash(0);

  // shared_ptr / weak_ptr / make_shared, objects shared by several owners
  {
    std::vector<std::shared_ptr<Obj>> owners;
    std::vector<std::weak_ptr<Obj>> watchers;
    for (int i = 0; i < 5000; i++) {
      auto sp = (i % 2) ? std::make_shared<Obj>() : std::shared_ptr<Obj>(new Obj);
      owners.push_back(sp);
      owners.push_back(sp);
      watchers.push_back(sp);
    }
    for (std::size_t i = 0; i < owners.size(); i += 2) owners[i].reset();
    for (std::size_t i = 0; i < watchers.size(); i++)
      if (watchers[i].expired()) FAIL("%s: weak_ptr %zu expired while an owner is left", who, i);
    owners.clear();
    for (std::size_t i = 0; i < watchers.size(); i++)
      if (!watchers[i].expired()) {
        FAIL("%s: weak_ptr %zu alive after all owners are gone", who, i);
        break;
      }
    auto arr = std::shared_ptr<A64[]>(new A64[10]);
    check_aligned(arr.get(), 64, "shared_ptr<A64[]>");
    auto up = std::make_unique<A4096>();
    check_aligned(up.get(), 4096, "make_unique<A4096>");
  }
}

int main() {
  new_delete();
  containers(1, "main thread");

  std::vector<std::thread> ts;
  for (unsigned t = 0; t < 4; t++)
    ts.emplace_back([t] {
      char who[32];
      std::snprintf(who, sizeof who, "thread %u", t);
      containers(100 + t, who);
      new_delete();
    });
  for (auto &t : ts) t.join();
  if (live_objects != 0) FAIL("%ld Obj objects never destroyed", live_objects.load());

  test_expect_reuse();
  return test_finish();
}
