// NodeHealth: one word per node for the loop and the snapshot (healthy / degraded /
// unreachable), derived by a pure function from what the node already knows: the member's
// gossip state, how old its last node-state report is, and the probe results it has.
// Placement does not read it (placement uses membership and capacity); it is for people and
// for the node's own "am I fit" view. Values only; any thread.
//
// The rules, first match wins:
//   dead or left                                   -> unreachable
//   suspect                                        -> degraded  ("suspect")
//   no node-state report yet                       -> degraded  ("no node state yet")
//   report older than rules.report_stale_ms        -> degraded  ("node state stale")
//   its chain writes fail (disk full, I/O error)   -> degraded  ("storage failing")
//   a failing probe (inventory, ...)               -> degraded  ("probe failing")
//   local gossip health multiplier > 0             -> degraded  ("local health degraded")
//   otherwise                                      -> healthy
// The last two are only known for this node itself (pass 0 for peers).
#pragma once

#include <cstdint>
#include <string_view>

#include "agent/gossip/messages.h"

namespace meshos::probes {

enum class NodeHealth { kHealthy, kDegraded, kUnreachable };
std::string_view nodeHealthName(NodeHealth h);  // "healthy" | "degraded" | "unreachable"

struct HealthRules {
  // Node state changes at least once per inventory sample and push-pull refreshes it every
  // 30 s; three push-pull rounds without news means we are not hearing from it.
  int64_t report_stale_ms = 90'000;
};

struct HealthInputs {
  gossip::MemberState member_state = gossip::MemberState::kAlive;
  int64_t report_age_ms = -1;       // now - when its last node-state report arrived; -1 never
  bool storage_failing = false;     // from its node state (this node: its own writer)
  uint32_t probes_failing = 0;      // probes whose last attempt failed (this node only)
  int64_t local_health_multiplier = 0;  // Lifeguard's local health score (this node only)
};

struct HealthVerdict {
  NodeHealth health = NodeHealth::kHealthy;
  std::string_view reason;  // empty when healthy; static text
  friend bool operator==(const HealthVerdict&, const HealthVerdict&) = default;
};

HealthVerdict classify(const HealthInputs& inputs, const HealthRules& rules = {});

}  // namespace meshos::probes
