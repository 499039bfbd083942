// Re-adoption: a new Supervisor over the same state directory takes over the daemons the
// previous one left running (same pid, not restarted); one that exited meanwhile is
// reported as such and restarted per policy; a recycled pid is never mistaken.
#include <fstream>

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
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string();
  {
    auto store = FileInstanceStore::open(posixFs(), dir + "/runtime/instances");
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
}

namespace {
spec::DaemonSpec jobSpec(const std::string& name, const std::string& script) {
  spec::DaemonSpec s;
  s.name = name;
  s.kind = spec::DaemonKind::kJob;
  s.command = {"/bin/sh", "-c", script};
  s.job_retries = 0;
  return s;
}
bool ended(const Execution& e) {
  return e.state != ExecutionState::kPending && e.state != ExecutionState::kRunning;
}
}  // namespace

TEST_CASE("job re-adoption: a running execution is adopted, not run again; its outcome recorded") {
  Harness h;
  auto s = jobSpec("batch", "sleep 0.5; exit 3");
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("batch#1", InstanceState::kReady));
  const int pid = h.pidOf("batch#1");
  REQUIRE(pid > 0);
  h.closeKeepRunning();
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(one(s)));
  auto ex = h.sup().executions("batch");
  REQUIRE(ex.size() == 1);  // the previous agent's execution, not a second one
  CHECK(ex[0].id == "batch#1");
  CHECK(ex[0].trigger == "adopted");
  CHECK(ex[0].state == ExecutionState::kRunning);
  CHECK(h.pidOf("batch#1") == pid);
  CHECK(h.sup().recoveredInstances() == std::vector<std::string>{"batch#1"});
  REQUIRE(h.runUntil([&] { return ended(h.sup().executions("batch")[0]); }, 5000));
  ex = h.sup().executions("batch");
  CHECK(ex[0].state == ExecutionState::kFailed);
  CHECK(ex[0].exit_code == 3);
  CHECK(h.rec.failuresOf("job") == 1);
  // The next execution gets a new id.
  auto next = h.sup().trigger("batch");
  REQUIRE(next);
  CHECK(*next == "batch#2");
}

TEST_CASE("job re-adoption: ended while the agent was down → the outcome from the recorded exit code") {
  Harness h;
  auto s = jobSpec("quick", "sleep 0.2; exit 0");
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("quick#1", InstanceState::kReady));
  const int pid = h.pidOf("quick#1");
  h.closeKeepRunning();
  // It ends while no agent watches; whoever is its parent reaps it (here: this test).
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] {
    auto e = h.sup().executions("quick");
    return e.size() == 1 && ended(e[0]);
  }, 5000));
  auto ex = h.sup().executions("quick");
  CHECK(ex[0].id == "quick#1");
  CHECK(ex[0].state == ExecutionState::kSucceeded);
  CHECK(ex[0].exit_code == 0);
  CHECK(ex[0].detail.find("while the agent was down") != std::string::npos);
  CHECK(h.rec.failuresOf("job") == 0);
  CHECK(!std::filesystem::exists(h.dir() + "/runtime/exit/quick#1"));
}

TEST_CASE("job re-adoption: killed while the agent was down, no exit code → lost, not forgotten") {
  Harness h;
  auto s = jobSpec("doomed", "sleep 30");
  s.job_retries = 3;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("doomed#1", InstanceState::kReady));
  const int pid = h.pidOf("doomed#1");
  h.closeKeepRunning();
  ::kill(-pid, SIGKILL);  // the whole group, shim included: nobody records an exit code
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  h.open();
  REQUIRE(h.sup().recover());
  REQUIRE(h.sup().apply(one(s)));
  auto ex = h.sup().executions("doomed");
  REQUIRE(ex.size() == 1);
  CHECK(ex[0].state == ExecutionState::kLost);
  CHECK(executionStateName(ex[0].state) == "lost");
  CHECK(ex[0].finished_wall_ms > 0);
  CHECK(h.stateOf("doomed#1") == InstanceState::kFailed);
  CHECK(h.rec.failuresOf("job") == 1);
  h.runFor(100);
  CHECK(h.sup().executions("doomed").size() == 1);  // not retried, not run again
  CHECK(h.sup().snapshotJson()["executions"][0]["state"] == "lost");
}

TEST_CASE("instance store: a journal (no file per record); reopened, torn tail, compaction") {
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string();
  auto rec = [&](const std::string& inst, int pid) {
    return InstanceRecord{inst, inst.substr(0, inst.find('#')), "ab", pid, pid, 1000 + pid, 5,
                          "", dir + "/" + inst + ".log"};
  };
  {
    auto store = FileInstanceStore::open(posixFs(), dir + "/inst");
    REQUIRE(store);
    REQUIRE((*store)->save(rec("a#0", 11)));
    REQUIRE((*store)->save(rec("b#0", 12)));
    REQUIRE((*store)->save(rec("a#0", 13)));  // saved again: the last one wins
    REQUIRE((*store)->erase("b#0"));
    REQUIRE((*store)->erase("never#0"));      // nothing recorded: fine, nothing written
    CHECK((*store)->journalLines() == 4);
    InstanceRecord bad = rec("c#0", 14);
    bad.log_path = "x\ty";
    CHECK(!(*store)->save(bad));
  }
  // Saving created no file per record.
  size_t files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir + "/inst")) {
    ++files;
    CHECK(e.path().filename() == "instances.journal");
  }
  CHECK(files == 1);
  // A torn last line (a host crash mid-write).
  {
    std::ofstream j(dir + "/inst/instances.journal", std::ios::app);
    j << "S\tinstance=torn#0\tdaemon=torn\tpid=9";
  }
  {
    auto store = FileInstanceStore::open(posixFs(), dir + "/inst");
    REQUIRE(store);
    std::vector<std::string> skipped;
    auto all = (*store)->loadAll(&skipped);
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].instance == "a#0");
    CHECK((*all)[0].pid == 13);
    CHECK((*all)[0].start_ticks == 1013);
    CHECK((*all)[0].log_path == dir + "/a#0.log");
    CHECK(skipped == std::vector<std::string>{"instances.journal:5"});
    // Appends after the torn line start on a fresh line.
    REQUIRE((*store)->save(rec("d#0", 31)));
  }
  {
    auto store = FileInstanceStore::open(posixFs(), dir + "/inst");
    REQUIRE(store);
    auto all = (*store)->loadAll(nullptr);
    REQUIRE(all);
    REQUIRE(all->size() == 2);
    CHECK((*all)[1].instance == "d#0");
    // Churn (a restart loop): the journal is compacted, it stays bounded.
    for (int i = 0; i < 2000; ++i) {
      REQUIRE((*store)->save(rec("e#0", 100 + i)));
      REQUIRE((*store)->erase("e#0"));
    }
    CHECK((*store)->journalLines() <= 300);
    CHECK((*store)->loadAll(nullptr)->size() == 2);
  }
}

TEST_CASE("instance store: a torn last line is cut off, never read as a record on a later open") {
  // Found by the instance_journal fuzz target: the torn line was ended with a newline, and a
  // line torn inside its last field (all nine fields present) then read as a record.
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string() + "/inst";
  {
    auto store = FileInstanceStore::open(posixFs(), dir);
    REQUIRE(store);
    REQUIRE((*store)->save(InstanceRecord{"a#0", "a", "ab", 11, 11, 1011, 5, "", "/var/log/a.log"}));
  }
  {
    std::ofstream j(dir + "/instances.journal", std::ios::app);
    j << "S\tinstance=b#0\tdaemon=b\tspec_hash=ab\tpid=4321\tpgid=4321\tstart_ticks=1\t"
         "started_wall_ms=5\tcgroup_path=\tlog_path=/var/lo";
  }
  for (int open = 0; open < 2; ++open) {
    auto store = FileInstanceStore::open(posixFs(), dir);
    REQUIRE(store);
    auto all = (*store)->loadAll(nullptr);
    REQUIRE(all);
    REQUIRE(all->size() == 1);
    CHECK((*all)[0].instance == "a#0");
  }
}
