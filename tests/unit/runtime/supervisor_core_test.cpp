#include "agent/runtime/supervisor_core.h"

#include <doctest/doctest.h>

using namespace meshos;
using namespace meshos::runtime;

TEST_CASE("backoff: exponential, capped, jittered within bounds, deterministic per seed") {
  spec::Backoff b;
  b.initial_ms = 100;
  b.factor = 2.0;
  b.max_ms = 1000;
  b.jitter = 0.0;
  Rng rng(1);
  CHECK(backoffDelayMs(b, 1, rng) == 100);
  CHECK(backoffDelayMs(b, 2, rng) == 200);
  CHECK(backoffDelayMs(b, 4, rng) == 800);
  CHECK(backoffDelayMs(b, 5, rng) == 1000);
  CHECK(backoffDelayMs(b, 500, rng) == 1000);
  b.jitter = 0.5;
  Rng a(9), c(9);
  for (int i = 1; i < 50; ++i) {
    int64_t d = backoffDelayMs(b, 2, a);
    CHECK(d >= 100);
    CHECK(d <= 300);
    CHECK(d == backoffDelayMs(b, 2, c));
  }
  b.initial_ms = 0;
  CHECK(backoffDelayMs(b, 3, a) == 0);
}

TEST_CASE("crash-loop gate: N crashes within the window trip it; old crashes age out") {
  spec::CrashLoop c;
  c.max_crashes = 3;
  c.window_ms = 1000;
  CrashLoopGate g(c);
  CHECK(!g.recordCrash(0));
  CHECK(!g.recordCrash(100));
  CHECK(g.recordCrash(200));
  CHECK(g.crashesInWindow(200) == 0);  // cleared after tripping
  CHECK(!g.recordCrash(1000));
  CHECK(!g.recordCrash(2100));  // the crash at 1000 aged out
  CHECK(!g.recordCrash(3200));
  c.max_crashes = 0;
  CrashLoopGate off(c);
  for (int i = 0; i < 100; ++i) CHECK(!off.recordCrash(i));
}

TEST_CASE("exit decisions follow the restart policy and success codes") {
  spec::DaemonSpec s;
  s.name = std::string("xname");
  s.command = {"/bin/true"};
  s.backoff.initial_ms = 100;
  s.backoff.jitter = 0;
  s.success_exit_codes = {0, 3};
  s.crash_loop.max_crashes = 3;
  s.crash_loop.window_ms = 10'000;
  s.crash_loop.cooldown_ms = 5'000;
  Rng rng(3);
  ExitInfo ok;
  ok.exit_code = 3;
  ExitInfo bad;
  bad.exit_code = 1;
  ExitInfo killed;
  killed.exit_code = -1;
  killed.term_signal = 9;
  ExitInfo unknown;
  unknown.code_known = false;

  SUBCASE("on-failure: success stays exited, failures back off then quarantine") {
    s.restart = spec::RestartPolicy::kOnFailure;
    RestartTracker t;
    t.gate.configure(s.crash_loop);
    auto d = decideServiceExit(s, ok, false, 10, 0, t, rng);
    CHECK(d.success);
    CHECK(!d.restart);
    CHECK(d.state == InstanceState::kExited);
    d = decideServiceExit(s, bad, false, 10, 0, t, rng);
    CHECK(d.restart);
    CHECK(d.state == InstanceState::kBackingOff);
    CHECK(d.delay_ms == 100);
    d = decideServiceExit(s, killed, false, 10, 100, t, rng);
    CHECK(d.delay_ms == 200);
    d = decideServiceExit(s, unknown, false, 10, 200, t, rng);
    CHECK(d.quarantine);
    CHECK(d.state == InstanceState::kQuarantined);
    CHECK(d.delay_ms == 5'000);
    // After the quarantine the backoff starts over.
    d = decideServiceExit(s, bad, false, 10, 20'000, t, rng);
    CHECK(d.delay_ms == 100);
  }
  SUBCASE("a forced (health) failure is a failure even with exit 0") {
    RestartTracker t;
    ExitInfo zero;
    zero.exit_code = 0;
    auto d = decideServiceExit(s, zero, true, 10, 0, t, rng);
    CHECK(!d.success);
    CHECK(d.restart);
  }
  SUBCASE("never and always") {
    RestartTracker t;
    s.restart = spec::RestartPolicy::kNever;
    auto d = decideServiceExit(s, bad, false, 10, 0, t, rng);
    CHECK(!d.restart);
    CHECK(d.state == InstanceState::kFailed);
    s.restart = spec::RestartPolicy::kAlways;
    d = decideServiceExit(s, ok, false, 10, 0, t, rng);
    CHECK(d.restart);
  }
  SUBCASE("a stable run resets the backoff") {
    RestartTracker t;
    s.backoff.reset_after_ms = 1000;
    (void)decideServiceExit(s, bad, false, 10, 0, t, rng);
    (void)decideServiceExit(s, bad, false, 10, 10, t, rng);
    auto d = decideServiceExit(s, bad, false, 5000, 6000, t, rng);
    CHECK(d.delay_ms == 100);
  }
}
