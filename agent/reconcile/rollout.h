// Rollouts: a changed spec replaces running instances node by node, without a leader.
//
// Every node derives the same order over the nodes that run or are assigned the daemon
// (rendezvous rank of daemon, target version and node id) and reads the same node states.
// A node that still runs the old version replaces its instance only when fewer than
// max_unavailable of the nodes before it in the order are not yet *done* (reporting the
// new version ready for min_ready_ms). An old instance counts as not done, so with stale
// views two nodes cannot both believe it is their turn: at most max_unavailable instances
// are down for the rollout at once, and the ready count stays at replicas - max_unavailable
// or more (node loss aside). A node whose new instance misses progress_deadline_ms reports
// that version failed; every node then stops the rollout (pause), or the nodes that moved
// to it return to the spec they ran before (rollback). Pure; any thread.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/spec/daemon_spec.h"
#include "agent/state/node_report.h"

namespace meshos::reconcile {

// What an instance of the spec runs: everything but replicas, placement, resources
// (reservations), permissions, the update strategy and supervision, which change no
// process. Nonzero.
uint64_t specVersion(const spec::DaemonSpec& spec);

struct RolloutNode {
  std::string id;
  std::string name;
  const state::DaemonReport* report = nullptr;  // its report for the daemon; null: runs none
};

struct RolloutInputs {
  std::string daemon;
  uint64_t target = 0;  // specVersion of the commit's spec
  std::string self_id;
  std::vector<RolloutNode> nodes;  // every node that runs or is assigned the daemon (self too)
  spec::UpdateStrategy strategy;
  int64_t now_wall_ms = 0;
};

enum class RolloutStep { kUpdate, kWait, kHalted };

struct RolloutDecision {
  RolloutStep step = RolloutStep::kUpdate;
  std::string why;            // "waiting for n2, n3", "v1a2b... failed on n4: paused"
  std::vector<std::string> order;  // node names, the order of the rollout
  size_t done = 0;            // nodes reporting the target ready for min_ready_ms
  std::string failed_on;      // the node that reported the target failed
};

// The order of a rollout: node ids by rendezvous rank of (daemon, target, id).
std::vector<const RolloutNode*> rolloutOrder(const RolloutInputs& in);
// May self replace its instance by the target version now?
RolloutDecision decideRollout(const RolloutInputs& in);
// Has this node's report for the daemon reached the target (ready for min_ready_ms)?
bool rolloutDone(const state::DaemonReport* r, uint64_t target, int64_t min_ready_ms, int64_t now_wall_ms);

nlohmann::json rolloutToJson(const RolloutInputs& in, const RolloutDecision& d);

}  // namespace meshos::reconcile
