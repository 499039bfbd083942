// reconcile_bench: one tick of the cluster-wide reconcile at scale: planLocal() (placement
// assignment + this node's decisions) for D daemons over N nodes. Prints the first tick
// (assignment computed) and the steady state (nothing changed: the Assigner's cached
// assignment is reused, planLocal still walks every daemon).
//
//   reconcile_bench [--daemons 10000] [--nodes 1000] [--rounds 20] [--seed 1] [--firsts 0]
//
// --firsts N also times N more first ticks, each with a fresh Assigner (CPU and wall, min and
// median): the single first tick above is one sample on a cold process.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "agent/reconcile/local_plan.h"

using namespace meshos;

namespace {

double threadCpuMs() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double msSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  size_t daemons = 10'000, nodes = 1'000, rounds = 20, firsts = 0;
  uint64_t seed = 1;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--daemons")) daemons = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--nodes")) nodes = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--rounds")) rounds = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--seed")) seed = std::strtoull(argv[i + 1], nullptr, 10);
    else if (!std::strcmp(argv[i], "--firsts")) firsts = std::strtoull(argv[i + 1], nullptr, 10);
    else {
      std::fprintf(stderr, "usage: reconcile_bench [--daemons N] [--nodes N] [--rounds N] [--seed S] [--firsts N]\n");
      return 2;
    }
  }
  Rng rng(seed);
  const char* zones[] = {"a", "b", "c"};
  reconcile::LocalInputs in;
  for (size_t i = 0; i < nodes; ++i) {
    reconcile::PeerView p;
    p.id = "node-" + std::to_string(i);
    p.name = "n" + std::to_string(i);
    state::NodeReport r;
    r.labels["zone"] = zones[i % 3];
    r.capabilities = {"arch:x86_64", "cpus:64", "os:linux"};
    r.cpu_millicores = 64'000;
    r.memory_bytes = int64_t{256} << 30;
    p.report = r;
    in.nodes.push_back(std::move(p));
  }
  in.self_id = in.nodes[0].id;
  in.members_known = nodes;
  // A settled cluster: every node publishes the view this one computes.
  const uint64_t digest = reconcile::viewDigest(in.nodes);
  for (auto& p : in.nodes) p.report->view_digest = digest;
  commits::DesiredState desired;
  for (size_t i = 0; i < daemons; ++i) {
    commits::DesiredDaemon d;
    d.spec.name = "d" + std::to_string(i);
    d.spec.command = {"/bin/sleep", "1000"};
    d.spec.replicas = 1 + static_cast<int64_t>(rng.uniform(5));
    d.spec.resources.cpu_millicores = 100;
    d.spec.resources.memory_bytes = int64_t{64} << 20;
    if (i % 10 == 0) d.spec.placement.constraints.push_back({"zone", spec::ConstraintOp::kEquals, {zones[i % 3]}});
    d.updated_seq = 1;
    desired.daemons.emplace(d.spec.name, std::move(d));
  }
  in.desired = &desired;
  in.vars = {{"node.host", "10.0.0.1"}, {"node.name", "n0"}, {"node.id", in.self_id}};

  placement::Assigner assigner;
  auto t0 = std::chrono::steady_clock::now();
  auto plan = reconcile::planLocal(in, assigner);
  double first_ms = msSince(t0);
  size_t placed = 0, infeasible = 0;
  for (const auto& d : plan.decisions) {
    placed += d.assigned.size();
    infeasible += d.infeasible;
  }
  std::vector<double> steady;
  for (size_t r = 0; r < rounds; ++r) {
    in.local.clear();
    for (const auto& s : plan.run) in.local[s.name] = {static_cast<uint32_t>(s.replicas), static_cast<uint32_t>(s.replicas)};
    auto t = std::chrono::steady_clock::now();
    plan = reconcile::planLocal(in, assigner);
    steady.push_back(msSince(t));
  }
  std::sort(steady.begin(), steady.end());
  // More first ticks (after the cold one above): a fresh Assigner each time, so the
  // assignment is computed; wall and this thread's CPU time.
  std::vector<double> first_wall, first_cpu;
  for (size_t r = 0; r < firsts; ++r) {
    placement::Assigner fresh;
    const auto t = std::chrono::steady_clock::now();
    const double c = threadCpuMs();
    auto p = reconcile::planLocal(in, fresh);
    first_cpu.push_back(threadCpuMs() - c);
    first_wall.push_back(msSince(t));
  }
  std::printf("daemons %zu, nodes %zu: %zu instances placed, %zu infeasible, %zu run on this node\n", daemons,
              nodes, placed, infeasible, plan.run.size());
  std::printf("first tick (assignment computed): %.2f ms\n", first_ms);
  if (!first_cpu.empty()) {
    std::sort(first_wall.begin(), first_wall.end());
    std::sort(first_cpu.begin(), first_cpu.end());
    std::printf("first tick x%zu (fresh Assigner each): cpu min %.2f median %.2f ms | wall min %.2f median %.2f ms\n",
                first_cpu.size(), first_cpu.front(), first_cpu[first_cpu.size() / 2], first_wall.front(),
                first_wall[first_wall.size() / 2]);
  }
  std::printf("steady tick (nothing changed, %zu rounds): median %.3f ms, max %.3f ms; assignments computed: %llu\n",
              rounds, steady[steady.size() / 2], steady.back(),
              static_cast<unsigned long long>(assigner.recomputes()));
  return 0;
}
