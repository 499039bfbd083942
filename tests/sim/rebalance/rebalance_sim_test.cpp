// Rebalancing on live load with the whole agent in simulation: 12 hosts, 6 daemons of 2
// replicas. One host that runs instances turns hot (its inventory reports the load); its
// instances move to cooler hosts, one per daemon, make-before-break (never fewer ready
// instances than replicas, checked every 100 ms), every node agrees on the overlay,
// nothing moves back when the host cools down, and a host that was never hot proposes
// nothing. Seeds 1..K (tests/sim/sim_seeds.h).
#include <doctest/doctest.h>

#include <functional>

#include "agent/core/logging.h"
#include "agent/sim/agent_cluster.h"
#include "agent/sim/sim_faults.h"
#include "tests/sim/sim_seeds.h"

using namespace meshos;
using meshos::sim::AgentCluster;
using meshos::sim::testing::replayCommand;
using meshos::sim::testing::simSeeds;

namespace {

constexpr size_t kHosts = 12;
constexpr const char* kCase = "sim-rebalance: a hot host hands its instances to cooler hosts, make-before-break, once";

Status settled(AgentCluster& c) {
  MESHOS_RETURN_IF_ERROR(c.checkAtReplicas());
  return c.checkSameAssignment();
}

uint32_t runningOn(AgentCluster& c, size_t i) {
  uint32_t n = 0;
  for (const auto& [name, count] : c.host(i).runtime().liveByDaemon()) n += count;
  return n;
}

Status until(AgentCluster& c, int64_t max_ms, const std::function<Status()>& done,
             const std::function<Status()>& each = {}) {
  Status last = done();
  const int64_t end = c.nowMs() + max_ms;
  while (!last) {
    if (c.nowMs() >= end) return Status::deadline("not reached in " + std::to_string(max_ms) + " ms: " + last.message());
    MESHOS_RETURN_IF_ERROR(c.runFor(100, each));
    last = done();
  }
  return Status::ok();
}

}  // namespace

TEST_CASE(kCase) {
  (void)setupLogging("off", "text");
  for (uint64_t seed : simSeeds(3)) {
    CAPTURE(seed);
    INFO("replay: " << replayCommand(seed, kCase));
    sim::AgentClusterOptions o;
    o.configure = [](size_t, config::NodeConfig& n) {
      n.placement.rebalance_interval_ms = 2'000;
      n.placement.rebalance_cooldown_ms = 60'000;
      n.placement.rebalance_hysteresis_percent = 25;
      n.probes.inventory_interval_ms = 1'000;
    };
    AgentCluster c(seed, o);
    for (size_t i = 0; i < kHosts; ++i) {
      sim::HostSetup s;
      s.load = 0.2;
      c.addHost(s);
    }
    c.startAll();
    Status s = until(c, 30'000, [&]() -> Status {
      MESHOS_RETURN_IF_ERROR(c.checkAllUp());
      return c.checkConverged();
    });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    std::vector<commits::Operation> ops;
    for (int k = 0; k < 6; ++k) ops.push_back(commits::OpPutDaemon{sim::simService("svc" + std::to_string(k), 2)});
    REQUIRE(c.commit(std::move(ops), "six services").isOk());
    s = until(c, 40'000, [&] { return settled(c); });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    // Equal loads: nobody moves anything.
    s = c.runFor(6'000, [&] { return settled(c); });
    REQUIRE_MESSAGE(s.isOk(), s.message());
    for (size_t i = 0; i < kHosts; ++i) CHECK(c.host(i).node()->rebalancer()->proposed() == 0);

    // The busiest host turns hot.
    size_t hot = 0;
    for (size_t i = 1; i < kHosts; ++i)
      if (runningOn(c, i) > runningOn(c, hot)) hot = i;
    const uint32_t held = runningOn(c, hot);
    REQUIRE(held > 0);
    INFO("hot host " << c.host(hot).name() << " held " << held);
    c.host(hot).setLoad(0.95);
    const int64_t hot_at = c.nowMs();
    s = until(c, 40'000, [&] { return runningOn(c, hot) == 0 ? settled(c) : Status::unavailable("the hot host still runs"); },
              [&] { return c.checkAtReplicas(/*at_least=*/true); });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    MESSAGE("seed " << seed << ": " << held << " instances left the hot host in " << c.nowMs() - hot_at << " ms");
    const auto* hot_rebalancer = c.host(hot).node()->rebalancer();
    CHECK(hot_rebalancer->proposed() == held);  // one move per daemon, each once
    CHECK(hot_rebalancer->moves().size() == held);
    for (size_t i = 0; i < kHosts; ++i) {
      if (i != hot) CHECK(c.host(i).node()->rebalancer()->proposed() == 0);
      CHECK(c.host(i).node()->plan().moves.size() == held);  // every node applies them
    }
    // Cooling down moves nothing back; the counts stay exact.
    c.host(hot).setLoad(0.2);
    s = c.runFor(10'000, [&] { return settled(c); });
    REQUIRE_MESSAGE(s.isOk(), s.message());
    CHECK(runningOn(c, hot) == 0);
  }
}
