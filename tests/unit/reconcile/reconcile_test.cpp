#include <doctest/doctest.h>

#include "agent/reconcile/reconcile.h"

using namespace meshos::state;
using meshos::reconcile::reconcile;

TEST_CASE("no desired state, nothing to do") {
  State s;
  CHECK(reconcile(s).empty());
}

TEST_CASE("a new desired set asks for one apply of its generation, until it is applied") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 2, false}, {"api", 1, 1, false}}});
  auto a = reconcile(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].kind == ActionKind::kApply);
  CHECK(a[0].generation == s.desired_set_generation);
  CHECK(a[0].target() == "node");
  CHECK(reconcile(s) == a);  // same input, same output
  fold(s, DesiredApplied{a[0].generation});
  CHECK(reconcile(s).empty());
}

TEST_CASE("an unchanged set asks for nothing; a change asks again") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  fold(s, DesiredApplied{s.desired_set_generation});
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  CHECK(reconcile(s).empty());
  fold(s, DesiredDaemonsChanged{"local", {{"web", 2, 1, false}}});
  auto a = reconcile(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].generation == 2);
}

TEST_CASE("an older apply completing late does not hide a newer set") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  uint64_t first = s.desired_set_generation;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 2, 1, false}}});
  fold(s, DesiredApplied{first});
  REQUIRE(reconcile(s).size() == 1);
  fold(s, DesiredApplied{s.desired_set_generation});
  fold(s, DesiredApplied{first});  // stale: ignored
  CHECK(reconcile(s).empty());
}

TEST_CASE("shutdown asks for nothing") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  fold(s, Shutdown{"test"});
  CHECK(reconcile(s).empty());
}

TEST_CASE("the first set since the agent started restores what ran (policy); later ones are changes") {
  State s;
  fold(s, DesiredDaemonsChanged{"local", {{"web", 1, 1, false}}});
  auto a = reconcile(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].cause == ActionCause::kPolicy);
  fold(s, DesiredApplied{a[0].generation});
  fold(s, DesiredDaemonsChanged{"local", {{"web", 2, 1, false}}});
  a = reconcile(s);
  REQUIRE(a.size() == 1);
  CHECK(a[0].cause == ActionCause::kChange);
}
