// Re-adoption: a new Supervisor over the same state directory takes over the daemons the
// previous one left running (same pid, not restarted); one that exited meanwhile is
// reported as such and restarted per policy; a recycled pid is never mistaken.
#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

TEST_CASE("re-adoption: the daemon keeps its pid; its exit is still seen") {
  Harness h;
  auto s = service("sleeper", {"sleep", "30"});
  s.restart = spec::RestartPolicy::kAlways;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("sleeper#0", InstanceState::kReady));
  const int pid = h.pidOf("sleeper#0");
  REQUIRE(pid > 0);

  h.closeKeepRunning();  // the agent goes away; the daemon does not
  CHECK(pidAlive(pid));
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(one(s)));
  CHECK(h.stateOf("sleeper#0") == InstanceState::kReady);
  CHECK(h.pidOf("sleeper#0") == pid);
  CHECK(h.sup().recoveredInstances() == std::vector<std::string>{"sleeper#0"});
  auto snap = h.sup().snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].adopted);

  // The adopted process dies: seen through the pidfd and restarted (a new pid).
  ::kill(pid, SIGKILL);
  REQUIRE(h.runUntil([&] {
    int p = h.pidOf("sleeper#0");
    return p > 0 && p != pid && h.stateOf("sleeper#0") == InstanceState::kReady;
  }, 5000));
  CHECK(h.rec.failuresOf("crash") == 1);
}

TEST_CASE("re-adoption: a daemon that exited while the agent was down is reported") {
  Harness h;
  auto s = service("gone", {"sleep", "30"});
  s.restart = spec::RestartPolicy::kAlways;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("gone#0", InstanceState::kReady));
  const int pid = h.pidOf("gone#0");
  h.closeKeepRunning();
  ::kill(pid, SIGKILL);
  REQUIRE(h.runUntil([&] { return !pidAlive(pid); }, 3000));
  int status = 0;
  ::waitpid(pid, &status, 0);  // it was our child in this test process
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(one(s)));
  CHECK(h.rec.failuresOf("exited-while-down") == 1);
  REQUIRE(h.waitState("gone#0", InstanceState::kReady));
  CHECK(h.pidOf("gone#0") != pid);
}

TEST_CASE("re-adoption: a record whose start time does not match is not adopted") {
  std::string dir = makeTempDir();
  {
    auto store = FileInstanceStore::open(dir + "/runtime/instances");
    REQUIRE(store);
    // Our own pid, with a wrong start time: a recycled pid must not be mistaken.
    InstanceRecord r{"ghost#0", "ghost", "00", static_cast<int>(::getpid()), static_cast<int>(::getpgrp()),
                     processStartTicks(::getpid()) + 12345, 0, "", dir + "/x.log"};
    REQUIRE((*store)->save(r));
  }
  Harness h(nullptr, nullptr, dir);
  REQUIRE(h.sup().recover());
  auto s = service("ghost", {"sleep", "30"});
  REQUIRE(h.sup().apply(one(s)));
  CHECK(h.rec.failuresOf("exited-while-down") == 1);
  REQUIRE(h.waitState("ghost#0", InstanceState::kReady));
  CHECK(h.pidOf("ghost#0") != ::getpid());
  h.shutdown(true);
  std::filesystem::remove_all(dir);
}
