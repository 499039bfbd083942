#include <doctest/doctest.h>

#include <algorithm>
#include <set>

#include "agent/core/rng.h"

using namespace meshos;

TEST_CASE("the same seed gives the same stream") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t va = a.next();
    CHECK(va == b.next());
    CHECK(va != c.next());
  }
}

TEST_CASE("uniform stays in bounds and covers them") {
  Rng r(7);
  std::set<uint64_t> seen;
  for (int i = 0; i < 10'000; ++i) {
    uint64_t v = r.uniform(10);
    REQUIRE(v < 10);
    seen.insert(v);
  }
  CHECK(seen.size() == 10);
  CHECK(r.uniform(0) == 0);
  for (int i = 0; i < 1000; ++i) {
    int64_t v = r.between(-3, 3);
    REQUIRE(v >= -3);
    REQUIRE(v <= 3);
    double u = r.unit();
    REQUIRE(u >= 0.0);
    REQUIRE(u < 1.0);
  }
}

TEST_CASE("shuffle is a permutation") {
  Rng r(1);
  std::vector<int> v{1, 2, 3, 4, 5, 6, 7, 8};
  auto original = v;
  r.shuffle(v);
  std::sort(v.begin(), v.end());
  CHECK(v == original);
}
