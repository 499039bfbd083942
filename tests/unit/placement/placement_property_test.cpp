// Property tests over seeded random views. Each case prints its seed on failure; rerun one
// with MESHOS_SEED=<seed> (the case count then drops to 1).
#include <doctest/doctest.h>

#include <cstdlib>
#include <set>

#include "placement/placement.h"
#include "tests/unit/placement/views.h"

using namespace meshos;
using namespace meshos::placement;
using namespace meshos::placement::testing;

namespace {

uint32_t limitOf(const DaemonRequest& d) {
  return static_cast<uint32_t>(std::max<int64_t>(1, d.placement.max_per_node));
}

}  // namespace

TEST_CASE("property: the same view, nodes and daemons shuffled, gives the same assignment") {
  const auto [first, count] = seeds(1000, 1500);
  RandomViewOptions o;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const auto a = assign(nodes, daemons, AssignOptions{Detail::kAll});
    rng.shuffle(nodes);
    rng.shuffle(daemons);
    for (auto& n : nodes) rng.shuffle(n.capabilities);
    const auto b = assign(nodes, daemons, AssignOptions{Detail::kAll});
    INFO("first:\n" << describe(a) << "shuffled:\n" << describe(b));
    REQUIRE(sameAssignment(a, b));
    REQUIRE(fingerprint(nodes, daemons) == fingerprint(std::vector<NodeView>(nodes.rbegin(), nodes.rend()),
                                                       std::vector<DaemonRequest>(daemons.rbegin(), daemons.rend())));
  }
}

TEST_CASE("property: never on an infeasible node; exact replica count unless reported infeasible") {
  const auto [first, count] = seeds(20'000, 1500);
  RandomViewOptions o;
  o.pins = false;  // pins may exceed resources by design; checked in the unit tests
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    const auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    const auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const auto a = assign(nodes, daemons);
    INFO(describe(a));
    const auto by_node = a.byNode();
    std::map<std::string, const NodeView*> by_id;
    for (const auto& n : nodes) by_id[n.id] = &n;
    std::map<std::string, const DaemonRequest*> by_name;
    for (const auto& d : daemons) by_name[d.name] = &d;
    std::map<std::string, int64_t> cpu, memory;
    REQUIRE(a.daemons.size() == daemons.size());
    for (const auto& d : daemons) {
      const auto& got = a.daemons.at(d.name);
      CHECK(got.wanted == d.replicas);
      CHECK(got.infeasible == (got.nodes.size() < d.replicas));
      CHECK(got.nodes.size() <= d.replicas);
      std::map<std::string, uint32_t> per_node;
      for (const auto& id : got.nodes) {
        INFO("daemon " << d.name << " on " << id);
        REQUIRE(by_id.count(id) == 1);
        const NodeView& n = *by_id[id];
        CHECK(staticallyFeasible(n, d));
        for (const auto& dep : d.depends_on) {
          if (by_name.count(dep) == 0) continue;
          CHECK(nodeSet(a.daemons.at(dep)).count(id) == 1);
        }
        ++per_node[id];
        cpu[id] += d.resources.cpu_millicores;
        memory[id] += d.resources.memory_bytes;
      }
      for (const auto& [id, c] : per_node) {
        CHECK(c <= limitOf(d));
        CHECK(by_node.at(id).at(d.name) == c);
      }
    }
    for (const auto& [id, c] : cpu) CHECK(c <= by_id[id]->cpu_millicores);
    for (const auto& [id, m] : memory) CHECK(m <= by_id[id]->memory_bytes);
    // byNode() holds nothing else.
    size_t instances = 0;
    for (const auto& [id, ds] : by_node) {
      for (const auto& [name, c] : ds) instances += c;
    }
    size_t placed = 0;
    for (const auto& [name, d] : a.daemons) placed += d.nodes.size();
    CHECK(instances == placed);
  }
}

TEST_CASE("property: without resources and dependencies, the replica count is exact when nodes suffice") {
  const auto [first, count] = seeds(40'000, 1500);
  RandomViewOptions o;
  o.resources = false;
  o.dependencies = false;
  o.pins = false;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    const auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    const auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const auto a = assign(nodes, daemons);
    for (const auto& d : daemons) {
      INFO("daemon " << d.name);
      size_t feasible = 0;
      for (const auto& n : nodes) feasible += staticallyFeasible(n, d) ? 1 : 0;
      const size_t expected = std::min<size_t>(d.replicas, feasible * limitOf(d));
      const auto& got = a.daemons.at(d.name);
      CHECK(got.nodes.size() == expected);
      CHECK(nodeSet(got).size() == std::min<size_t>(d.replicas, feasible));
      CHECK(got.infeasible == (expected < d.replicas));
    }
  }
}

TEST_CASE("property: adding a node moves only what rendezvous hashing moves to it") {
  const auto [first, count] = seeds(60'000, 1500);
  RandomViewOptions o;
  o.resources = false;
  o.dependencies = false;
  o.pins = false;
  o.near_labels = false;  // a new node carrying the label would move the target itself
  o.extra_per_node = false;
  size_t moved = 0;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    const auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const auto before = assign(nodes, daemons);
    const NodeView added = randomNodes(rng, 1, o, 1000).front();
    nodes.push_back(added);
    rng.shuffle(nodes);
    const auto after = assign(nodes, daemons);
    for (const auto& d : daemons) {
      INFO("daemon " << d.name);
      const auto old_set = nodeSet(before.daemons.at(d.name));
      const auto new_set = nodeSet(after.daemons.at(d.name));
      size_t lost = 0;
      for (const auto& n : old_set) lost += new_set.count(n) == 0 ? 1 : 0;
      for (const auto& n : new_set) CHECK((old_set.count(n) == 1 || n == added.id));
      CHECK(lost <= 1);
      if (lost == 1) {
        CHECK(new_set.count(added.id) == 1);
        ++moved;
      }
    }
  }
  CHECK(moved > 0);  // the property was exercised
}

TEST_CASE("property: removing a node moves only its instances") {
  const auto [first, count] = seeds(80'000, 1500);
  RandomViewOptions o;
  o.resources = false;
  o.dependencies = false;
  o.pins = false;
  o.near_labels = false;
  o.extra_per_node = false;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    auto nodes = randomNodes(rng, 2 + rng.uniform(o.max_nodes), o);
    const auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const auto before = assign(nodes, daemons);
    const size_t gone = rng.uniform(nodes.size());
    const NodeView removed = nodes[gone];
    nodes.erase(nodes.begin() + static_cast<long>(gone));
    const auto after = assign(nodes, daemons);
    for (const auto& d : daemons) {
      if (d.placement.near == removed.name) continue;  // its target left: every score moved
      INFO("daemon " << d.name);
      const auto new_set = nodeSet(after.daemons.at(d.name));
      for (const auto& n : nodeSet(before.daemons.at(d.name))) {
        if (n != removed.id) CHECK(new_set.count(n) == 1);
      }
    }
  }
}

TEST_CASE("property: the Assigner answers what assign() answers, and caches across shuffles") {
  const auto [first, count] = seeds(90'000, 300);
  RandomViewOptions o;
  Assigner assigner;
  for (uint64_t seed = first; seed < first + static_cast<uint64_t>(count); ++seed) {
    INFO("seed " << seed);
    Rng rng(seed);
    auto nodes = randomNodes(rng, 1 + rng.uniform(o.max_nodes), o);
    auto daemons = randomDaemons(rng, 1 + rng.uniform(o.max_daemons), nodes, o);
    const uint64_t before = assigner.recomputes();
    REQUIRE(sameAssignment(assigner.assign(nodes, daemons), assign(nodes, daemons)));
    rng.shuffle(nodes);
    rng.shuffle(daemons);
    REQUIRE(sameAssignment(assigner.assign(nodes, daemons), assign(nodes, daemons)));
    CHECK(assigner.recomputes() == before + 1);
  }
}
