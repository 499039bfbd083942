// Test harness for the runtime: a real libuv loop, a temporary data directory, a
// ProcessRuntime and a Supervisor whose events are recorded. Time is the system clock
// unless a test passes a ManualClock + ManualTimers for the Supervisor (cron tests).
// runUntil() turns the loop with a deadline; nothing sleeps blindly.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <uv.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/process_runtime.h"
#include "agent/runtime/supervisor.h"
#include "agent/spec/daemon_spec.h"
#include "tests/temp_dir.h"

namespace meshos::runtime::testing {

// The real file system, for the instance journal.
inline FileSystem& posixFs() {
  static PosixFileSystem fs;
  return fs;
}

inline bool pidAlive(int pid) {
  if (pid <= 0) return false;
  if (::kill(pid, 0) != 0) return false;
  // A zombie is not alive.
  FILE* f = ::fopen(("/proc/" + std::to_string(pid) + "/stat").c_str(), "r");
  if (f == nullptr) return false;
  char buf[512] = {0};
  size_t n = ::fread(buf, 1, sizeof(buf) - 1, f);
  ::fclose(f);
  std::string s(buf, n);
  auto p = s.rfind(')');
  return p == std::string::npos || p + 2 >= s.size() || s[p + 2] != 'Z';
}

// Any process (zombie or not) whose process group is pgid.
inline std::vector<int> processesInGroup(int pgid) {
  std::vector<int> out;
  for (const auto& e : std::filesystem::directory_iterator("/proc")) {
    const std::string name = e.path().filename();
    if (name.empty() || name[0] < '1' || name[0] > '9') continue;
    FILE* f = ::fopen(("/proc/" + name + "/stat").c_str(), "r");
    if (f == nullptr) continue;
    char buf[1024] = {0};
    size_t n = ::fread(buf, 1, sizeof(buf) - 1, f);
    ::fclose(f);
    std::string s(buf, n);
    auto p = s.rfind(')');
    if (p == std::string::npos) continue;
    int field = 3;
    size_t i = p + 2;
    std::string cur;
    for (; i <= s.size(); ++i) {
      if (i == s.size() || s[i] == ' ') {
        if (field == 5 && std::atoi(cur.c_str()) == pgid) out.push_back(std::atoi(name.c_str()));
        ++field;
        cur.clear();
        if (field > 5) break;
      } else {
        cur += s[i];
      }
    }
  }
  return out;
}

struct Recorded {
  std::vector<TransitionEvent> transitions;
  std::vector<FailureEvent> failures;
  int count(const std::string& instance, InstanceState to) const {
    int n = 0;
    for (const auto& t : transitions) n += (t.instance == instance && t.to == to) ? 1 : 0;
    return n;
  }
  int failuresOf(const std::string& kind) const {
    int n = 0;
    for (const auto& f : failures) n += f.kind == kind ? 1 : 0;
    return n;
  }
};

class Harness {
 public:
  // cgroup_root "" (the default here) runs without cgroups; tests that want them pass one.
  explicit Harness(Clock* clock = nullptr, Timers* timers = nullptr, std::string dir = "",
                   std::string cgroup_root = "", std::string cgroup_parent = "meshos-test")
      : own_dir_(dir.empty() ? std::make_unique<meshos::testing::TempDir>("meshos-rt") : nullptr),
        dir_(own_dir_ ? own_dir_->path.string() : dir),
        cgroup_root_(std::move(cgroup_root)), cgroup_parent_(std::move(cgroup_parent)) {
    uv_loop_init(&loop_);
    uv_timer_init(&loop_, &ticker_);
    uv_timer_start(&ticker_, [](uv_timer_t*) {}, 5, 5);
    uv_timers_ = std::make_unique<UvTimers>(&loop_);
    clock_ = clock != nullptr ? clock : &system_clock_;
    timers_ = timers != nullptr ? timers : uv_timers_.get();
    open();
  }
  ~Harness() {
    shutdown(true);
    uv_close(reinterpret_cast<uv_handle_t*>(&ticker_), nullptr);
    uv_timers_->close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    CHECK(uv_loop_close(&loop_) == 0);  // a leaked handle fails the test
  }

  // Builds a store, runtime and supervisor over the data dir (again after closeKeepRunning).
  void open() {
    auto s = FileInstanceStore::open(fs_, dir_ + "/runtime/instances");
    REQUIRE(s);
    store_ = std::move(*s);
    RuntimeOptions o;
    o.data_dir = dir_;
    o.log_check_interval_ms = 100;
    o.cgroup_root = cgroup_root_;
    o.cgroup_parent = cgroup_parent_;
    runtime_ = std::make_unique<ProcessRuntime>(&loop_, *clock_, *store_, o);
    REQUIRE(runtime_->init());
    SupervisorCallbacks cb;
    cb.on_transition = [this](const TransitionEvent& e) { rec.transitions.push_back(e); };
    cb.on_failure = [this](const FailureEvent& e) { rec.failures.push_back(e); };
    SupervisorOptions so;
    so.rng_seed = 42;
    sup_ = std::make_unique<Supervisor>(*clock_, *timers_, rng_, *runtime_, *store_, cb, so);
  }

  // As an agent killed: drops the supervisor and runtime, daemons keep running.
  void closeKeepRunning() {
    sup_.reset();
    runtime_->close();
    runtime_.reset();
    store_.reset();
  }

  void shutdown(bool stop_daemons) {
    if (sup_ && stop_daemons) {
      bool done = false;
      sup_->stopAll([&] { done = true; });
      runUntil([&] { return done; }, 10'000);
    }
    sup_.reset();
    if (runtime_) runtime_->close();
    runtime_.reset();
    store_.reset();
  }

  bool runUntil(const std::function<bool()>& pred, int64_t timeout_ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      uv_run(&loop_, UV_RUN_ONCE);
    }
    return true;
  }
  void runFor(int64_t ms) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    runUntil([&] { return std::chrono::steady_clock::now() > deadline; }, ms + 1000);
  }

  InstanceState stateOf(const std::string& instance) {
    auto s = sup_->state(instance);
    return s ? *s : InstanceState::kStopped;
  }
  int pidOf(const std::string& instance) {
    for (const auto& s : sup_->snapshot()) {
      if (s.instance == instance) return s.pid;
    }
    return 0;
  }
  bool waitState(const std::string& instance, InstanceState st, int64_t timeout_ms = 5000) {
    return runUntil([&] { return stateOf(instance) == st; }, timeout_ms);
  }

  Supervisor& sup() { return *sup_; }
  ProcessRuntime& runtime() { return *runtime_; }
  uv_loop_t* loop() { return &loop_; }
  const std::string& dir() const { return dir_; }
  Recorded rec;

 private:
  std::unique_ptr<meshos::testing::TempDir> own_dir_;  // when no directory was given
  std::string dir_;
  std::string cgroup_root_;
  std::string cgroup_parent_;
  uv_loop_t loop_;
  uv_timer_t ticker_;
  SystemClock system_clock_;
  Clock* clock_;
  std::unique_ptr<UvTimers> uv_timers_;
  Timers* timers_;
  Rng rng_{7};
  PosixFileSystem fs_;
  std::unique_ptr<FileInstanceStore> store_;
  std::unique_ptr<ProcessRuntime> runtime_;
  std::unique_ptr<Supervisor> sup_;
};

inline spec::DaemonSpec service(const std::string& name, std::vector<std::string> argv) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = std::move(argv);
  s.backoff.initial_ms = 10;
  s.backoff.max_ms = 50;
  s.backoff.jitter = 0.1;
  s.stop_grace_ms = 2000;
  return s;
}

inline std::vector<spec::DaemonSpec> one(spec::DaemonSpec s) { return {std::move(s)}; }

}  // namespace meshos::runtime::testing
