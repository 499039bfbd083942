// reconcile::decideRollout: the leaderless rolling update's turn-taking (agent/reconcile/rollout.h).
#include <doctest/doctest.h>

#include "agent/reconcile/rollout.h"

using namespace meshos;
using namespace meshos::reconcile;

namespace {

constexpr uint64_t kOld = 11, kNew = 22;
constexpr int64_t kNow = 1'700'000'000'000;

struct World {
  std::map<std::string, state::DaemonReport> reports;  // by node id
  spec::UpdateStrategy strategy;

  explicit World(int n) {
    for (int i = 1; i <= n; ++i) reports["id" + std::to_string(i)] = state::DaemonReport{1, 1, 1, kNow - 60'000, kOld, 0};
  }
  RolloutInputs inputs(const std::string& self) const {
    RolloutInputs in{"web", kNew, self, {}, strategy, kNow};
    for (const auto& [id, r] : reports) in.nodes.push_back({id, "n" + id.substr(2), &r});
    return in;
  }
  RolloutStep step(const std::string& self) const { return decideRollout(inputs(self)).step; }
  // The nodes that may update now.
  std::vector<std::string> turn() const {
    std::vector<std::string> out;
    for (const auto& [id, r] : reports) {
      if (r.version != kNew && step(id) == RolloutStep::kUpdate) out.push_back(id);
    }
    return out;
  }
  void finish(const std::string& id, int64_t ready_since = kNow - 60'000) {
    reports[id] = state::DaemonReport{1, 1, 2, ready_since, kNew, 0};
  }
};

}  // namespace

TEST_CASE("rollout: one node at a time, in an order every node derives alike") {
  World w(5);
  const auto in1 = w.inputs("id1");
  auto order = rolloutOrder(in1);
  REQUIRE(order.size() == 5);
  for (int i = 2; i <= 5; ++i) {
    const auto in = w.inputs("id" + std::to_string(i));
    auto other = rolloutOrder(in);
    for (size_t k = 0; k < order.size(); ++k) CHECK(other[k]->id == order[k]->id);
  }
  for (size_t k = 0; k < order.size(); ++k) {
    auto turn = w.turn();
    REQUIRE(turn.size() == 1);  // max_unavailable 1
    CHECK(turn[0] == order[k]->id);
    w.finish(turn[0]);
  }
  CHECK(w.turn().empty());
  CHECK(decideRollout(w.inputs("id1")).done == 5);
}

TEST_CASE("rollout: max_unavailable instances at once; an updating node counts until ready") {
  World w(5);
  w.strategy.max_unavailable = 2;
  const auto in1 = w.inputs("id1");
  auto order = rolloutOrder(in1);
  CHECK(w.turn().size() == 2);
  w.reports[order[0]->id] = state::DaemonReport{1, 0, 2, 0, kOld, 0};  // stopping its old process
  CHECK(w.turn().size() == 2);
  w.finish(order[0]->id);
  auto turn = w.turn();
  REQUIRE(turn.size() == 2);
  CHECK(turn[0] != order[0]->id);
}

TEST_CASE("rollout: a node still down replacing for an earlier version counts against the next one") {
  // Found by the simulation with full disks: a node took version 15 and could not start it
  // (its instance record could not be written); version 22 came, and the first node in its
  // order replaced too, since the stuck node was later in that order.
  World w(5);
  const auto in = w.inputs("id1");
  const auto order = rolloutOrder(in);
  const std::string first = order[0]->id, last = order[4]->id;
  w.reports[last] = state::DaemonReport{0, 0, 1, 0, 15, 0};  // down, on another version
  CHECK(w.step(first) == RolloutStep::kWait);
  CHECK(decideRollout(w.inputs(first)).why == "waiting for n" + last.substr(2));
  w.reports[last] = state::DaemonReport{1, 1, 1, kNow - 60'000, 15, 0};  // up again: no longer counts
  CHECK(w.step(first) == RolloutStep::kUpdate);
  w.reports[last] = state::DaemonReport{0, 0, 1, 0, kNew, 0};  // starting the target: not a replacement in flight
  CHECK(w.step(first) == RolloutStep::kUpdate);
}

TEST_CASE("rollout: min_ready_ms holds the next node") {
  World w(3);
  w.strategy.min_ready_ms = 5'000;
  const auto in1 = w.inputs("id1");
  auto order = rolloutOrder(in1);
  w.finish(order[0]->id, kNow - 1'000);  // ready 1 s ago
  CHECK(w.step(order[1]->id) == RolloutStep::kWait);
  CHECK(decideRollout(w.inputs(order[1]->id)).why.find(order[0]->name) != std::string::npos);
  w.finish(order[0]->id, kNow - 5'000);
  CHECK(w.step(order[1]->id) == RolloutStep::kUpdate);
}

TEST_CASE("rollout: a failed version halts it everywhere") {
  World w(3);
  const auto in1 = w.inputs("id1");
  auto order = rolloutOrder(in1);
  w.reports[order[0]->id] = state::DaemonReport{1, 0, 2, 0, kNew, kNew};
  for (const auto& [id, r] : w.reports) CHECK(w.step(id) == RolloutStep::kHalted);
  auto d = decideRollout(w.inputs("id1"));
  CHECK(d.failed_on == order[0]->name);
  CHECK(d.why.find("paused") != std::string::npos);
  w.strategy.on_failure = spec::OnUpdateFailure::kRollback;
  CHECK(decideRollout(w.inputs("id1")).why.find("rolled back") != std::string::npos);
  // A failure of another version does not count.
  w.reports[order[0]->id].failed_version = kOld;
  CHECK(w.step(order[0]->id) == RolloutStep::kUpdate);
}

TEST_CASE("specVersion: what the process sees, not how many or where") {
  spec::DaemonSpec s;
  s.name = "web";
  s.command = {"/bin/web"};
  const uint64_t v = specVersion(s);
  CHECK(v != 0);
  spec::DaemonSpec t = s;
  t.replicas = 7;
  t.placement.max_per_node = 1;
  t.resources.cpu_millicores = 500;
  t.update.max_unavailable = 3;
  CHECK(specVersion(t) == v);
  t.env["A"] = "1";
  CHECK(specVersion(t) != v);
}
