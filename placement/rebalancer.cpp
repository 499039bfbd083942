#include "placement/rebalancer.h"

#include <algorithm>

namespace meshos::placement {

namespace {

bool listsFeasible(const DaemonAssignment& d, const std::string& node) {
  return std::any_of(d.feasible.begin(), d.feasible.end(), [&](const ScoredNode& s) { return s.node == node; });
}

// Replaces one instance of `from` by `to` in d's nodes. False when `from`
// holds no instance or `to` already holds one.
bool moveInstance(Assignment& a, const std::string& daemon, const std::string& from, const std::string& to) {
  auto it = a.daemons.find(daemon);
  if (it == a.daemons.end()) return false;
  auto& nodes = it->second.nodes;
  if (std::find(nodes.begin(), nodes.end(), to) != nodes.end()) return false;
  auto pos = std::find(nodes.begin(), nodes.end(), from);
  if (pos == nodes.end()) return false;
  *pos = to;
  return true;
}

}  // namespace

Assignment applyMoves(const Assignment& assignment, const std::vector<Move>& moves, std::vector<bool>* applied) {
  Assignment out = assignment;
  if (applied) applied->assign(moves.size(), false);
  for (size_t i = 0; i < moves.size(); ++i) {
    const Move& m = moves[i];
    auto it = out.daemons.find(m.daemon);
    const bool target_ok = it != out.daemons.end() && listsFeasible(it->second, m.to);
    const bool ok = target_ok && moveInstance(out, m.daemon, m.from, m.to);
    if (applied) (*applied)[i] = ok;
  }
  return out;
}

Rebalancer::Rebalancer(RebalanceOptions options) : options_(options) {}

std::vector<Move> Rebalancer::plan(int64_t now_ms, const Assignment& base,
                                   const std::map<std::string, double>& load) {
  std::vector<Move> moves;
  std::erase_if(last_move_ms_, [&](const auto& e) { return now_ms - e.second >= options_.cooldown_ms; });
  if (options_.max_moves_per_plan == 0) return moves;
  const Assignment current = apply(base);
  // Projected loads: a move shifts an estimated share of the source's load, so one plan does
  // not send every daemon to the same cool node.
  std::map<std::string, double> projected = load;
  std::map<std::string, uint32_t> instances;
  for (const auto& [name, d] : current.daemons) {
    for (const auto& node : d.nodes) ++instances[node];
  }
  for (const auto& [name, d] : current.daemons) {
    if (moves.size() >= options_.max_moves_per_plan) break;
    auto last = last_move_ms_.find(name);
    if (last != last_move_ms_.end() && now_ms - last->second < options_.cooldown_ms) continue;
    // Moves a node publishes about itself are one per daemon (node state `moves`).
    if (!options_.only_from.empty() &&
        std::any_of(active_.begin(), active_.end(), [&daemon = name](const Move& m) { return m.daemon == daemon; })) {
      continue;
    }
    // The hottest node holding it...
    const std::string* from = nullptr;
    double from_load = 0;
    for (const auto& n : d.nodes) {
      if (!options_.only_from.empty() && n != options_.only_from) continue;
      auto l = projected.find(n);
      if (l == projected.end()) continue;
      if (!from || l->second > from_load || (l->second == from_load && n < *from)) {
        from = &n;
        from_load = l->second;
      }
    }
    if (!from) continue;
    // ...and the coolest feasible node not holding it (ranked order breaks ties).
    const std::string* to = nullptr;
    double to_load = 0;
    for (const auto& s : d.feasible) {
      if (std::find(d.nodes.begin(), d.nodes.end(), s.node) != d.nodes.end()) continue;
      auto l = projected.find(s.node);
      if (l == projected.end()) continue;
      if (!to || l->second < to_load) {
        to = &s.node;
        to_load = l->second;
      }
    }
    if (!to || from_load - to_load <= options_.hysteresis) continue;
    Move m{name, *from, *to, from_load, to_load, now_ms};
    const double share = from_load / std::max<uint32_t>(1, instances[*from]);
    projected[*from] -= share;
    projected[*to] += share;
    last_move_ms_[name] = now_ms;
    active_.push_back(m);
    moves.push_back(std::move(m));
  }
  while (active_.size() > options_.max_active_moves) {
    active_.erase(active_.begin());
    ++dropped_;
  }
  return moves;
}

bool Rebalancer::cancel(const std::string& daemon, const std::string& to) {
  auto it = std::find_if(active_.begin(), active_.end(), [&](const Move& m) { return m.daemon == daemon && m.to == to; });
  if (it == active_.end()) return false;
  active_.erase(it);
  return true;
}

Assignment Rebalancer::apply(const Assignment& assignment) {
  std::vector<bool> applied;
  Assignment out = applyMoves(assignment, active_, &applied);
  std::vector<Move> kept;
  kept.reserve(active_.size());
  for (size_t i = 0; i < active_.size(); ++i) {
    if (applied[i]) {
      kept.push_back(std::move(active_[i]));
    } else {
      ++dropped_;
    }
  }
  active_ = std::move(kept);
  return out;
}

}  // namespace meshos::placement
