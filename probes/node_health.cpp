#include "probes/node_health.h"

namespace meshos::probes {

std::string_view nodeHealthName(NodeHealth h) {
  switch (h) {
    case NodeHealth::kHealthy: return "healthy";
    case NodeHealth::kDegraded: return "degraded";
    case NodeHealth::kUnreachable: return "unreachable";
  }
  return "unknown";
}

HealthVerdict classify(const HealthInputs& in, const HealthRules& rules) {
  switch (in.member_state) {
    case gossip::MemberState::kDead: return {NodeHealth::kUnreachable, "dead"};
    case gossip::MemberState::kLeft: return {NodeHealth::kUnreachable, "left"};
    case gossip::MemberState::kSuspect: return {NodeHealth::kDegraded, "suspect"};
    case gossip::MemberState::kAlive: break;
  }
  if (in.report_age_ms < 0) return {NodeHealth::kDegraded, "no node state yet"};
  if (in.report_age_ms > rules.report_stale_ms) return {NodeHealth::kDegraded, "node state stale"};
  if (in.storage_failing) return {NodeHealth::kDegraded, "storage failing"};
  if (in.probes_failing > 0) return {NodeHealth::kDegraded, "probe failing"};
  if (in.local_health_multiplier > 0) return {NodeHealth::kDegraded, "local health degraded"};
  return {NodeHealth::kHealthy, {}};
}

}  // namespace meshos::probes
