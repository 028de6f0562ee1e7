// cxx_thread_local: allocation during thread exit.  Each thread fills
// thread_local objects -- a std::string (longer than the small-string
// buffer), a std::vector<int>, and a Tracker (constructed last, so destroyed
// first) whose destructor checks the string and the vector (still alive),
// mallocs, writes, checks and frees a scratch block, builds a std::string and
// checks it, and hands out a malloc'd block, a new std::string and a new
// std::vector copy to a global std::vector (under a mutex) for the main
// thread -- and sets two pthread keys: key 1's destructor checks its block,
// mallocs/frees scratch memory, hands out one more block and frees its
// value; key 2's destructor frees its value and re-sets the key once with a
// new block, so glibc calls it a second time (second round), where it checks
// and frees that block.  C++ thread_local destructors must have run before
// the key destructors (checked via a trivially destructible thread_local
// flag).  200 threads in sequence, then 5 rounds of 8 threads exiting at
// about the same time (they wait for each other before exiting).  The main
// thread then checks every handed-out object (contents intact after its
// thread exited) and frees it, and checks every destructor ran the expected
// number of times.
// Guards against: an allocator whose per-thread state (tcache, arena
// attachment) is torn down before, or re-created by, the destructors that
// run at thread exit; blocks handed out of an exiting thread being freed or
// reused when its tcache/arena is released; crashes in malloc/free called
// from pthread key destructors (several rounds).
#include <pthread.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#define TEST_NAME "cxx_thread_local"
#define TEST_MAX_FAILURES 10
#include "testlib.h"

// Through volatile function pointers, so that GCC cannot fold or remove the
// malloc/free pairs.
static void *(*volatile malloc_v)(size_t) = std::malloc;
static void (*volatile free_v)(void *) = std::free;

static const int SEQUENTIAL = 200;
static const int CONCURRENT = 8;
static const int CONCURRENT_ROUNDS = 5;

enum Kind { BLOCK_FROM_TRACKER, STRING_FROM_TRACKER, STR_COPY, VEC_COPY, BLOCK_FROM_KEY1, KINDS };

struct Handed {
  int tid;
  Kind kind;
  void *p;  // a malloc'd block, a std::string* or a std::vector<int>*
  size_t n;
};

static std::mutex handed_mu;
static std::vector<Handed> handed;

static std::atomic<int> tracker_dtors{0}, key1_dtors{0}, key2_round1{0}, key2_round2{0};
static std::atomic<int> threads_done{0};

static void hand_out(int tid, Kind kind, void *p, size_t n) {
  std::lock_guard<std::mutex> g(handed_mu);
  handed.push_back(Handed{tid, kind, p, n});
}

static uint64_t seed_of(int tid, int what) {
  return (uint64_t)(tid + 1) * 0x9E3779B97F4A7C15ull ^ (uint64_t)what << 56;
}

// The expected contents, recomputed from the thread number.
static std::string str_of(int tid, char tag) {
  std::string s = "thread " + std::to_string(tid) + " " + tag + ":";
  for (int i = 0; s.size() < (size_t)(60 + tid % 90); i++) s += std::to_string(i * 7 + tid) + ",";
  return s;
}
static std::vector<int> vec_of(int tid) {
  std::vector<int> v;
  for (int i = 0; i < 300 + tid % 200; i++) v.push_back(tid * 1000 + i * 3);
  return v;
}
static size_t block_size(int tid, int what) { return 24 + (size_t)(tid * 37 + what * 101) % 3000; }

static unsigned char *filled_block(int tid, int what) {
  size_t n = block_size(tid, what);
  unsigned char *p = (unsigned char *)malloc_v(n);
  if (!p) {
    FAIL("thread %d: malloc(%zu) returned NULL", tid, n);
    return nullptr;
  }
  pat_fill(p, seed_of(tid, what), 0, n);
  return p;
}
static bool check_block(const void *p, int tid, int what, const char *where) {
  size_t n = block_size(tid, what);
  size_t j = pat_check((const unsigned char *)p, seed_of(tid, what), n);
  if (j == ALL_GOOD) return true;
  FAIL("%s (thread %d): block %p (%zu bytes): byte %zu is 0x%02x, expected 0x%02x", where, tid, p,
       n, j, ((const unsigned char *)p)[j], pat_byte(seed_of(tid, what), j));
  return false;
}

// scratch malloc/write/check/free, from a destructor
static void scratch(int tid, int what, const char *where) {
  unsigned char *p = filled_block(tid, what);
  if (!p) return;
  check_block(p, tid, what, where);
  keep_stores(p);
  free_v(p);
}

thread_local std::string tl_str;
thread_local std::vector<int> tl_vec;
thread_local bool tl_tracker_destroyed;  // trivially destructible: readable in key destructors

class Tracker {
 public:
  int tid = -1;
  std::string name;
  std::vector<uint64_t> data;
  void init(int t) {
    tid = t;
    name = str_of(t, 'n');
    for (int i = 0; i < 100 + t % 50; i++) data.push_back(seed_of(t, i));
  }
  ~Tracker() {
    if (tid < 0) return;
    // its own members
    if (name != str_of(tid, 'n')) FAIL("~Tracker (thread %d): member string changed", tid);
    for (size_t i = 0; i < data.size(); i++)
      if (data[i] != seed_of(tid, (int)i)) {
        FAIL("~Tracker (thread %d): member vector element %zu changed", tid, i);
        break;
      }
    // thread_locals constructed before this one are still alive
    if (tl_str != str_of(tid, 's'))
      FAIL("~Tracker (thread %d): thread_local std::string changed: \"%.40s...\"", tid,
           tl_str.c_str());
    if (tl_vec != vec_of(tid))
      FAIL("~Tracker (thread %d): thread_local std::vector<int> changed (size %zu)", tid,
           tl_vec.size());
    // malloc, write, check, free
    scratch(tid, 10, "~Tracker scratch block");
    // a std::string built here
    std::string s = str_of(tid, 'd');
    s += s;
    if (s.size() != 2 * str_of(tid, 'd').size() || s.compare(0, s.size() / 2, str_of(tid, 'd')))
      FAIL("~Tracker (thread %d): std::string built in the destructor is wrong", tid);
    // hand-outs
    unsigned char *b = filled_block(tid, 11);
    if (b) hand_out(tid, BLOCK_FROM_TRACKER, b, block_size(tid, 11));
    hand_out(tid, STRING_FROM_TRACKER, new std::string(str_of(tid, 'h')), 0);
    hand_out(tid, STR_COPY, new std::string(tl_str), 0);
    hand_out(tid, VEC_COPY, new std::vector<int>(tl_vec), 0);
    tl_tracker_destroyed = true;
    tracker_dtors++;
  }
};
thread_local Tracker tl_tracker;

static pthread_key_t key1, key2;

struct Key2Value {
  int tid;
  int round;
  unsigned char *block;
};

static void key1_dtor(void *v) {
  int tid = *(int *)v;
  if (!tl_tracker_destroyed)
    FAIL("key 1 destructor (thread %d): the thread_local destructors have not run yet", tid);
  check_block((unsigned char *)v + 16, tid, 20, "key 1 destructor, its value");
  scratch(tid, 21, "key 1 destructor scratch block");
  unsigned char *b = filled_block(tid, 22);
  if (b) hand_out(tid, BLOCK_FROM_KEY1, b, block_size(tid, 22));
  free_v(v);
  key1_dtors++;
}

static Key2Value *key2_value(int tid, int round) {
  Key2Value *k = (Key2Value *)malloc_v(sizeof *k);
  if (!k) {
    FAIL("thread %d: malloc for the key 2 value returned NULL", tid);
    return nullptr;
  }
  k->tid = tid;
  k->round = round;
  k->block = filled_block(tid, 30 + round);
  return k;
}

static void key2_dtor(void *v) {
  Key2Value *k = (Key2Value *)v;
  int tid = k->tid, round = k->round;
  if (k->block) {
    check_block(k->block, tid, 30 + round, "key 2 destructor, its value's block");
    free_v(k->block);
  }
  free_v(k);
  if (round == 1) {
    key2_round1++;
    scratch(tid, 33, "key 2 destructor scratch block");
    Key2Value *again = key2_value(tid, 2);  // a second round of destructors
    if (again && pthread_setspecific(key2, again))
      FAIL("key 2 destructor (thread %d): pthread_setspecific failed", tid);
  } else if (round == 2) {
    key2_round2++;
  } else {
    FAIL("key 2 destructor (thread %d): round %d", tid, round);
  }
}

static pthread_barrier_t exit_barrier;

static void thread_body(int tid, bool wait_for_others) {
  // order of construction: tl_str, tl_vec, then tl_tracker (destroyed first)
  tl_str = str_of(tid, 's');
  tl_vec = vec_of(tid);
  tl_tracker.init(tid);
  // some churn while alive
  std::vector<std::string> tmp;
  for (int i = 0; i < 200; i++) tmp.push_back(str_of(tid + i, 't'));
  for (int i = 0; i < 200; i++)
    if (tmp[i] != str_of(tid + i, 't')) FAIL("thread %d: temporary string %d changed", tid, i);
  // pthread keys
  unsigned char *v1 = (unsigned char *)malloc_v(16 + block_size(tid, 20));
  if (!v1) {
    FAIL("thread %d: malloc for the key 1 value returned NULL", tid);
  } else {
    *(int *)v1 = tid;
    pat_fill(v1 + 16, seed_of(tid, 20), 0, block_size(tid, 20));
    if (pthread_setspecific(key1, v1)) FAIL("thread %d: pthread_setspecific(key 1) failed", tid);
  }
  Key2Value *v2 = key2_value(tid, 1);
  if (v2 && pthread_setspecific(key2, v2)) FAIL("thread %d: pthread_setspecific(key 2) failed", tid);
  threads_done++;
  if (wait_for_others) pthread_barrier_wait(&exit_barrier);
}

static const char *kind_name(Kind k) {
  switch (k) {
    case BLOCK_FROM_TRACKER: return "block from ~Tracker";
    case STRING_FROM_TRACKER: return "std::string from ~Tracker";
    case STR_COPY: return "copy of the thread_local std::string";
    case VEC_COPY: return "copy of the thread_local std::vector";
    case BLOCK_FROM_KEY1: return "block from the key 1 destructor";
    default: return "?";
  }
}

int main() {
  if (pthread_key_create(&key1, key1_dtor) || pthread_key_create(&key2, key2_dtor)) {
    fprintf(stderr, TEST_NAME ": pthread_key_create failed\n");
    return 1;
  }
  pthread_barrier_init(&exit_barrier, nullptr, CONCURRENT);
  int tid = 0;
  for (int i = 0; i < SEQUENTIAL; i++, tid++) {
    std::thread t(thread_body, tid, false);
    t.join();
  }
  for (int r = 0; r < CONCURRENT_ROUNDS; r++) {
    std::vector<std::thread> ts;
    for (int i = 0; i < CONCURRENT; i++, tid++) ts.emplace_back(thread_body, tid, true);
    for (auto &t : ts) t.join();
  }
  const int threads = tid;

  // everything handed out of exiting threads must be intact
  size_t count[KINDS] = {0};
  std::vector<int> seen((size_t)threads * KINDS, 0);
  for (const Handed &h : handed) {
    if (h.tid < 0 || h.tid >= threads || h.kind < 0 || h.kind >= KINDS) {
      FAIL("a handed-out record is corrupt (thread %d, kind %d)", h.tid, (int)h.kind);
      continue;
    }
    count[h.kind]++;
    seen[(size_t)h.tid * KINDS + h.kind]++;
    switch (h.kind) {
      case BLOCK_FROM_TRACKER:
      case BLOCK_FROM_KEY1: {
        int what = h.kind == BLOCK_FROM_TRACKER ? 11 : 22;
        if (h.n != block_size(h.tid, what))
          FAIL("%s of thread %d: recorded size %zu, expected %zu", kind_name(h.kind), h.tid, h.n,
               block_size(h.tid, what));
        else
          check_block(h.p, h.tid, what, kind_name(h.kind));
        free_v(h.p);
        break;
      }
      case STRING_FROM_TRACKER:
      case STR_COPY: {
        std::string *s = (std::string *)h.p;
        std::string want = str_of(h.tid, h.kind == STR_COPY ? 's' : 'h');
        if (*s != want)
          FAIL("%s of thread %d is \"%.40s...\" (%zu chars), expected \"%.40s...\" (%zu chars)",
               kind_name(h.kind), h.tid, s->c_str(), s->size(), want.c_str(), want.size());
        delete s;
        break;
      }
      case VEC_COPY: {
        std::vector<int> *v = (std::vector<int> *)h.p;
        if (*v != vec_of(h.tid))
          FAIL("%s of thread %d has changed (size %zu, expected %zu)", kind_name(h.kind), h.tid,
               v->size(), vec_of(h.tid).size());
        delete v;
        break;
      }
      default:
        break;
    }
  }
  for (int t = 0; t < threads; t++)
    for (int k = 0; k < KINDS; k++)
      if (seen[(size_t)t * KINDS + k] != 1)
        FAIL("thread %d handed out %d %s(s), expected 1", t, seen[(size_t)t * KINDS + k],
             kind_name((Kind)k));
  handed.clear();
  handed.shrink_to_fit();

  printf(TEST_NAME ": %d threads (%d in sequence, %d rounds of %d at once); destructors run: "
         "~Tracker %d, key 1 %d, key 2 round 1 %d, round 2 %d; %zu objects handed out and freed by "
         "main\n",
         threads, SEQUENTIAL, CONCURRENT_ROUNDS, CONCURRENT, tracker_dtors.load(), key1_dtors.load(),
         key2_round1.load(), key2_round2.load(),
         count[0] + count[1] + count[2] + count[3] + count[4]);
  if (threads_done != threads) FAIL("%d thread bodies finished, expected %d", threads_done.load(), threads);
  if (tracker_dtors != threads)
    FAIL("~Tracker ran %d times, expected %d (once per thread)", tracker_dtors.load(), threads);
  if (key1_dtors != threads)
    FAIL("key 1 destructor ran %d times, expected %d", key1_dtors.load(), threads);
  if (key2_round1 != threads || key2_round2 != threads)
    FAIL("key 2 destructor ran %d times in round 1 and %d in round 2, expected %d each",
         key2_round1.load(), key2_round2.load(), threads);
  test_expect_reuse();
  return test_finish();
}
