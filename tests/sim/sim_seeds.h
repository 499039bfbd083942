// The seeds a simulation test runs, and how a failure says to replay one. Every simulation
// test sweeps seeds 1..K, never seeds picked by hand:
//   MESHOS_SEED=<n>       runs that one seed only (replaying a failure)
//   MESHOS_SIM_SEEDS=<K>  sweeps 1..K instead of the test's default (the slow suite sets it)
// A failure message names the seed and the exact command that replays it. Header-only;
// test code.
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace meshos::sim::testing {

inline std::vector<uint64_t> simSeeds(uint64_t default_count) {
  if (const char* one = std::getenv("MESHOS_SEED"); one != nullptr && *one != '\0') {
    return {std::strtoull(one, nullptr, 10)};
  }
  uint64_t count = default_count;
  if (const char* k = std::getenv("MESHOS_SIM_SEEDS"); k != nullptr && *k != '\0') count = std::strtoull(k, nullptr, 10);
  std::vector<uint64_t> seeds;
  for (uint64_t s = 1; s <= count; ++s) seeds.push_back(s);
  return seeds;
}

// "MESHOS_SEED=7 /path/to/test_binary --test-case='name'"
inline std::string replayCommand(uint64_t seed, const std::string& test_case) {
  char exe[4096] = {0};
  const ssize_t n = ::readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  const std::string binary = n > 0 ? std::string(exe, static_cast<size_t>(n)) : "<test binary>";
  return "MESHOS_SEED=" + std::to_string(seed) + " " + binary + " --test-case='" + test_case + "'";
}

}  // namespace meshos::sim::testing
