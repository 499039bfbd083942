// Rng: the one source of randomness for cores, seeded so a run can be replayed.
//
// xoshiro256** seeded through splitmix64. A value type: copy it to fork a stream; use
// fork() to derive an independent stream (one per simulated node, say) from a parent.
// Not thread-safe; each owner has its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace meshos {

class Rng {
 public:
  using result_type = uint64_t;

  explicit Rng(uint64_t seed = 0x6d657368'6f730001ULL);

  static constexpr result_type min() { return 0; }
  static constexpr result_type max() { return std::numeric_limits<result_type>::max(); }
  result_type operator()() { return next(); }

  uint64_t next();
  // Uniform in [0, bound); bound 0 gives 0.
  uint64_t uniform(uint64_t bound);
  // Uniform in [lo, hi].
  int64_t between(int64_t lo, int64_t hi);
  // Uniform in [0, 1).
  double unit();
  bool chance(double probability) { return unit() < probability; }
  // A new generator whose stream does not overlap this one in practice.
  Rng fork() { return Rng(next() ^ 0x9e3779b97f4a7c15ULL); }

  template <class T>
  void shuffle(std::vector<T>& v) {
    for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[uniform(i)]);
  }

 private:
  uint64_t s_[4];
};

// Seeds from the OS (getrandom) for production; tests pass explicit seeds.
uint64_t osSeed();

}  // namespace meshos
