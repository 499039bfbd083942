// planLocal(): which commit daemons this node runs, from the desired state and its view.
#include <doctest/doctest.h>

#include <algorithm>

#include "agent/reconcile/local_plan.h"
#include "tests/unit/reconcile/decision_of.h"

using namespace meshos;
using namespace meshos::reconcile;

namespace {

spec::DaemonSpec service(const std::string& name, int64_t replicas) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sleep", "1000"};
  s.replicas = replicas;
  return s;
}

commits::DesiredState desiredWith(std::vector<spec::DaemonSpec> specs) {
  commits::DesiredState d;
  for (auto& s : specs) {
    commits::DesiredDaemon dd;
    dd.spec = s;
    dd.updated_seq = 1;
    d.daemons.emplace(s.name, dd);
  }
  return d;
}

PeerView peer(int i, state::MemberState st = state::MemberState::kAlive) {
  PeerView p;
  p.id = "id" + std::to_string(i);
  p.name = "n" + std::to_string(i);
  p.state = st;
  state::NodeReport r;
  r.cpu_millicores = 4000;
  r.memory_bytes = int64_t{8} << 30;
  p.report = r;
  return p;
}

LocalInputs inputs(const commits::DesiredState& d, int self, int n) {
  LocalInputs in;
  in.self_id = "id" + std::to_string(self);
  in.desired = &d;
  in.now_ms = 1000;
  in.wall_ms = 1'000'000;
  for (int i = 0; i < n; ++i) in.nodes.push_back(peer(i));
  in.members_known = static_cast<size_t>(n);
  in.vars = {{"node.host", "127.0.1." + std::to_string(self)}, {"node.name", "n" + std::to_string(self)},
             {"node.id", in.self_id}};
  in.require_view_agreement = false;  // the cases below test other rules; the last ones test it
  return in;
}

// Every alive peer publishes the digest of `in`'s view (they all see what this node sees).
void agree(LocalInputs& in) {
  const uint64_t digest = viewDigest(in.nodes);
  for (auto& n : in.nodes)
    if (n.report) n.report->view_digest = digest;
}

using meshos::reconcile::testing::decision;

}  // namespace

TEST_CASE("every node agrees; exactly `replicas` nodes run a daemon, one instance each") {
  auto d = desiredWith({service("web", 3), service("db", 1)});
  std::map<std::string, int> runs;
  for (int self = 0; self < 5; ++self) {
    placement::Assigner assigner;
    auto plan = planLocal(inputs(d, self, 5), assigner);
    for (const auto& s : plan.run) {
      CHECK(s.replicas == 1);
      runs[s.name]++;
    }
    CHECK(decision(plan, "web").assigned.size() == 3);
    CHECK_FALSE(decision(plan, "web").infeasible);
  }
  CHECK(runs["web"] == 3);
  CHECK(runs["db"] == 1);
}

TEST_CASE("the plan does not depend on the order of the nodes") {
  auto d = desiredWith({service("web", 2), service("api", 3)});
  auto in = inputs(d, 1, 6);
  placement::Assigner a1, a2;
  auto p1 = planLocal(in, a1);
  std::reverse(in.nodes.begin(), in.nodes.end());
  auto p2 = planLocal(in, a2);
  REQUIRE(p1.decisions.size() == p2.decisions.size());
  for (size_t i = 0; i < p1.decisions.size(); ++i) CHECK(p1.decisions[i].assigned == p2.decisions[i].assigned);
  CHECK(p1.run == p2.run);
}

TEST_CASE("${node.*} variables are filled in for this node") {
  auto s = service("web", 5);
  s.command = {"/bin/sh", "-c", "exec server --bind ${node.host}:8080 --name ${node.name} ${HOME}"};
  auto d = desiredWith({s});
  placement::Assigner assigner;
  auto plan = planLocal(inputs(d, 2, 5), assigner);
  REQUIRE(plan.run.size() == 1);
  CHECK(plan.run[0].command[2] == "exec server --bind 127.0.1.2:8080 --name n2 ${HOME}");
}

TEST_CASE("a node without node state, or not alive, gets nothing") {
  auto d = desiredWith({service("web", 3)});
  auto in = inputs(d, 0, 4);
  in.nodes[1].report.reset();
  in.nodes[2].state = state::MemberState::kSuspect;
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  const auto& dec = decision(plan, "web");
  CHECK(dec.assigned.size() == 2);
  CHECK(std::count(dec.assigned.begin(), dec.assigned.end(), "n1") == 0);
  CHECK(std::count(dec.assigned.begin(), dec.assigned.end(), "n2") == 0);
  CHECK(dec.infeasible);
}

TEST_CASE("make-before-break: an instance no longer assigned here waits for the new holders") {
  auto d = desiredWith({service("web", 1)});
  // Find a node the daemon is not assigned to, and make it the current holder.
  placement::Assigner probe;
  auto first = planLocal(inputs(d, 0, 3), probe);
  std::string chosen = decision(first, "web").assigned.at(0);
  int self = chosen == "n0" ? 1 : 0;
  auto in = inputs(d, self, 3);
  in.local["web"] = {1, 1};
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 1);  // kept: the new holder is not ready yet
  REQUIRE(plan.handoffs.count("web") == 1);
  CHECK(plan.handoffs.at("web").since_ms == 1000);

  // Still not ready a bit later: kept, same handoff start.
  in.handoffs = plan.handoffs;
  in.now_ms = 5000;
  plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 1);
  CHECK(plan.handoffs.at("web").since_ms == 1000);

  // The new holder reports ready: this node lets go.
  for (auto& n : in.nodes) {
    if (n.name == chosen) n.report->daemons["web"] = {1, 1, 1};
  }
  plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 0);
  CHECK(plan.run.empty());
  CHECK(plan.handoffs.empty());
}

TEST_CASE("make-before-break gives up at the handoff deadline") {
  auto d = desiredWith({service("web", 1)});
  placement::Assigner probe;
  std::string chosen = decision(planLocal(inputs(d, 0, 3), probe), "web").assigned.at(0);
  int self = chosen == "n0" ? 1 : 0;
  auto in = inputs(d, self, 3);
  in.local["web"] = {1, 1};
  in.handoffs["web"] = Handoff{0};
  in.now_ms = in.handoff_deadline_ms + 1;
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 0);
  CHECK(decision(plan, "web").why.find("deadline") != std::string::npos);
}

TEST_CASE("drain: the node is excluded, hands off, then reports in-maintenance; exit returns it") {
  auto d = desiredWith({service("web", 5)});  // more replicas than nodes: every node is wanted
  d.maintenance["n0"] = commits::NodeMaintenance{commits::MaintenanceMode::kDrain, 9'000'000, 7};
  auto in = inputs(d, 0, 3);
  in.local["web"] = {1, 1};
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(plan.maintenance == state::Maintenance::kDraining);
  CHECK(plan.maintenance_seq == 7);
  const auto& dec = decision(plan, "web");
  CHECK(std::count(dec.assigned.begin(), dec.assigned.end(), "n0") == 0);
  CHECK(dec.excluded.count("n0") == 1);
  CHECK(dec.here == 1);  // nobody else is ready yet

  for (auto& n : in.nodes) {
    if (n.name != "n0") n.report->daemons["web"] = {1, 1, 1};
  }
  in.handoffs = plan.handoffs;
  in.maintenance = plan.maintenance;
  in.maintenance_seq = plan.maintenance_seq;
  plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 0);
  CHECK(plan.maintenance == state::Maintenance::kDraining);  // still stopping

  in.local.clear();
  plan = planLocal(in, assigner);
  CHECK(plan.maintenance == state::Maintenance::kInMaintenance);

  in.maintenance = plan.maintenance;
  plan = planLocal(in, assigner);
  CHECK(plan.maintenance == state::Maintenance::kInMaintenance);  // only forward

  d.maintenance.clear();  // exit
  plan = planLocal(in, assigner);
  CHECK(plan.maintenance == state::Maintenance::kActive);
  CHECK(decision(plan, "web").here == 1);
}

TEST_CASE("the drain deadline ends the handoff") {
  auto d = desiredWith({service("web", 1)});
  d.maintenance["n0"] = commits::NodeMaintenance{commits::MaintenanceMode::kDrain, 2'000'000, 7};
  auto in = inputs(d, 0, 3);
  in.local["web"] = {1, 1};
  in.wall_ms = 2'000'000;
  placement::Assigner assigner;
  CHECK(decision(planLocal(in, assigner), "web").here == 0);
}

TEST_CASE("wall-clock steps neither end a freeze early nor stretch it") {
  auto d = desiredWith({service("web", 5), service("api", 5)});
  d.freeze = commits::FreezeState{1'060'000, "incident", 3};  // 60 s after the first plan
  auto in = inputs(d, 0, 3);
  in.local["web"] = {1, 1};
  WallDeadlines deadlines;
  in.deadlines = &deadlines;
  placement::Assigner assigner;
  in.now_ms = 5'000;
  in.wall_ms = 1'000'000;
  CHECK(planLocal(in, assigner).frozen);
  in.now_ms += 10'000;
  in.wall_ms += 3'600'000 + 10'000;  // the wall clock jumps an hour ahead
  CHECK(planLocal(in, assigner).frozen);
  in.now_ms += 49'000;
  in.wall_ms -= 2 * 3'600'000;       // and two hours back
  CHECK(planLocal(in, assigner).frozen);
  in.now_ms += 1'000;                // 60 s on the monotonic clock: thawed
  CHECK_FALSE(planLocal(in, assigner).frozen);

  d.freeze = commits::FreezeState{in.wall_ms + 1'000, "again", 9};  // a new freeze, anchored afresh
  CHECK(planLocal(in, assigner).frozen);
  CHECK(deadlines.size() == 1);  // the old one is forgotten
}

TEST_CASE("a wall-clock step does not move a drain deadline") {
  auto d = desiredWith({service("web", 1)});
  d.maintenance["n0"] = commits::NodeMaintenance{commits::MaintenanceMode::kDrain, 1'030'000, 7};
  auto in = inputs(d, 0, 3);
  in.local["web"] = {1, 1};
  WallDeadlines deadlines;
  in.deadlines = &deadlines;
  placement::Assigner assigner;
  in.now_ms = 5'000;
  in.wall_ms = 1'000'000;  // 30 s before the deadline
  CHECK(decision(planLocal(in, assigner), "web").here == 1);
  in.now_ms += 1'000;
  in.wall_ms += 3'600'000;  // an hour ahead: the deadline has not passed here
  CHECK(decision(planLocal(in, assigner), "web").here == 1);
  in.now_ms += 29'000;
  in.wall_ms -= 7'200'000;  // 30 s on the monotonic clock: it has, whatever the wall says
  CHECK(decision(planLocal(in, assigner), "web").here == 0);
}

TEST_CASE("WallDeadlines: anchored at first sight, counted on the monotonic clock") {
  WallDeadlines w;
  CHECK_FALSE(w.passed("k", 10'000, 0, 100));     // 10 s away, seen at mono 100
  CHECK_FALSE(w.passed("k", 10'000, 50'000, 10'099));  // the wall clock says it passed
  CHECK(w.passed("k", 10'000, -99'999, 10'100));   // the monotonic clock decides
  CHECK(w.passed("late", 1'000, 2'000, 0));        // already past when first seen
  w.retain({"late"});
  CHECK(w.size() == 1);
}

TEST_CASE("an isolated node keeps what it runs and starts nothing") {
  auto d = desiredWith({service("web", 5), service("api", 5)});
  auto in = inputs(d, 0, 5);
  for (int i = 2; i < 5; ++i) in.nodes[i].state = state::MemberState::kDead;
  in.local["web"] = {1, 1};
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(plan.isolated);
  CHECK(decision(plan, "web").here == 1);
  CHECK(decision(plan, "api").here == 0);
}

TEST_CASE("a freeze holds the local set; a paused daemon runs nowhere but keeps its place") {
  auto d = desiredWith({service("web", 5), service("api", 5)});
  d.freeze = commits::FreezeState{2'000'000, "incident", 3};
  auto in = inputs(d, 0, 3);
  in.local["web"] = {1, 1};
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(plan.frozen);
  CHECK(decision(plan, "web").here == 1);
  CHECK(decision(plan, "api").here == 0);

  d.freeze.reset();
  d.daemons.at("api").paused = true;
  plan = planLocal(in, assigner);
  CHECK(decision(plan, "api").here == 0);
  CHECK(decision(plan, "api").assigned.size() == 3);
  CHECK(decision(plan, "api").paused);
}

TEST_CASE("kill-relocation pins a daemon where it runs") {
  auto d = desiredWith({service("web", 1)});
  placement::Assigner probe;
  std::string chosen = decision(planLocal(inputs(d, 0, 3), probe), "web").assigned.at(0);
  int self = chosen == "n0" ? 1 : 0;
  d.daemons.at("web").kill_relocation_generation = 2;
  auto in = inputs(d, self, 3);
  in.local["web"] = {1, 1};
  placement::Assigner assigner;
  auto plan = planLocal(in, assigner);
  CHECK(decision(plan, "web").here == 1);
  CHECK(decision(plan, "web").assigned == std::vector<std::string>{"n" + std::to_string(self)});
}

TEST_CASE("view agreement: nothing new starts until a majority publishes this node's view") {
  auto d = desiredWith({service("web", 3)});
  for (int self = 0; self < 5; ++self) {
    LocalInputs in = inputs(d, self, 5);
    in.require_view_agreement = true;
    placement::Assigner a1;
    auto alone = planLocal(in, a1);
    CHECK_FALSE(alone.agreed);
    CHECK(alone.agreeing == 1);
    CHECK(alone.run.empty());  // nothing starts on a view nobody confirmed
    for (const auto& dec : alone.decisions)
      if (!dec.assigned.empty() && dec.why.rfind("waiting", 0) == 0) CHECK(dec.here == 0);
    agree(in);
    placement::Assigner a2;
    auto agreed = planLocal(in, a2);
    CHECK(agreed.agreed);
    CHECK(agreed.agreeing == 5);
    CHECK(agreed.view_digest == viewDigest(in.nodes));
  }
}

TEST_CASE("view agreement: a minority that sees the cluster differently waits; what runs keeps running") {
  auto d = desiredWith({service("web", 2)});
  LocalInputs in = inputs(d, 0, 5);
  in.require_view_agreement = true;
  agree(in);
  // Two of the five publish another view (they saw a sixth member, say).
  in.nodes[3].report->view_digest ^= 1;
  in.nodes[4].report->view_digest ^= 1;
  placement::Assigner a;
  auto plan = planLocal(in, a);
  CHECK(plan.agreeing == 3);
  CHECK(plan.agreed);  // 3 of 5: a majority
  in.nodes[2].report->view_digest ^= 1;
  in.local["web"] = LocalDaemon{1, 1};  // one instance runs here already
  placement::Assigner b;
  auto waiting = planLocal(in, b);
  CHECK(waiting.agreeing == 2);
  CHECK_FALSE(waiting.agreed);
  CHECK(decision(waiting, "web").here <= 1);  // keeps what runs, starts nothing more
}

TEST_CASE("view digest: members alive and what placement reads of them, nothing else") {
  LocalInputs in = inputs(desiredWith({}), 0, 3);
  const uint64_t base = viewDigest(in.nodes);
  auto changed = in.nodes;
  changed[1].report->inventory.load1 = 7.5;  // live load: not a placement input
  changed[1].report->commit_seq = 9;
  CHECK(viewDigest(changed) == base);
  changed[1].report->labels["zone"] = "b";
  CHECK(viewDigest(changed) != base);
  auto suspect = in.nodes;
  suspect[2].state = state::MemberState::kSuspect;
  CHECK(viewDigest(suspect) != base);
  auto reordered = in.nodes;
  std::reverse(reordered.begin(), reordered.end());
  CHECK(viewDigest(reordered) == base);
}
