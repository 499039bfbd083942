// Crash-to-recovery time in simulation (sim::AgentCluster: the whole agent on every host;
// simulated network, processes and disks).
//   mesh_bench [--nodes 100] [--daemons 50] [--seeds 5] [--seed 1] [--tick-ms 500]
// For each seed: N nodes converge, `daemons` daemons (replicas 1..5, spread) settle at
// their replica counts, then the node running the most instances crashes. Measured in
// virtual time from the crash:
//   suspect   first node suspects it;  dead_1 / dead_all  first / every up node declares it dead
//   running   every daemon it ran is back at its replica count on up nodes
//   ready     ... and every one of those instances is ready (the figure)
// Compared with failure detection (the suspicion timeout for N with the default gossip
// options: suspicion_mult * log10(N) * probe_interval) + 2 ticks.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "agent/gossip/suspicion.h"
#include "agent/core/logging.h"
#include "agent/sim/agent_cluster.h"
#include "agent/sim/sim_faults.h"

using namespace meshos;

namespace {

struct Run {
  uint64_t seed = 0;
  std::string victim;
  size_t instances = 0;
  int64_t suspect_ms = -1, dead_first_ms = -1, dead_all_ms = -1, running_ms = -1, ready_ms = -1;
  std::string error;
};

size_t seeing(sim::AgentCluster& c, const std::string& id, state::MemberState st) {
  size_t n = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const node::Node* node = c.host(i).node();
    if (node == nullptr || !c.host(i).up()) continue;
    auto it = node->state().members.find(id);
    if (it != node->state().members.end() && it->second.state == st) ++n;
  }
  return n;
}

Run runOnce(uint64_t seed, size_t nodes, size_t daemons, int64_t tick_ms) {
  Run run;
  run.seed = seed;
  sim::AgentClusterOptions o;
  o.configure = [tick_ms](size_t, config::NodeConfig& c) { c.node.tick_interval_ms = tick_ms; };
  sim::AgentCluster c(seed, o);
  static const char* kZones[] = {"a", "b", "c"};
  for (size_t i = 0; i < nodes; ++i) {
    sim::HostSetup s;
    s.labels["zone"] = kZones[i % 3];
    c.addHost(s);
  }
  c.startAll();
  if (!c.runUntil([&] { return c.checkAllUp().isOk() && c.checkConverged().isOk(); }, 60'000).isOk()) {
    run.error = "membership did not converge";
    return run;
  }
  std::vector<commits::Operation> ops;
  for (size_t k = 0; k < daemons; ++k)
    ops.push_back(commits::OpPutDaemon{sim::simService("d" + std::to_string(k), 1 + static_cast<int64_t>(k % 5))});
  if (auto r = c.commit(std::move(ops)); !r) {
    run.error = r.status().toString();
    return run;
  }
  if (!c.runUntil([&] { return c.checkAtReplicas().isOk() && c.checkSameAssignment().isOk(); }, 60'000).isOk()) {
    run.error = "did not settle: " + c.checkAtReplicas().toString();
    return run;
  }
  (void)c.runFor(2'000);

  size_t victim = 0, most = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    size_t n = 0;
    for (const auto& [name, cnt] : c.host(i).runtime().liveByDaemon()) n += cnt;
    if (n > most) most = n, victim = i;
  }
  std::set<std::string> lost;
  for (const auto& [name, cnt] : c.host(victim).runtime().liveByDaemon()) lost.insert(name);
  run.victim = c.host(victim).name();
  run.instances = most;
  const std::string victim_id = c.host(victim).id();
  c.crashMachine(victim);
  const int64_t t0 = c.nowMs();
  const auto& desired = c.desired().daemons;
  while (c.nowMs() - t0 < 120'000) {
    if (!c.runFor(10, {}, 10).isOk()) break;
    const int64_t t = c.nowMs() - t0;
    if (run.suspect_ms < 0 && seeing(c, victim_id, state::MemberState::kSuspect) > 0) run.suspect_ms = t;
    const size_t dead = seeing(c, victim_id, state::MemberState::kDead);
    if (run.dead_first_ms < 0 && dead > 0) run.dead_first_ms = t;
    if (run.dead_all_ms < 0 && dead == c.size() - 1) run.dead_all_ms = t;
    const auto act = c.actual();
    bool running = true, ready = true;
    for (const auto& d : lost) {
      const uint32_t wanted = static_cast<uint32_t>(desired.at(d).spec.replicas);
      auto it = act.find(d);
      if (it == act.end() || it->second.running < wanted) running = false;
      if (it == act.end() || it->second.ready < wanted) ready = false;
    }
    if (run.running_ms < 0 && running) run.running_ms = t;
    if (run.ready_ms < 0 && ready) run.ready_ms = t;
    if (run.ready_ms >= 0 && run.dead_all_ms >= 0) break;
  }
  if (run.ready_ms < 0) run.error = "instances not back within 120 s";
  return run;
}

int64_t median(std::vector<int64_t> v) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"crash-to-recovery time of a simulated mesh"};
  size_t nodes = 100, daemons = 50, seeds = 5;
  uint64_t first_seed = 1;
  int64_t tick_ms = 500;
  app.add_option("--nodes", nodes, "cluster size")->check(CLI::Range(2, 2000));
  app.add_option("--daemons", daemons, "daemons (replicas 1..5)")->check(CLI::Range(1, 5000));
  app.add_option("--seeds", seeds, "runs, seeds seed..seed+n-1")->check(CLI::Range(1, 1000));
  app.add_option("--seed", first_seed, "first seed");
  app.add_option("--tick-ms", tick_ms, "reconcile tick")->check(CLI::Range(10, 10'000));
  CLI11_PARSE(app, argc, argv);
  (void)setupLogging("off", "text");

  const gossip::Options g;
  const int64_t suspicion_ms = gossip::suspicionMinTimeoutMs(g.suspicion_mult, nodes, g.probe_interval_ms);
  const int64_t target_ms = suspicion_ms + 2 * tick_ms;
  std::printf("N=%zu, %zu daemons (replicas 1..5), tick %lld ms, default gossip options (probe %lld ms, "
              "suspicion_mult %d)\n",
              nodes, daemons, static_cast<long long>(tick_ms), static_cast<long long>(g.probe_interval_ms),
              g.suspicion_mult);
  std::printf("failure detection (suspicion timeout, N=%zu) = %lld ms; target = that + 2 ticks = %lld ms\n\n", nodes,
              static_cast<long long>(suspicion_ms), static_cast<long long>(target_ms));
  std::printf("%6s %7s %5s %9s %9s %9s %10s %9s\n", "seed", "victim", "inst", "suspect", "dead_1", "dead_all",
              "running", "ready");
  std::vector<int64_t> ready, running, dead_all, suspect;
  int failures = 0;
  for (uint64_t s = first_seed; s < first_seed + seeds; ++s) {
    Run r = runOnce(s, nodes, daemons, tick_ms);
    if (!r.error.empty()) {
      std::printf("%6llu %s\n", static_cast<unsigned long long>(s), r.error.c_str());
      ++failures;
      continue;
    }
    std::printf("%6llu %7s %5zu %9lld %9lld %9lld %10lld %9lld\n", static_cast<unsigned long long>(s),
                r.victim.c_str(), r.instances, static_cast<long long>(r.suspect_ms),
                static_cast<long long>(r.dead_first_ms), static_cast<long long>(r.dead_all_ms),
                static_cast<long long>(r.running_ms), static_cast<long long>(r.ready_ms));
    std::fflush(stdout);
    ready.push_back(r.ready_ms);
    running.push_back(r.running_ms);
    dead_all.push_back(r.dead_all_ms);
    suspect.push_back(r.suspect_ms);
  }
  if (ready.empty()) return 1;
  auto mx = [](const std::vector<int64_t>& v) { return *std::max_element(v.begin(), v.end()); };
  std::printf("\nms after the crash   median      max\n");
  std::printf("first suspect       %7lld  %7lld\n", static_cast<long long>(median(suspect)),
              static_cast<long long>(mx(suspect)));
  std::printf("dead at every node  %7lld  %7lld\n", static_cast<long long>(median(dead_all)),
              static_cast<long long>(mx(dead_all)));
  std::printf("all running again   %7lld  %7lld\n", static_cast<long long>(median(running)),
              static_cast<long long>(mx(running)));
  std::printf("all ready again     %7lld  %7lld   (target %lld ms: %s)\n", static_cast<long long>(median(ready)),
              static_cast<long long>(mx(ready)), static_cast<long long>(target_ms),
              mx(ready) <= target_ms ? "met" : "missed");
  return failures == 0 ? 0 : 1;
}
