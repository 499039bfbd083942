// Rebalancing on live load: the moves a node proposes about its own instances
// (LocalRebalancer) and the overlay every node applies from the published moves (planLocal).
#include <doctest/doctest.h>

#include <algorithm>

#include "agent/reconcile/local_rebalancer.h"
#include "tests/unit/reconcile/decision_of.h"

using namespace meshos;
using namespace meshos::reconcile;

namespace {

commits::DesiredState desiredWith(const std::string& name, int64_t replicas) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sleep", "1000"};
  s.replicas = replicas;
  commits::DesiredState d;
  commits::DesiredDaemon dd;
  dd.spec = s;
  dd.updated_seq = 1;
  d.daemons.emplace(name, dd);
  return d;
}

PeerView peer(int i, double load) {
  PeerView p;
  p.id = "id" + std::to_string(i);
  p.name = "n" + std::to_string(i);
  state::NodeReport r;
  r.cpu_millicores = 4000;
  r.memory_bytes = int64_t{8} << 30;
  r.inventory.cpu_count = 4;
  r.inventory.load1 = load * 4;
  r.inventory.memory_total_bytes = r.memory_bytes;
  p.report = r;
  return p;
}

LocalInputs inputs(const commits::DesiredState& d, const std::string& self_id, const std::vector<double>& loads) {
  LocalInputs in;
  in.self_id = self_id;
  in.desired = &d;
  in.now_ms = 1000;
  in.wall_ms = 1'000'000;
  for (size_t i = 0; i < loads.size(); ++i) in.nodes.push_back(peer(static_cast<int>(i), loads[i]));
  in.members_known = loads.size();
  in.require_view_agreement = false;  // tested in local_plan_test
  return in;
}

PeerView& node(LocalInputs& in, const std::string& id) {
  auto it = std::find_if(in.nodes.begin(), in.nodes.end(), [&](const PeerView& p) { return p.id == id; });
  REQUIRE(it != in.nodes.end());
  return *it;
}

using meshos::reconcile::testing::decision;

// The id of the node `web` (1 replica) is assigned to, and of one it is not.
std::pair<std::string, std::string> holderAndOther(const commits::DesiredState& d, size_t n) {
  placement::Assigner a;
  auto plan = planLocal(inputs(d, "id0", std::vector<double>(n, 0.1)), a);
  std::string holder = "id" + decision(plan, "web").assigned.at(0).substr(1);
  std::string other = holder == "id0" ? "id1" : "id0";
  return {holder, other};
}

LocalRebalanceOptions options() {
  LocalRebalanceOptions o;
  o.interval_ms = 10'000;
  o.abandon_after_ms = 30'000;
  o.moves.cooldown_ms = 60'000;
  o.moves.hysteresis = 0.25;
  return o;
}

}  // namespace

TEST_CASE("a node's load is the larger of load per CPU and memory used; none without an inventory") {
  state::NodeReport r;
  CHECK_FALSE(reportLoad(r).has_value());
  r.inventory.cpu_count = 4;
  r.inventory.load1 = 2;
  CHECK(*reportLoad(r) == doctest::Approx(0.5));
  r.inventory.memory_total_bytes = 100;
  r.inventory.memory_used_bytes = 80;
  CHECK(*reportLoad(r) == doctest::Approx(0.8));
  r.inventory.load1 = 1000;
  CHECK(*reportLoad(r) == doctest::Approx(4.0));  // clamped
}

TEST_CASE("a published move overlays the assignment on every node, make-before-break on the source") {
  auto d = desiredWith("web", 1);
  auto [holder, target] = holderAndOther(d, 4);
  std::vector<std::vector<std::string>> assigned;
  for (int self = 0; self < 4; ++self) {
    auto in = inputs(d, "id" + std::to_string(self), std::vector<double>(4, 0.1));
    node(in, holder).report->moves["web"] = target;
    node(in, holder).report->daemons["web"] = {1, 1, 1};
    if (in.self_id == holder) in.local["web"] = {1, 1};
    placement::Assigner a;
    auto plan = planLocal(in, a);
    assigned.push_back(decision(plan, "web").assigned);
    REQUIRE(plan.moves.size() == 1);
    CHECK(plan.moves[0].from == holder);
    CHECK(plan.moves[0].to == target);
    if (in.self_id == holder) {
      CHECK(decision(plan, "web").here == 1);  // kept until the target reports ready
      CHECK(plan.handoffs.count("web") == 1);
    }
    if (in.self_id == target) CHECK(decision(plan, "web").here == 1);  // starts it
    CHECK(localPlanToJson(plan)["moves"].size() == 1);
  }
  for (const auto& a : assigned) CHECK(a == assigned.front());
  CHECK(assigned.front() == std::vector<std::string>{"n" + target.substr(2)});

  // The target reports ready: the source lets go.
  auto in = inputs(d, holder, std::vector<double>(4, 0.1));
  node(in, holder).report->moves["web"] = target;
  node(in, target).report->daemons["web"] = {1, 1, 1};
  in.local["web"] = {1, 1};
  placement::Assigner a;
  auto plan = planLocal(in, a);
  CHECK(decision(plan, "web").here == 0);
}

TEST_CASE("moves that do not hold are ignored: not the holder, an infeasible target, a dead source") {
  auto d = desiredWith("web", 1);
  auto [holder, other] = holderAndOther(d, 4);
  std::string third = holder != "id2" && other != "id2" ? "id2" : "id3";
  placement::Assigner a;

  auto in = inputs(d, "id0", std::vector<double>(4, 0.1));
  node(in, other).report->moves["web"] = third;  // `other` does not hold web
  auto plan = planLocal(in, a);
  CHECK(plan.moves.empty());
  CHECK(decision(plan, "web").assigned == std::vector<std::string>{"n" + holder.substr(2)});

  in = inputs(d, "id0", std::vector<double>(4, 0.1));
  node(in, holder).report->moves["web"] = third;
  node(in, third).state = state::MemberState::kSuspect;  // not feasible
  plan = planLocal(in, a);
  CHECK(plan.moves.empty());

  in = inputs(d, "id0", std::vector<double>(4, 0.1));
  node(in, holder).report->moves["web"] = "id-nobody";
  plan = planLocal(in, a);
  CHECK(plan.moves.empty());

  in = inputs(d, other, std::vector<double>(4, 0.1));
  node(in, holder).report->moves["web"] = third;
  node(in, holder).state = state::MemberState::kDead;  // a dead node's moves do not count
  plan = planLocal(in, a);
  CHECK(plan.moves.empty());
}

TEST_CASE("a hot node proposes one move per daemon to the coolest feasible node, past the hysteresis only") {
  auto d = desiredWith("web", 1);
  auto [holder, unused] = holderAndOther(d, 4);
  (void)unused;
  std::vector<double> loads = {0.3, 0.3, 0.3, 0.3};
  loads[static_cast<size_t>(std::stoi(holder.substr(2)))] = 0.9;
  const size_t coolest = holder == "id3" ? 2 : 3;
  loads[coolest] = 0.1;
  auto in = inputs(d, holder, loads);
  in.local["web"] = {1, 1};
  placement::Assigner a;
  auto plan = planLocal(in, a);

  LocalRebalancer r(holder, options());
  CHECK(r.due(1000));
  CHECK(r.update(1000, plan, in.nodes, a));
  REQUIRE(r.moves().size() == 1);
  CHECK(r.moves().at("web") == "id" + std::to_string(coolest));
  CHECK(r.proposed() == 1);
  CHECK_FALSE(r.due(5000));  // looks again only after the interval
  CHECK_FALSE(r.update(5000, plan, in.nodes, a));

  // Not the holder: a cool node proposes nothing about instances it does not hold.
  LocalRebalancer cool("id" + std::to_string(coolest), options());
  CHECK_FALSE(cool.update(1000, plan, in.nodes, a));
  CHECK(cool.moves().empty());

  // Under the hysteresis: nothing moves.
  for (auto& l : loads) l = std::max(l, 0.7);
  auto calm = inputs(d, holder, loads);
  LocalRebalancer r2(holder, options());
  CHECK_FALSE(r2.update(1000, planLocal(calm, a), calm.nodes, a));
  CHECK(r2.moves().empty());

  // Disabled: nothing, ever.
  auto off = options();
  off.enabled = false;
  LocalRebalancer r3(holder, off);
  CHECK_FALSE(r3.update(1000, plan, in.nodes, a));
  CHECK(r3.moves().empty());
  CHECK(r3.toJson()["enabled"] == false);
}

TEST_CASE("a move the target never starts is given up, and the instance stays") {
  auto d = desiredWith("web", 1);
  auto [holder, unused] = holderAndOther(d, 3);
  (void)unused;
  std::vector<double> loads = {0.1, 0.1, 0.1};
  loads[static_cast<size_t>(std::stoi(holder.substr(2)))] = 0.9;
  auto in = inputs(d, holder, loads);
  in.local["web"] = {1, 1};
  placement::Assigner a;
  auto plan = planLocal(in, a);
  LocalRebalancer r(holder, options());
  REQUIRE(r.update(1000, plan, in.nodes, a));
  const std::string target = r.moves().at("web");

  // The target started it in time: the move holds.
  auto started = in;
  node(started, target).report->daemons["web"] = {1, 0, 1};
  CHECK_FALSE(r.update(40'000, plan, started.nodes, a));
  CHECK(r.moves().size() == 1);

  // A fresh rebalancer whose target never reports it: dropped after abandon_after_ms.
  LocalRebalancer r2(holder, options());
  REQUIRE(r2.update(1000, plan, in.nodes, a));
  CHECK_FALSE(r2.update(20'000, plan, in.nodes, a));  // not yet
  CHECK(r2.update(31'000, plan, in.nodes, a));        // given up (and in cooldown: no new move)
  CHECK(r2.moves().empty());
  CHECK(r2.abandoned() == 1);
}
