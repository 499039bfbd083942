// One suite for every runtime::Runtime: the process runtime, the OCI container runtime
// (runc, on a busybox root filesystem; skipped, saying why, without root, runc or
// busybox) and the simulated one. What the Supervisor relies on holds for each: a start
// runs it and gives a pid; a second start or create is refused; an exec check passes and
// fails by the command's exit; a stop ends it within its grace and reports the exit as
// ours; a kill from outside is reported with its signal; a running instance cannot be
// removed, an exited one can; and a new agent re-adopts a running instance from its
// record, with the same pid, and still sees it end.
#include <doctest/doctest.h>
#include <signal.h>
#include <uv.h>

#include <functional>
#include <memory>
#include <optional>
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

using namespace meshos;
using namespace meshos::runtime;

namespace {

// A service that runs until told to stop and ends at SIGTERM (as pid 1 of a container
// too: it traps the signal), for each runtime.
spec::DaemonSpec serviceSpec(const std::string& name) {
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
  }
  std::string skipReason() const { return skip_; }
  Runtime& runtime() { return *rt_; }
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
    o.cgroup_parent = "meshos-contract";
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

template <typename F>
struct Watched {
  F& f;
  std::map<std::string, std::vector<ExitInfo>> exits;
  explicit Watched(F& fixture) : f(fixture) {
    f.runtime().setExitCallback([this](const std::string& i, const ExitInfo& e) { exits[i].push_back(e); });
  }
  int pidOf(const std::string& instance) {
    auto st = f.runtime().status(instance);
    return st ? st->pid : 0;
  }
  bool running(const std::string& instance, int64_t ms = 10'000) {
    return f.runUntil([&] { return pidOf(instance) > 0; }, ms);
  }
  std::optional<bool> checkOnce(const std::string& instance, std::vector<std::string> argv) {
    spec::HealthCheck c;
    c.type = spec::CheckType::kExec;
    c.command = std::move(argv);
    c.timeout_ms = 5'000;
    std::optional<bool> result;
    f.runtime().check(instance, c, [&](bool ok, const std::string&) { result = ok; });
    f.runUntil([&] { return result.has_value(); }, 10'000);
    return result;
  }
};

}  // namespace

#define SKIP_UNLESS_SUPPORTED(f)                           \
  if (const std::string why = (f).skipReason(); !why.empty()) { \
    MESSAGE("skipped: " << why);                           \
    return;                                                \
  }

TEST_CASE_TEMPLATE("runtime contract: start, checks, stop, kill, remove", F, ProcessFixture, OciFixture, SimFixture) {
  F f;
  SKIP_UNLESS_SUPPORTED(f);
  Watched<F> w(f);
  Runtime& rt = f.runtime();
  const spec::DaemonSpec s = f.service("svc");
  REQUIRE(rt.create("svc#0", s));
  CHECK(rt.create("svc#0", s).code() == Code::kAlreadyExists);
  REQUIRE(rt.start("svc#0"));
  CHECK(rt.start("svc#0").code() == Code::kAlreadyExists);
  REQUIRE(w.running("svc#0"));
  CHECK(rt.status("svc#0")->state == ProcessState::kRunning);
  CHECK(!rt.status("svc#0")->adopted);

  // An exec check: its exit decides (the simulated one passes once the process is ready).
  CHECK(f.runUntil([&] { return w.checkOnce("svc#0", {"/bin/true"}) == true; }, 5'000));
  if constexpr (!std::is_same_v<F, SimFixture>) CHECK(w.checkOnce("svc#0", {"/bin/false"}) == false);

  CHECK(!rt.remove("svc#0"));  // running
  REQUIRE(rt.stop("svc#0"));
  REQUIRE(f.runUntil([&] { return !w.exits["svc#0"].empty(); }, 10'000));
  CHECK(w.exits["svc#0"].front().stopped_by_us);
  CHECK(rt.status("svc#0")->state == ProcessState::kExited);
  CHECK(rt.remove("svc#0"));
  CHECK(rt.status("svc#0").status().code() == Code::kNotFound);

  // Killed from outside the runtime's stop: reported, with the signal.
  REQUIRE(rt.create("svc#1", s));
  REQUIRE(rt.start("svc#1"));
  REQUIRE(w.running("svc#1"));
  REQUIRE(rt.signal("svc#1", SIGKILL));
  REQUIRE(f.runUntil([&] { return !w.exits["svc#1"].empty(); }, 10'000));
  CHECK(w.exits["svc#1"].front().term_signal == SIGKILL);
}

TEST_CASE_TEMPLATE("runtime contract: a new agent re-adopts a running instance with its pid", F, ProcessFixture, OciFixture, SimFixture) {
  F f;
  SKIP_UNLESS_SUPPORTED(f);
  const spec::DaemonSpec s = f.service("keep");
  int pid = 0;
  {
    Watched<F> w(f);
    REQUIRE(f.runtime().create("keep#0", s));
    REQUIRE(f.runtime().start("keep#0"));
    REQUIRE(w.running("keep#0"));
    pid = w.pidOf("keep#0");
  }
  f.restartAgent();
  Watched<F> w(f);
  std::vector<InstanceRecord> records;
  {
    std::vector<std::string> skipped;
    auto loaded = f.store().loadAll(&skipped);
    REQUIRE(loaded);
    records = *loaded;
  }
  REQUIRE(records.size() == 1);
  CHECK(records.front().pid == pid);
  REQUIRE(f.runtime().adopt(records.front(), s));
  CHECK(w.pidOf("keep#0") == pid);
  CHECK(f.runtime().status("keep#0")->adopted);
  REQUIRE(f.runtime().stop("keep#0"));
  REQUIRE(f.runUntil([&] { return !w.exits["keep#0"].empty(); }, 10'000));
  CHECK(w.exits["keep#0"].front().stopped_by_us);
}
