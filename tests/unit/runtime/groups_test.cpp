// Supervision groups with real processes: kill one member, see exactly the instances its
// group's strategy names restart (dependents stopped first, started again in dependency
// order), a dependent with restart_with_dependency follow its dependency, and a group that
// restarts too often quarantined whole until an operator starts it.
#include <algorithm>

#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

namespace {

spec::DaemonSpec member(const std::string& name, const std::string& group, spec::GroupStrategy strategy) {
  auto s = service(name, {"sleep", "30"});
  s.restart = spec::RestartPolicy::kAlways;
  s.supervision.group = group;
  s.supervision.strategy = strategy;
  return s;
}

// a <- b (b depends on a being started), and c: dependency order a, b, c.
std::vector<spec::DaemonSpec> trio(spec::GroupStrategy strategy) {
  auto a = member("a", "g", strategy);
  auto b = member("b", "g", strategy);
  b.depends_on.push_back(spec::Dependency{"a", spec::DependencyCondition::kStarted});
  auto c = member("c", "g", strategy);
  return {a, b, c};
}

struct Pids {
  int a = 0, b = 0, c = 0;
};

Pids pids(Harness& h) { return {h.pidOf("a#0"), h.pidOf("b#0"), h.pidOf("c#0")}; }

bool allReady(Harness& h) {
  return h.stateOf("a#0") == InstanceState::kReady && h.stateOf("b#0") == InstanceState::kReady &&
         h.stateOf("c#0") == InstanceState::kReady;
}

// Every member ready, each with a new process.
bool allRestarted(Harness& h, const Pids& before) {
  const Pids now = pids(h);
  return allReady(h) && now.a > 0 && now.b > 0 && now.c > 0 && now.a != before.a && now.b != before.b &&
         now.c != before.c;
}

// Where in the transition log each instance last started (a "started pid" transition).
size_t lastStart(const Harness& h, const std::string& instance) {
  size_t at = 0;
  for (size_t i = 0; i < h.rec.transitions.size(); ++i) {
    const auto& t = h.rec.transitions[i];
    if (t.instance == instance && t.reason.rfind("started pid", 0) == 0) at = i + 1;
  }
  return at;
}

// Applies the trio under `strategy`, waits for it, kills b; the pids from before.
Pids killMiddle(Harness& h, spec::GroupStrategy strategy) {
  REQUIRE(h.sup().apply(trio(strategy)));
  REQUIRE(h.runUntil([&] { return allReady(h); }, 5000));
  const Pids before = pids(h);
  ::kill(before.b, SIGKILL);
  return before;
}

std::string lastRestart(Harness& h, const std::string& instance) {
  for (const auto& s : h.sup().snapshot())
    if (s.instance == instance) return s.last_restart;
  return "";
}

}  // namespace

TEST_CASE("one-for-all: one member crashes, every member restarts, in dependency order") {
  Harness h;
  const Pids before = killMiddle(h, spec::GroupStrategy::kOneForAll);
  REQUIRE(h.runUntil([&] { return allRestarted(h, before); }, 5000));
  CHECK(lastStart(h, "a#0") < lastStart(h, "c#0"));
  CHECK(lastRestart(h, "b#0").rfind("crashed", 0) == 0);
  CHECK(lastRestart(h, "a#0").rfind("group g (one-for-all): b#0 crashed", 0) == 0);
  CHECK(lastRestart(h, "c#0").rfind("group g (one-for-all): b#0 crashed", 0) == 0);
}

TEST_CASE("rest-for-one: the members after the crashed one restart; those before keep running") {
  Harness h;
  const Pids before = killMiddle(h, spec::GroupStrategy::kRestForOne);
  REQUIRE(h.runUntil([&] {
    const Pids now = pids(h);
    return allReady(h) && now.b != before.b && now.c != before.c;
  }, 5000));
  CHECK(h.pidOf("a#0") == before.a);
  CHECK(lastRestart(h, "a#0").empty());
  CHECK(lastRestart(h, "c#0").rfind("group g (rest-for-one): b#0 crashed", 0) == 0);
}

TEST_CASE("one-for-one: only the crashed member restarts") {
  Harness h;
  const Pids before = killMiddle(h, spec::GroupStrategy::kOneForOne);
  REQUIRE(h.runUntil([&] { return allReady(h) && h.pidOf("b#0") != before.b; }, 5000));
  h.runFor(200);
  CHECK(h.pidOf("a#0") == before.a);
  CHECK(h.pidOf("c#0") == before.c);
}

TEST_CASE("restart_with_dependency: a dependent restarts with its dependency; others keep running") {
  Harness h;
  auto db = service("db", {"sleep", "30"});
  db.restart = spec::RestartPolicy::kAlways;
  auto api = service("api", {"sleep", "30"});
  api.depends_on.push_back(spec::Dependency{"db", spec::DependencyCondition::kStarted});
  api.supervision.restart_with_dependency = true;
  auto report = service("report", {"sleep", "30"});
  report.depends_on.push_back(spec::Dependency{"db", spec::DependencyCondition::kStarted});
  REQUIRE(h.sup().apply({db, api, report}));
  auto ready = [&] {
    return h.stateOf("db#0") == InstanceState::kReady && h.stateOf("api#0") == InstanceState::kReady &&
           h.stateOf("report#0") == InstanceState::kReady;
  };
  REQUIRE(h.runUntil(ready, 5000));
  const int db_pid = h.pidOf("db#0"), api_pid = h.pidOf("api#0"), report_pid = h.pidOf("report#0");
  ::kill(db_pid, SIGKILL);
  REQUIRE(h.runUntil([&] { return ready() && h.pidOf("db#0") != db_pid && h.pidOf("api#0") != api_pid; }, 5000));
  CHECK(h.pidOf("report#0") == report_pid);
  CHECK(lastRestart(h, "api#0") == "dependency db restarted");
  // An operator's restart of db restarts api too.
  const int api2 = h.pidOf("api#0");
  REQUIRE(h.sup().restart("db"));
  REQUIRE(h.runUntil([&] { return ready() && h.pidOf("api#0") != api2; }, 5000));
  CHECK(h.pidOf("report#0") == report_pid);
}

TEST_CASE("restart intensity: too many restarts quarantine the whole group until an operator starts it") {
  Harness h;
  auto specs = trio(spec::GroupStrategy::kOneForOne);
  for (auto& s : specs) s.supervision.restart_intensity = 2;
  REQUIRE(h.sup().apply(specs));
  REQUIRE(h.runUntil([&] { return allReady(h); }, 5000));
  for (int i = 0; i < 2; ++i) {
    const int pid = h.pidOf("c#0");
    ::kill(pid, SIGKILL);
    REQUIRE(h.runUntil([&] { return h.stateOf("c#0") == InstanceState::kReady && h.pidOf("c#0") != pid; }, 5000));
  }
  ::kill(h.pidOf("a#0"), SIGKILL);  // the third restart in the window
  REQUIRE(h.runUntil([&] {
    return h.stateOf("a#0") == InstanceState::kQuarantined && h.stateOf("b#0") == InstanceState::kQuarantined &&
           h.stateOf("c#0") == InstanceState::kQuarantined;
  }, 5000));
  CHECK(h.rec.failuresOf("group") == 1);
  auto groups = h.sup().groups();
  REQUIRE(groups.size() == 1);
  CHECK(groups[0].quarantined);
  CHECK(groups[0].members == std::vector<std::string>{"a", "b", "c"});
  CHECK(groups[0].reason.find("3 restarts within 60000 ms (restart_intensity 2)") != std::string::npos);
  h.runFor(200);
  CHECK(h.pidOf("a#0") == 0);
  REQUIRE(h.sup().start("a"));
  REQUIRE(h.sup().start("b"));
  REQUIRE(h.sup().start("c"));
  REQUIRE(h.runUntil([&] { return allReady(h); }, 5000));
  CHECK(!h.sup().groups()[0].quarantined);
}

TEST_CASE("a restart waits for its dependencies, past their timeout: a dependent never comes up before them") {
  // Found by sim-agent-groups: a member whose restart came after its backoff started at
  // once, before the dependency it was restarted with (down too, backing off longer).
  Harness h;
  auto a = member("a", "g", spec::GroupStrategy::kOneForOne);
  a.backoff.initial_ms = 1500;  // a comes back slowly
  a.backoff.max_ms = 1500;
  a.backoff.jitter = 0;
  auto b = member("b", "g", spec::GroupStrategy::kOneForOne);
  b.depends_on.push_back(spec::Dependency{"a", spec::DependencyCondition::kStarted, 300});
  REQUIRE(h.sup().apply({a, b}));
  REQUIRE(h.runUntil([&] { return h.stateOf("a#0") == InstanceState::kReady && h.stateOf("b#0") == InstanceState::kReady; }, 5000));
  const int a_pid = h.pidOf("a#0"), b_pid = h.pidOf("b#0");
  ::kill(a_pid, SIGKILL);
  REQUIRE(h.runUntil([&] { return h.stateOf("a#0") == InstanceState::kBackingOff; }, 3000));
  ::kill(b_pid, SIGKILL);
  REQUIRE(h.runUntil([&] { return h.stateOf("b#0") == InstanceState::kWaiting; }, 3000));
  CHECK(h.pidOf("b#0") <= 0);  // its own backoff over, it waits for a; longer than a's timeout
  REQUIRE(h.runUntil([&] { return h.stateOf("a#0") == InstanceState::kReady && h.stateOf("b#0") == InstanceState::kReady; }, 5000));
  CHECK(lastStart(h, "a#0") < lastStart(h, "b#0"));
  CHECK(h.rec.failuresOf("dependency") == 0);
}

TEST_CASE("re-adoption: a member that exited while the agent was down restarts its group, in order") {
  // Found by sim-agent-groups: its exit was decided before the members after it were
  // re-adopted, so they kept running.
  Harness h;
  REQUIRE(h.sup().apply(trio(spec::GroupStrategy::kRestForOne)));
  REQUIRE(h.runUntil([&] { return allReady(h); }, 5000));
  const Pids before = pids(h);
  h.closeKeepRunning();
  ::kill(before.a, SIGKILL);
  REQUIRE(h.runUntil([&] { return !pidAlive(before.a); }, 3000));
  int status = 0;
  ::waitpid(before.a, &status, 0);  // it was our child in this test process
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(trio(spec::GroupStrategy::kRestForOne)));
  CHECK(h.rec.failuresOf("exited-while-down") == 1);
  REQUIRE(h.runUntil([&] { return allRestarted(h, before); }, 5000));
  CHECK(lastStart(h, "a#0") < lastStart(h, "b#0"));
  CHECK(lastRestart(h, "c#0").rfind("group g (rest-for-one): a#0", 0) == 0);
  h.shutdown(true);
}

TEST_CASE("a changed spec starts as a first start does: a dependency it adds that never comes fails it in time") {
  // It waited for the old spec's dependencies (none here) and started at once.
  Harness h;
  auto a = member("a", "g", spec::GroupStrategy::kOneForOne);
  auto never = service("never", {"sleep", "30"});
  never.replicas = 0;  // no instance ever starts
  REQUIRE(h.sup().apply({a, never}));
  REQUIRE(h.waitState("a#0", InstanceState::kReady));
  a.depends_on.push_back(spec::Dependency{"never", spec::DependencyCondition::kStarted, 300});
  a.command = {"sleep", "31"};
  REQUIRE(h.sup().apply({a, never}));
  REQUIRE(h.waitState("a#0", InstanceState::kFailed));
  CHECK(h.rec.failuresOf("dependency") == 1);
}
