// placement_bench: time a full placement pass and the Assigner's steady state.
//
//   placement_bench [--daemons 10000] [--nodes 1000] [--runs 20] [--seed 1]
//
// Builds one seeded, realistic view (zones, racks, capabilities, capacities, coordinates;
// daemons with replicas 1-5, resources, spread/binpack/near, constraints, dependencies),
// then reports the median and worst of `runs` timings for:
//   assign()          a full pass (what a tick costs when the view changed),
//   Assigner steady   Assigner::assign() with unchanged inputs (fingerprint + cache hit),
//   fingerprint()     the fingerprint alone,
//   explain()         one daemon with every node's reason.
// It also prints a digest of the assignment (every daemon's nodes, in order): equal digests
// across builds or versions mean equal assignments for the generated view.
// Single thread. Build with --buildtype=release for figures.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <ctime>
#include <vector>

#include <CLI/CLI.hpp>

#include "agent/core/rng.h"
#include "placement/placement.h"

using namespace meshos;
using namespace meshos::placement;
using Clock = std::chrono::steady_clock;

namespace {

std::vector<NodeView> makeNodes(Rng& rng, size_t count) {
  static const char* kZones[] = {"a", "b", "c", "d", "e"};
  std::vector<NodeView> nodes;
  nodes.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    NodeView n;
    n.id = "node-" + std::to_string(rng.next());
    n.name = "host-" + std::to_string(i);
    n.alive = !rng.chance(0.02);
    n.active = !rng.chance(0.01);
    n.labels["zone"] = kZones[rng.uniform(5)];
    n.labels["rack"] = "r" + std::to_string(rng.uniform(40));
    n.labels["os"] = "linux";
    if (rng.chance(0.02)) n.labels["role"] = rng.chance(0.5) ? "db" : "cache";
    if (rng.chance(0.5)) n.capabilities.push_back("ssd");
    if (rng.chance(0.1)) n.capabilities.push_back("gpu");
    n.capabilities.push_back("x86_64");
    std::sort(n.capabilities.begin(), n.capabilities.end());
    n.cpu_millicores = 8000 * (1 + static_cast<int64_t>(rng.uniform(4)));
    n.memory_bytes = (int64_t{16} << 30) * (1 + static_cast<int64_t>(rng.uniform(4)));
    n.coordinate = Coordinate{{rng.unit() * 0.05, rng.unit() * 0.05, rng.unit() * 0.05, rng.unit() * 0.05,
                               rng.unit() * 0.05, rng.unit() * 0.05, rng.unit() * 0.05, rng.unit() * 0.05},
                              rng.unit() * 0.001, 0};
    nodes.push_back(std::move(n));
  }
  return nodes;
}

std::vector<DaemonRequest> makeDaemons(Rng& rng, size_t count, const std::vector<NodeView>& nodes) {
  static const char* kZones[] = {"a", "b", "c", "d", "e"};
  std::vector<DaemonRequest> daemons;
  daemons.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    DaemonRequest d;
    d.name = "svc-" + std::to_string(i) + "-" + std::to_string(rng.uniform(1000));
    const double r = rng.unit();
    d.replicas = r < 0.6 ? 1 : r < 0.85 ? 2 + static_cast<uint32_t>(rng.uniform(2)) : 5;
    if (rng.chance(0.7)) {
      d.resources.cpu_millicores = 100 * (1 + static_cast<int64_t>(rng.uniform(5)));
      d.resources.memory_bytes = (int64_t{128} << 20) * (1 + static_cast<int64_t>(rng.uniform(4)));
    }
    const double s = rng.unit();
    d.placement.strategy = s < 0.7   ? spec::PlacementStrategy::kSpread
                           : s < 0.9 ? spec::PlacementStrategy::kBinpack
                                     : spec::PlacementStrategy::kNear;
    if (d.placement.strategy == spec::PlacementStrategy::kNear) {
      d.placement.near = rng.chance(0.5) ? nodes[rng.uniform(20)].name
                                         : std::string(rng.chance(0.5) ? "role=db" : "role=cache");
    }
    if (rng.chance(0.3)) {
      spec::Constraint c;
      c.label = "zone";
      if (rng.chance(0.5)) {
        c.op = spec::ConstraintOp::kEquals;
        c.values = {kZones[rng.uniform(5)]};
      } else {
        c.op = spec::ConstraintOp::kIn;
        c.values = {kZones[rng.uniform(5)], kZones[rng.uniform(5)]};
      }
      d.placement.constraints.push_back(std::move(c));
    }
    if (rng.chance(0.05)) {
      spec::Constraint c;
      c.label = "rack";
      c.op = spec::ConstraintOp::kNotIn;
      c.values = {"r0", "r1"};
      d.placement.constraints.push_back(std::move(c));
    }
    if (rng.chance(0.1)) d.placement.capabilities.push_back(rng.chance(0.3) ? "gpu" : "ssd");
    if (i > 0 && rng.chance(0.1)) {
      // A sidecar-like dependent: co-located, so at most as many replicas as its dependency.
      const DaemonRequest& dep = daemons[rng.uniform(daemons.size())];
      d.depends_on.push_back(dep.name);
      d.replicas = std::min(d.replicas, dep.replicas);
    }
    daemons.push_back(std::move(d));
  }
  return daemons;
}

double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

// Wall time and this thread's CPU time (the machine may be shared: CPU time is what one
// core spends), median and worst of each.
struct Figures {
  double wall_median_ms, wall_max_ms, cpu_min_ms, cpu_median_ms, cpu_max_ms;
};

template <class F>
Figures timeRuns(int runs, F&& f) {
  std::vector<double> wall, cpu;
  for (int i = 0; i < runs; ++i) {
    const auto t0 = Clock::now();
    const double c0 = threadCpuMs();
    f();
    cpu.push_back(threadCpuMs() - c0);
    wall.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  std::sort(wall.begin(), wall.end());
  std::sort(cpu.begin(), cpu.end());
  return {wall[wall.size() / 2], wall.back(), cpu.front(), cpu[cpu.size() / 2], cpu.back()};
}

void print(const char* what, const Figures& f) {
  std::printf("  %-24s cpu min %8.3f  median %8.3f  max %8.3f ms | wall median %8.3f  max %8.3f ms\n", what,
              f.cpu_min_ms, f.cpu_median_ms, f.cpu_max_ms, f.wall_median_ms, f.wall_max_ms);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"placement_bench: time assign() and the Assigner's steady state"};
  size_t daemons_count = 10'000;
  size_t nodes_count = 1'000;
  int runs = 20;
  uint64_t seed = 1;
  app.add_option("--daemons", daemons_count, "desired daemons")->check(CLI::Range(1, 1'000'000));
  app.add_option("--nodes", nodes_count, "nodes in the view")->check(CLI::Range(1, 100'000));
  app.add_option("--runs", runs, "timed runs per figure")->check(CLI::Range(1, 10'000));
  app.add_option("--seed", seed, "seed of the generated view");
  CLI11_PARSE(app, argc, argv);

  Rng rng(seed);
  const auto nodes = makeNodes(rng, nodes_count);
  const auto daemons = makeDaemons(rng, daemons_count, nodes);

  // Warm-up, and the shape of the answer.
  const Assignment a = assign(nodes, daemons);
  size_t instances = 0, wanted = 0, infeasible = 0;
  for (const auto& [name, d] : a.daemons) {
    instances += d.nodes.size();
    wanted += d.wanted;
    infeasible += d.infeasible ? 1 : 0;
  }
  // Why the infeasible ones are short: counts of each kind of reason (text up to ':' or digit).
  std::map<std::string, size_t> reasons;
  for (const auto& [name, d] : a.daemons) {
    if (!d.infeasible) continue;
    for (const auto& [node, why] : d.excluded) {
      size_t cut = why.find_first_of(":=0123456789");
      ++reasons[why.substr(0, cut)];
    }
  }
  size_t per_node_min = SIZE_MAX, per_node_max = 0;
  const auto by_node = a.byNode();
  for (const auto& n : nodes) {
    size_t c = 0;
    if (auto it = by_node.find(n.id); it != by_node.end()) {
      for (const auto& [d, k] : it->second) c += k;
    }
    if (n.alive && n.active) {
      per_node_min = std::min(per_node_min, c);
      per_node_max = std::max(per_node_max, c);
    }
  }

  const Figures full = timeRuns(runs, [&] {
    Assignment x = assign(nodes, daemons);
    if (x.daemons.size() != a.daemons.size()) std::abort();
  });
  Assigner assigner;
  (void)assigner.assign(nodes, daemons);
  const Figures steady = timeRuns(runs * 5, [&] {
    if (assigner.assign(nodes, daemons).daemons.size() != a.daemons.size()) std::abort();
  });
  if (assigner.recomputes() != 1) std::abort();
  uint64_t sink = 0;
  const Figures fp = timeRuns(runs * 5, [&] { sink ^= fingerprint(nodes, daemons); });
  const std::string probe = daemons[daemons.size() / 2].name;
  const Figures ex = timeRuns(runs, [&] {
    auto e = explain(nodes, daemons, probe);
    if (!e.isOk()) std::abort();
  });

  std::printf("placement_bench: %zu daemons x %zu nodes, seed %llu, %d runs\n", daemons.size(), nodes.size(),
              static_cast<unsigned long long>(seed), runs);
  std::printf("  instances placed %zu of %zu wanted, infeasible daemons %zu, instances per usable node %zu..%zu\n",
              instances, wanted, infeasible, per_node_min, per_node_max);
  // A digest of the answer (every daemon's nodes, in order), to compare builds and versions.
  uint64_t digest = 0xcbf29ce484222325ULL;
  auto mixIn = [&](const std::string& text) {
    for (unsigned char ch : text) digest = (digest ^ ch) * 0x100000001b3ULL;
    digest = (digest ^ 0xff) * 0x100000001b3ULL;
  };
  for (const auto& [name, d] : a.daemons) {
    mixIn(name);
    for (const auto& n : d.nodes) mixIn(n);
  }
  std::printf("  assignment digest %016llx\n", static_cast<unsigned long long>(digest));
  std::printf("  reasons in the excluded samples of infeasible daemons:");
  for (const auto& [why, c] : reasons) std::printf(" [%s] %zu", why.c_str(), c);
  std::printf("\n");
  print("assign() full pass", full);
  print("Assigner steady state", steady);
  print("fingerprint() alone", fp);
  print("explain(one daemon)", ex);
  return sink == 42 ? 1 : 0;
}
