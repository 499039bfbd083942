// Runtime benchmarks (run by hand; figures go to docs/BENCHMARKS.md):
//   restart  — time from a daemon's crash (SIGKILL sent) to its replacement running, with
//              zero backoff: median / p99 / max over --iterations;
//   spawn    — processes started per second by Supervisor::apply() (--daemons sleepers);
//   idle     — those daemons supervised for --seconds: this process's CPU share and RSS.
// Usage: runtime_bench [--daemons 1000] [--seconds 10] [--iterations 200] [--dir DIR]
#include <CLI/CLI.hpp>
#include <signal.h>
#include <sys/resource.h>
#include <uv.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/supervisor.h"

namespace {
// The real file system, for the instance journal.
meshos::FileSystem& posixFs() {
  static meshos::PosixFileSystem fs;
  return fs;
}
}  // namespace


using namespace meshos;
using namespace meshos::runtime;
using Clk = std::chrono::steady_clock;

namespace {

int64_t rssKb() {
  std::ifstream in("/proc/self/status");
  std::string k;
  while (in >> k) {
    if (k == "VmRSS:") {
      int64_t v = 0;
      in >> v;
      return v;
    }
    std::getline(in, k);
  }
  return -1;
}

double cpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

spec::DaemonSpec sleeper(const std::string& name) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sleep", "100000"};
  s.restart = spec::RestartPolicy::kAlways;
  s.backoff.initial_ms = 0;
  s.backoff.max_ms = 0;
  s.backoff.jitter = 0;
  s.crash_loop.max_crashes = 0;
  s.stop_grace_ms = 2000;
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"meshos runtime benchmarks"};
  int daemons = 1000;
  int seconds = 10;
  int iterations = 200;
  std::string dir;
  app.add_option("--daemons", daemons, "idle daemons to supervise")->check(CLI::Range(1, 100000));
  app.add_option("--seconds", seconds, "idle measurement window")->check(CLI::Range(1, 3600));
  app.add_option("--iterations", iterations, "crash/restart samples")->check(CLI::Range(1, 100000));
  app.add_option("--dir", dir, "data directory (default: a new one under /tmp)");
  CLI11_PARSE(app, argc, argv);
  bool own_dir = dir.empty();
  if (own_dir) {
    char tmpl[] = "/tmp/meshos-bench-XXXXXX";
    dir = ::mkdtemp(tmpl);
  }

  uv_loop_t loop;
  uv_loop_init(&loop);
  uv_timer_t ticker;
  uv_timer_init(&loop, &ticker);
  SystemClock clock;
  UvTimers timers(&loop);
  Rng rng(1);
  auto store = FileInstanceStore::open(posixFs(), dir + "/runtime/instances");
  if (!store) {
    std::fprintf(stderr, "%s\n", store.status().toString().c_str());
    return 1;
  }
  RuntimeOptions o;
  o.data_dir = dir;
  ProcessRuntime rt(&loop, clock, **store, o);
  if (Status s = rt.init(); !s) {
    std::fprintf(stderr, "%s\n", s.toString().c_str());
    return 1;
  }
  std::string want;  // instance whose next "running" ends a restart sample
  Clk::time_point running_at;
  bool seen = false;
  SupervisorCallbacks cb;
  cb.on_transition = [&](const TransitionEvent& e) {
    if (e.instance == want && e.to == InstanceState::kRunning) {
      running_at = Clk::now();
      seen = true;
    }
  };
  Supervisor sup(clock, timers, rng, rt, **store, cb);
  auto runUntil = [&](const std::function<bool()>& pred, int timeout_ms) {
    uv_timer_start(&ticker, [](uv_timer_t*) {}, 1, 1);
    auto deadline = Clk::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred() && Clk::now() < deadline) uv_run(&loop, UV_RUN_ONCE);
    uv_timer_stop(&ticker);
    return pred();
  };
  auto pidOf = [&](const std::string& inst) {
    for (const auto& s : sup.snapshot()) {
      if (s.instance == inst) return s.pid;
    }
    return 0;
  };

  // 1. Crash → restart.
  if (Status s = sup.apply({sleeper("crashy")}); !s) {
    std::fprintf(stderr, "%s\n", s.toString().c_str());
    return 1;
  }
  want = "crashy#0";
  runUntil([&] { return pidOf("crashy#0") > 0; }, 5000);
  std::vector<double> samples;
  for (int i = 0; i < iterations; ++i) {
    const int pid = pidOf("crashy#0");
    seen = false;
    auto t0 = Clk::now();
    ::kill(pid, SIGKILL);
    if (!runUntil([&] { return seen && pidOf("crashy#0") != pid && pidOf("crashy#0") > 0; }, 5000)) {
      std::fprintf(stderr, "restart %d did not happen\n", i);
      return 1;
    }
    samples.push_back(std::chrono::duration<double, std::milli>(running_at - t0).count());
  }
  std::sort(samples.begin(), samples.end());
  std::printf("restart_after_crash_ms: median %.3f p99 %.3f max %.3f (n=%d, zero backoff)\n",
              samples[samples.size() / 2], samples[samples.size() * 99 / 100], samples.back(),
              iterations);
  want.clear();

  // 2. Spawn rate.
  std::vector<spec::DaemonSpec> specs;
  for (int i = 0; i < daemons; ++i) specs.push_back(sleeper("idle" + std::to_string(i)));
  auto t0 = Clk::now();
  const double apply_cpu0 = cpuSeconds();
  if (Status s = sup.apply(specs); !s) {
    std::fprintf(stderr, "%s\n", s.toString().c_str());
    return 1;
  }
  double spawn_s = std::chrono::duration<double>(Clk::now() - t0).count();
  int running = 0;
  for (const auto& s : sup.snapshot()) running += s.pid > 0 ? 1 : 0;
  const double apply_cpu = cpuSeconds() - apply_cpu0;
  std::printf("spawn: %d daemons in %.3f s = %.0f processes/s wall; supervisor CPU %.3f s = "
              "%.0f processes per CPU-second (apply: validate, create, spawn, record)\n",
              running, spawn_s, running / spawn_s, apply_cpu, running / apply_cpu);

  // 3. Idle supervision.
  double cpu0 = cpuSeconds();
  auto w0 = Clk::now();
  uv_timer_t stop_timer;
  uv_timer_init(&loop, &stop_timer);
  uv_update_time(&loop);
  uv_timer_start(&stop_timer, [](uv_timer_t* t) { uv_stop(t->loop); },
                 static_cast<uint64_t>(seconds) * 1000, 0);
  uv_run(&loop, UV_RUN_DEFAULT);
  double wall = std::chrono::duration<double>(Clk::now() - w0).count();
  double cpu = cpuSeconds() - cpu0;
  std::printf("idle: %d daemons for %.1f s: supervisor CPU %.3f%% of one core, RSS %.1f MB\n",
              daemons, wall, 100.0 * cpu / wall, rssKb() / 1024.0);

  // Stop everything.
  bool done = false;
  auto s0 = Clk::now();
  sup.stopAll([&] { done = true; });
  runUntil([&] { return done; }, 60'000);
  std::printf("stop_all: %d daemons in %.3f s\n", daemons + 1,
              std::chrono::duration<double>(Clk::now() - s0).count());
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_timer), nullptr);
  uv_close(reinterpret_cast<uv_handle_t*>(&ticker), nullptr);
  rt.close();
  timers.close();
  uv_run(&loop, UV_RUN_DEFAULT);
  uv_loop_close(&loop);
  if (own_dir) std::filesystem::remove_all(dir);
  return done ? 0 : 1;
}
