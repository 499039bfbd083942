// SimWorld: what every simulated machine shares — virtual time (one ManualClock and its
// ManualTimers), the network between them, the member-identity pool of the gossip cores
// (one per process, as it is meant to be shared), the run's trace digest, and the root of
// all randomness (the seed). Owned by the cluster; single-threaded.
#pragma once

#include <cstdint>
#include <memory>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/gossip/member_identity.h"
#include "agent/sim/network.h"
#include "agent/sim/trace.h"

namespace meshos::sim {

struct SimWorld {
  explicit SimWorld(uint64_t seed_) : seed(seed_), timers(clock), rng(seed_), network(timers, rng.fork()) {
    network.setClock(&clock);
    network.setTrace(&trace);
  }
  SimWorld(const SimWorld&) = delete;
  SimWorld& operator=(const SimWorld&) = delete;

  int64_t nowMs() const { return clock.monotonicMs(); }

  uint64_t seed;
  ManualClock clock;
  ManualTimers timers;
  Rng rng;
  Network network;
  gossip::MemberIdentityPool identities;
  TraceHash trace;
};

}  // namespace meshos::sim
