#include "placement/rendezvous_scan.h"

#include <doctest/doctest.h>

#include <random>
#include <vector>

#include "placement/hashing.h"

namespace meshos::placement {
namespace {

// The plain definition nextAtLeast() must agree with.
uint32_t firstAtLeast(const std::vector<uint64_t>& hash, uint32_t p, uint32_t end, uint64_t d,
                      uint64_t threshold) {
  for (; p < end; ++p) {
    if (rendezvousMixed(d, hash[p]) >= threshold) return p;
  }
  return end;
}

TEST_CASE("rendezvous scan: scalar and wide versions give the first hit, on random runs") {
  std::mt19937_64 rng(20261203);
  int wide_checked = 0;
  for (int round = 0; round < 3000; ++round) {
    const uint32_t n = static_cast<uint32_t>(rng() % 70);
    std::vector<uint64_t> hash(n);
    for (auto& h : hash) h = rng() ^ kRendezvousNodeMix;
    const uint64_t d = rng() ^ kRendezvousDaemonMix;
    // Thresholds from "every node hits" to "almost none does".
    const uint64_t threshold = round % 4 == 0 ? 0 : ~uint64_t{0} - (rng() >> (round % 9));
    const uint32_t p = n == 0 ? 0 : static_cast<uint32_t>(rng() % (n + 1));
    const uint32_t want = firstAtLeast(hash, p, n, d, threshold);
    INFO("round " << round << " n " << n << " p " << p);
    CHECK(nextAtLeastScalar(hash.data(), p, n, d, threshold) == want);
    CHECK(nextAtLeast(hash.data(), p, n, d, threshold) == want);
    if (hasWideScan()) {
      CHECK(nextAtLeastWide(hash.data(), p, n, d, threshold) == want);
      ++wide_checked;
    }
  }
  MESSAGE("wide (AVX-512F) version checked in " << wide_checked << " rounds");
}

TEST_CASE("rendezvous scan: a hit in the last lane of a step and past the last full step") {
  std::vector<uint64_t> hash(19, 0);
  const uint64_t d = kRendezvousDaemonMix;
  // With every hash 0 the weight is 0: nothing reaches threshold 1 but the planted hashes.
  for (uint32_t at : {0u, 3u, 7u, 8u, 15u, 16u, 18u}) {
    std::fill(hash.begin(), hash.end(), 0);
    hash[at] = ~uint64_t{0};
    const uint64_t threshold = 1;
    REQUIRE(rendezvousMixed(d, hash[at]) >= threshold);
    CHECK(nextAtLeastScalar(hash.data(), 0, 19, d, threshold) == at);
    CHECK(nextAtLeast(hash.data(), 0, 19, d, threshold) == at);
    if (hasWideScan()) CHECK(nextAtLeastWide(hash.data(), 0, 19, d, threshold) == at);
    CHECK(nextAtLeast(hash.data(), at + 1, 19, d, threshold) == 19);
  }
}

}  // namespace
}  // namespace meshos::placement
