// Suspicion timeouts as Lifeguard (and memberlist's suspicion.go) compute them: the timeout
// starts at max and shrinks toward min, logarithmically, as independent confirmations from
// other members arrive. Pure functions; any thread.
#pragma once

#include <cstddef>
#include <cstdint>

namespace meshos::gossip {

// min = suspicion_mult * max(1, log10(N)) * probe_interval_ms.
int64_t suspicionMinTimeoutMs(int suspicion_mult, size_t num_nodes, int64_t probe_interval_ms);
// Confirmations expected before the timeout reaches min: suspicion_mult - 2, or 0 in tiny clusters.
int suspicionExpectedConfirmations(int suspicion_mult, size_t num_nodes);
// Total timeout (from the start of suspicion) after `confirmations` independent confirmations.
int64_t suspicionTimeoutMs(int confirmations, int expected, int64_t min_ms, int64_t max_ms);
// Push-pull interval scaled past 32 members: interval * (ceil(log2 N - log2 32) + 1).
int64_t pushPullScaledIntervalMs(int64_t interval_ms, size_t num_nodes);

}  // namespace meshos::gossip
