// Helpers the sim::MeshCluster tests share: the seed (MESHOS_SIM_SEED replays one), a failure
// message that names the seed and where every daemon runs, and a stepped wait that checks an
// invariant after every 100 ms of virtual time. Header-only; test code.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <functional>
#include <string>

#include "agent/sim/mesh_cluster.h"

namespace meshos::sim::testing {

inline constexpr int64_t kStepMs = 100;

inline uint64_t seedFor(uint64_t fallback) {
  const char* env = std::getenv("MESHOS_SIM_SEED");
  return env != nullptr ? std::strtoull(env, nullptr, 10) : fallback;
}

inline std::string failure(MeshCluster& c, const std::string& what) {
  return "seed " + std::to_string(c.seed()) + " (replay: MESHOS_SIM_SEED=" + std::to_string(c.seed()) +
         ") at t=" + std::to_string(c.nowMs()) + " ms: " + what + "\nwhere daemons run (node(running/ready)):\n" +
         c.describe();
}

// Steps the cluster by kStepMs until done() returns ok or max_ms passes, checking
// invariant() (if any) after every step. Returns the failure, or ok.
inline Status runUntilChecked(MeshCluster& c, int64_t max_ms, const std::function<Status()>& done,
                              const std::function<Status()>& invariant = {}) {
  const int64_t end = c.nowMs() + max_ms;
  Status last = done();
  while (!last) {
    if (c.nowMs() >= end) return Status::deadline("not settled after " + std::to_string(max_ms) + " ms: " + last.message());
    MESHOS_RETURN_IF_ERROR(c.runFor(kStepMs));
    if (invariant) MESHOS_RETURN_IF_ERROR(invariant());
    last = done();
  }
  return Status::ok();
}

}  // namespace meshos::sim::testing
