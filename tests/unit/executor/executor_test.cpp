#include <doctest/doctest.h>

#include <vector>

#include "agent/executor/executor.h"

using namespace meshos;
using namespace meshos::executor;
using meshos::state::Action;
using meshos::state::ActionKind;

namespace {

// Records dispatches; the test completes them by hand (or at once, if `immediate` is set).
struct FakeDispatcher : Dispatcher {
  std::vector<std::pair<ActionId, Action>> calls;
  Executor* executor = nullptr;
  std::optional<Status> immediate;
  int64_t now_ms = 0;
  void dispatch(ActionId id, const Action& a) override {
    calls.emplace_back(id, a);
    if (immediate) executor->complete(id, *immediate, now_ms);
  }
};

Action start(const std::string& id) { return Action{ActionKind::kApply, "d", id, 1, "test"}; }

}  // namespace

TEST_CASE("a full queue drops and counts") {
  FakeDispatcher d;
  Executor ex({.queue_capacity = 2}, d);
  CHECK(ex.offer(start("a"), 0) == Admission::kAdmitted);
  CHECK(ex.offer(start("b"), 0) == Admission::kAdmitted);
  CHECK(ex.offer(start("c"), 0) == Admission::kDropped);
  CHECK(ex.counters().dropped == 1);
  CHECK(ex.queued() == 2);
}

TEST_CASE("duplicates are suppressed while queued, in flight and retrying") {
  FakeDispatcher d;
  Executor ex({.retry_initial_ms = 100}, d);
  CHECK(ex.offer(start("a"), 0) == Admission::kAdmitted);
  CHECK(ex.offer(start("a"), 0) == Admission::kDuplicate);
  ex.poll(0);
  REQUIRE(d.calls.size() == 1);
  CHECK(ex.inFlight() == 1);
  CHECK(ex.offer(start("a"), 0) == Admission::kDuplicate);
  ex.complete(d.calls[0].first, Status::unavailable("runtime busy"), 10);
  CHECK(ex.retrying() == 1);
  CHECK(ex.offer(start("a"), 10) == Admission::kDuplicate);
  CHECK(ex.counters().duplicates == 3);
  CHECK(ex.counters().deferred == 1);
}

TEST_CASE("retryable failures back off exponentially, then fail for good") {
  FakeDispatcher d;
  Executor ex({.max_attempts = 3, .retry_initial_ms = 100, .retry_max_ms = 150}, d);
  std::vector<Outcome> outcomes;
  ex.onOutcome([&](const Outcome& o) { outcomes.push_back(o); });
  REQUIRE(ex.offer(start("a"), 0) == Admission::kAdmitted);
  ex.poll(0);
  ex.complete(d.calls.back().first, Status::io("disk"), 0);
  ex.poll(99);
  CHECK(d.calls.size() == 1);  // not due yet
  ex.poll(100);
  CHECK(d.calls.size() == 2);
  ex.complete(d.calls.back().first, Status::io("disk"), 100);
  ex.poll(249);
  CHECK(d.calls.size() == 2);
  ex.poll(250);  // second backoff capped at retry_max_ms = 150
  CHECK(d.calls.size() == 3);
  ex.complete(d.calls.back().first, Status::io("disk"), 250);
  REQUIRE(outcomes.size() == 1);
  CHECK(outcomes[0].disposition == Disposition::kFailed);
  CHECK(outcomes[0].attempts == 3);
  CHECK(ex.idle());
  CHECK(ex.counters().failed == 1);
  CHECK(ex.offer(start("a"), 300) == Admission::kAdmitted);  // target free again
}

TEST_CASE("a non-retryable failure ends at once") {
  FakeDispatcher d;
  Executor ex({}, d);
  d.executor = &ex;
  d.immediate = Status::invalid("bad spec");
  REQUIRE(ex.offer(start("a"), 0) == Admission::kAdmitted);
  ex.poll(0);
  CHECK(ex.counters().failed == 1);
  CHECK(ex.recentOutcomes().back().error == "invalid argument: bad spec");
}

TEST_CASE("deadlines expire actions queued, retrying and in flight") {
  FakeDispatcher d;
  Executor ex({.max_in_flight = 1, .action_deadline_ms = 1000, .retry_initial_ms = 5000}, d);
  REQUIRE(ex.offer(start("a"), 0) == Admission::kAdmitted);
  REQUIRE(ex.offer(start("b"), 0) == Admission::kAdmitted);
  ex.poll(0);  // a in flight; b queued (one at a time)
  CHECK(ex.inFlight() == 1);
  CHECK(ex.queued() == 1);
  ex.poll(1000);
  CHECK(ex.counters().expired == 2);
  // A late completion of an expired action changes nothing.
  ex.complete(d.calls[0].first, Status::ok(), 1001);
  CHECK(ex.counters().succeeded == 0);
  REQUIRE(ex.offer(start("c"), 2000) == Admission::kAdmitted);
  ex.poll(2000);
  ex.complete(d.calls.back().first, Status::unavailable("x"), 2000);
  ex.poll(3000);  // retry due at 7000, deadline at 3000
  CHECK(ex.counters().expired == 3);
  CHECK(ex.idle());
}

TEST_CASE("the gate refuses while closed; shutdown abandons what waits") {
  FakeDispatcher d;
  Executor ex({}, d);
  ex.setGate(false);
  CHECK(ex.offer(start("a"), 0) == Admission::kGated);
  ex.setGate(true);
  REQUIRE(ex.offer(start("a"), 0) == Admission::kAdmitted);
  REQUIRE(ex.offer(start("b"), 0) == Admission::kAdmitted);
  CHECK(ex.abandonPending(0) == 2);
  CHECK(ex.counters().abandoned == 2);
  CHECK(ex.idle());
  auto j = ex.toJson();
  CHECK(j["gated"] == 1);
  CHECK(j["abandoned"] == 2);
}

TEST_CASE("success is recorded with its attempts") {
  FakeDispatcher d;
  Executor ex({}, d);
  d.executor = &ex;
  d.immediate = Status::ok();
  REQUIRE(ex.offer(start("a"), 0) == Admission::kAdmitted);
  ex.poll(0);
  CHECK(ex.counters().succeeded == 1);
  CHECK(ex.recentOutcomes().back().attempts == 1);
  CHECK(ex.recentOutcomes().back().disposition == Disposition::kSucceeded);
}

TEST_CASE("a freeze holds changes: refused as gated, queued ones wait; policy and operators pass") {
  using meshos::state::ActionCause;
  FakeDispatcher d;
  Executor ex({.action_deadline_ms = 1000}, d);
  d.executor = &ex;
  d.immediate = Status::ok();
  auto act = [](const std::string& id, ActionKind k, ActionCause c) { return Action{k, "d", id, 1, "test", c}; };
  // Queued before the freeze: it waits while changes are held, and runs after the thaw.
  CHECK(ex.offer(act("early", ActionKind::kStart, ActionCause::kChange), 0) == Admission::kAdmitted);
  ex.holdChanges(true);
  CHECK(ex.offer(act("web#0", ActionKind::kStart, ActionCause::kChange), 0) == Admission::kGated);
  CHECK(ex.offer(act("node", ActionKind::kApply, ActionCause::kChange), 0) == Admission::kGated);
  CHECK(ex.offer(act("web#1", ActionKind::kStart, ActionCause::kPolicy), 0) == Admission::kAdmitted);
  CHECK(ex.offer(act("web#2", ActionKind::kStop, ActionCause::kOperator), 0) == Admission::kAdmitted);
  ex.poll(0);
  REQUIRE(d.calls.size() == 2);
  CHECK(d.calls[0].second.instance == "web#1");
  CHECK(d.calls[1].second.instance == "web#2");
  CHECK(ex.queued() == 1);
  CHECK(ex.counters().gated == 2);
  CHECK(ex.toJson()["holding_changes"] == true);
  ex.holdChanges(false);
  CHECK(ex.offer(act("web#0", ActionKind::kStart, ActionCause::kChange), 10) == Admission::kAdmitted);
  ex.poll(10);
  REQUIRE(d.calls.size() == 4);
  CHECK(d.calls[2].second.instance == "early");
  CHECK(d.calls[3].second.instance == "web#0");
  CHECK(ex.idle());
}

TEST_CASE("a held change still expires at its deadline") {
  FakeDispatcher d;
  Executor ex({.action_deadline_ms = 100}, d);
  CHECK(ex.offer(Action{ActionKind::kStart, "d", "a", 1, "t", meshos::state::ActionCause::kChange}, 0) ==
        Admission::kAdmitted);
  ex.holdChanges(true);
  ex.poll(50);
  CHECK(d.calls.empty());
  ex.poll(100);
  CHECK(ex.counters().expired == 1);
  CHECK(ex.idle());
}
