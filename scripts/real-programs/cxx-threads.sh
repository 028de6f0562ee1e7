#!/usr/bin/env bash
# A threaded C++ program (g++ -O2 -pthread, built here without the preload)
# run under glibc and under the preload.  Everything it allocates comes from
# operator new/delete (libstdc++'s, on malloc/free; over-aligned types through
# aligned_alloc), much of it freed by another thread than the one that made it:
#   1. 4 producer threads build batches -- vectors of std::string grown by
#      appending, a std::map<string, vector<int>> index, now and then a 256 KB
#      to 2 MB buffer, a shared_ptr<string> shared between batches -- and pass
#      them, as unique_ptrs, through a bounded mutex/condition-variable queue
#      to 3 consumer threads, which sort, count (unordered_map), format
#      (ostringstream), fill arrays of 64-byte-aligned cells, free the batch
#      and send a leftover object on to the main thread, which frees it;
#   2. thread churn: 40 rounds of 8 short-lived threads, each building a
#      std::list and a std::map and handing a vector of strings back to the
#      main thread through a std::promise, freed after the thread is gone;
#   3. std::async: 8 tasks sort chunks of 200k numbers, merged by the caller.
# Which thread gets which batch varies from run to run; what is printed does
# not: per-batch checksums are collected by (producer, sequence) and printed in
# order, with counts and totals, and must be identical under both.
. "$(dirname "$0")/common.bash"

command -v g++ >/dev/null || { echo "g++ is not installed"; exit 1; }

cat >threads.cc <<'EOF'
#include <algorithm>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <future>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

static uint64_t mix(uint64_t h, uint64_t v) {
  h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2);
  return h * 0xff51afd7ed558ccdULL;
}
static uint64_t hash_str(uint64_t h, const std::string &s) {
  uint64_t x = 1469598103934665603ULL;
  for (unsigned char c : s) x = (x ^ c) * 1099511628211ULL;
  return mix(h, x);
}
struct Rng {
  uint64_t s;
  uint64_t next() { s ^= s << 13; s ^= s >> 7; s ^= s << 17; return s; }
};
static std::string word(Rng &r) {
  std::string w;
  size_t n = 1 + r.next() % 40;
  for (size_t i = 0; i < n; i++) w += char('a' + r.next() % 26);   // grows by appending
  return w;
}

template <class T> class Queue {        // bounded, blocking, closable
  std::mutex m;
  std::condition_variable not_full, not_empty;
  std::deque<T> q;
  size_t cap;
  bool closed = false;
public:
  explicit Queue(size_t c) : cap(c) {}
  void push(T v) {
    std::unique_lock<std::mutex> l(m);
    not_full.wait(l, [&] { return q.size() < cap; });
    q.push_back(std::move(v));
    not_empty.notify_one();
  }
  std::optional<T> pop() {
    std::unique_lock<std::mutex> l(m);
    not_empty.wait(l, [&] { return !q.empty() || closed; });
    if (q.empty()) return std::nullopt;
    T v = std::move(q.front());
    q.pop_front();
    not_full.notify_one();
    return v;
  }
  void close() { std::lock_guard<std::mutex> l(m); closed = true; not_empty.notify_all(); }
};

struct Batch {
  int producer, seq;
  std::vector<std::string> words;
  std::map<std::string, std::vector<int>> index;
  std::unique_ptr<std::vector<char>> blob;
  std::shared_ptr<const std::string> shared;
};
struct alignas(64) Cell { uint64_t v[8]; };
struct Leftover { int producer, seq; std::vector<std::string> top; std::string text; };

constexpr int PRODUCERS = 4, CONSUMERS = 3, BATCHES = 300;

int main() {
  // 1. producers -> consumers -> main
  Queue<std::unique_ptr<Batch>> work(16);
  Queue<std::unique_ptr<Leftover>> leftovers(64);
  std::mutex rm;
  std::map<std::pair<int, int>, uint64_t> results;

  std::vector<std::thread> producers, consumers;
  for (int p = 0; p < PRODUCERS; p++)
    producers.emplace_back([&, p] {
      Rng r{0x1234567ULL * (p + 1)};
      std::shared_ptr<const std::string> shared;
      for (int s = 0; s < BATCHES; s++) {
        auto b = std::make_unique<Batch>();
        b->producer = p;
        b->seq = s;
        size_t n = 200 + r.next() % 800;
        for (size_t i = 0; i < n; i++) {
          b->words.push_back(word(r));
          b->index[b->words.back().substr(0, 3)].push_back((int)i);
        }
        if (s % 16 == 0) {
          size_t len = (256 << 10) + r.next() % (2 << 20);
          b->blob = std::make_unique<std::vector<char>>(len, char('A' + s % 26));
          (*b->blob)[r.next() % len] = 'z';
        }
        if (s % 8 == 0) shared = std::make_shared<const std::string>(std::string(1000 + s, char('a' + p)));
        b->shared = shared;
        work.push(std::move(b));
      }
    });
  for (int c = 0; c < CONSUMERS; c++)
    consumers.emplace_back([&] {
      while (auto ob = work.pop()) {
        std::unique_ptr<Batch> b = std::move(*ob);
        std::vector<std::string> sorted(b->words);
        std::sort(sorted.begin(), sorted.end());
        std::unordered_map<std::string, int> counts;
        for (auto &w : b->words) counts[w]++;
        uint64_t h = mix(b->producer, b->seq);
        for (auto &w : sorted) h = hash_str(h, w);
        h = mix(h, counts.size());
        for (auto &kv : b->index) h = mix(hash_str(h, kv.first), kv.second.size() * 131 + kv.second.back());
        if (b->blob) {
          uint64_t s = 0;
          for (size_t i = 0; i < b->blob->size(); i += 4096) s += (unsigned char)(*b->blob)[i];
          size_t z = std::find(b->blob->begin(), b->blob->end(), 'z') - b->blob->begin();
          h = mix(mix(h, s + b->blob->size()), z);
        }
        h = mix(h, b->shared->size());
        std::unique_ptr<Cell[]> cells(new Cell[b->words.size()]);
        for (size_t i = 0; i < b->words.size(); i++)
          for (int k = 0; k < 8; k++) cells[i].v[k] = b->words[i].size() * (k + 1) + i;
        uint64_t cs = 0;
        for (size_t i = 0; i < b->words.size(); i++) cs += cells[i].v[i % 8];
        h = mix(h, cs);
        std::ostringstream os;
        for (size_t i = 0; i < sorted.size() && i < 50; i++) os << sorted[i] << ':' << counts[sorted[i]] << ' ';
        auto lo = std::make_unique<Leftover>();
        lo->producer = b->producer;
        lo->seq = b->seq;
        lo->top.assign(sorted.begin(), sorted.begin() + std::min<size_t>(sorted.size(), 20));
        lo->text = os.str();
        {
          std::lock_guard<std::mutex> l(rm);
          results[{b->producer, b->seq}] = h;
        }
        b.reset();                        // freed here, made by a producer
        leftovers.push(std::move(lo));    // freed by the main thread
      }
    });
  size_t nleft = 0, leftbytes = 0;
  uint64_t lefthash = 0;
  std::thread closer([&] {                // closes the queues when their writers are done
    for (auto &t : producers) t.join();
    work.close();
    for (auto &t : consumers) t.join();
    leftovers.close();
  });
  while (auto ol = leftovers.pop()) {     // the main thread frees the leftovers
    auto &l = *ol;
    nleft++;
    leftbytes += l->text.size();
    lefthash += mix(hash_str(l->producer * 1000 + l->seq, l->text), l->top.size());   // order-free sum
  }
  closer.join();

  uint64_t all = 0;
  for (int p = 0; p < PRODUCERS; p++) {
    uint64_t h = 0;
    int n = 0;
    for (auto &kv : results)
      if (kv.first.first == p) { h = mix(h, kv.second); n++; }
    std::printf("producer %d: %d batches, checksum %016llx\n", p, n, (unsigned long long)h);
    all = mix(all, h);
  }
  std::printf("every 50th batch:");
  for (auto &kv : results)
    if (kv.first.second % 50 == 0) std::printf(" %d.%d=%04llx", kv.first.first, kv.first.second, (unsigned long long)(kv.second & 0xffff));
  std::printf("\nleftovers: %zu, %zu bytes of text, checksum %016llx\n", nleft, leftbytes, (unsigned long long)lefthash);

  // 2. thread churn
  uint64_t churn = 0;
  size_t churned = 0;
  for (int round = 0; round < 40; round++) {
    std::vector<std::future<std::unique_ptr<std::vector<std::string>>>> fs;
    std::vector<std::thread> ts;
    for (int t = 0; t < 8; t++) {
      std::promise<std::unique_ptr<std::vector<std::string>>> pr;
      fs.push_back(pr.get_future());
      ts.emplace_back([round, t](std::promise<std::unique_ptr<std::vector<std::string>>> pr) {
        Rng r{(uint64_t)round * 977 + t + 1};
        std::list<std::string> l;
        std::map<int, std::string> m;
        for (int i = 0; i < 3000; i++) {
          l.push_back(word(r));
          if (i % 3 == 0) m[(int)(r.next() % 1000)] = l.back() + l.front();
          if (i % 7 == 0) l.pop_front();
        }
        auto v = std::make_unique<std::vector<std::string>>(l.begin(), l.end());
        for (auto &kv : m) v->push_back(std::to_string(kv.first) + kv.second);
        pr.set_value(std::move(v));
      }, std::move(pr));
    }
    for (auto &t : ts) t.join();
    for (auto &f : fs) {
      auto v = f.get();
      churned += v->size();
      for (auto &s : *v) churn = hash_str(churn, s);
    }                                      // freed here, after the threads ended
  }
  std::printf("churn: %zu strings from 320 threads, checksum %016llx\n", churned, (unsigned long long)churn);

  // 3. std::async sorts
  std::vector<std::future<std::vector<uint64_t>>> parts;
  for (int k = 0; k < 8; k++)
    parts.push_back(std::async(std::launch::async, [k] {
      Rng r{(uint64_t)k * 31337 + 7};
      std::vector<uint64_t> v;
      for (int i = 0; i < 200000; i++) v.push_back(r.next() % 1000000007ULL);
      std::sort(v.begin(), v.end());
      return v;
    }));
  std::vector<uint64_t> merged;
  for (auto &f : parts) {
    auto v = f.get();
    std::vector<uint64_t> out;
    out.reserve(merged.size() + v.size());
    std::merge(merged.begin(), merged.end(), v.begin(), v.end(), std::back_inserter(out));
    merged.swap(out);
  }
  uint64_t mh = 0;
  for (size_t i = 0; i < merged.size(); i += 97) mh = mix(mh, merged[i]);
  std::printf("async: %zu numbers, sorted %d, min %llu, max %llu, checksum %016llx\n", merged.size(),
              (int)std::is_sorted(merged.begin(), merged.end()), (unsigned long long)merged.front(),
              (unsigned long long)merged.back(), (unsigned long long)mh);
  std::printf("all %016llx\n", (unsigned long long)mix(all, mix(churn, mh)));
  return 0;
}
EOF

if ! g++ -std=c++17 -O2 -pthread -Wall -o threads threads.cc 2>build.err; then
  echo "g++ could not build the program:"; cat build.err; exit 1
fi
run_both --name "C++ producers/consumers, thread churn, std::async (g++ -O2 -pthread)" ./threads
finish
