// Seeded simulation of rebalancing on live load: 12 nodes, 6 daemons of 2 replicas, the real
// gossip, commit log, placement, planLocal and LocalRebalancer on every node. One node that
// runs instances turns hot; its instances move to cooler nodes, one per daemon, make-before-
// break (never fewer ready instances than replicas, checked every 100 ms), every node agrees
// on the overlay, nothing moves back when the node cools down, and a node that was never hot
// proposes nothing. A failure prints the seed; MESHOS_SIM_SEED=<n> replays one seed.
#include <doctest/doctest.h>

#include <cstdlib>
#include <functional>

#include "agent/sim/mesh_cluster.h"
#include "tests/sim/mesh_sim_support.h"

using namespace meshos;
using meshos::sim::MeshCluster;
using meshos::sim::MeshOptions;
using meshos::sim::NodeSetup;
using namespace meshos::sim::testing;

namespace {

constexpr size_t kNodes = 12;

Status settled(MeshCluster& c) {
  MESHOS_RETURN_IF_ERROR(c.checkAtReplicas());
  return c.checkSameAssignment();
}

uint32_t runningOn(MeshCluster& c, size_t i) {
  uint32_t n = 0;
  for (const auto& [name, counts] : c.node(i).runtime().counts(c.nowMs())) n += counts.running;
  return n;
}

}  // namespace

TEST_CASE("sim-rebalance: a hot node hands its instances to cooler nodes, make-before-break, once") {
  const uint64_t seed = seedFor(9101);
  CAPTURE(seed);
  MeshOptions o;
  o.cluster.link.latency_ms = 1;
  o.cluster.link.jitter_ms = 2;
  o.rebalance.interval_ms = 2'000;
  o.rebalance.abandon_after_ms = 30'000;
  o.rebalance.moves.cooldown_ms = 60'000;
  o.rebalance.moves.hysteresis = 0.25;
  MeshCluster c(seed, o);
  for (size_t i = 0; i < kNodes; ++i) {
    NodeSetup s;
    s.load = 0.2;
    c.addNode(s);
  }
  c.startAll(3);
  REQUIRE_MESSAGE(c.runUntil([&] { return c.gossip().converged(); }, 30'000), failure(c, "no convergence"));
  std::vector<commits::Operation> ops;
  for (int k = 0; k < 6; ++k) {
    spec::DaemonSpec s;
    s.name = "svc" + std::to_string(k);
    s.command = {"/bin/sleep", "1000"};
    s.replicas = 2;
    ops.push_back(commits::OpPutDaemon{std::move(s)});
  }
  REQUIRE(c.commit(std::move(ops), "six services").isOk());
  const int64_t committed_at = c.nowMs();
  // Seeds 1-60 settle in 6-8 s, one in 30.1 s (a node-state update that gossip did not
  // carry reaches the node with the next push-pull, every 30 s); 40 s bounds both.
  Status s = runUntilChecked(c, 40'000, [&] { return settled(c); });
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << seed << ": settled " << c.nowMs() - committed_at << " ms after the commit");
  // Equal loads: nobody moves anything.
  s = c.runFor(6'000, [&] { return settled(c); }, kStepMs);
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  for (size_t i = 0; i < kNodes; ++i) CHECK(c.node(i).rebalancer().proposed() == 0);

  // The busiest node turns hot.
  size_t hot = 0;
  for (size_t i = 1; i < kNodes; ++i) {
    if (runningOn(c, i) > runningOn(c, hot)) hot = i;
  }
  const uint32_t held = runningOn(c, hot);
  REQUIRE(held > 0);
  INFO("hot node " << c.node(hot).name() << " held " << held);
  c.node(hot).setLoad(0.95);
  const int64_t hot_at = c.nowMs();
  // Make-before-break: at every step each daemon has its replica count of ready instances.
  s = runUntilChecked(
      c, 30'000, [&] { return runningOn(c, hot) == 0 ? settled(c) : Status::unavailable("the hot node still runs"); },
      [&] { return c.checkAtReplicas(/*at_least=*/true); });
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  MESSAGE("seed " << seed << ": " << held << " instances left the hot node in " << c.nowMs() - hot_at << " ms");
  CHECK(c.node(hot).rebalancer().proposed() == held);  // one move per daemon, each once
  CHECK(c.node(hot).rebalancer().moves().size() == held);
  for (size_t i = 0; i < kNodes; ++i) {
    if (i != hot) CHECK(c.node(i).rebalancer().proposed() == 0);
  }
  for (size_t i = 0; i < kNodes; ++i) {
    if (c.node(i).up()) CHECK(c.node(i).plan().moves.size() == held);  // every node applies them
  }

  // Cooling down does not move anything back (the overlay holds while its source holds the
  // daemon in the base assignment), and the cluster stays exactly at its replica counts.
  c.node(hot).setLoad(0.2);
  s = c.runFor(10'000, [&] { return settled(c); }, kStepMs);
  REQUIRE_MESSAGE(s.isOk(), failure(c, s.toString()));
  CHECK(runningOn(c, hot) == 0);
}
