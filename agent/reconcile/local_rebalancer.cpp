#include "agent/reconcile/local_rebalancer.h"

#include <algorithm>

namespace meshos::reconcile {

std::optional<double> reportLoad(const state::NodeReport& r) {
  const auto& inv = r.inventory;
  if (inv.cpu_count == 0 && inv.memory_total_bytes <= 0) return std::nullopt;
  double load = 0;
  if (inv.cpu_count > 0) load = inv.load1 / inv.cpu_count;
  if (inv.memory_total_bytes > 0) {
    load = std::max(load, static_cast<double>(inv.memory_used_bytes) / static_cast<double>(inv.memory_total_bytes));
  }
  return std::clamp(load, 0.0, 4.0);
}

LocalRebalancer::LocalRebalancer(std::string self_id, LocalRebalanceOptions options)
    : self_id_(std::move(self_id)), options_(std::move(options)), rebalancer_([&] {
        placement::RebalanceOptions o = options_.moves;
        o.only_from = self_id_;
        return o;
      }()) {}

bool LocalRebalancer::update(int64_t now_ms, const LocalPlan& plan, const std::vector<PeerView>& nodes,
                             placement::Assigner& assigner) {
  const auto before = published_;
  if (!options_.enabled) {
    published_.clear();
    return published_ != before;
  }
  if (!due(now_ms)) return false;
  last_look_ms_ = now_ms;

  const placement::Assignment& base = assigner.assign(plan.views, plan.requests);
  (void)rebalancer_.apply(base);  // drops moves whose source or target no longer fit

  // A move the target has not started in time is given up: the instance stays here.
  std::map<std::string, const PeerView*> by_id;
  for (const auto& n : nodes) by_id[n.id] = &n;
  std::vector<placement::Move> stale;
  for (const auto& m : rebalancer_.active()) {
    if (now_ms - m.at_ms < options_.abandon_after_ms) continue;
    auto it = by_id.find(m.to);
    const PeerView* target = it == by_id.end() ? nullptr : it->second;
    bool started = target && target->report && target->report->daemons.count(m.daemon) > 0 &&
                   target->report->daemons.at(m.daemon).running > 0;
    if (!started) stale.push_back(m);
  }
  for (const auto& m : stale) {
    if (rebalancer_.cancel(m.daemon, m.to)) ++abandoned_;
  }

  // Plans are made only on a calm view: not while isolated, frozen or draining.
  if (!plan.isolated && !plan.frozen && plan.maintenance == state::Maintenance::kActive) {
    std::map<std::string, double> load;
    for (const auto& n : nodes) {
      if (!n.report || n.state != state::MemberState::kAlive) continue;
      if (auto l = reportLoad(*n.report)) load[n.id] = *l;
    }
    proposed_ += rebalancer_.plan(now_ms, base, load).size();
  }
  published_.clear();
  for (const auto& m : rebalancer_.active()) published_.emplace(m.daemon, m.to);
  return published_ != before;
}

nlohmann::json LocalRebalancer::toJson() const {
  nlohmann::json active = nlohmann::json::array();
  for (const auto& m : rebalancer_.active()) {
    active.push_back({{"daemon", m.daemon}, {"to", m.to}, {"from_load", m.from_load}, {"to_load", m.to_load},
                      {"at_ms", m.at_ms}});
  }
  return {{"enabled", options_.enabled}, {"active", std::move(active)}, {"proposed", proposed_},
          {"abandoned", abandoned_}, {"dropped", rebalancer_.droppedMoves()}};
}

}  // namespace meshos::reconcile
