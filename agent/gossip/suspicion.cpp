#include "agent/gossip/suspicion.h"

#include <algorithm>
#include <cmath>

namespace meshos::gossip {

int64_t suspicionMinTimeoutMs(int suspicion_mult, size_t num_nodes, int64_t probe_interval_ms) {
  double node_scale = std::max(1.0, std::log10(std::max(1.0, static_cast<double>(num_nodes))));
  return static_cast<int64_t>(std::llround(suspicion_mult * node_scale * static_cast<double>(probe_interval_ms)));
}

int suspicionExpectedConfirmations(int suspicion_mult, size_t num_nodes) {
  int k = suspicion_mult - 2;
  if (static_cast<int64_t>(num_nodes) - 2 < k) k = 0;
  return std::max(0, k);
}

int64_t suspicionTimeoutMs(int confirmations, int expected, int64_t min_ms, int64_t max_ms) {
  if (expected < 1) return min_ms;
  double frac = std::log(static_cast<double>(confirmations) + 1.0) / std::log(static_cast<double>(expected) + 1.0);
  double raw = static_cast<double>(max_ms) - frac * static_cast<double>(max_ms - min_ms);
  return std::max(min_ms, static_cast<int64_t>(std::floor(raw)));
}

int64_t pushPullScaledIntervalMs(int64_t interval_ms, size_t num_nodes) {
  constexpr double kThreshold = 32;
  if (static_cast<double>(num_nodes) <= kThreshold) return interval_ms;
  double mult = std::ceil(std::log2(static_cast<double>(num_nodes)) - std::log2(kThreshold)) + 1.0;
  return static_cast<int64_t>(mult) * interval_ms;
}

}  // namespace meshos::gossip
