// Jobs (executions, retries) and cron schedules, with real processes. Cron fires on a
// ManualClock: the test moves time; processes run on the real loop.
#include <fstream>

#include "agent/core/timers.h"
#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

namespace {

spec::DaemonSpec job(const std::string& name, const std::string& script, int64_t retries) {
  spec::DaemonSpec s;
  s.name = name;
  s.kind = spec::DaemonKind::kJob;
  s.command = {"/bin/sh", "-c", script};
  s.job_retries = retries;
  s.backoff.initial_ms = 5;
  s.backoff.max_ms = 20;
  return s;
}

bool finished(const Execution& e) {
  return e.state == ExecutionState::kSucceeded || e.state == ExecutionState::kFailed;
}

}  // namespace

TEST_CASE("job: succeeds once") {
  Harness h;
  REQUIRE(h.sup().apply(one(job("migrate", "echo migrated; exit 0", 0))));
  REQUIRE(h.runUntil([&] {
    auto e = h.sup().executions("migrate");
    return e.size() == 1 && finished(e[0]);
  }, 5000));
  auto e = h.sup().executions("migrate");
  CHECK(e[0].state == ExecutionState::kSucceeded);
  CHECK(e[0].exit_code == 0);
  CHECK(e[0].attempts == 1);
  CHECK(e[0].started_wall_ms > 0);
  CHECK(e[0].finished_wall_ms >= e[0].started_wall_ms);
  auto logs = h.sup().logs(e[0].id, LogQuery{.tail_lines = 5});
  REQUIRE(logs);
  CHECK(logs->data == "migrated\n");
}

TEST_CASE("job: fails after its retries; succeeds on a later attempt") {
  Harness h;
  // Fails every time: 1 + 2 retries.
  REQUIRE(h.sup().apply(one(job("bad", "exit 3", 2))));
  REQUIRE(h.runUntil([&] {
    auto e = h.sup().executions("bad");
    return e.size() == 1 && finished(e[0]);
  }, 5000));
  auto e = h.sup().executions("bad");
  CHECK(e[0].state == ExecutionState::kFailed);
  CHECK(e[0].attempts == 3);
  CHECK(e[0].exit_code == 3);
  CHECK(h.rec.failuresOf("job") == 3);

  // Succeeds on the third attempt (a counter file in the workdir).
  std::string counter = h.dir() + "/count";
  REQUIRE(h.sup().apply({job("bad", "exit 3", 2),
                         job("flaky", "n=$(cat " + counter + " 2>/dev/null || echo 0); n=$((n+1)); echo $n > " +
                                          counter + "; [ $n -ge 3 ]", 5)}));
  REQUIRE(h.runUntil([&] {
    auto f = h.sup().executions("flaky");
    return f.size() == 1 && finished(f[0]);
  }, 5000));
  auto f = h.sup().executions("flaky");
  CHECK(f[0].state == ExecutionState::kSucceeded);
  CHECK(f[0].attempts == 3);
  // Trigger runs the job again now.
  auto t = h.sup().trigger("flaky");
  REQUIRE(t);
  REQUIRE(h.runUntil([&] {
    auto g = h.sup().executions("flaky");
    return g.size() == 2 && finished(g[1]);
  }, 5000));
  CHECK(h.sup().executions("flaky")[1].trigger == "manual");
}

namespace {

// "report": a cron daemon every five minutes, running once for missed fires.
spec::DaemonSpec everyFiveMinutes() {
  spec::DaemonSpec s;
  s.name = "report";
  s.kind = spec::DaemonKind::kCron;
  s.schedule = "*/5 * * * *";
  s.missed_runs = spec::MissedRunPolicy::kRunOnce;
  s.command = {"/bin/sh", "-c", "echo tick"};
  return s;
}

// Waits until "report" has run n times and the last run has finished.
bool reportRunsFinished(Harness& h, size_t n) {
  return h.runUntil([&] {
    auto e = h.sup().executions("report");
    return e.size() == n && finished(e.back());
  }, 5000);
}

}  // namespace

TEST_CASE("cron: fires on a manual clock, enable/disable, missed runs, trigger now") {
  // ManualClock wall start 1'700'000'000'000 = 2023-11-14 22:13:20 UTC.
  ManualClock clock;
  ManualTimers timers(clock);
  Harness h(&clock, &timers);
  REQUIRE(h.sup().apply(one(everyFiveMinutes())));
  CHECK(h.sup().executions("report").empty());
  auto json = h.sup().snapshotJson();
  REQUIRE(json["cron"].size() == 1);
  CHECK(json["cron"][0]["next_fire_ms"] == 1'700'000'100'000);  // 22:15:00

  auto waitDone = [&](size_t n) { return reportRunsFinished(h, n); };
  timers.advanceMs(99'000);
  CHECK(h.sup().executions("report").empty());  // not yet
  timers.advanceMs(1'000);
  REQUIRE(waitDone(1));
  CHECK(h.sup().executions("report")[0].trigger == "cron");
  CHECK(h.sup().executions("report")[0].state == ExecutionState::kSucceeded);
  timers.advanceMs(300'000);
  REQUIRE(waitDone(2));

  // Disabled: nothing fires; enabling with run-once runs one for the missed fires.
  REQUIRE(h.sup().setCronEnabled("report", false));
  timers.advanceMs(900'000);
  CHECK(h.sup().executions("report").size() == 2);
  REQUIRE(h.sup().setCronEnabled("report", true));
  REQUIRE(waitDone(3));
  CHECK(h.sup().executions("report")[2].trigger == "cron-missed");
  CHECK(h.sup().snapshotJson()["cron"][0]["missed_runs"] == 3);

  REQUIRE(h.sup().trigger("report"));
  REQUIRE(waitDone(4));
  CHECK(h.sup().executions("report")[3].trigger == "manual");
  CHECK(!h.sup().setCronEnabled("nope", true));
}

TEST_CASE("cron: wall-clock steps of an hour neither fire a slot twice nor skip one silently") {
  ManualClock clock;  // wall 22:13:20; "*/5" slots at 22:15:00, 22:20:00, ...
  ManualTimers timers(clock);
  Harness h(&clock, &timers);
  REQUIRE(h.sup().apply(one(everyFiveMinutes())));
  auto done = [&](size_t n) { return reportRunsFinished(h, n); };
  timers.advanceMs(100'000);  // 22:15:00 fires
  REQUIRE(done(1));
  // Back an hour: 21:15 again. The slots up to 22:15 were handled: nothing fires until
  // 22:20 wall time, an hour and five minutes of monotonic time later.
  clock.stepWallMs(-3'600'000);
  for (int i = 0; i < 64; ++i) timers.advanceMs(60'000);
  CHECK(h.sup().executions("report").size() == 1);
  timers.advanceMs(60'000);  // wall 22:20:00 (+ the recheck's granularity)
  REQUIRE(done(2));
  auto cron = h.sup().snapshotJson()["cron"][0];
  CHECK(cron["missed_runs"] == 0);
  // Forward an hour: the 12 slots passed over are counted and said; one run for them.
  const size_t failures_before = h.rec.failuresOf("cron");
  clock.stepWallMs(3'600'000);
  timers.advanceMs(60'000);
  REQUIRE(done(3));
  timers.advanceMs(1'000);
  CHECK(h.sup().executions("report").size() == 3);
  CHECK(h.sup().snapshotJson()["cron"][0]["missed_runs"] >= 11);
  CHECK(h.rec.failuresOf("cron") > failures_before);
}

TEST_CASE("job: stopping a running execution cancels it") {
  Harness h;
  REQUIRE(h.sup().apply(one(job("long", "sleep 60", 3))));
  REQUIRE(h.runUntil([&] {
    auto e = h.sup().executions("long");
    return e.size() == 1 && e[0].state == ExecutionState::kRunning;
  }, 5000));
  REQUIRE(h.sup().stop("long"));
  REQUIRE(h.runUntil([&] {
    return h.sup().executions("long")[0].state == ExecutionState::kCancelled;
  }, 5000));
  CHECK(h.sup().executions("long")[0].attempts == 1);
  CHECK(h.rec.failuresOf("job") == 0);
}

TEST_CASE("cron: a restarted agent applies the missed-runs policy from the persisted last fire") {
  // Wall start 2023-11-14 22:13:20 UTC; "*/5" fires at 22:15:00, 22:20:00, ...
  for (auto policy : {spec::MissedRunPolicy::kRunOnce, spec::MissedRunPolicy::kSkip}) {
    CAPTURE(spec::missedRunName(policy));
    ManualClock clock;
    ManualTimers timers(clock);
    meshos::testing::TempDir tmp("meshos-rt");
    const std::string dir = tmp.path.string();
    {
      Harness h(&clock, &timers, dir);
      spec::DaemonSpec s;
      s.name = "report";
      s.kind = spec::DaemonKind::kCron;
      s.schedule = "*/5 * * * *";
      s.missed_runs = policy;
      s.command = {"/bin/sh", "-c", "echo tick"};
      REQUIRE(h.sup().apply(one(s)));
      timers.advanceMs(100'000);  // 22:15:00
      REQUIRE(h.runUntil([&] {
        auto e = h.sup().executions("report");
        return e.size() == 1 && finished(e[0]);
      }, 5000));
      CHECK(h.sup().snapshotJson()["cron"][0]["last_fire_ms"] == 1'700'000'100'000);
      // The agent goes away for 21 minutes: fires at 22:20, 22:25, 22:30 and 22:35 are missed.
      h.closeKeepRunning();
      clock.advanceMs(21 * 60'000);  // 22:36:00
      h.open();
      REQUIRE(h.sup().recover());
      REQUIRE(h.sup().apply(one(s)));
      auto json = h.sup().snapshotJson();
      CHECK(json["cron"][0]["missed_runs"] == 4);
      CHECK(json["cron"][0]["last_fire_ms"] == 1'700'000'100'000 + 20 * 60'000);
      CHECK(json["cron"][0]["next_fire_ms"] == 1'700'000'100'000 + 25 * 60'000);
      if (policy == spec::MissedRunPolicy::kRunOnce) {
        REQUIRE(h.runUntil([&] {
          auto e = h.sup().executions("report");
          return e.size() == 1 && finished(e[0]);
        }, 5000));
        CHECK(h.sup().executions("report")[0].trigger == "cron-missed");
      } else {
        h.runFor(50);
        CHECK(h.sup().executions("report").empty());
      }
      CHECK(h.rec.failuresOf("cron") == 1);
      // Restarted again at once: nothing more was missed, nothing more runs.
      h.shutdown(false);
      h.open();
      REQUIRE(h.sup().recover());
      REQUIRE(h.sup().apply(one(s)));
      CHECK(h.sup().snapshotJson()["cron"][0]["missed_runs"] == 0);
      CHECK(h.sup().executions("report").empty());
      // Removed from the desired set: its history goes too.
      REQUIRE(h.sup().apply({}));
      CHECK(!std::filesystem::exists(dir + "/runtime/instances/report.cron"));
    }
  }
}

TEST_CASE("instance store: last fire times round-trip, atomically; a corrupt one is an error") {
  meshos::testing::TempDir tmp("meshos-rt");
  const std::string dir = tmp.path.string();
  auto store = FileInstanceStore::open(posixFs(), dir + "/inst");
  REQUIRE(store);
  CHECK((*store)->lastFire("nightly").status().code() == Code::kNotFound);
  REQUIRE((*store)->saveLastFire("nightly", 1'700'000'100'000));
  REQUIRE((*store)->saveLastFire("nightly", 1'700'000'400'000));
  auto v = (*store)->lastFire("nightly");
  REQUIRE(v);
  CHECK(*v == 1'700'000'400'000);
  CHECK(!std::filesystem::exists(dir + "/inst/nightly.cron.tmp"));
  std::vector<std::string> skipped;
  auto all = (*store)->loadAll(&skipped);  // cron files are not instance records
  REQUIRE(all);
  CHECK(all->empty());
  CHECK(skipped.empty());
  {
    std::ofstream out(dir + "/inst/nightly.cron");
    out << "last_fire_ms=12x\n";
  }
  CHECK((*store)->lastFire("nightly").status().code() == Code::kCorruption);
  REQUIRE((*store)->eraseLastFire("nightly"));
  CHECK((*store)->lastFire("nightly").status().code() == Code::kNotFound);
  REQUIRE((*store)->eraseLastFire("nightly"));  // idempotent
}

TEST_CASE("job: a stopped run still gets its grace period (its exit-recording shim ends first)") {
  Harness h;
  const std::string done = h.dir() + "/cleaned-up";
  auto s = job("graceful", "trap 'sleep 0.3; echo ok > " + done + "; exit 0' TERM; sleep 30 & wait", 0);
  s.stop_grace_ms = 3000;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.runUntil([&] {
    auto e = h.sup().executions("graceful");
    return e.size() == 1 && e[0].state == ExecutionState::kRunning;
  }, 5000));
  h.runFor(100);  // let the run install its trap
  REQUIRE(h.sup().stop("graceful"));
  REQUIRE(h.runUntil([&] {
    return h.sup().executions("graceful")[0].state == ExecutionState::kCancelled;
  }, 5000));
  // Cancelled when the shim ended; the run itself finished its cleanup within the grace.
  CHECK(h.runUntil([&] { return std::filesystem::exists(done); }, 2500));
}
