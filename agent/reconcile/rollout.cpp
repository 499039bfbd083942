#include "agent/reconcile/rollout.h"

#include <algorithm>

#include "agent/core/crypto.h"

namespace meshos::reconcile {

namespace {
uint64_t first8(const Hash256& h) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | h[static_cast<size_t>(i)];
  return v;
}
}  // namespace

uint64_t specVersion(const spec::DaemonSpec& s) {
  spec::DaemonSpec run = s;
  run.replicas = 0;
  run.placement = {};
  run.resources = {};
  run.permissions = {};
  run.update = {};
  run.supervision = {};
  const uint64_t v = first8(Blake2b().update(asBytes(std::string_view("meshos-spec-version"))).update(spec::canonicalBytes(run)).finish());
  return v == 0 ? 1 : v;
}

bool rolloutDone(const state::DaemonReport* r, uint64_t target, int64_t min_ready_ms, int64_t now_wall_ms) {
  return r != nullptr && r->version == target && r->ready > 0 && r->ready_since_ms > 0 &&
         now_wall_ms - r->ready_since_ms >= min_ready_ms;
}

std::vector<const RolloutNode*> rolloutOrder(const RolloutInputs& in) {
  std::vector<std::pair<uint64_t, const RolloutNode*>> ranked;
  for (const auto& n : in.nodes) {
    const uint64_t rank = first8(Blake2b().update(in.daemon).updateU64(in.target).update(n.id).finish());
    ranked.emplace_back(rank, &n);
  }
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    return a.first != b.first ? a.first < b.first : a.second->id < b.second->id;
  });
  std::vector<const RolloutNode*> out;
  for (const auto& [rank, n] : ranked) out.push_back(n);
  return out;
}

RolloutDecision decideRollout(const RolloutInputs& in) {
  RolloutDecision d;
  const auto order = rolloutOrder(in);
  for (const RolloutNode* n : order) {
    d.order.push_back(n->name);
    if (rolloutDone(n->report, in.target, in.strategy.min_ready_ms, in.now_wall_ms)) ++d.done;
    if (d.failed_on.empty() && n->report != nullptr && n->report->failed_version == in.target) d.failed_on = n->name;
  }
  if (!d.failed_on.empty()) {
    d.step = RolloutStep::kHalted;
    d.why = "version " + state::versionText(in.target) + " failed on " + d.failed_on + ": " +
            (in.strategy.on_failure == spec::OnUpdateFailure::kRollback ? "rolled back" : "paused");
    return d;
  }
  // Unavailable: before self and not done; after self, down while it runs another version
  // (still replacing for an earlier target: a new version can come before the last one
  // is through, and the two replacements must not add up).
  std::vector<std::string> pending;
  bool after_self = false;
  for (const RolloutNode* n : order) {
    if (n->id == in.self_id) {
      after_self = true;
      continue;
    }
    const state::DaemonReport* r = n->report;
    const bool down = after_self ? r != nullptr && r->ready == 0 && r->version != 0 && r->version != in.target
                                 : !rolloutDone(r, in.target, in.strategy.min_ready_ms, in.now_wall_ms);
    if (down) pending.push_back(n->name);
  }
  if (static_cast<int64_t>(pending.size()) < in.strategy.max_unavailable) {
    d.step = RolloutStep::kUpdate;
    d.why = "updating";
    return d;
  }
  d.step = RolloutStep::kWait;
  d.why = "waiting for ";
  for (size_t i = 0; i < pending.size(); ++i) d.why += (i ? ", " : "") + pending[i];
  return d;
}

nlohmann::json rolloutToJson(const RolloutInputs& in, const RolloutDecision& d) {
  nlohmann::json nodes = nlohmann::json::array();
  for (const RolloutNode* n : rolloutOrder(in)) {
    const state::DaemonReport* r = n->report;
    nodes.push_back({{"node", n->name},
                     {"version", r != nullptr && r->version != 0 ? state::versionText(r->version) : ""},
                     {"ready", r != nullptr ? r->ready : 0},
                     {"done", rolloutDone(r, in.target, in.strategy.min_ready_ms, in.now_wall_ms)},
                     {"failed", r != nullptr && r->failed_version == in.target}});
  }
  const char* state = d.step == RolloutStep::kHalted ? "halted" : d.done == in.nodes.size() ? "complete" : "rolling";
  return {{"daemon", in.daemon},
          {"target", state::versionText(in.target)},
          {"state", state},
          {"done", d.done},
          {"total", in.nodes.size()},
          {"max_unavailable", in.strategy.max_unavailable},
          {"min_ready_ms", in.strategy.min_ready_ms},
          {"progress_deadline_ms", in.strategy.progress_deadline_ms},
          {"on_failure", spec::onUpdateFailureName(in.strategy.on_failure)},
          {"why", d.failed_on.empty() ? "" : d.why},
          {"nodes", std::move(nodes)}};
}

}  // namespace meshos::reconcile
