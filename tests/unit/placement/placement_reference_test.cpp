// assign() against a reference: the placement rules of placement.h and docs/PLACEMENT.md
// written again as plainly as possible (every node scored and sorted for every daemon, no
// caches, no level order, no signatures), on thousands of seeded random views. The fast
// path must give exactly the reference's answer: the same nodes in the same order, the same
// infeasible flags. explain() must give what assign() gives. Each case prints its seed on
// failure; rerun one with MESHOS_SEED=<seed>.
#include <doctest/doctest.h>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdlib>
#include <map>
#include <queue>
#include <set>

#include "placement/hashing.h"
#include "placement/placement.h"
#include "tests/unit/placement/views.h"

using namespace meshos;
using namespace meshos::placement;
using namespace meshos::placement::testing;

namespace {

// Scores rank at float precision, -0 as 0, NaN below every number (placement.h).
uint32_t floatRank(double score) {
  if (std::isnan(score)) return 1;
  float f = static_cast<float>(score);
  if (f == 0.0f) f = 0.0f;
  const uint32_t b = std::bit_cast<uint32_t>(f);
  return (b & 0x80000000u) ? ~b : (b | 0x80000000u);
}

struct RefResult {
  std::vector<std::string> nodes;
  uint32_t wanted = 0;
  bool infeasible = false;
};

std::map<std::string, RefResult> referenceAssign(const std::vector<NodeView>& input_nodes,
                                                 const std::vector<DaemonRequest>& input_daemons) {
  // The views of these tests have unique ids and names.
  std::vector<const NodeView*> nodes;
  for (const auto& n : input_nodes) nodes.push_back(&n);
  std::sort(nodes.begin(), nodes.end(), [](auto* a, auto* b) { return a->id < b->id; });
  std::vector<const DaemonRequest*> daemons;
  for (const auto& d : input_daemons) daemons.push_back(&d);
  std::sort(daemons.begin(), daemons.end(), [](auto* a, auto* b) { return a->name < b->name; });
  const size_t n = nodes.size(), m = daemons.size();

  // Dependency order: dependencies first, ties by name; what a cycle leaves, by name.
  std::vector<std::vector<size_t>> deps(m);
  for (size_t i = 0; i < m; ++i) {
    for (const auto& name : daemons[i]->depends_on) {
      for (size_t j = 0; j < m; ++j) {
        if (j != i && daemons[j]->name == name &&
            std::find(deps[i].begin(), deps[i].end(), j) == deps[i].end()) {
          deps[i].push_back(j);
        }
      }
    }
  }
  std::vector<size_t> order;
  std::vector<bool> ordered(m, false);
  while (order.size() < m) {
    size_t next = m;
    for (size_t i = 0; i < m && next == m; ++i) {
      if (ordered[i]) continue;
      bool ready = true;
      for (size_t j : deps[i]) ready = ready && ordered[j];
      if (ready) next = i;
    }
    if (next == m) break;  // a cycle
    ordered[next] = true;
    order.push_back(next);
  }
  for (size_t i = 0; i < m; ++i) {
    if (!ordered[i]) order.push_back(i);
  }

  std::vector<NodeLoad> load(n);
  std::vector<int64_t> cpu_left(n), memory_left(n);
  for (size_t i = 0; i < n; ++i) {
    cpu_left[i] = std::max<int64_t>(0, nodes[i]->cpu_millicores);
    memory_left[i] = std::max<int64_t>(0, nodes[i]->memory_bytes);
  }
  std::vector<std::vector<size_t>> instances(m);
  std::vector<bool> done(m, false);
  std::map<std::string, RefResult> out;

  for (size_t di : order) {
    const DaemonRequest& d = *daemons[di];
    const uint32_t wanted = std::min(d.replicas, kMaxReplicas);
    const auto per_node = static_cast<uint32_t>(std::clamp<int64_t>(d.placement.max_per_node, 1, kMaxReplicas));
    const int64_t cpu = std::max<int64_t>(0, d.resources.cpu_millicores);
    const int64_t memory = std::max<int64_t>(0, d.resources.memory_bytes);
    const uint64_t dh = hashString(d.name, kDaemonSeed);
    const auto targets = nearTargets(d.placement.near, input_nodes);

    auto score = [&](size_t i) {
      if (d.placement.strategy == spec::PlacementStrategy::kNear) return nearScore(*nodes[i], d.placement.near, targets);
      return scorerFor(d.placement.strategy).score(d, *nodes[i], load[i], input_nodes);
    };
    struct Ranked {
      uint32_t level;
      uint64_t tie;
      size_t node;
    };
    auto ranked = [&](size_t i) { return Ranked{floatRank(score(i)), rendezvous(dh, hashString(nodes[i]->id, kNodeSeed)), i}; };
    auto better = [](const Ranked& a, const Ranked& b) {
      if (a.level != b.level) return a.level > b.level;
      if (a.tie != b.tie) return a.tie > b.tie;
      return a.node < b.node;
    };
    auto colocated = [&](size_t i) {
      for (size_t dep : deps[di]) {
        if (!done[dep]) continue;
        if (std::find(instances[dep].begin(), instances[dep].end(), i) == instances[dep].end()) return false;
      }
      return true;
    };

    std::vector<Ranked> chosen;
    std::set<size_t> kept;
    if (!d.pinned.empty() && wanted > 0) {
      for (const auto& id : d.pinned) {
        for (size_t i = 0; i < n; ++i) {
          if (nodes[i]->id != id || kept.count(i) || !staticallyFeasible(*nodes[i], d) || !colocated(i)) continue;
          kept.insert(i);
          chosen.push_back(ranked(i));
        }
      }
      std::sort(chosen.begin(), chosen.end(), better);
      while (chosen.size() > wanted) {
        kept.erase(chosen.back().node);
        chosen.pop_back();
      }
    }
    std::vector<Ranked> rest;
    for (size_t i = 0; i < n; ++i) {
      if (kept.count(i) || !staticallyFeasible(*nodes[i], d) || !colocated(i)) continue;
      if (cpu > 0 && cpu_left[i] < cpu) continue;
      if (memory > 0 && memory_left[i] < memory) continue;
      rest.push_back(ranked(i));
    }
    std::sort(rest.begin(), rest.end(), better);
    for (size_t k = 0; k < rest.size() && chosen.size() < wanted; ++k) chosen.push_back(rest[k]);

    std::vector<size_t>& placed = instances[di];
    for (const auto& c : chosen) placed.push_back(c.node);
    if (placed.size() < wanted && per_node > 1 && !chosen.empty()) {
      std::vector<int64_t> cpu_rem, memory_rem;
      for (const auto& c : chosen) {
        cpu_rem.push_back(cpu_left[c.node] - cpu);
        memory_rem.push_back(memory_left[c.node] - memory);
      }
      for (uint32_t round = 2; round <= per_node && placed.size() < wanted; ++round) {
        bool any = false;
        for (size_t j = 0; j < chosen.size() && placed.size() < wanted; ++j) {
          if (cpu > 0 && cpu_rem[j] < cpu) continue;
          if (memory > 0 && memory_rem[j] < memory) continue;
          cpu_rem[j] -= cpu;
          memory_rem[j] -= memory;
          placed.push_back(chosen[j].node);
          any = true;
        }
        if (!any) break;
      }
    }
    for (size_t i : placed) {
      load[i].cpu_reserved += cpu;
      load[i].memory_reserved += memory;
      ++load[i].instances;
      cpu_left[i] -= cpu;
      memory_left[i] -= memory;
    }
    done[di] = true;

    RefResult r;
    r.wanted = wanted;
    r.infeasible = placed.size() < wanted;
    for (size_t i : placed) r.nodes.push_back(nodes[i]->id);
    out[d.name] = std::move(r);
  }
  return out;
}

std::string describeRef(const std::map<std::string, RefResult>& r) {
  std::string out;
  for (const auto& [name, d] : r) {
    out += name + " wanted " + std::to_string(d.wanted) + (d.infeasible ? " infeasible" : "") + ":";
    for (const auto& x : d.nodes) out += " " + x;
    out += "\n";
  }
  return out;
}

void checkAgainstReference(const std::vector<NodeView>& nodes, const std::vector<DaemonRequest>& daemons,
                           Rng& rng) {
  const auto ref = referenceAssign(nodes, daemons);
  const auto got = assign(nodes, daemons, AssignOptions{Detail::kInfeasible});
  REQUIRE(got.daemons.size() == ref.size());
  bool same = true;
  for (const auto& [name, r] : ref) {
    auto it = got.daemons.find(name);
    same = same && it != got.daemons.end() && it->second.nodes == r.nodes && it->second.wanted == r.wanted &&
           it->second.infeasible == r.infeasible;
  }
  if (!same) {
    INFO("reference:\n" << describeRef(ref) << "assign():\n" << describe(got));
    REQUIRE(same);
  }
  // explain() answers what assign() answers, for a few daemons.
  for (int k = 0; k < 3 && !daemons.empty(); ++k) {
    const std::string& name = daemons[rng.uniform(daemons.size())].name;
    auto e = explain(nodes, daemons, name);
    REQUIRE(e.isOk());
    const DaemonAssignment& a = got.daemons.at(name);
    CHECK(e.value().nodes == a.nodes);
    CHECK(e.value().infeasible == a.infeasible);
    CHECK(e.value().detailed);
    // Every chosen node is in explain's feasible list (a kept pin counts as feasible).
    std::set<std::string> feasible;
    for (const auto& f : e.value().feasible) feasible.insert(f.node);
    for (const auto& x : a.nodes) CHECK(feasible.count(x) == 1);
  }
}

}  // namespace

TEST_CASE("reference: assign() equals a plain reimplementation of the rules on small random views") {
  const auto [first, count] = seeds(50'000, 2000);
  RandomViewOptions o;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    const auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    const auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    checkAgainstReference(nodes, daemons, rng);
  }
}

TEST_CASE("reference: larger views, where many nodes tie on utilization and levels move during the pass") {
  const auto [first, count] = seeds(60'000, 12);
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    RandomViewOptions o;
    o.max_nodes = 250;
    o.max_daemons = 400;
    // Half the cases without dead nodes or pins: most nodes usable, long runs of equal level.
    if (seed % 2 == 0) {
      o.dead_and_draining = false;
      o.pins = false;
    }
    const auto nodes = randomNodes(rng, 50 + rng.uniform(o.max_nodes - 50), o);
    const auto daemons = randomDaemons(rng, 100 + rng.uniform(o.max_daemons - 100), nodes, o);
    checkAgainstReference(nodes, daemons, rng);
  }
}

TEST_CASE("reference: only spread daemons with small reservations on equal nodes (pure rendezvous within a step)") {
  const auto [first, count] = seeds(70'000, 40);
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    std::vector<NodeView> nodes;
    const size_t node_count = 20 + rng.uniform(100);
    for (size_t i = 0; i < node_count; ++i) {
      NodeView n = node("n-" + std::to_string(i) + "-" + std::to_string(rng.uniform(1000)), {}, 4000,
                        int64_t{8} << 30);
      n.alive = !rng.chance(0.05);
      if (rng.chance(0.3)) n.labels["zone"] = "a";
      nodes.push_back(std::move(n));
    }
    std::vector<DaemonRequest> daemons;
    const size_t daemon_count = 50 + rng.uniform(300);
    for (size_t i = 0; i < daemon_count; ++i) {
      DaemonRequest d = daemon("s" + std::to_string(i), 1 + static_cast<uint32_t>(rng.uniform(4)));
      d.resources.cpu_millicores = rng.chance(0.7) ? 50 * static_cast<int64_t>(1 + rng.uniform(6)) : 0;
      if (rng.chance(0.2)) d.placement.strategy = spec::PlacementStrategy::kBinpack;
      if (rng.chance(0.2)) d.placement.constraints.push_back(constraint("zone", spec::ConstraintOp::kEquals, {"a"}));
      if (rng.chance(0.05)) d.pinned.push_back(nodes[rng.uniform(nodes.size())].id);
      daemons.push_back(std::move(d));
    }
    checkAgainstReference(nodes, daemons, rng);
  }
}
