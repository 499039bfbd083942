#include <doctest/doctest.h>

#include <cmath>

#include "placement/placement.h"
#include "tests/unit/placement/views.h"

using namespace meshos;
using namespace meshos::placement;
using namespace meshos::placement::testing;
using spec::ConstraintOp;

namespace {

const DaemonAssignment& of(const Assignment& a, const std::string& name) {
  auto it = a.daemons.find(name);
  REQUIRE(it != a.daemons.end());
  return it->second;
}

std::string reason(const DaemonAssignment& d, const std::string& node) {
  auto it = d.excluded.find(node);
  return it == d.excluded.end() ? std::string("<not excluded>") : it->second;
}

}  // namespace

TEST_CASE("estimateRttMs follows Serf: distance plus heights, adjustments unless they make it <= 0") {
  CHECK(estimateRttMs(coord(0, 0), coord(0.003, 0.004)) == doctest::Approx(5.0));
  CHECK(estimateRttMs(coord(0, 0, 0.001), coord(0.003, 0.004, 0.002)) == doctest::Approx(8.0));
  CHECK(estimateRttMs(coord(0, 0, 0, 0.001), coord(0.003, 0.004, 0, 0.001)) == doctest::Approx(7.0));
  // Adjustments that would make it negative are ignored.
  CHECK(estimateRttMs(coord(0, 0, 0, -0.004), coord(0.003, 0.004, 0, -0.004)) == doctest::Approx(5.0));
  CHECK(estimateRttMs(coord(1, 1), coord(1, 1)) == 0.0);
  Coordinate three{{0, 0, 0}, 0, 0};
  CHECK(std::isinf(estimateRttMs(coord(0, 0), three)));
}

TEST_CASE("requestFromSpec: replicas for services, one for jobs and crons, dependency names") {
  spec::DaemonSpec s;
  s.name = "web";
  s.replicas = 3;
  s.resources.cpu_millicores = 250;
  s.placement.strategy = spec::PlacementStrategy::kBinpack;
  s.depends_on.push_back(spec::Dependency{"db"});
  auto r = requestFromSpec(s);
  CHECK(r.name == "web");
  CHECK(r.replicas == 3);
  CHECK(r.resources.cpu_millicores == 250);
  CHECK(r.placement.strategy == spec::PlacementStrategy::kBinpack);
  CHECK(r.depends_on == std::vector<std::string>{"db"});
  CHECK(r.pinned.empty());
  s.kind = spec::DaemonKind::kJob;
  CHECK(requestFromSpec(s).replicas == 1);
  s.kind = spec::DaemonKind::kCron;
  CHECK(requestFromSpec(s).replicas == 1);
}

TEST_CASE("requestFromSpec: a container needs a node with runtime:oci, and the reason names it") {
  spec::DaemonSpec s;
  s.name = "web";
  s.placement.capabilities = {"gpu", "zone:a"};
  s.runtime = spec::RuntimeKind::kOci;
  s.container.rootfs = "/srv/web";
  auto r = requestFromSpec(s);
  CHECK(r.placement.capabilities == std::vector<std::string>{"gpu", "runtime:oci", "zone:a"});
  s.runtime = spec::RuntimeKind::kProcess;
  s.container = {};
  CHECK(requestFromSpec(s).placement.capabilities == std::vector<std::string>{"gpu", "zone:a"});
}

TEST_CASE("constraint equals: a matching label passes; another value or no label is excluded with why") {
  std::vector<NodeView> nodes = {node("n1", {{"zone", "a"}}), node("n2", {{"zone", "b"}}), node("n3")};
  auto d = daemon("web", 3);
  d.placement.constraints.push_back(constraint("zone", ConstraintOp::kEquals, {"a"}));
  auto a = assign(nodes, {d});
  const auto& w = of(a, "web");
  CHECK(w.nodes == std::vector<std::string>{"n1"});
  CHECK(w.infeasible);
  CHECK(reason(w, "n2") == "label zone=b, wants a");
  CHECK(reason(w, "n3") == "label zone missing, wants a");
  CHECK(w.feasible.size() == 1);
}

TEST_CASE("constraint in: one of the values passes") {
  std::vector<NodeView> nodes = {node("n1", {{"zone", "a"}}), node("n2", {{"zone", "b"}}),
                                 node("n3", {{"zone", "c"}}), node("n4")};
  auto d = daemon("web", 4);
  d.placement.constraints.push_back(constraint("zone", ConstraintOp::kIn, {"a", "b"}));
  const auto w = of(assign(nodes, {d}), "web");
  CHECK(nodeSet(w) == std::set<std::string>{"n1", "n2"});
  CHECK(reason(w, "n3") == "label zone=c not in [a, b]");
  CHECK(reason(w, "n4") == "label zone missing, wants one of [a, b]");
}

TEST_CASE("constraint not-in: a listed value is excluded, an absent label passes") {
  std::vector<NodeView> nodes = {node("n1", {{"zone", "a"}}), node("n2", {{"zone", "b"}}), node("n3")};
  auto d = daemon("web", 3);
  d.placement.constraints.push_back(constraint("zone", ConstraintOp::kNotIn, {"b"}));
  const auto w = of(assign(nodes, {d}), "web");
  CHECK(nodeSet(w) == std::set<std::string>{"n1", "n3"});
  CHECK(reason(w, "n2") == "label zone=b in excluded [b]");
}

TEST_CASE("several constraints must all hold") {
  std::vector<NodeView> nodes = {node("n1", {{"zone", "a"}, {"disk", "ssd"}}), node("n2", {{"zone", "a"}}),
                                 node("n3", {{"zone", "b"}, {"disk", "ssd"}})};
  auto d = daemon("db", 3);
  d.placement.constraints.push_back(constraint("zone", ConstraintOp::kEquals, {"a"}));
  d.placement.constraints.push_back(constraint("disk", ConstraintOp::kIn, {"ssd"}));
  const auto w = of(assign(nodes, {d}), "db");
  CHECK(w.nodes == std::vector<std::string>{"n1"});
  CHECK(w.excluded.size() == 2);
}

TEST_CASE("capabilities: every required one must be on the node") {
  auto n1 = node("n1");
  n1.capabilities = {"gpu", "ssd"};
  auto n2 = node("n2");
  n2.capabilities = {"ssd"};
  auto n3 = node("n3");
  n3.capabilities = {"ssd", "gpu"};  // unsorted input still works
  auto d = daemon("train", 3);
  d.placement.capabilities = {"ssd", "gpu"};
  const auto w = of(assign({n1, n2, n3}, {d}), "train");
  CHECK(nodeSet(w) == std::set<std::string>{"n1", "n3"});
  CHECK(reason(w, "n2") == "missing capability gpu");
}

TEST_CASE("alive and active: dead, draining and maintenance nodes are excluded") {
  auto dead = node("dead");
  dead.alive = false;
  auto draining = node("draining");
  draining.active = false;
  const auto w = of(assign({dead, draining, node("ok")}, {daemon("web", 3)}), "web");
  CHECK(w.nodes == std::vector<std::string>{"ok"});
  CHECK(w.infeasible);
  CHECK(reason(w, "dead") == "not alive");
  CHECK(reason(w, "draining") == "not active (draining or in maintenance)");
}

TEST_CASE("healthy: a node whose critical daemon is quarantined is excluded, with why") {
  auto sick = node("sick");
  sick.unhealthy = "critical daemon guard is quarantined";
  const auto w = of(assign({sick, node("ok")}, {daemon("web", 2)}), "web");
  CHECK(w.nodes == std::vector<std::string>{"ok"});
  CHECK(reason(w, "sick") == "unhealthy: critical daemon guard is quarantined");
}

TEST_CASE("resources: reservations of daemons placed earlier in the pass count against capacity") {
  std::vector<NodeView> nodes = {node("n1", {}, 1000, int64_t{1} << 30)};
  std::vector<DaemonRequest> ds;
  for (const char* name : {"a", "b", "c"}) {
    auto d = daemon(name);
    d.resources.cpu_millicores = 400;
    ds.push_back(d);
  }
  auto a = assign(nodes, ds);
  CHECK(of(a, "a").nodes == std::vector<std::string>{"n1"});
  CHECK(of(a, "b").nodes == std::vector<std::string>{"n1"});
  CHECK(of(a, "c").nodes.empty());
  CHECK(of(a, "c").infeasible);
  CHECK(reason(of(a, "c"), "n1") == "cpu: 200m left, 400m asked");
  CHECK(a.byNode().at("n1").size() == 2);

  // Memory works the same way.
  auto m = daemon("big");
  m.resources.memory_bytes = int64_t{2} << 30;
  auto b = assign(nodes, {m});
  CHECK(of(b, "big").infeasible);
  CHECK(reason(of(b, "big"), "n1") == "memory: 1.0GiB left, 2.0GiB asked");
}

TEST_CASE("resources: a node with unknown (0) capacity offers nothing; a daemon asking nothing fits anywhere") {
  std::vector<NodeView> nodes = {node("unknown"), node("sized", {}, 2000, 0)};
  auto asks = daemon("asks", 2);
  asks.resources.cpu_millicores = 100;
  auto none = daemon("none", 2);
  auto a = assign(nodes, {asks, none});
  CHECK(of(a, "asks").nodes == std::vector<std::string>{"sized"});
  CHECK(reason(of(a, "asks"), "unknown") == "cpu: 0m left, 100m asked");
  CHECK(nodeSet(of(a, "none")) == std::set<std::string>{"unknown", "sized"});
  CHECK_FALSE(of(a, "none").infeasible);
}

TEST_CASE("max_per_node: one instance per node by default; more only when nodes are short") {
  std::vector<NodeView> nodes = {node("n1", {}, 1000), node("n2", {}, 1000)};
  auto d = daemon("web", 5);
  auto one = of(assign(nodes, {d}), "web");
  CHECK(one.nodes.size() == 2);
  CHECK(one.infeasible);

  d.placement.max_per_node = 2;
  auto a = assign(nodes, {d});
  const auto& two = of(a, "web");
  CHECK(two.nodes.size() == 4);
  CHECK(two.infeasible);
  CHECK(a.byNode().at("n1").at("web") == 2);
  CHECK(a.byNode().at("n2").at("web") == 2);

  // With enough nodes, a limit above 1 does not stack instances.
  d.replicas = 2;
  d.placement.max_per_node = 3;
  auto b = assign(nodes, {d});
  CHECK(of(b, "web").nodes.size() == 2);
  CHECK(nodeSet(of(b, "web")).size() == 2);

  // Extra instances still need resources.
  d.replicas = 6;
  d.resources.cpu_millicores = 400;
  auto c = assign(nodes, {d});
  CHECK(of(c, "web").nodes.size() == 4);  // 2 x 400m per 1000m node
  CHECK(of(c, "web").infeasible);
}

TEST_CASE("co-location: a dependent runs only where its dependencies run, and is placed after them") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 6; ++i) nodes.push_back(node("n" + std::to_string(i)));
  auto db = daemon("z-db", 2);
  auto cache = daemon("y-cache", 3);
  auto web = daemon("a-web", 1);  // sorts first by name, but depends on both
  web.depends_on = {"z-db", "y-cache", "not-in-the-set"};
  auto a = assign(nodes, {web, db, cache});
  const auto db_nodes = nodeSet(of(a, "z-db"));
  const auto cache_nodes = nodeSet(of(a, "y-cache"));
  const auto& w = of(a, "a-web");
  for (const auto& n : w.nodes) {
    CHECK(db_nodes.count(n) == 1);
    CHECK(cache_nodes.count(n) == 1);
  }
  // The dependent asks more replicas than its dependency has: infeasible, with why.
  web.replicas = 3;
  web.depends_on = {"z-db"};
  auto b = assign(nodes, {web, db});
  const auto& w3 = of(b, "a-web");
  CHECK(w3.infeasible);
  CHECK(nodeSet(w3) == nodeSet(of(b, "z-db")));
  for (const auto& n : nodes) {
    if (nodeSet(of(b, "z-db")).count(n.id) == 0) {
      CHECK(reason(w3, n.id) == "co-location: dependency z-db has no instance here");
    }
  }
}

TEST_CASE("a dependency cycle (not valid, but possible as input) does not hang") {
  auto a = daemon("a");
  a.depends_on = {"b"};
  auto b = daemon("b");
  b.depends_on = {"a"};
  auto r = assign({node("n1"), node("n2")}, {a, b});
  CHECK(r.daemons.size() == 2);
}

TEST_CASE("pinned: kept when alive even past resources, counted toward replicas") {
  std::vector<NodeView> nodes = {node("n1", {}, 1000), node("n2", {}, 1000), node("n3", {}, 1000)};
  auto hog = daemon("a-hog");
  hog.resources.cpu_millicores = 900;
  hog.placement.constraints.push_back(constraint("role", ConstraintOp::kNotIn, {"x"}));
  hog.pinned = {"n2"};
  auto web = daemon("web", 2);
  web.resources.cpu_millicores = 500;
  web.pinned = {"n2"};  // n2 has only 100m left after the hog, but the pin keeps it
  auto a = assign(nodes, {hog, web});
  CHECK(of(a, "a-hog").nodes == std::vector<std::string>{"n2"});
  const auto& w = of(a, "web");
  REQUIRE(w.nodes.size() == 2);
  CHECK(w.nodes.front() == "n2");  // pinned nodes lead
  CHECK_FALSE(w.infeasible);

  // A dead pinned node keeps nothing; the replica goes elsewhere.
  nodes[1].alive = false;
  auto b = assign(nodes, {web});
  CHECK(nodeSet(of(b, "web")) == std::set<std::string>{"n1", "n3"});

  // More pins than replicas: only `replicas` are kept.
  nodes[1].alive = true;
  auto one = daemon("one", 1);
  one.pinned = {"n1", "n2", "n3", "unknown-node"};
  auto c = assign(nodes, {one});
  CHECK(of(c, "one").nodes.size() == 1);
}

TEST_CASE("near: the nodes closest to the named node, then to the nearest node with a label") {
  auto target = node("t", {{"role", "db"}});
  target.name = "dbhost";
  target.coordinate = coord(0, 0);
  auto close = node("close");
  close.coordinate = coord(0.001, 0);
  auto mid = node("mid");
  mid.coordinate = coord(0.010, 0);
  auto far = node("far", {{"role", "db"}});
  far.coordinate = coord(0.100, 0);
  auto unknown = node("unknown");  // no coordinate: ranks last
  std::vector<NodeView> nodes = {target, close, mid, far, unknown};

  auto d = daemon("api", 5);
  d.placement.strategy = spec::PlacementStrategy::kNear;
  d.placement.near = "dbhost";
  auto w = of(assign(nodes, {d}), "api");
  CHECK(w.nodes == std::vector<std::string>{"t", "close", "mid", "far", "unknown"});
  CHECK(w.feasible.front().score == doctest::Approx(0));
  CHECK(w.feasible[1].score == doctest::Approx(-1.0));
  CHECK(w.feasible.back().score == -kUnknownRttMs);

  // label=value: distance to the nearest node carrying it ("far" carries it too).
  auto n2 = nodes;
  n2[0].labels.clear();  // t no longer carries role=db: only "far" does
  d.placement.near = "role=db";
  d.replicas = 2;
  auto l = of(assign(n2, {d}), "api");
  CHECK(l.nodes == std::vector<std::string>{"far", "mid"});

  // The scorer interface gives the same numbers.
  const auto& scorer = scorerFor(spec::PlacementStrategy::kNear);
  CHECK(scorer.score(d, n2[2], NodeLoad{}, n2) == doctest::Approx(-90.0));
}

TEST_CASE("binpack: fills the most reserved node that still fits; spread does the opposite") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 4; ++i) nodes.push_back(node("n" + std::to_string(i), {}, 1000));
  std::vector<DaemonRequest> packed, spread;
  for (int i = 0; i < 6; ++i) {
    auto d = daemon("d" + std::to_string(i));
    d.resources.cpu_millicores = 300;
    d.placement.strategy = spec::PlacementStrategy::kBinpack;
    packed.push_back(d);
    d.placement.strategy = spec::PlacementStrategy::kSpread;
    spread.push_back(d);
  }
  auto p = assign(nodes, packed);
  // 3 x 300m fit in 1000m: six daemons use exactly two nodes.
  CHECK(p.byNode().size() == 2);
  for (const auto& [n, ds] : p.byNode()) CHECK(ds.size() == 3);
  auto s = assign(nodes, spread);
  CHECK(s.byNode().size() == 4);
  for (const auto& [n, ds] : s.byNode()) CHECK(ds.size() <= 2);
}

TEST_CASE("scorers: spread and binpack use utilization in 5% steps; spread ignores load for a daemon reserving nothing") {
  auto n = node("n", {}, 1000, 1000);
  NodeLoad load{500, 250, 2};
  CHECK(utilization(n, load) == doctest::Approx(0.375));
  CHECK(utilizationStep(n, load) == doctest::Approx(0.35));
  auto asks = daemon("x");
  asks.resources.cpu_millicores = 10;
  CHECK(scorerFor(spec::PlacementStrategy::kSpread).score(asks, n, load, {n}) == doctest::Approx(-0.35));
  CHECK(scorerFor(spec::PlacementStrategy::kSpread).score(daemon("x"), n, load, {n}) == 0.0);
  CHECK(scorerFor(spec::PlacementStrategy::kBinpack).score(asks, n, load, {n}) == doctest::Approx(0.35));
  CHECK(scorerFor(spec::PlacementStrategy::kBinpack).score(daemon("x"), n, load, {n}) == doctest::Approx(0.35));
  CHECK(utilization(node("zero"), load) == 0.0);
}

TEST_CASE("spread: daemons that reserve nothing are spread by hashing, not piled on the least-loaded node") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 10; ++i) nodes.push_back(node("n" + std::to_string(i), {}, 1000));
  auto hog = daemon("a-hog", 9);  // loads nine nodes, leaves one empty
  hog.resources.cpu_millicores = 500;
  std::vector<DaemonRequest> ds = {hog};
  for (int i = 0; i < 100; ++i) ds.push_back(daemon("free-" + std::to_string(i)));
  auto a = assign(nodes, ds);
  size_t most = 0;
  for (const auto& [id, m] : a.byNode()) most = std::max(most, m.size());
  CHECK(most < 30);
  CHECK(a.byNode().size() == 10);
}

TEST_CASE("rendezvous tie-break: equal scores are ranked by the hash, stable across runs") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 20; ++i) nodes.push_back(node("n" + std::to_string(i)));
  std::vector<DaemonRequest> ds;
  for (int i = 0; i < 200; ++i) ds.push_back(daemon("d" + std::to_string(i)));
  auto a = assign(nodes, ds, AssignOptions{Detail::kAll});
  std::map<std::string, int> count;
  for (const auto& [name, d] : a.daemons) {
    REQUIRE(d.nodes.size() == 1);
    ++count[d.nodes[0]];
    // The chosen node is the feasible node with the highest rendezvous hash.
    REQUIRE(d.feasible.size() == 20);
    CHECK(d.feasible[0].node == d.nodes[0]);
    for (size_t i = 1; i < d.feasible.size(); ++i) CHECK(d.feasible[i - 1].tie > d.feasible[i].tie);
  }
  // Spread by hashing: every node gets some, none gets a third.
  CHECK(count.size() == 20);
  for (const auto& [n, c] : count) CHECK(c < 60);
}

TEST_CASE("explain gives every feasible node ranked and every excluded node's reason") {
  auto dead = node("dead");
  dead.alive = false;
  std::vector<NodeView> nodes = {node("n1"), node("n2"), dead};
  std::vector<DaemonRequest> ds = {daemon("web")};
  auto e = explain(nodes, ds, "web");
  REQUIRE(e.isOk());
  CHECK(e->nodes.size() == 1);
  CHECK(e->feasible.size() == 2);
  CHECK(e->feasible[0].node == e->nodes[0]);
  CHECK(e->excluded.at("dead") == "not alive");
  auto missing = explain(nodes, ds, "nope");
  CHECK(missing.status().code() == Code::kNotFound);
}

TEST_CASE("detail: kAuto fills reasons for small views; large views only for infeasible daemons") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 300; ++i) nodes.push_back(node("n" + std::to_string(i)));
  nodes[0].alive = false;
  std::vector<DaemonRequest> ds;
  for (int i = 0; i < 300; ++i) ds.push_back(daemon("d" + std::to_string(i)));
  ds[0].replicas = 1000;  // infeasible
  auto a = assign(nodes, ds);
  CHECK(of(a, "d1").excluded.empty());
  CHECK(of(a, "d0").infeasible);
  CHECK(of(a, "d0").excluded.at("n0") == "not alive");
  auto all = assign(nodes, ds, AssignOptions{Detail::kAll});
  CHECK(of(all, "d1").excluded.at("n0") == "not alive");
  CHECK(of(all, "d1").feasible.size() == 299);
  // The decision itself does not depend on the detail.
  for (const auto& [name, d] : a.daemons) CHECK(d.nodes == of(all, name).nodes);
  auto small = assign({node("a"), nodes[0]}, {daemon("x")});
  CHECK(of(small, "x").excluded.at("n0") == "not alive");
  CHECK(of(small, "x").feasible.size() == 1);
}

TEST_CASE("Assigner: recomputes only when the inputs change, whatever their order") {
  std::vector<NodeView> nodes = {node("n1", {}, 1000), node("n2", {}, 1000), node("n3", {}, 1000)};
  std::vector<DaemonRequest> ds = {daemon("a", 2), daemon("b", 1), daemon("c", 3)};
  Assigner assigner;
  const Assignment first = assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 1);
  CHECK(sameAssignment(first, assign(nodes, ds)));
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 1);
  std::reverse(nodes.begin(), nodes.end());
  std::reverse(ds.begin(), ds.end());
  CHECK(sameAssignment(assigner.assign(nodes, ds), first));
  CHECK(assigner.recomputes() == 1);
  // Any field that placement reads changes the fingerprint.
  nodes[0].labels["zone"] = "a";
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 2);
  ds[1].pinned = {"n1"};
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 3);
  // Coordinates matter only when some daemon is placed near something.
  nodes[2].coordinate = coord(0.001, 0.002);
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 3);
  ds[2].placement.strategy = spec::PlacementStrategy::kNear;
  ds[2].placement.near = "n1";
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 4);
  nodes[2].coordinate = coord(0.002, 0.002);
  (void)assigner.assign(nodes, ds);
  CHECK(assigner.recomputes() == 5);
  ds[0].resources.memory_bytes = 1;
  CHECK(fingerprint(nodes, ds) != fingerprint(nodes, {ds[1], ds[2]}));
}

TEST_CASE("duplicate node ids or daemon names: one is kept, chosen by content, not input order") {
  auto x1 = node("x", {{"zone", "a"}});
  auto x2 = node("x", {{"zone", "b"}});
  auto d1 = daemon("web", 1);
  auto d2 = daemon("web", 2);
  auto a = assign({x1, x2, node("y")}, {d1, d2});
  auto b = assign({x2, node("y"), x1}, {d2, d1});
  CHECK(sameAssignment(a, b));
  CHECK(a.daemons.size() == 1);
}

TEST_CASE("bounds: replicas past kMaxReplicas are treated as kMaxReplicas; bad coordinates rank last") {
  auto d = daemon("many", 4'000'000'000u);
  d.placement.max_per_node = 1'000'000;
  auto a = assign({node("n1"), node("n2")}, {d});
  CHECK(of(a, "many").wanted == kMaxReplicas);
  CHECK(of(a, "many").nodes.size() == kMaxReplicas);
  CHECK_FALSE(of(a, "many").infeasible);

  auto target = node("t");
  target.coordinate = coord(0, 0);
  auto nan = node("nan");
  nan.coordinate = coord(std::nan(""), 0);
  auto ok = node("ok");
  ok.coordinate = coord(0.01, 0);
  auto near = daemon("near", 2);
  near.placement.strategy = spec::PlacementStrategy::kNear;
  near.placement.near = "t";
  auto r = of(assign({target, nan, ok}, {near}), "near");
  CHECK(r.nodes == std::vector<std::string>{"t", "ok"});
}
