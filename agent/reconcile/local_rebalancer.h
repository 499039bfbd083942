// LocalRebalancer: live load moves this node's own instances, slowly, and every node agrees.
// placement::assign() never sees load (the assignment would flap). Every rebalance_interval
// this node looks at the loads the members publish (inventory in their node state) and, with
// placement::Rebalancer restricted to moves away from itself, proposes to hand one instance
// of a daemon to a cooler feasible node when the load difference passes the hysteresis, at
// most one move per daemon per cooldown. The moves go into this node's node state; planLocal()
// on every node applies the moves each node publishes, so source, target and everyone else
// compute the same overlay from the same view, and the handoff is make-before-break.
// A move whose target does not report the daemon running within `abandon_after_ms` is
// dropped (the instance stays here), so a target that will not take it never leaves the
// daemon short. Moves live in memory: after a restart the node runs its base assignment.
//
// Owned by the node loop (the agent's Node, the simulator's MeshNode); not thread-safe.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "agent/reconcile/local_plan.h"
#include "placement/rebalancer.h"

namespace meshos::reconcile {

// A node's load as rebalancing compares it: the larger of load1 per CPU and the share of
// memory used, from the inventory in its node state; none without an inventory.
std::optional<double> reportLoad(const state::NodeReport& report);

struct LocalRebalanceOptions {
  bool enabled = true;
  int64_t interval_ms = 10'000;       // how often the loads are looked at
  int64_t abandon_after_ms = 30'000;  // a move the target has not started by then is dropped
  placement::RebalanceOptions moves;  // cooldown, hysteresis, bounds (only_from is set here)
};

class LocalRebalancer {
 public:
  LocalRebalancer(std::string self_id, LocalRebalanceOptions options);

  // Looks at the loads when interval_ms passed since the last look (or the moves must be
  // pruned); `plan` is the last plan (its views and requests give the base assignment,
  // through the assigner's cache) and `nodes` the members with their reports. True when
  // the moves this node publishes changed.
  bool update(int64_t now_ms, const LocalPlan& plan, const std::vector<PeerView>& nodes,
              placement::Assigner& assigner);

  // Whether update() would look at the loads now (callers skip building `nodes` otherwise).
  bool due(int64_t now_ms) const {
    return options_.enabled ? !last_look_ms_ || now_ms - *last_look_ms_ >= options_.interval_ms : !published_.empty();
  }

  // daemon -> target node id, for this node's node state.
  const std::map<std::string, std::string>& moves() const { return published_; }
  uint64_t proposed() const { return proposed_; }
  uint64_t abandoned() const { return abandoned_; }
  nlohmann::json toJson() const;

 private:
  std::string self_id_;
  LocalRebalanceOptions options_;
  placement::Rebalancer rebalancer_;
  std::optional<int64_t> last_look_ms_;
  std::map<std::string, std::string> published_;
  uint64_t proposed_ = 0, abandoned_ = 0;
};

}  // namespace meshos::reconcile
