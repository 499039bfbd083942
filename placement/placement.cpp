#include "placement/placement.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <queue>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include <fmt/format.h>

#include "placement/hashing.h"
#include "placement/pass.h"

namespace meshos::placement {

// ---------------------------------------------------------------------------------------
// Coordinates and scores.

double estimateRttMs(const Coordinate& a, const Coordinate& b) {
  if (a.vec.size() != b.vec.size()) return std::numeric_limits<double>::infinity();
  double sum = 0;
  for (size_t i = 0; i < a.vec.size(); ++i) {
    const double d = a.vec[i] - b.vec[i];
    sum += d * d;
  }
  const double dist = std::sqrt(sum) + a.height + b.height;
  const double adjusted = dist + a.adjustment + b.adjustment;
  return (adjusted > 0 ? adjusted : dist) * 1000.0;
}

double utilization(const NodeView& node, const NodeLoad& load) {
  double sum = 0;
  int dims = 0;
  if (node.cpu_millicores > 0) {
    sum += static_cast<double>(load.cpu_reserved) / static_cast<double>(node.cpu_millicores);
    ++dims;
  }
  if (node.memory_bytes > 0) {
    sum += static_cast<double>(load.memory_reserved) / static_cast<double>(node.memory_bytes);
    ++dims;
  }
  return dims == 0 ? 0.0 : sum / dims;
}

double utilizationStep(const NodeView& node, const NodeLoad& load) {
  return std::floor(utilization(node, load) * kUtilizationSteps) / kUtilizationSteps;
}

namespace {

// "label=value" → (label, value); a node name or id → nullopt.
std::optional<std::pair<std::string_view, std::string_view>> labelTarget(const std::string& near) {
  const auto eq = near.find('=');
  if (eq == std::string::npos) return std::nullopt;
  return std::pair{std::string_view(near.data(), eq), std::string_view(near.data() + eq + 1, near.size() - eq - 1)};
}

bool carries(const NodeView& n, std::string_view label, std::string_view value) {
  auto it = n.labels.find(std::string(label));
  return it != n.labels.end() && it->second == value;
}

}  // namespace

bool isNearTarget(const NodeView& node, const std::string& near) {
  if (near.empty()) return false;
  if (auto lv = labelTarget(near)) return node.alive && carries(node, lv->first, lv->second);
  return node.name == near || node.id == near;
}

std::vector<Coordinate> nearTargets(const std::string& near, const std::vector<NodeView>& all) {
  std::vector<Coordinate> out;
  for (const auto& n : all) {
    if (n.coordinate && isNearTarget(n, near)) out.push_back(*n.coordinate);
  }
  return out;
}

double nearScore(const NodeView& node, const std::string& near, const std::vector<Coordinate>& targets) {
  if (targets.empty()) return 0.0;
  if (isNearTarget(node, near)) return 0.0;
  if (!node.coordinate) return -kUnknownRttMs;
  double best = std::numeric_limits<double>::infinity();
  for (const auto& t : targets) best = std::min(best, estimateRttMs(*node.coordinate, t));
  if (!std::isfinite(best) || best >= kUnknownRttMs) return -kUnknownRttMs;
  return -best;
}

namespace {


class SpreadScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest& d, const NodeView& node, const NodeLoad& load,
               const std::vector<NodeView>&) const override {
    return detail::asksResources(d) ? -utilizationStep(node, load) : 0.0;
  }
};

class BinpackScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest&, const NodeView& node, const NodeLoad& load,
               const std::vector<NodeView>&) const override {
    return utilizationStep(node, load);
  }
};

class NearScorer final : public PlacementScorer {
 public:
  double score(const DaemonRequest& d, const NodeView& node, const NodeLoad&,
               const std::vector<NodeView>& all) const override {
    return nearScore(node, d.placement.near, nearTargets(d.placement.near, all));
  }
};

}  // namespace

const PlacementScorer& scorerFor(spec::PlacementStrategy strategy) {
  static const SpreadScorer kSpread;
  static const BinpackScorer kBinpack;
  static const NearScorer kNear;
  switch (strategy) {
    case spec::PlacementStrategy::kBinpack: return kBinpack;
    case spec::PlacementStrategy::kNear: return kNear;
    case spec::PlacementStrategy::kSpread: break;
  }
  return kSpread;
}

DaemonRequest requestFromSpec(const spec::DaemonSpec& spec) {
  DaemonRequest r;
  r.name = spec.name;
  if (spec.kind == spec::DaemonKind::kService) {
    r.replicas = static_cast<uint32_t>(
        std::clamp<int64_t>(spec.replicas, 0, std::numeric_limits<uint32_t>::max()));
  } else {
    r.replicas = 1;
  }
  r.resources = spec.resources;
  r.placement = spec.placement;
  if (spec.runtime == spec::RuntimeKind::kOci) {
    // A container runs only where the node says it can (an OCI runtime found at start).
    auto& caps = r.placement.capabilities;
    const std::string needed = "runtime:" + std::string(spec::runtimeKindName(spec.runtime));
    auto at = std::lower_bound(caps.begin(), caps.end(), needed);
    if (at == caps.end() || *at != needed) caps.insert(at, needed);
  }
  r.depends_on.reserve(spec.depends_on.size());
  for (const auto& dep : spec.depends_on) r.depends_on.push_back(dep.name);
  return r;
}

// ---------------------------------------------------------------------------------------
// Fingerprint.

namespace detail {

bool asksResources(const DaemonRequest& d) {
  return d.resources.cpu_millicores > 0 || d.resources.memory_bytes > 0;
}

uint64_t hashNode(const NodeView& n, bool with_coordinate) {
  Hasher h(0x6e6f64655f766965ULL);
  h.add(n.id);
  h.add(n.name);
  h.add(uint64_t{n.alive} | (uint64_t{n.active} << 1) | (uint64_t{n.unhealthy.empty()} << 2));
  h.add(n.labels.size());
  for (const auto& [k, v] : n.labels) {
    h.add(k);
    h.add(v);
  }
  h.add(n.capabilities.size());
  for (const auto& c : n.capabilities) h.add(c);
  h.add(static_cast<uint64_t>(n.cpu_millicores));
  h.add(static_cast<uint64_t>(n.memory_bytes));
  if (n.coordinate && with_coordinate) {
    h.add(n.coordinate->vec.size() + 1);
    for (double x : n.coordinate->vec) h.add(std::bit_cast<uint64_t>(x));
    h.add(std::bit_cast<uint64_t>(n.coordinate->height));
    h.add(std::bit_cast<uint64_t>(n.coordinate->adjustment));
  } else {
    h.add(uint64_t{0});
  }
  return h.done();
}

uint64_t hashDaemon(const DaemonRequest& d) {
  Hasher h(0x6461656d6f6e5f72ULL);
  h.add(d.name);
  h.add(d.replicas);
  h.add(static_cast<uint64_t>(d.resources.cpu_millicores));
  h.add(static_cast<uint64_t>(d.resources.memory_bytes));
  const auto& p = d.placement;
  h.add(static_cast<uint64_t>(p.strategy));
  h.add(p.near);
  h.add(p.constraints.size());
  for (const auto& c : p.constraints) {
    h.add(c.label);
    h.add(static_cast<uint64_t>(c.op));
    h.add(c.values.size());
    for (const auto& v : c.values) h.add(v);
  }
  h.add(p.capabilities.size());
  for (const auto& c : p.capabilities) h.add(c);
  h.add(static_cast<uint64_t>(p.max_per_node));
  h.add(d.depends_on.size());
  for (const auto& x : d.depends_on) h.add(x);
  h.add(d.pinned.size());
  for (const auto& x : d.pinned) h.add(x);
  return h.done();
}

}  // namespace detail

uint64_t fingerprint(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons) {
  // Sums of well-mixed item hashes: independent of order, and a duplicate does not cancel.
  // Coordinates only matter to daemons placed near something: without one, their constant
  // drift (Vivaldi) must not make every tick a recomputation.
  uint64_t sum_daemons = 0;
  bool near = false;
  for (const auto& d : daemons) {
    sum_daemons += detail::hashDaemon(d);
    near = near || d.placement.strategy == spec::PlacementStrategy::kNear;
  }
  uint64_t sum_nodes = 0;
  for (const auto& n : nodes) sum_nodes += detail::hashNode(n, near);
  Hasher h(0x66696e6765727072ULL);
  h.add(nodes.size());
  h.add(sum_nodes);
  h.add(daemons.size());
  h.add(sum_daemons);
  return h.done();
}

// ---------------------------------------------------------------------------------------
// Feasibility.



DaemonTable::iterator DaemonTable::find(std::string_view name) {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, std::string_view n) { return e.first < n; });
  return it != items_.end() && it->first == name ? it : items_.end();
}

DaemonTable::const_iterator DaemonTable::find(std::string_view name) const {
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, std::string_view n) { return e.first < n; });
  return it != items_.end() && it->first == name ? it : items_.end();
}

DaemonAssignment& DaemonTable::at(std::string_view name) {
  auto it = find(name);
  if (it == items_.end()) throw std::out_of_range(fmt::format("no assignment for daemon '{}'", name));
  return it->second;
}

const DaemonAssignment& DaemonTable::at(std::string_view name) const {
  auto it = find(name);
  if (it == items_.end()) throw std::out_of_range(fmt::format("no assignment for daemon '{}'", name));
  return it->second;
}

std::pair<DaemonTable::iterator, bool> DaemonTable::emplace(std::string name, DaemonAssignment a) {
  if (items_.empty() || items_.back().first < name) {
    items_.emplace_back(std::move(name), std::move(a));
    return {items_.end() - 1, true};
  }
  auto it = std::lower_bound(items_.begin(), items_.end(), name,
                             [](const value_type& e, const std::string& n) { return e.first < n; });
  if (it != items_.end() && it->first == name) return {it, false};
  return {items_.emplace(it, std::move(name), std::move(a)), true};
}

std::map<std::string, std::map<std::string, uint32_t>> Assignment::byNode() const {
  std::map<std::string, std::map<std::string, uint32_t>> out;
  for (const auto& [name, d] : daemons) {
    for (const auto& node : d.nodes) ++out[node][name];
  }
  return out;
}

using detail::Pass;

Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons,
                  const AssignOptions& options) {
  Pass pass(nodes, daemons);
  bool all = options.detail == Detail::kAll;
  if (options.detail == Detail::kAuto) all = nodes.size() * daemons.size() <= kAutoDetailPairs;
  return pass.run(all, std::numeric_limits<size_t>::max());
}

Assignment assign(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons) {
  return assign(nodes, daemons, AssignOptions{});
}

Result<DaemonAssignment> explain(const std::vector<NodeView>& nodes,
                                 const std::vector<DaemonRequest>& daemons, const std::string& daemon) {
  Pass pass(nodes, daemons);
  auto idx = pass.daemonIndex(daemon);
  if (!idx) return Status::notFound(fmt::format("no desired daemon named '{}'", daemon));
  Assignment a = pass.run(false, *idx);
  return std::move(a.daemons.at(daemon));
}

const Assignment& Assigner::assign(const std::vector<NodeView>& nodes,
                                   const std::vector<DaemonRequest>& daemons) {
  const uint64_t fp = fingerprint(nodes, daemons);
  if (fingerprint_ && *fingerprint_ == fp) return last_;
  last_ = placement::assign(nodes, daemons);
  fingerprint_ = fp;
  ++recomputes_;
  return last_;
}

}  // namespace meshos::placement