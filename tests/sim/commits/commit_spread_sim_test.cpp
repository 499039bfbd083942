// Commits spread by the agents themselves (node::Node's CommitSync over gossip's app
// channels), with the whole agent in simulation: 30 hosts, 10 % datagram loss with
// duplication and reordering, each commit handed to one random host. Then a partition with
// a fork — two different commits of the same seq, one handed to each side — and the heal:
// every host must end at the admin's head (the fork choice, made the same way by all) and
// the same desired state. Seeds 1..K (tests/sim/sim_seeds.h).
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

constexpr size_t kHosts = 30;
constexpr const char* kCase = "sim-commits: commits spread under loss, a partition and a fork";

Status until(AgentCluster& c, int64_t max_ms, const std::function<Status()>& done) {
  Status last = done();
  const int64_t end = c.nowMs() + max_ms;
  while (!last) {
    if (c.nowMs() >= end) return Status::deadline("not reached in " + std::to_string(max_ms) + " ms: " + last.message());
    MESHOS_RETURN_IF_ERROR(c.runFor(100));
    last = done();
  }
  return Status::ok();
}

// Every up host at the admin's head, with the admin's desired state.
Status sameHead(AgentCluster& c) {
  for (size_t i = 0; i < c.size(); ++i) {
    const node::Node* n = c.host(i).node();
    if (n == nullptr || !c.host(i).up()) continue;
    const commits::Head h = n->commitLog()->head();
    if (h.seq != c.head().seq || h.hash != c.head().hash)
      return Status::unavailable(c.host(i).name() + " at " + std::to_string(h.seq) + ", the admin at " +
                                 std::to_string(c.head().seq));
    if (!(n->commitLog()->desired() == c.desired())) return Status::internal(c.host(i).name() + ": a different desired state");
  }
  return Status::ok();
}

}  // namespace

TEST_CASE(kCase) {
  (void)setupLogging("off", "text");
  for (uint64_t seed : simSeeds(5)) {
    CAPTURE(seed);
    INFO("replay: " << replayCommand(seed, kCase));
    sim::AgentClusterOptions o;
    AgentCluster c(seed, o);
    c.addHosts(kHosts);
    c.startAll();
    Status s = until(c, 30'000, [&]() -> Status {
      MESHOS_RETURN_IF_ERROR(c.checkAllUp());
      return c.checkConverged();
    });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    sim::LinkProfile lossy = o.link;
    lossy.loss = 0.10;
    lossy.duplicate = 0.02;
    lossy.reorder = 0.05;
    c.setLink(lossy);
    const int64_t lossy_at = c.nowMs();
    for (int k = 0; k < 10; ++k) {
      auto r = c.commit({commits::OpPutDaemon{sim::simService("svc" + std::to_string(k), 1)}}, "spread");
      REQUIRE_MESSAGE(r.isOk(), r.status().message());
      REQUIRE(c.runFor(300).isOk());
    }
    s = until(c, 30'000, [&] { return sameHead(c); });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    MESSAGE("seed " << seed << ": 10 commits on every host " << c.nowMs() - lossy_at << " ms after the first, at 10 % loss");

    // A fork across a partition: seq n+1 twice, one on each side.
    c.partitionAt(kHosts * 2 / 3);
    REQUIRE(c.runFor(5'000).isOk());
    Bytes a = c.buildCommit({commits::OpScale{"svc0", 2}}, "fork a");
    Bytes b = c.buildCommit({commits::OpScale{"svc0", 3}}, "fork b");
    (void)c.adopt(a);
    (void)c.adopt(b);  // the admin's copy makes the fork choice every node must make
    REQUIRE(c.submitTo(0, a).isOk());
    REQUIRE(c.submitTo(kHosts - 1, b).isOk());
    REQUIRE(c.runFor(10'000).isOk());
    c.heal();
    const int64_t healed_at = c.nowMs();
    s = until(c, 60'000, [&] { return sameHead(c); });
    REQUIRE_MESSAGE(s.isOk(), c.failure(s.message()));
    MESSAGE("seed " << seed << ": after the heal every host took the same side of the fork in " << c.nowMs() - healed_at
                    << " ms");
    uint64_t fork_decisions = 0;  // a losing side switched, or a late copy was superseded
    for (size_t i = 0; i < c.size(); ++i) {
      const auto& k = c.host(i).node()->commitLog()->counters();
      fork_decisions += k.forks_won + k.superseded;
    }
    CHECK(fork_decisions > 0);
  }
}
