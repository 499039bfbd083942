// The whole agent in simulation (sim::AgentCluster): real Nodes — gossip, CommitSync,
// placement, Supervisor, executor, chains on an in-memory RocksDB — on simulated machines,
// under faults drawn from the seed, with the invariants of docs/SIMULATION.md checked every
// 100 ms of virtual time and the end judged converged. Each case sweeps seeds 1..K
// (tests/sim/sim_seeds.h: MESHOS_SEED replays one, MESHOS_SIM_SEEDS widens the sweep).
#include <doctest/doctest.h>

#include <string>

#include "agent/core/logging.h"
#include "agent/sim/agent_cluster.h"
#include "agent/sim/cluster_scenario.h"
#include "tests/sim/sim_seeds.h"

using namespace meshos;
using namespace meshos::sim;
using meshos::sim::testing::replayCommand;
using meshos::sim::testing::simSeeds;

namespace {

// Small and short, so 200 seeds fit the suite's budget; the slow suite runs the same with
// thousands of seeds, and meshos-sim cluster runs the 20-node, 10-minute version.
ScenarioOptions small(uint64_t seed, const char* faults) {
  ScenarioOptions o;
  o.nodes = 5;
  o.seed = seed;
  o.duration_ms = 120'000;
  o.quiet_end_ms = 45'000;
  o.daemons = 4;
  o.faults = *parseFaultKinds(faults);
  return o;
}

void sweep(const char* test_case, const char* faults, uint64_t default_seeds) {
  (void)setupLogging("off", "text");
  uint64_t runs = 0, fault_count = 0, checks = 0;
  for (uint64_t seed : simSeeds(default_seeds)) {
    ScenarioOptions o = small(seed, faults);
    ScenarioResult r = runClusterScenario(o);
    INFO("replay: " << replayCommand(seed, test_case) << "\n   or: " << sim::replayCommand(o));
    REQUIRE_MESSAGE(r.status.isOk(), r.status.message());
    ++runs;
    checks += r.figures.invariant_checks;
    for (const auto& [kind, n] : r.figures.faults) fault_count += n;
  }
  MESSAGE(runs << " seeds, " << fault_count << " faults injected, " << checks << " invariant checks");
}

}  // namespace

TEST_CASE("sim-agent: every fault kind, seeds 1..200") {
  sweep("sim-agent: every fault kind, seeds 1..200", "all", 200);
}

TEST_CASE("sim-agent: disk full, clock steps and crashes, seeds 1..200") {
  sweep("sim-agent: disk full, clock steps and crashes, seeds 1..200", "disk-full,clock,crash", 200);
}

TEST_CASE("sim-agent rollouts: a new version every 6 s under crashes and partitions, seeds 1..200") {
  // Agents and machines crash and the network splits while versions roll. At every 100 ms
  // step, from ground truth: on the hosts in good standing no more than max_unavailable
  // instances of a daemon are down for a replacement (checkRolloutReady); and once quiet,
  // no more than max_unavailable agents replace at once (checkRollouts).
  (void)setupLogging("off", "text");
  uint64_t down_seen = 0, fault_count = 0;
  const char* name = "sim-agent rollouts: a new version every 6 s under crashes and partitions, seeds 1..200";
  for (uint64_t seed : simSeeds(200)) {
    ScenarioOptions o = small(seed, "crash,partition");
    o.duration_ms = 150'000;
    o.quiet_end_ms = 40'000;
    o.workload_period_ms = 6'000;
    o.versions_only = true;
    ScenarioResult r = runClusterScenario(o);
    INFO("replay: " << replayCommand(seed, name) << "\n   or: " << sim::replayCommand(o));
    REQUIRE_MESSAGE(r.status.isOk(), r.status.message());
    down_seen += r.figures.rollout_down_seen;
    for (const auto& [kind, n] : r.figures.faults) fault_count += n;
  }
  MESSAGE(down_seen << " checks found instances down for a replacement; " << fault_count << " faults injected");
  CHECK(down_seen > 0);
  CHECK(fault_count > 0);
}

namespace {

// The live process of a daemon on host i (0: none).
int livePid(AgentCluster& c, size_t i, const std::string& daemon) {
  for (const auto& [pid, p] : c.host(i).runtime().processes())
    if (p.alive && p.daemon == daemon) return pid;
  return 0;
}

}  // namespace

TEST_CASE("sim-agent rollouts: an agent restarted mid-rollout keeps its spec until its turn, seeds 1..20") {
  // The first node's new instance must stay ready 30 s before the next may move. An agent
  // that crashes and restarts meanwhile finds its old process running a spec the commit no
  // longer names: it keeps it (the rollout record in its state store) instead of replacing
  // it at once, then moves in its turn.
  (void)setupLogging("off", "text");
  for (uint64_t seed : simSeeds(20)) {
    INFO("replay: " << replayCommand(seed, "sim-agent rollouts: an agent restarted*"));
    AgentCluster c(seed);
    c.addHosts(3);
    c.startAll();
    REQUIRE(c.runUntil([&] { return c.host(0).node() && c.host(1).node() && c.host(2).node(); }, 30'000).isOk());
    auto web = simService("web", 3);
    web.update.max_unavailable = 1;
    web.update.min_ready_ms = 30'000;
    web.placement.max_per_node = 1;  // one per host: the victim's instance cannot move away
    REQUIRE(c.commit({commits::OpPutDaemon{web}}).isOk());
    REQUIRE(c.runUntil([&] { return c.actual()["web"].ready == 3; }, 60'000).isOk());
    web.env["VERSION"] = "2";
    REQUIRE(c.commit({commits::OpPutDaemon{web}}).isOk());
    std::optional<size_t> first;
    REQUIRE(c.runUntil([&] {
      for (size_t i = 0; i < 3; ++i)
        if (c.host(i).node() != nullptr && c.host(i).node()->updatingTo("web")) first = i;
      return first.has_value();
    }, 30'000).isOk());
    const size_t victim = (*first + 1) % 3;
    const int pid = livePid(c, victim, "web");
    REQUIRE(pid > 0);
    c.crashAgent(victim);
    REQUIRE(c.runFor(2'000).isOk());
    c.start(victim);
    Status kept = c.runFor(10'000, [&] {
      const int now = livePid(c, victim, "web");
      if (now != pid) {
        return Status::internal("n" + std::to_string(victim) + " replaced its instance (pid " + std::to_string(pid) +
                                " -> " + std::to_string(now) + ") before its turn");
      }
      return Status::ok();
    });
    REQUIRE_MESSAGE(kept.isOk(), kept.message());
    // The rollout still completes: every host runs version 2, ready.
    REQUIRE(c.runUntil([&] {
      for (size_t i = 0; i < 3; ++i) {
        const int p = livePid(c, i, "web");
        if (p == 0 || c.host(i).runtime().processes().at(p).spec.env.count("VERSION") == 0) return false;
      }
      return c.actual()["web"].ready == 3;
    }, 180'000).isOk());
  }
}

TEST_CASE("sim-agent: the same seed gives the same trace in one process") {
  (void)setupLogging("off", "text");
  for (uint64_t seed : simSeeds(3)) {
    ScenarioOptions o = small(seed, "all");
    ScenarioResult a = runClusterScenario(o);
    ScenarioResult b = runClusterScenario(o);
    CHECK_MESSAGE(a.trace_hash == b.trace_hash, "seed " << seed << ": two runs differ");
    CHECK(a.trace_events == b.trace_events);
    CHECK(a.trace_events > 1000);
  }
}

TEST_CASE("sim-agent control: a change without a reason is refused, with one it is served") {
  (void)setupLogging("off", "text");
  AgentCluster c(1);
  c.addHosts(1);
  c.start(0);
  auto join = [&](const std::string& reason) {
    return c.host(0).call([](proto::Request::Builder b) { b.initJoin(1).set(0, "10.0.9.9:7946"); }, reason);
  };
  auto ping = [&] { return c.host(0).call([](proto::Request::Builder b) { b.setPing(); }, ""); };
  REQUIRE(c.runUntil([&] { return ping()->get().isOk(); }, 10'000).isOk());
  auto refused = join("");
  REQUIRE(refused->answered());
  REQUIRE(!refused->get().isOk());
  CHECK(refused->get().status().code() == Code::kPermissionDenied);
  CHECK(refused->get().status().message() == "a reason is required: join changes the node (pass --reason)");
  auto served = join("sim: join a peer");
  REQUIRE(served->answered());
  CHECK(served->get().isOk());
}

TEST_CASE("sim-agent clock: a freeze holds through wall-clock steps and ends on time, seeds 1..20") {
  // Two of three nodes have their wall clocks stepped an hour ahead and an hour back while
  // frozen. Every node must stay frozen until the freeze's expiry by the admin's (unstepped)
  // clock, and thaw within a tick of it: not an hour early, not an hour late.
  (void)setupLogging("off", "text");
  for (uint64_t seed : simSeeds(20)) {
    INFO("replay: " << replayCommand(seed, "sim-agent clock*"));
    AgentCluster c(seed);
    c.addHosts(3);
    c.startAll();
    auto frozen = [&](size_t i) {
      const node::Node* n = c.host(i).node();
      return n != nullptr && n->plan().frozen;
    };
    auto all = [&](bool want) { return frozen(0) == want && frozen(1) == want && frozen(2) == want; };
    REQUIRE(c.runUntil([&] { return c.host(0).node() && c.host(1).node() && c.host(2).node(); }, 30'000).isOk());
    const int64_t expiry = c.world().clock.wallMs() + 120'000;
    auto committed = c.commit({commits::OpFreeze{expiry, "sim: incident"}});
    REQUIRE_MESSAGE(committed.isOk(), committed.status().toString());
    REQUIRE(c.runUntil([&] { return all(true); }, 60'000).isOk());
    c.stepWallClock(0, 3'600'000);
    c.stepWallClock(1, -3'600'000);
    const int64_t left = expiry - c.world().clock.wallMs();
    REQUIRE(left > 2'000);
    Status held = c.runFor(left - 1'000, [&] {
      for (size_t i = 0; i < 3; ++i) {
        if (!frozen(i)) return Status::internal("n" + std::to_string(i) + " thawed " + std::to_string(expiry - c.world().clock.wallMs()) + " ms early");
      }
      return Status::ok();
    });
    REQUIRE_MESSAGE(held.isOk(), held.message());
    REQUIRE_MESSAGE(c.runUntil([&] { return all(false); }, 3'000).isOk(), "a node stayed frozen past the expiry");
  }
}
