#include <doctest/doctest.h>

#include "placement/rebalancer.h"
#include "tests/unit/placement/views.h"

using namespace meshos;
using namespace meshos::placement;
using namespace meshos::placement::testing;

namespace {

// Four nodes; web (1 replica) lands somewhere; small enough that every daemon gets detail.
struct Fixture {
  std::vector<NodeView> nodes = {node("n1"), node("n2"), node("n3"), node("n4")};
  std::vector<DaemonRequest> daemons = {daemon("web", 1)};
  Assignment base = assign(nodes, daemons);
  std::string webNode() const { return base.daemons.at("web").nodes.at(0); }
  std::map<std::string, double> loads(double hot, double cool) const {
    std::map<std::string, double> l;
    for (const auto& n : nodes) l[n.id] = n.id == webNode() ? hot : cool;
    return l;
  }
};

}  // namespace

TEST_CASE("rebalancer: no move while the gain stays within the hysteresis") {
  Fixture f;
  Rebalancer r(RebalanceOptions{.cooldown_ms = 1000, .hysteresis = 0.3});
  CHECK(r.plan(0, f.base, f.loads(0.5, 0.3)).empty());
  CHECK(r.plan(0, f.base, {}).empty());  // no loads known: nothing moves
  CHECK(r.active().empty());
}

TEST_CASE("rebalancer: one instance from the hottest to the coolest feasible node, then a cooldown") {
  Fixture f;
  Rebalancer r(RebalanceOptions{.cooldown_ms = 1000, .hysteresis = 0.3});
  const std::string hot = f.webNode();
  auto loads = f.loads(0.9, 0.5);
  std::string coolest;
  for (const auto& n : f.nodes) {
    if (n.id != hot) {
      coolest = n.id;
      loads[n.id] = 0.1;
      break;
    }
  }
  auto moves = r.plan(0, f.base, loads);
  std::vector<Move> web_moves;
  for (const auto& m : moves) {
    if (m.daemon == "web") web_moves.push_back(m);
  }
  REQUIRE(web_moves.size() == 1);
  CHECK(web_moves[0].from == hot);
  CHECK(web_moves[0].to == coolest);
  auto moved = r.apply(f.base);
  CHECK(moved.daemons.at("web").nodes == std::vector<std::string>{coolest});
  CHECK(moved.byNode().at(coolest).count("web") == 1);
  CHECK((moved.byNode().count(hot) == 0 || moved.byNode().at(hot).count("web") == 0));

  // Still hot (say the new node is now the hot one): nothing moves web within the cooldown.
  std::map<std::string, double> now_hot;
  for (const auto& n : f.nodes) now_hot[n.id] = n.id == coolest ? 0.95 : 0.05;
  for (const auto& m : r.plan(999, f.base, now_hot)) CHECK(m.daemon != "web");
  // After the cooldown it may move again.
  bool again = false;
  for (const auto& m : r.plan(1000 + 999, f.base, now_hot)) again = again || m.daemon == "web";
  CHECK(again);
}

TEST_CASE("rebalancer: targets are only feasible nodes; a stale move is dropped") {
  Fixture f;
  auto d = f.daemons;
  d[0].placement.constraints.push_back(constraint("zone", spec::ConstraintOp::kEquals, {"a"}));
  auto nodes = f.nodes;
  nodes[0].labels["zone"] = "a";
  nodes[1].labels["zone"] = "a";
  auto base = assign(nodes, d);
  const std::string on = base.daemons.at("web").nodes.at(0);
  const std::string other = on == "n1" ? "n2" : "n1";
  std::map<std::string, double> loads = {{"n1", 0.9}, {"n2", 0.9}, {"n3", 0.0}, {"n4", 0.0}};
  loads[other] = 0.5;
  Rebalancer r(RebalanceOptions{.cooldown_ms = 1000, .hysteresis = 0.3});
  auto moves = r.plan(0, base, loads);
  for (const auto& m : moves) {
    if (m.daemon == "web") CHECK(m.to == other);  // n3, n4 are cooler but not feasible
  }
  // The source stops holding web in the base assignment (it went away): the move is dropped.
  nodes.erase(std::remove_if(nodes.begin(), nodes.end(), [&](const NodeView& n) { return n.id == on; }), nodes.end());
  auto after = r.apply(assign(nodes, d));
  for (const auto& m : r.active()) CHECK(m.daemon != "web");
  CHECK(after.daemons.at("web").nodes == std::vector<std::string>{other});
}

TEST_CASE("rebalancer: at most max_moves_per_plan moves per plan") {
  std::vector<NodeView> nodes;
  for (int i = 0; i < 6; ++i) nodes.push_back(node("n" + std::to_string(i)));
  std::vector<DaemonRequest> ds;
  for (int i = 0; i < 30; ++i) ds.push_back(daemon("d" + std::to_string(i)));
  auto base = assign(nodes, ds);
  std::map<std::string, double> loads;
  for (const auto& n : nodes) loads[n.id] = 0.0;
  loads["n0"] = 1.0;
  loads["n1"] = 1.0;
  loads["n2"] = 1.0;
  Rebalancer r(RebalanceOptions{.cooldown_ms = 1000, .hysteresis = 0.2, .max_moves_per_plan = 2});
  CHECK(r.plan(0, base, loads).size() == 2);
  CHECK(r.active().size() == 2);
}
