#include <doctest/doctest.h>

#include "agent/reconcile/reconcile.h"


using namespace meshos::state;
using meshos::reconcile::reconcile;

namespace {
Instance inst(const std::string& id, uint64_t gen, InstanceState st = InstanceState::kRunning) {
  Instance i;
  i.id = id;
  i.daemon = id.substr(0, id.find('/'));
  i.generation = gen;
  i.state = st;
  return i;
}
}  // namespace

TEST_CASE("no desired state, nothing to do") {
  State s;
  CHECK(reconcile(s).empty());
}

TEST_CASE("missing instances start, in sorted order") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 2, false}, {"api", 1, 1, false}}});
  auto a = reconcile(s);
  REQUIRE(a.size() == 3);
  CHECK(a[0].instance == "api/0");
  CHECK(a[1].instance == "web/0");
  CHECK(a[2].instance == "web/1");
  for (const auto& x : a) CHECK(x.kind == ActionKind::kStart);
  CHECK(reconcile(s) == a);  // same input, same output
}

TEST_CASE("running the desired state asks for nothing") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  fold(s, DaemonSignal{inst("web/0", 1)});
  CHECK(reconcile(s).empty());
}

TEST_CASE("a newer generation restarts running instances only") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 2, 2, false}}});
  fold(s, DaemonSignal{inst("web/0", 1)});
  fold(s, DaemonSignal{inst("web/1", 1, InstanceState::kBackingOff)});
  auto a = reconcile(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].kind == ActionKind::kRestart);
  CHECK(a[0].instance == "web/0");
  CHECK(a[0].generation == 2);
}

TEST_CASE("undesired and surplus instances stop; stopping ones are left alone") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  fold(s, DaemonSignal{inst("web/0", 1)});
  fold(s, DaemonSignal{inst("web/1", 1)});
  fold(s, DaemonSignal{inst("old/0", 1)});
  fold(s, DaemonSignal{inst("gone/0", 1, InstanceState::kStopping)});
  auto a = reconcile(s);
  REQUIRE(a.size() == 2);
  CHECK(a[0].instance == "old/0");
  CHECK(a[0].kind == ActionKind::kStop);
  CHECK(a[1].instance == "web/1");
  CHECK(a[1].kind == ActionKind::kStop);
}

TEST_CASE("paused daemons start nothing; shutdown asks for nothing") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, true}}});
  CHECK(reconcile(s).empty());
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  CHECK(reconcile(s).size() == 1);
  fold(s, Shutdown{"test"});
  CHECK(reconcile(s).empty());
}
