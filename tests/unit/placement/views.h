// Test helpers for placement: hand-built nodes and daemons, seeded random views, an
// independent feasibility checker and an equality for assignments.
#pragma once

#include <algorithm>
#include <cstdlib>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "placement/placement.h"

namespace meshos::placement::testing {

// A sweep's seeds: count of them from base, or MESHOS_SEED alone.
struct Seeds {
  uint64_t first;
  int count;
};
inline Seeds seeds(uint64_t base, int count) {
  if (const char* s = std::getenv("MESHOS_SEED")) return {std::strtoull(s, nullptr, 0), 1};
  return {base, count};
}

inline NodeView node(std::string id, std::map<std::string, std::string> labels = {},
                     int64_t cpu = 0, int64_t memory = 0) {
  NodeView n;
  n.name = "name-" + id;
  n.id = std::move(id);
  n.labels = std::move(labels);
  n.cpu_millicores = cpu;
  n.memory_bytes = memory;
  return n;
}

inline DaemonRequest daemon(std::string name, uint32_t replicas = 1) {
  DaemonRequest d;
  d.name = std::move(name);
  d.replicas = replicas;
  return d;
}

inline spec::Constraint constraint(std::string label, spec::ConstraintOp op, std::vector<std::string> values) {
  spec::Constraint c;
  c.label = std::move(label);
  c.op = op;
  c.values = std::move(values);
  return c;
}

inline Coordinate coord(double x, double y, double height = 0, double adjustment = 0) {
  return Coordinate{{x, y}, height, adjustment};
}

struct RandomViewOptions {
  size_t max_nodes = 40;
  size_t max_daemons = 30;
  bool resources = true;
  bool dependencies = true;
  bool pins = true;
  bool near_labels = true;    // near targets of the form label=value
  bool extra_per_node = true; // max_per_node > 1
  bool dead_and_draining = true;
};

inline std::string pick(Rng& rng, const std::vector<std::string>& from) { return from[rng.uniform(from.size())]; }

inline std::vector<NodeView> randomNodes(Rng& rng, size_t count, const RandomViewOptions& o, size_t first_id = 0) {
  static const std::vector<std::string> kZones = {"a", "b", "c"};
  static const std::vector<std::string> kCaps = {"arm", "gpu", "ssd"};
  std::vector<NodeView> nodes;
  for (size_t i = 0; i < count; ++i) {
    NodeView n;
    n.id = "node-" + std::to_string(first_id + i) + "-" + std::to_string(rng.uniform(1000));
    n.name = "n" + std::to_string(first_id + i);
    if (o.dead_and_draining) {
      n.alive = !rng.chance(0.1);
      n.active = !rng.chance(0.1);
    }
    if (rng.chance(0.9)) n.labels["zone"] = pick(rng, kZones);
    if (rng.chance(0.5)) n.labels["rack"] = std::to_string(rng.uniform(4));
    for (const auto& c : kCaps) {
      if (rng.chance(0.4)) n.capabilities.push_back(c);
    }
    static const int64_t kCpu[] = {0, 1000, 2000, 4000};
    static const int64_t kMem[] = {0, int64_t{1} << 30, int64_t{4} << 30};
    n.cpu_millicores = kCpu[rng.uniform(4)];
    n.memory_bytes = kMem[rng.uniform(3)];
    if (rng.chance(0.8)) n.coordinate = Coordinate{{rng.unit() * 0.05, rng.unit() * 0.05}, rng.unit() * 0.002, 0};
    nodes.push_back(std::move(n));
  }
  return nodes;
}

inline std::vector<DaemonRequest> randomDaemons(Rng& rng, size_t count, const std::vector<NodeView>& nodes,
                                                const RandomViewOptions& o) {
  static const std::vector<std::string> kZones = {"a", "b", "c"};
  static const std::vector<std::string> kCaps = {"arm", "gpu", "ssd"};
  std::vector<DaemonRequest> daemons;
  for (size_t i = 0; i < count; ++i) {
    DaemonRequest d;
    d.name = "d" + std::to_string(rng.uniform(1'000'000)) + "-" + std::to_string(i);
    d.replicas = static_cast<uint32_t>(rng.uniform(6));
    if (o.resources && rng.chance(0.5)) {
      static const int64_t kCpu[] = {0, 100, 500, 1500};
      d.resources.cpu_millicores = kCpu[rng.uniform(4)];
      d.resources.memory_bytes = rng.chance(0.5) ? int64_t{256} << 20 : 0;
    }
    const auto strategy = rng.uniform(3);
    d.placement.strategy = strategy == 0 ? spec::PlacementStrategy::kSpread
                           : strategy == 1 ? spec::PlacementStrategy::kBinpack
                                           : spec::PlacementStrategy::kNear;
    if (d.placement.strategy == spec::PlacementStrategy::kNear) {
      if (o.near_labels && rng.chance(0.5)) {
        d.placement.near = "zone=" + pick(rng, kZones);
      } else if (!nodes.empty()) {
        d.placement.near = nodes[rng.uniform(nodes.size())].name;
      }
    }
    if (rng.chance(0.4)) {
      const auto op = rng.uniform(3);
      if (op == 0) d.placement.constraints.push_back(constraint("zone", spec::ConstraintOp::kEquals, {pick(rng, kZones)}));
      if (op == 1) d.placement.constraints.push_back(constraint("zone", spec::ConstraintOp::kIn, {"a", pick(rng, kZones)}));
      if (op == 2) d.placement.constraints.push_back(constraint("rack", spec::ConstraintOp::kNotIn, {"0", "1"}));
    }
    if (rng.chance(0.2)) d.placement.capabilities.push_back(pick(rng, kCaps));
    if (o.extra_per_node && rng.chance(0.3)) d.placement.max_per_node = static_cast<int64_t>(rng.uniform(4));
    if (o.dependencies && i > 0 && rng.chance(0.2)) {
      d.depends_on.push_back(daemons[rng.uniform(daemons.size())].name);  // earlier: no cycle
    }
    if (o.pins && !nodes.empty() && rng.chance(0.1)) d.pinned.push_back(nodes[rng.uniform(nodes.size())].id);
    daemons.push_back(std::move(d));
  }
  return daemons;
}

// Independent feasibility: the rules written again, plainly.
inline bool labelsOk(const NodeView& n, const DaemonRequest& d) {
  for (const auto& c : d.placement.constraints) {
    auto it = n.labels.find(c.label);
    bool in = false;
    if (it != n.labels.end()) {
      for (const auto& v : c.values) in = in || v == it->second;
    }
    if (c.op == spec::ConstraintOp::kNotIn ? in : !in) return false;
  }
  return true;
}

inline bool staticallyFeasible(const NodeView& n, const DaemonRequest& d) {
  if (!n.alive || !n.active) return false;
  for (const auto& cap : d.placement.capabilities) {
    if (std::find(n.capabilities.begin(), n.capabilities.end(), cap) == n.capabilities.end()) return false;
  }
  return labelsOk(n, d);
}

inline std::string describe(const Assignment& a) {
  std::ostringstream out;
  for (const auto& [name, d] : a.daemons) {
    out << name << " wanted " << d.wanted << (d.infeasible ? " infeasible" : "") << ":";
    for (const auto& n : d.nodes) out << " " << n;
    out << "\n";
  }
  return out.str();
}

inline bool sameScored(const std::vector<ScoredNode>& a, const std::vector<ScoredNode>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (a[i].node != b[i].node || a[i].score != b[i].score || a[i].tie != b[i].tie) return false;
  }
  return true;
}

inline bool sameAssignment(const Assignment& a, const Assignment& b) {
  if (a.byNode() != b.byNode() || a.daemons.size() != b.daemons.size()) return false;
  for (const auto& [name, x] : a.daemons) {
    auto it = b.daemons.find(name);
    if (it == b.daemons.end()) return false;
    const auto& y = it->second;
    if (x.nodes != y.nodes || x.wanted != y.wanted || x.infeasible != y.infeasible || x.excluded != y.excluded ||
        !sameScored(x.feasible, y.feasible)) {
      return false;
    }
  }
  return true;
}

inline std::set<std::string> nodeSet(const DaemonAssignment& d) { return {d.nodes.begin(), d.nodes.end()}; }

}  // namespace meshos::placement::testing
