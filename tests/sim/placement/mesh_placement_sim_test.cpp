// Seeded simulations of the whole cluster-wide loop (sim::MeshCluster): the real gossip
// membership, commit log, placement and reconcile::planLocal on every node, over the
// simulated network, with a simulated runtime. 30 nodes, 20 daemons (replicas 1..5, label
// and capability constraints, one with a resource reservation):
//   - placement: every daemon at its replica count on distinct feasible nodes, then 5 crashes
//     and back at the replica count within failure detection + a few ticks;
//   - partition 18/12 and heal: no daemon over- or under-replicated once it settles;
//   - drain: instances leave make-before-break (never zero ready), the node ends empty and
//     reports in-maintenance, and returns to service on exit.
// Invariants are checked every 100 ms of virtual time. A failure prints the seed, the time,
// what broke and where everything runs; MESHOS_SIM_SEED=<n> replays one seed.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdlib>
#include <functional>
#include <set>
#include <string>

#include "agent/gossip/suspicion.h"
#include "agent/sim/mesh_cluster.h"
#include "tests/sim/mesh_sim_support.h"

using namespace meshos;
using meshos::sim::MeshCluster;
using meshos::sim::MeshOptions;
using meshos::sim::NodeSetup;
using namespace meshos::sim::testing;

namespace {

constexpr size_t kNodes = 30;

// How long an exact settle (no extra instance left anywhere) may take. An instance kept for
// a make-before-break handoff stops when its new holders are seen ready. Over seeds 1-40 the
// slowest settle was 14.6 s after a commit and 32.6 s after a heal (re-joining across a
// healed partition waits for the 30 s reconnect timer); 40 s bounds both, well inside the
// 60 s handoff deadline, so a holder that missed its successors' readiness fails the test.
int64_t exactSettleMs(const MeshCluster&) { return 40'000; }

MeshOptions lanOptions() {
  MeshOptions o;
  o.cluster.link.latency_ms = 1;
  o.cluster.link.jitter_ms = 2;
  return o;
}

NodeSetup setupFor(size_t i) {
  NodeSetup s;
  static const char* kZones[] = {"a", "b", "c"};
  s.labels["zone"] = kZones[i % 3];
  s.labels["disk"] = i % 2 == 0 ? "ssd" : "hdd";
  if (i % 5 == 0) s.capabilities = {"gpu"};
  s.cpu_millicores = 4000;
  s.memory_bytes = 8LL << 30;
  return s;
}

spec::Constraint constraint(std::string label, spec::ConstraintOp op, std::vector<std::string> values) {
  spec::Constraint c;
  c.label = std::move(label);
  c.op = op;
  c.values = std::move(values);
  return c;
}

// d00..d19: replicas 1..5; zone in/not-in, disk equals, a gpu capability, one reserving
// 2500m of a node's 4000m (so at most one per node).
std::vector<spec::DaemonSpec> daemonSet() {
  using spec::ConstraintOp;
  std::vector<spec::DaemonSpec> out;
  for (int k = 0; k < 20; ++k) {
    spec::DaemonSpec s;
    s.name = (k < 10 ? "d0" : "d") + std::to_string(k);
    s.command = {"/bin/sleep", "1000"};
    s.replicas = 1 + k % 5;
    switch (k) {
      case 1: case 5: case 8: s.placement.constraints = {constraint("zone", ConstraintOp::kIn, {"a", "b"})}; break;
      case 2: case 6: case 9: case 15: s.placement.constraints = {constraint("disk", ConstraintOp::kEquals, {"ssd"})}; break;
      case 3: case 16: s.placement.constraints = {constraint("zone", ConstraintOp::kNotIn, {"c"})}; break;
      case 13: s.placement.constraints = {constraint("zone", ConstraintOp::kEquals, {"a"})}; break;
      case 19: s.placement.constraints = {constraint("zone", ConstraintOp::kIn, {"b", "c"})}; break;
      case 11: s.placement.capabilities = {"gpu"}; break;
      case 12:
        s.resources.cpu_millicores = 2500;
        s.resources.memory_bytes = 1LL << 30;
        break;
      default: break;
    }
    out.push_back(std::move(s));
  }
  return out;
}

// Holds `check` at every step for window_ms.
Status holdFor(MeshCluster& c, int64_t window_ms, const std::function<Status()>& check) {
  return c.runFor(window_ms, check, kStepMs);
}

Status settled(MeshCluster& c) {
  MESHOS_RETURN_IF_ERROR(c.checkAtReplicas());
  MESHOS_RETURN_IF_ERROR(c.checkSameAssignment());
  return c.checkResources();
}

// Builds the 30-node cluster, lets membership converge, commits the daemon set and waits
// for every daemon to be at its replica count.
void bringUp(MeshCluster& c) {
  for (size_t i = 0; i < kNodes; ++i) c.addNode(setupFor(i));
  c.startAll(3);
  REQUIRE_MESSAGE(c.runUntil([&] { return c.gossip().converged(); }, 30'000),
                  failure(c, "membership did not converge"));
  std::vector<commits::Operation> ops;
  for (auto& s : daemonSet()) ops.push_back(commits::OpPutDaemon{std::move(s)});
  auto r = c.commit(std::move(ops), "20 daemons");
  REQUIRE_MESSAGE(r.isOk(), failure(c, r.status().toString()));
  const int64_t committed_at = c.nowMs();
  Status s = runUntilChecked(c, 20'000 + exactSettleMs(c), [&] { return settled(c); }, [&] { return c.checkFeasible(); });
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << c.seed() << ": 20 daemons settled " << c.nowMs() - committed_at << " ms after the commit");
}

}  // namespace

TEST_CASE("sim-placement: 20 daemons on 30 nodes; 5 crashes and back at replica count") {
  const uint64_t seed = seedFor(7001);
  CAPTURE(seed);
  MeshCluster c(seed, lanOptions());
  bringUp(c);
  Status s = holdFor(c, 3'000, [&] { return settled(c); });
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));

  // Five crashes among the nodes that run something, chosen by the seed.
  Rng pick(seed ^ 0x5eed);
  std::vector<size_t> busy;
  for (size_t i = 0; i < c.size(); ++i)
    if (c.node(i).runtime().counts(c.nowMs()).size() > 0) busy.push_back(i);
  pick.shuffle(busy);
  REQUIRE(busy.size() >= 5);
  std::string victims;
  for (size_t k = 0; k < 5; ++k) {
    c.crash(busy[k]);
    victims += " " + c.node(busy[k]).name();
  }
  INFO("crashed:" << victims);
  const int64_t crashed_at = c.nowMs();
  // Failure detection: every up node holds every victim suspect or dead (placement drops a
  // node that is not alive, so this is when every node computes the new assignment).
  // Recovery must come within a few ticks of it, and in any case within the longest
  // suspicion timeout for N=30 (no confirmations) plus two probe rounds and a few ticks.
  // When every node has declared the victims dead is reported too.
  const auto& g = c.options().cluster.gossip;
  const int64_t min_ms = gossip::suspicionMinTimeoutMs(g.suspicion_mult, kNodes, g.probe_interval_ms);
  const int64_t cap_ms = min_ms * g.suspicion_max_timeout_mult + 2 * g.probe_interval_ms + 4 * c.options().tick_ms;
  const int64_t ticks_ms = 4 * c.options().tick_ms + c.options().ready_delay_ms + c.options().ready_jitter_ms;
  int64_t suspected_ms = -1, dead_ms = -1;
  auto detect = [&] {
    bool all_suspected = true, all_dead = true;
    for (size_t k = 0; k < 5; ++k) {
      const std::string& id = c.node(busy[k]).id();
      const size_t dead = c.gossip().countSeeing(id, gossip::MemberState::kDead);
      if (dead + c.gossip().countSeeing(id, gossip::MemberState::kSuspect) < kNodes - 5) all_suspected = false;
      if (dead < kNodes - 5) all_dead = false;
    }
    if (suspected_ms < 0 && all_suspected) suspected_ms = c.nowMs() - crashed_at;
    if (dead_ms < 0 && all_dead) dead_ms = c.nowMs() - crashed_at;
  };
  // Recovered: every daemon has its replica count of ready instances on distinct up nodes.
  s = runUntilChecked(c, cap_ms, [&] { return c.checkAtReplicas(/*at_least=*/true); },
                      [&] { detect(); return c.checkFeasible(); });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
  const int64_t recovered_ms = c.nowMs() - crashed_at;
  // (Recovered before every node noticed: sooner still.)
  CHECK_MESSAGE((suspected_ms < 0 || recovered_ms <= suspected_ms + ticks_ms),
                failure(c, "recovered " + std::to_string(recovered_ms) + " ms after the crashes, every node noticed them at " +
                               std::to_string(suspected_ms) + " ms"));
  // Then exact (no extra instance left over) with the same assignment everywhere.
  s = runUntilChecked(c, exactSettleMs(c), [&] { return settled(c); }, [&] { detect(); return c.checkFeasible(); });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
  const int64_t exact_ms = c.nowMs() - crashed_at;
  CHECK_MESSAGE(c.runUntil([&] { detect(); return dead_ms >= 0; }, cap_ms), failure(c, "crashes never declared dead"));
  MESSAGE("seed " << seed << ": 5 crashes: every node suspected them at " << suspected_ms << " ms, back at replica count at "
                  << recovered_ms << " ms, exact at " << exact_ms << " ms; every node declared them dead at " << dead_ms
                  << " ms (suspicion min " << min_ms << " ms)");
  // And it stays there.
  s = holdFor(c, 5'000, [&] { return settled(c); });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
}

TEST_CASE("sim-placement: partition 18/12 and heal; no daemon stays over- or under-replicated") {
  const uint64_t seed = seedFor(7002);
  CAPTURE(seed);
  MeshCluster c(seed, lanOptions());
  bringUp(c);

  c.partition(18);
  const int64_t cut_at = c.nowMs();
  // The minority side (12 of 30 < half) is isolated: it keeps what it runs, starts nothing.
  bool minority_isolated = c.runUntil(
      [&] {
        for (size_t i = 18; i < kNodes; ++i)
          if (!c.node(i).plan().isolated) return false;
        return true;
      },
      40'000);
  CHECK_MESSAGE(minority_isolated, failure(c, "the 12-node side never reported isolated"));
  Status s = c.runFor(20'000 - (c.nowMs() - cut_at), [&] { return c.checkFeasible(); }, kStepMs);
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));

  c.heal();
  const int64_t healed_at = c.nowMs();
  s = runUntilChecked(
      c, 90'000,
      [&] {
        if (!c.gossip().converged()) return Status::unavailable("membership not converged");
        return settled(c);
      },
      [&] { return c.checkFeasible(); });
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << seed << ": settled " << c.nowMs() - healed_at << " ms after the heal");
  for (size_t i = 0; i < kNodes; ++i) CHECK_MESSAGE(!c.node(i).plan().isolated, failure(c, c.node(i).name() + " still isolated"));
  // No daemon under-replicated at any step of a 20 s window. Gossip may still suspect a
  // node falsely for a moment after a heal (a stale suspicion is refuted); placement treats
  // a suspect as not alive, so an extra instance may start and is wound down again: such
  // episodes are counted, and must end (exact counts again) within the settle bound.
  int64_t off_exact_ms = 0;
  s = holdFor(c, 20'000, [&]() -> Status {
    MESHOS_RETURN_IF_ERROR(c.checkFeasible());
    MESHOS_RETURN_IF_ERROR(c.checkAtReplicas(/*at_least=*/true));
    if (!settled(c)) off_exact_ms += kStepMs;
    return Status::ok();
  });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
  s = runUntilChecked(c, exactSettleMs(c), [&] { return settled(c); }, [&] { return c.checkAtReplicas(true); });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << seed << ": in the 20 s window after settling, " << off_exact_ms
                  << " ms off exact counts (never under-replicated)");
}

TEST_CASE("sim-placement: drain relocates make-before-break, then in-maintenance, then back") {
  const uint64_t seed = seedFor(7003);
  CAPTURE(seed);
  MeshCluster c(seed, lanOptions());
  bringUp(c);

  // Drain the node with the most instances, preferring one that holds a single-replica daemon.
  size_t target = 0;
  int best = -1;
  const auto& desired = c.desired().daemons;
  for (size_t i = 0; i < c.size(); ++i) {
    int score = 0;
    for (const auto& [name, cnt] : c.node(i).runtime().counts(c.nowMs())) {
      score += static_cast<int>(cnt.running);
      if (desired.at(name).spec.replicas == 1) score += 100;
    }
    if (score > best) best = score, target = i;
  }
  const std::string drained = c.node(target).name();
  std::set<std::string> affected;
  for (const auto& [name, cnt] : c.node(target).runtime().counts(c.nowMs()))
    if (cnt.running > 0) affected.insert(name);
  INFO("draining " << drained << " (" << affected.size() << " daemons)");
  REQUIRE(!affected.empty());

  commits::OpSetMaintenance drain;
  drain.node = drained;
  drain.mode = commits::MaintenanceMode::kDrain;
  drain.deadline_ms = c.gossip().clock().wallMs() + 120'000;
  auto r = c.commit({drain}, "drain");
  REQUIRE_MESSAGE(r.isOk(), failure(c, r.status().toString()));
  const int64_t drain_at = c.nowMs();

  uint32_t min_ready = UINT32_MAX;
  auto neverZero = [&]() -> Status {
    MESHOS_RETURN_IF_ERROR(c.checkFeasible());
    const auto act = c.actual();
    for (const auto& d : affected) {
      auto it = act.find(d);
      const uint32_t ready = it == act.end() ? 0 : it->second.ready;
      min_ready = std::min(min_ready, ready);
      if (ready == 0) return Status::internal(d + " has no ready replica during the drain of " + drained);
    }
    return Status::ok();
  };
  Status s = runUntilChecked(
      c, 20'000 + exactSettleMs(c),
      [&]() -> Status {
        if (c.node(target).report().maintenance != state::Maintenance::kInMaintenance)
          return Status::unavailable(drained + " reports " +
                                     std::string(state::maintenanceName(c.node(target).report().maintenance)));
        if (!c.node(target).runtime().counts(c.nowMs()).empty())
          return Status::unavailable(drained + " still holds instances");
        return settled(c);
      },
      neverZero);
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << seed << ": " << drained << " drained (" << affected.size() << " daemons) in "
                  << c.nowMs() - drain_at << " ms; fewest ready replicas of an affected daemon: " << min_ready);
  // The peers see it in maintenance too (from its disseminated report) and it stays empty.
  s = holdFor(c, 3'000, [&]() -> Status {
    MESHOS_RETURN_IF_ERROR(neverZero());
    if (!c.node(target).runtime().counts(c.nowMs()).empty()) return Status::internal(drained + " started something");
    return settled(c);
  });
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));

  // Exit: back to active and placeable.
  commits::OpSetMaintenance exit;
  exit.node = drained;
  exit.mode = commits::MaintenanceMode::kActive;
  r = c.commit({exit}, "exit maintenance");
  REQUIRE_MESSAGE(r.isOk(), failure(c, r.status().toString()));
  s = runUntilChecked(
      c, exactSettleMs(c),
      [&]() -> Status {
        if (c.node(target).report().maintenance != state::Maintenance::kActive)
          return Status::unavailable(drained + " not active again");
        return settled(c);
      },
      neverZero);
  CHECK_MESSAGE(s.isOk(), failure(c, s.toString()));
}

TEST_CASE("sim-placement: the simulated runtime starts, readies, stops and loses instances") {
  sim::SimRuntime rt(Rng(42), sim::SimRuntimeOptions{500, 100, 300});
  spec::DaemonSpec web;
  web.name = "web";
  web.command = {"/bin/sleep", "1"};
  web.replicas = 2;
  rt.apply(1'000, {web}, {{"web", 7}});
  auto c = rt.counts(1'000);
  CHECK(c["web"].running == 2);
  CHECK(c["web"].ready == 0);
  CHECK(c["web"].generation == 7);
  CHECK(rt.counts(1'399)["web"].ready == 0);  // 500 ± 100 ms
  CHECK(rt.counts(1'600)["web"].ready == 2);
  // Scale to 1: one stops at once (not ready, not running), gone after the grace.
  web.replicas = 1;
  rt.apply(2'000, {web}, {{"web", 7}});
  c = rt.counts(2'000);
  CHECK(c["web"].running == 1);
  CHECK(c["web"].ready == 1);
  CHECK(c["web"].stopping == 1);
  rt.prune(2'300);
  CHECK(rt.counts(2'300)["web"].stopping == 0);
  // Not wanted at all: stopped; a crash loses what runs.
  rt.apply(3'000, {}, {});
  CHECK(rt.counts(3'000)["web"].running == 0);
  rt.apply(4'000, {web}, {{"web", 8}});
  CHECK(rt.counts(4'000)["web"].running == 1);
  rt.crash();
  CHECK(rt.counts(4'001).empty());
  CHECK(rt.counters().starts == 3);
  CHECK(rt.counters().lost == 1);
}

TEST_CASE("sim-placement: the same seed gives the same run") {
  const uint64_t seed = seedFor(7004);
  CAPTURE(seed);
  auto runOnce = [&] {
    MeshCluster c(seed, lanOptions());
    for (size_t i = 0; i < 12; ++i) c.addNode(setupFor(i));
    c.startAll(3);
    (void)c.runFor(5'000);
    std::vector<commits::Operation> ops;
    auto set = daemonSet();
    for (size_t k = 0; k < 8; ++k) ops.push_back(commits::OpPutDaemon{set[k]});
    REQUIRE(c.commit(std::move(ops)).isOk());
    (void)c.runFor(8'000);
    c.crash(3);
    (void)c.runFor(10'000);
    std::string fp = c.describe();
    for (size_t i = 0; i < c.size(); ++i) {
      const auto& rc = c.node(i).runtime().counters();
      fp += c.node(i).name() + " " + std::to_string(rc.starts) + "/" + std::to_string(rc.stops) + "/" +
            std::to_string(rc.lost) + " ticks " + std::to_string(c.node(i).ticks()) + " publishes " +
            std::to_string(c.node(i).publishes()) + "\n";
      CHECK(c.node(i).decodeErrors() == 0);
      CHECK(c.node(i).publishErrors() == 0);
    }
    fp += "datagrams " + std::to_string(c.gossip().network().counters().datagrams_sent) + "\n";
    return fp;
  };
  const std::string a = runOnce();
  const std::string b = runOnce();
  CHECK_MESSAGE(a == b, "seed " << seed << ": two runs differ:\n" << a << "---\n" << b);
  CHECK(a.find("publishes 0") == std::string::npos);
}
