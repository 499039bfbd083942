// The supervisor routed through an executor: it decides every start and stop as before,
// but only asks; nothing happens to a process until perform() carries the action out. Each
// action says why (a change, the policy that keeps what runs, an operator), which is what a
// freeze gates on.
#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;
using state::Action;
using state::ActionCause;
using state::ActionKind;

namespace {

// The one action asked for, checked for its kind, instance and cause.
Action onlyAsked(Supervisor& sup, ActionKind kind, const std::string& instance, ActionCause cause) {
  auto asked = sup.pendingActions();
  REQUIRE(asked.size() == 1);
  CHECK(asked[0].kind == kind);
  CHECK(asked[0].instance == instance);
  CHECK(asked[0].daemon == instance.substr(0, instance.find('#')));
  CHECK(asked[0].cause == cause);
  return asked[0];
}

}  // namespace

TEST_CASE("routed: every start and stop waits for perform(), and says why") {
  Harness h;
  int pings = 0;
  h.sup().routeActions([&] { ++pings; });
  auto s = service("a", {"sleep", "30"});
  s.restart = spec::RestartPolicy::kAlways;

  // The first set restores what ran: policy. Nothing runs until the start is carried out.
  REQUIRE(h.sup().apply(one(s)));
  Action start = onlyAsked(h.sup(), ActionKind::kStart, "a#0", ActionCause::kPolicy);
  CHECK(pings == 1);
  CHECK(h.stateOf("a#0") == InstanceState::kWaiting);
  CHECK(h.pidOf("a#0") == 0);
  REQUIRE(h.sup().perform(start));
  CHECK(h.sup().pendingActions().empty());
  REQUIRE(h.waitState("a#0", InstanceState::kReady));
  const int first = h.pidOf("a#0");
  CHECK(h.sup().perform(start));  // carried out already: nothing happens
  CHECK(h.pidOf("a#0") == first);

  // An operator's stop: the instance shows stopping, the process lives until performed.
  REQUIRE(h.sup().stop("a#0"));
  Action stop = onlyAsked(h.sup(), ActionKind::kStop, "a#0", ActionCause::kOperator);
  CHECK(h.stateOf("a#0") == InstanceState::kStopping);
  h.runFor(100);
  CHECK(pidAlive(first));
  REQUIRE(h.sup().perform(stop));
  REQUIRE(h.waitState("a#0", InstanceState::kStopped));
  CHECK(!pidAlive(first));

  // An operator's start, then a changed spec: the restart is a change (stop, then start).
  REQUIRE(h.sup().start("a#0"));
  REQUIRE(h.sup().perform(onlyAsked(h.sup(), ActionKind::kStart, "a#0", ActionCause::kOperator)));
  REQUIRE(h.waitState("a#0", InstanceState::kReady));
  const int second = h.pidOf("a#0");
  s.env["V"] = "2";
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.sup().perform(onlyAsked(h.sup(), ActionKind::kStop, "a#0", ActionCause::kChange)));
  REQUIRE(h.runUntil([&] { return !h.sup().pendingActions().empty(); }, 5000));
  REQUIRE(h.sup().perform(onlyAsked(h.sup(), ActionKind::kStart, "a#0", ActionCause::kChange)));
  REQUIRE(h.waitState("a#0", InstanceState::kReady));
  const int third = h.pidOf("a#0");
  CHECK(third != second);

  // A crash: the restart policy asks again, as policy (a freeze does not hold it).
  ::kill(third, SIGKILL);
  REQUIRE(h.runUntil([&] { return !h.sup().pendingActions().empty(); }, 5000));
  REQUIRE(h.sup().perform(onlyAsked(h.sup(), ActionKind::kStart, "a#0", ActionCause::kPolicy)));
  REQUIRE(h.waitState("a#0", InstanceState::kReady));
  CHECK(h.rec.failuresOf("crash") == 1);
}

TEST_CASE("routed: a later decision replaces an earlier one; stopAll sends the stops it was asked for") {
  Harness h;
  h.sup().routeActions([] {});
  auto s = service("b", {"sleep", "30"});
  REQUIRE(h.sup().apply(one(s)));
  Action start = onlyAsked(h.sup(), ActionKind::kStart, "b#0", ActionCause::kPolicy);
  // Stopped by an operator before its start ran: the start is no longer wanted.
  REQUIRE(h.sup().stop("b"));
  CHECK(h.sup().pendingActions().empty());
  CHECK(h.stateOf("b#0") == InstanceState::kStopped);
  REQUIRE(h.sup().perform(start));
  CHECK(h.pidOf("b#0") == 0);
  CHECK(h.sup().perform(Action{ActionKind::kApply, "", "node", 1, "", ActionCause::kChange}).code() ==
        Code::kInvalidArgument);

  REQUIRE(h.sup().start("b"));
  REQUIRE(h.sup().perform(onlyAsked(h.sup(), ActionKind::kStart, "b#0", ActionCause::kOperator)));
  REQUIRE(h.waitState("b#0", InstanceState::kReady));
  const int pid = h.pidOf("b#0");
  REQUIRE(h.sup().stop("b"));
  onlyAsked(h.sup(), ActionKind::kStop, "b#0", ActionCause::kOperator);
  // The agent stops with the stop still asked for: stopAll sends it at once.
  bool done = false;
  h.sup().stopAll([&] { done = true; });
  REQUIRE(h.runUntil([&] { return done; }, 5000));
  CHECK(!pidAlive(pid));
  CHECK(h.sup().pendingActions().empty());
}
