// Supervision with real processes: restart with backoff, crash loop → quarantine, stop
// escalation, no processes left behind, liveness → restart, readiness gating dependents,
// operator operations, spec changes. Each case polls with deadlines and stays fast.
#include <sys/statfs.h>
#include <unistd.h>

#include <fstream>

#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

TEST_CASE("crash → restart with backoff (and the transitions are reported)") {
  Harness h;
  auto s = service("crasher", {"/bin/sh", "-c", "sleep 0.05; exit 7"});
  s.backoff.initial_ms = 20;
  s.backoff.factor = 2.0;
  s.backoff.max_ms = 1000;
  s.backoff.jitter = 0;
  s.crash_loop.max_crashes = 0;  // no quarantine here
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] { return h.rec.count("crasher#0", InstanceState::kBackingOff) >= 3; }, 5000));
  auto snap = h.sup().snapshot();
  REQUIRE(snap.size() == 1);
  CHECK(snap[0].restarts >= 3);
  CHECK(snap[0].last_exit_code == 7);
  CHECK(h.rec.failuresOf("crash") >= 3);
  // Delays grow: 20, 40, 80 ms (no jitter).
  bool saw40 = false, saw80 = false;
  for (const auto& t : h.rec.transitions) {
    if (t.reason.find("in 40 ms") != std::string::npos) saw40 = true;
    if (t.reason.find("in 80 ms") != std::string::npos) saw80 = true;
  }
  CHECK(saw40);
  CHECK(saw80);
}

TEST_CASE("crash loop → quarantined for the cooldown, then started again") {
  Harness h;
  auto s = service("looper", {"/bin/sh", "-c", "exit 1"});
  s.backoff.initial_ms = 1;
  s.backoff.max_ms = 5;
  s.crash_loop.max_crashes = 3;
  s.crash_loop.window_ms = 10'000;
  s.crash_loop.cooldown_ms = 300;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("looper#0", InstanceState::kQuarantined));
  CHECK(h.rec.failuresOf("quarantine") == 1);
  CHECK(h.rec.failuresOf("crash") == 3);
  // After the cooldown it runs again (and, still crashing, goes back to quarantine).
  REQUIRE(h.runUntil([&] { return h.rec.failuresOf("quarantine") == 2; }, 5000));
  CHECK(h.rec.failuresOf("crash") == 6);
}

TEST_CASE("stop: a daemon ignoring SIGTERM is SIGKILLed after the grace period") {
  Harness h;
  auto s = service("unyielding", {"/bin/sh", "-c", "trap '' TERM; echo up; while true; do sleep 0.05; done"});
  s.stop_grace_ms = 300;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("unyielding#0", InstanceState::kReady));
  REQUIRE(h.runUntil([&] {
    auto l = h.sup().logs("unyielding#0", LogQuery{.tail_lines = 1});
    return l && l->data == "up\n";
  }, 3000));
  const int pid = h.pidOf("unyielding#0");
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(h.sup().stop("unyielding"));
  REQUIRE(h.waitState("unyielding#0", InstanceState::kStopped, 5000));
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0).count();
  CHECK(ms >= 250);
  CHECK(ms < 3000);
  CHECK(!pidAlive(pid));
  auto snap = h.sup().snapshot();
  CHECK(snap[0].last_exit.find("SIGKILL") != std::string::npos);
  // Held: it stays stopped until started.
  h.runFor(100);
  CHECK(h.stateOf("unyielding#0") == InstanceState::kStopped);
  REQUIRE(h.sup().start("unyielding"));
  REQUIRE(h.waitState("unyielding#0", InstanceState::kReady));
}

TEST_CASE("a forking daemon that ignores SIGTERM leaves no process behind") {
  Harness h;
  // Three children (and a grandchild) that ignore SIGTERM, plus the main process.
  auto s = service("forker", {"/bin/sh", "-c",
                              "trap '' TERM; for i in 1 2 3; do (trap '' TERM; sleep 60 & sleep 60) & done; "
                              "while true; do sleep 0.05; done"});
  s.stop_grace_ms = 200;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("forker#0", InstanceState::kReady));
  const int pgid = h.pidOf("forker#0");
  REQUIRE(h.runUntil([&] { return processesInGroup(pgid).size() >= 7; }, 3000));
  REQUIRE(h.sup().stop("forker"));
  REQUIRE(h.waitState("forker#0", InstanceState::kStopped, 5000));
  // Every member is gone: killed and reaped (no zombies either).
  CHECK(h.runUntil([&] { return processesInGroup(pgid).empty(); }, 3000));
  CHECK(h.runtime().orphansPending() == 0);

  // The same when the main process crashes on its own: its children go with it.
  auto c = service("crashfork", {"/bin/sh", "-c", "(sleep 60 &) ; sleep 60 & sleep 0.2; exit 3"});
  c.restart = spec::RestartPolicy::kNever;
  REQUIRE(h.sup().apply(one(c)));
  REQUIRE(h.waitState("crashfork#0", InstanceState::kReady));
  const int pg2 = h.pidOf("crashfork#0");
  REQUIRE(h.waitState("crashfork#0", InstanceState::kFailed, 5000));
  CHECK(h.runUntil([&] { return processesInGroup(pg2).empty(); }, 3000));
}

TEST_CASE("a running daemon's double-forked grandchildren are reaped when they exit") {
  Harness h;
  auto s = service("dfork", {"/bin/sh", "-c", "(sleep 0.05 &); (sleep 0.05 &); exec sleep 60"});
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("dfork#0", InstanceState::kReady));
  const int pgid = h.pidOf("dfork#0");
  // Only the main process is left in the group: no zombie grandchildren.
  CHECK(h.runUntil([&] {
    auto members = processesInGroup(pgid);
    return members.size() == 1 && members[0] == pgid;
  }, 3000));
}

TEST_CASE("liveness failure → killed and restarted per policy") {
  Harness h;
  const std::string flag = h.dir() + "/alive";
  std::ofstream(flag) << "1";
  auto s = service("livey", {"sleep", "60"});
  s.restart = spec::RestartPolicy::kOnFailure;
  spec::HealthCheck live;
  live.type = spec::CheckType::kExec;
  live.command = {"/bin/sh", "-c", "test -f " + flag};
  live.interval_ms = 20;
  live.timeout_ms = 1000;
  live.failure_threshold = 2;
  s.health.liveness = live;
  s.stop_grace_ms = 200;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("livey#0", InstanceState::kReady));
  const int pid = h.pidOf("livey#0");
  REQUIRE(h.runUntil([&] {
    auto snap = h.sup().snapshot();
    return snap[0].liveness == "passing";
  }, 3000));
  std::filesystem::remove(flag);
  REQUIRE(h.runUntil([&] { return h.rec.failuresOf("health") >= 1; }, 3000));
  std::ofstream(flag) << "1";
  REQUIRE(h.runUntil([&] {
    int p = h.pidOf("livey#0");
    return p > 0 && p != pid && h.stateOf("livey#0") == InstanceState::kReady;
  }, 5000));
  CHECK(!pidAlive(pid));
}

TEST_CASE("readiness gates dependents; stop goes in reverse order") {
  Harness h;
  const std::string flag = h.dir() + "/db-ready";
  auto db = service("db", {"sleep", "60"});
  spec::HealthCheck ready;
  ready.type = spec::CheckType::kExec;
  ready.command = {"/bin/sh", "-c", "test -f " + flag};
  ready.interval_ms = 20;
  db.health.readiness = ready;
  db.stop_grace_ms = 500;
  auto web = service("web", {"sleep", "60"});
  web.depends_on.push_back({"db", spec::DependencyCondition::kReady, 10'000, spec::OnTimeout::kFail});
  auto side = service("side", {"sleep", "60"});
  side.depends_on.push_back({"db", spec::DependencyCondition::kReady, 100, spec::OnTimeout::kWarn});
  auto strict = service("strict", {"sleep", "60"});
  strict.depends_on.push_back({"db", spec::DependencyCondition::kReady, 100, spec::OnTimeout::kFail});
  REQUIRE(h.sup().apply({db, web, side, strict}));
  REQUIRE(h.waitState("db#0", InstanceState::kRunning));
  CHECK(h.stateOf("web#0") == InstanceState::kWaiting);
  // After 100 ms: warn starts anyway, fail fails.
  REQUIRE(h.waitState("side#0", InstanceState::kReady, 3000));
  REQUIRE(h.waitState("strict#0", InstanceState::kFailed, 3000));
  CHECK(h.rec.failuresOf("dependency") == 2);
  CHECK(h.stateOf("web#0") == InstanceState::kWaiting);
  std::ofstream(flag) << "1";
  REQUIRE(h.waitState("db#0", InstanceState::kReady, 3000));
  REQUIRE(h.waitState("web#0", InstanceState::kReady, 3000));

  // Removing both: web (the dependent) stops before db.
  h.rec.transitions.clear();
  REQUIRE(h.sup().apply({}));
  REQUIRE(h.runUntil([&] { return h.sup().snapshot().empty(); }, 5000));
  size_t web_stop = 0, db_stop = 0;
  for (size_t i = 0; i < h.rec.transitions.size(); ++i) {
    const auto& t = h.rec.transitions[i];
    if (t.to == InstanceState::kStopping && t.instance == "web#0") web_stop = i + 1;
    if (t.to == InstanceState::kStopping && t.instance == "db#0") db_stop = i + 1;
  }
  CHECK(web_stop > 0);
  CHECK(db_stop > web_stop);
}

TEST_CASE("operator: pause / resume, exec, stats, restart, quarantine; apply changes") {
  Harness h;
  auto s = service("op", {"sleep", "60"});
  s.env["GREETING"] = "hello";
  s.replicas = 2;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("op#0", InstanceState::kReady));
  REQUIRE(h.waitState("op#1", InstanceState::kReady));
  const int pid = h.pidOf("op#0");

  REQUIRE(h.sup().pause("op#0"));
  CHECK(h.stateOf("op#0") == InstanceState::kPaused);
  REQUIRE(h.runUntil([&] {
    std::ifstream st("/proc/" + std::to_string(pid) + "/stat");
    std::string all((std::istreambuf_iterator<char>(st)), {});
    return all.find(") T ") != std::string::npos;
  }, 2000));
  REQUIRE(h.sup().resume("op#0"));
  CHECK(h.stateOf("op#0") == InstanceState::kReady);

  std::optional<ExecResult> ran;
  REQUIRE(h.sup().exec("op#0", {"/bin/sh", "-c", "echo $GREETING; pwd; exit 4"}, 5000,
                       [&](Result<ExecResult> r) { ran = *r; }));
  REQUIRE(h.runUntil([&] { return ran.has_value(); }, 5000));
  CHECK(ran->exit_code == 4);
  CHECK(ran->output == "hello\n" + h.dir() + "/runtime/work/op\n");

  auto stats = h.runtime().stats("op#0");
  REQUIRE(stats);
  CHECK(stats->rss_bytes > 0);
  CHECK(stats->open_fds >= 1);
  auto json = h.sup().snapshotJson(true);
  REQUIRE(json["daemons"].size() == 2);
  CHECK(json["daemons"][0]["stats"]["rss_bytes"].get<int64_t>() > 0);
  CHECK(json["daemons"][0]["state"] == "ready");

  REQUIRE(h.sup().restart("op#0"));
  REQUIRE(h.runUntil([&] {
    return h.pidOf("op#0") != pid && h.stateOf("op#0") == InstanceState::kReady;
  }, 5000));
  CHECK(h.rec.failuresOf("crash") == 0);

  REQUIRE(h.sup().quarantine("op#1"));
  REQUIRE(h.waitState("op#1", InstanceState::kQuarantined));
  h.runFor(50);
  CHECK(h.stateOf("op#1") == InstanceState::kQuarantined);

  // Scale to 1 (op#1 goes), then change the spec (op#0 restarts with a new pid).
  s.replicas = 1;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] { return h.sup().snapshot().size() == 1; }, 3000));
  const int before = h.pidOf("op#0");
  s.env["GREETING"] = "changed";
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] {
    return h.pidOf("op#0") != before && h.stateOf("op#0") == InstanceState::kReady;
  }, 5000));
  CHECK(!pidAlive(before));
  // The same spec again changes nothing.
  const int now = h.pidOf("op#0");
  REQUIRE(h.sup().apply(one(s)));
  h.runFor(50);
  CHECK(h.pidOf("op#0") == now);
}

TEST_CASE("cgroup v2: a child that left the process group is still killed; stats count it") {
  // Needs a writable cgroup2 mount: /sys/fs/cgroup on a unified host, or the hybrid
  // layout's /sys/fs/cgroup/unified. Skipped (with a message) when there is none.
  std::string root;
  for (const char* cand : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs sf{};
    if (::statfs(cand, &sf) == 0 && static_cast<uint64_t>(sf.f_type) == 0x63677270 &&
        ::access(cand, W_OK) == 0) {
      root = cand;
      break;
    }
  }
  if (root.empty()) {
    MESSAGE("no writable cgroup2 mount: skipped");
    return;
  }
  Harness h(nullptr, nullptr, "", root);
  REQUIRE(h.runtime().cgroupsEnabled());
  const std::string pidfile = h.dir() + "/escaped.pid";
  auto s = service("escaper", {"/bin/sh", "-c", "setsid sleep 60 & echo $! > " + pidfile + "; exec sleep 60"});
  s.stop_grace_ms = 200;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("escaper#0", InstanceState::kReady));
  int escaped = 0;
  REQUIRE(h.runUntil([&] {
    std::ifstream in(pidfile);
    return static_cast<bool>(in >> escaped) && escaped > 0;
  }, 3000));
  REQUIRE(h.runUntil([&] { return pidAlive(escaped); }, 3000));
  const int pgid = h.pidOf("escaper#0");
  // The escaped one ends up in its own session and group.
  REQUIRE(h.runUntil([&] { return processesInGroup(pgid).size() == 1; }, 3000));
  auto st = h.runtime().status("escaper#0");
  REQUIRE(st);
  CHECK(st->cgroup);
  auto stats = h.runtime().stats("escaper#0");
  REQUIRE(stats);
  CHECK(stats->processes == 2);
  REQUIRE(h.sup().stop("escaper"));
  REQUIRE(h.waitState("escaper#0", InstanceState::kStopped, 5000));
  CHECK(h.runUntil([&] { return !pidAlive(escaped); }, 3000));
  CHECK(h.runUntil([&] { return !std::filesystem::exists(st->cgroup_path); }, 3000));
  h.shutdown(true);
  ::rmdir((root + "/meshos-test").c_str());
}

TEST_CASE("cgroup_parent: two agents on one host each get their own sub-tree") {
  std::string root;
  for (const char* cand : {"/sys/fs/cgroup", "/sys/fs/cgroup/unified"}) {
    struct statfs sf{};
    if (::statfs(cand, &sf) == 0 && static_cast<uint64_t>(sf.f_type) == 0x63677270 &&
        ::access(cand, W_OK) == 0) {
      root = cand;
      break;
    }
  }
  if (root.empty()) {
    MESSAGE("no writable cgroup2 mount: skipped");
    return;
  }
  const std::string top = "meshos-test-" + std::to_string(::getpid());
  {
    // Two agents with nested parents of their own, running a daemon of the same name.
    Harness a(nullptr, nullptr, "", root, top + "/agent-a");
    Harness b(nullptr, nullptr, "", root, top + "/agent-b");
    REQUIRE(a.runtime().cgroupsEnabled());
    REQUIRE(b.runtime().cgroupsEnabled());
    auto s = service("same", {"/bin/sh", "-c", "exec sleep 60"});
    REQUIRE(a.sup().apply(one(s)));
    REQUIRE(b.sup().apply(one(s)));
    REQUIRE(a.waitState("same#0", InstanceState::kReady));
    REQUIRE(b.waitState("same#0", InstanceState::kReady));
    auto sa = a.runtime().status("same#0");
    auto sb = b.runtime().status("same#0");
    REQUIRE(sa);
    REQUIRE(sb);
    CHECK(sa->cgroup);
    CHECK(sb->cgroup);
    CHECK(sa->cgroup_path == root + "/" + top + "/agent-a/same#0");
    CHECK(sb->cgroup_path == root + "/" + top + "/agent-b/same#0");
    auto members = [](const std::string& path) {
      std::ifstream in(path + "/cgroup.procs");
      std::string out;
      for (int pid = 0; in >> pid;) out += std::to_string(pid) + " ";
      return out;
    };
    // The shim joins the group right after the spawn, then execs the daemon (same pid).
    CHECK(a.runUntil([&] { return members(sa->cgroup_path) == std::to_string(a.pidOf("same#0")) + " "; }, 3000));
    CHECK(b.runUntil([&] { return members(sb->cgroup_path) == std::to_string(b.pidOf("same#0")) + " "; }, 3000));
    // Stopping one agent's instance leaves the other's alone.
    const int pid_b = b.pidOf("same#0");
    REQUIRE(a.sup().stop("same"));
    REQUIRE(a.waitState("same#0", InstanceState::kStopped, 5000));
    CHECK(a.runUntil([&] { return !std::filesystem::exists(sa->cgroup_path); }, 3000));
    CHECK(pidAlive(pid_b));
    CHECK(b.stateOf("same#0") == InstanceState::kReady);
    CHECK(members(sb->cgroup_path) == std::to_string(pid_b) + " ");
  }
  ::rmdir((root + "/" + top + "/agent-a").c_str());
  ::rmdir((root + "/" + top + "/agent-b").c_str());
  ::rmdir((root + "/" + top).c_str());
}

TEST_CASE("user (as root), environment, workdir and rlimits reach the daemon") {
  Harness h;
  const std::string out = h.dir() + "/out";
  std::filesystem::create_directories(out);
  // The daemon may run as nobody: it must reach its workdir.
  std::filesystem::permissions(h.dir(), std::filesystem::perms::owner_all |
                                            std::filesystem::perms::group_exec |
                                            std::filesystem::perms::others_exec);
  std::filesystem::permissions(out, std::filesystem::perms::all);
  auto s = service("who", {"/bin/sh", "-c",
                           "sleep 0.2; { id -u; echo $COLOR; pwd; ulimit -n; ulimit -c; } > " + out +
                               "/facts.tmp; mv " + out + "/facts.tmp " + out + "/facts; exec sleep 60"});
  const bool root = ::geteuid() == 0;
  if (root) s.user = "nobody";
  s.env["COLOR"] = "blue";
  s.workdir = out;
  s.limits.open_files = 123;
  s.limits.core_size = 0;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] { return std::filesystem::exists(out + "/facts"); }, 5000));
  std::ifstream in(out + "/facts");
  std::string uid, color, pwd, nofile, core;
  in >> uid >> color >> pwd >> nofile >> core;
  if (root) CHECK(uid == "65534");
  CHECK(color == "blue");
  CHECK(pwd == out);
  CHECK(nofile == "123");
  CHECK(core == "0");
  auto bad = service("baduser", {"sleep", "1"});
  bad.user = "no-such-user-xyz";
  if (root) {
    Status st = h.sup().apply({s, bad});
    CHECK(st.message().find("no such user") != std::string::npos);
  }
}
