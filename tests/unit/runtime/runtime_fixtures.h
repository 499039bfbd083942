// The runtimes as test fixtures, one shape for all (contract_test.cpp, oci_runtime_test.cpp):
// runtime(), service(name) (a spec that runs until stopped, honouring SIGTERM), runUntil()
// and pause() on the runtime's clock, restartAgent() (a new runtime over the same records
// and processes), store(), skipReason() ("" when it can run here).
#pragma once

#include <doctest/doctest.h>
#include <uv.h>

#include <signal.h>

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "agent/core/clock.h"
#include "agent/core/file_system.h"
#include "agent/core/timers.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/oci_runtime.h"
#include "agent/runtime/process_runtime.h"
#include "agent/sim/sim_runtime.h"
#include "tests/temp_dir.h"
#include "tests/unit/runtime/busybox_rootfs.h"

namespace meshos::runtime::testing {

// A live process (not a zombie) with this pid.
inline bool pidAliveForTest(int pid) {
  if (pid <= 0 || ::kill(pid, 0) != 0) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  const auto p = text.rfind(')');
  return p == std::string::npos || p + 2 >= text.size() || text[p + 2] != 'Z';
}

// A service that runs until told to stop and ends at SIGTERM (as pid 1 of a container
// too: it traps the signal), for each runtime.
inline spec::DaemonSpec serviceSpec(const std::string& name) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sh", "-c", "trap 'exit 0' TERM; while true; do sleep 1; done"};
  s.stop_grace_ms = 5'000;
  return s;
}

// Real processes on a libuv loop; the runtime made by `make` over one data directory.
class LoopFixture {
 public:
  LoopFixture() : dir_("meshos-contract"), timers_(&loop_init()) {
    auto s = FileInstanceStore::open(fs_, dir_.path.string() + "/runtime/instances");
    REQUIRE(s);
    store_ = std::move(*s);
  }
  virtual ~LoopFixture() {
    timers_.close();
    uv_run(&loop_, UV_RUN_DEFAULT);
    (void)uv_loop_close(&loop_);
  }
  bool runUntil(const std::function<bool()>& pred, int64_t timeout_ms) {
    const int64_t deadline = clock_.monotonicMs() + timeout_ms;
    bool tick = false;
    while (!pred()) {
      if (clock_.monotonicMs() > deadline) return false;
      timers_.after(5, [&] { tick = true; });
      while (!tick) uv_run(&loop_, UV_RUN_ONCE);
      tick = false;
    }
    return true;
  }
  void pause(int64_t ms) {
    const int64_t until = clock_.monotonicMs() + ms;
    (void)runUntil([&] { return clock_.monotonicMs() >= until; }, ms + 1'000);
  }
  std::string skipReason() const { return ""; }
  InstanceStore& store() { return *store_; }
  std::string dataDir() const { return dir_.path.string(); }
  std::string secretsDir() const { return dir_.path.string() + "/secrets"; }

 protected:
  uv_loop_t& loop_init() {
    uv_loop_init(&loop_);
    return loop_;
  }
  meshos::testing::TempDir dir_;
  uv_loop_t loop_;
  UvTimers timers_;
  SystemClock clock_;
  PosixFileSystem fs_;
  std::unique_ptr<FileInstanceStore> store_;
};

class ProcessFixture : public LoopFixture {
 public:
  ProcessFixture() { restartAgent(); }
  ~ProcessFixture() override {
    if (rt_) rt_->close();
  }
  Runtime& runtime() { return *rt_; }
  spec::DaemonSpec service(const std::string& name) { return serviceSpec(name); }
  // The agent is gone and a new one comes: its processes run on, their records stay.
  void restartAgent() {
    if (rt_) rt_->close();
    RuntimeOptions o;
    o.data_dir = dir_.path.string();
    o.cgroup_root = "";
    rt_ = std::make_unique<ProcessRuntime>(&loop_, clock_, *store_, o);
    REQUIRE(rt_->init());
  }

 private:
  std::unique_ptr<ProcessRuntime> rt_;
};

class OciFixture : public LoopFixture {
 public:
  OciFixture() : skip_(meshos::testing::containerSkipReason()) {
    if (!skip_.empty()) return;
    rootfs_ = meshos::testing::makeBusyboxRootfs(dir_.path).string();
    restartAgent();
  }
  ~OciFixture() override {
    if (!rt_) return;
    for (const auto& name : rt_->instances()) (void)rt_->stop(name, 0);
    (void)runUntil([&] {
      for (const auto& name : rt_->instances()) {
        auto st = rt_->status(name);
        if (st && st->state != ProcessState::kExited && st->state != ProcessState::kCreated) return false;
      }
      return true;
    }, 10'000);
    pause(300);  // the containers' delete
    rt_->close();
    meshos::testing::removeCgroupParent(cgroupParent());
  }
  std::string skipReason() const { return skip_; }
  Runtime& runtime() { return *rt_; }
  // Its own, so that test runs side by side never share a container's cgroup.
  static std::string cgroupParent() { return "meshos-contract-" + std::to_string(::getpid()); }
  spec::DaemonSpec service(const std::string& name) {
    spec::DaemonSpec s = serviceSpec(name);
    s.runtime = spec::RuntimeKind::kOci;
    s.container.rootfs = rootfs_;
    return s;
  }
  void restartAgent() {
    if (rt_) rt_->close();
    OciRuntimeOptions o;
    o.data_dir = dir_.path.string();
    o.cgroup_parent = cgroupParent();
    o.secrets_dir = secretsDir();
    rt_ = std::make_unique<OciRuntime>(&loop_, clock_, *store_, o);
    REQUIRE(rt_->init());
  }

 private:
  std::string skip_;
  std::string rootfs_;
  std::unique_ptr<OciRuntime> rt_;
};

// Simulated processes in virtual time; the agent's records in a real store.
class SimFixture {
 public:
  SimFixture() : dir_("meshos-contract-sim"), world_(clock_), rt_(world_, clock_, Rng(1), sim::SimRuntimeOptions{}) {
    auto s = FileInstanceStore::open(fs_, dir_.path.string() + "/instances");
    REQUIRE(s);
    store_ = std::move(*s);
    rt_.attachAgent(store_.get());
  }
  std::string skipReason() const { return ""; }
  InstanceStore& store() { return *store_; }
  Runtime& runtime() { return rt_; }
  spec::DaemonSpec service(const std::string& name) { return serviceSpec(name); }
  bool runUntil(const std::function<bool()>& pred, int64_t timeout_ms) {
    for (int64_t t = 0; !pred(); t += 10) {
      if (t > timeout_ms) return false;
      world_.advanceMs(10);
    }
    return true;
  }
  void pause(int64_t ms) { world_.advanceMs(ms); }
  void restartAgent() {
    rt_.detachAgent();
    rt_.attachAgent(store_.get());
  }

 private:
  meshos::testing::TempDir dir_;
  ManualClock clock_;
  ManualTimers world_;
  PosixFileSystem fs_;
  std::unique_ptr<FileInstanceStore> store_;
  sim::SimRuntime rt_;
};

}  // namespace meshos::runtime::testing
