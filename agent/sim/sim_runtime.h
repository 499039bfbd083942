// SimRuntime: the processes of one simulated machine, behind runtime::Runtime — the same
// interface the agent's process runtime implements, so the real Supervisor runs on it.
//
// A process is a record in virtual time: it starts at once, is ready (its health checks
// pass) ready_delay_ms ± ready_jitter_ms after it started, stops within stop_delay_ms of
// its stop signal (SIGKILL after the grace otherwise), and a job run exits 0 after
// job_run_ms. The machine's processes outlive the agent: when an agent crashes its
// successor re-adopts them by pid and start time (adopt()), as the real one does through
// pidfds; a machine crash (crashMachine()) ends them all at once.
//
// Ground truth for the simulator's invariants comes from here, not from what nodes report:
// which processes live, of which daemon, and whether each exit was seen (reaped) by an
// agent. Single-threaded; events run on the world's ManualTimers (a process's life does not
// depend on its agent), callbacks into the agent are dropped once it is detached.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/runtime.h"

namespace meshos::sim {

struct SimRuntimeOptions {
  int64_t ready_delay_ms = 500;
  int64_t ready_jitter_ms = 100;
  int64_t stop_delay_ms = 50;     // a process honours its stop signal this long after it
  int64_t job_run_ms = 200;       // a job or cron run exits 0 after this
  int64_t check_latency_ms = 2;   // a health check attempt answers after this
  int64_t exec_latency_ms = 5;
};

struct SimProcess {
  int pid = 0;
  std::string instance;
  std::string daemon;
  spec::DaemonSpec spec;
  int64_t started_ms = 0;
  int64_t ready_at_ms = 0;
  bool alive = true;
  bool paused = false;
  bool stop_requested = false;
  int64_t exited_ms = -1;
  runtime::ExitInfo exit;
  // The secrets it started with: BLAKE2b-256 of each value (the ground truth "the daemon
  // read the right value" is checked against), never the value.
  std::map<std::string, Hash256> secret_hashes;
  bool reaped = false;  // an agent saw the exit (callback delivered), or the machine died
};

struct SimRuntimeCounters {
  uint64_t spawned = 0, exited = 0, crashed = 0, adopted = 0, adopt_refused = 0, checks = 0;
};

class SimRuntime final : public runtime::Runtime {
 public:
  SimRuntime(ManualTimers& world, const Clock& clock, Rng rng, SimRuntimeOptions options);
  ~SimRuntime() override;

  // ---- runtime::Runtime ----
  void setExitCallback(ExitCallback cb) override { exit_cb_ = std::move(cb); }
  void setSecretOpener(SecretOpener opener) override { open_secret_ = std::move(opener); }
  Status create(const std::string& instance, const spec::DaemonSpec& spec) override;
  Status start(const std::string& instance) override;
  Status stop(const std::string& instance, int64_t grace_ms = -1) override;
  Status remove(const std::string& instance) override;
  Status signal(const std::string& instance, int sig) override;
  Result<runtime::ProcessStatus> status(const std::string& instance) const override;
  Result<runtime::LogChunk> logs(const std::string& instance, const runtime::LogQuery& q) const override;
  Status exec(const std::string& instance, std::vector<std::string> argv, int64_t timeout_ms, size_t max_output,
              std::function<void(Result<runtime::ExecResult>)> done) override;
  Result<runtime::ResourceStats> stats(const std::string& instance) const override;
  Result<probes::CommandContext> commandContext(const std::string& instance) const override;
  Status adopt(const runtime::InstanceRecord& record, const spec::DaemonSpec& spec) override;
  std::vector<std::string> instances() const override;
  void stopRecorded(const runtime::InstanceRecord& record) override;
  void check(const std::string& instance, const spec::HealthCheck& check,
             std::function<void(bool ok, std::string detail)> done) override;

  // ---- the machine ----
  // The agent that drives this runtime keeps its instance records here (as the process
  // runtime does: a record from a start to its exit) so its successor can re-adopt.
  void attachAgent(runtime::InstanceStore* records) { records_ = records; }
  // The agent is gone (crashed or stopped): its callbacks are dropped, its instance table
  // forgotten; the processes go on.
  void detachAgent();
  // Every process ends at once; nothing is told.
  void crashMachine();
  // A process dies on its own (the fault "a daemon crashes"): exit 1, or by signal.
  void killProcess(int pid, int term_signal = 0);

  const std::map<int, SimProcess>& processes() const { return processes_; }
  // When the agent last removed an instance (-1: never). A removal between a process's exit
  // and the next start tells a move (the instance let go, then placed here again) from a
  // replacement (the supervisor removes and creates it again as it starts the new spec).
  int64_t removedAtMs(const std::string& instance) const {
    auto it = removed_at_ms_.find(instance);
    return it == removed_at_ms_.end() ? -1 : it->second;
  }
  // Live processes of each daemon.
  std::map<std::string, uint32_t> liveByDaemon() const;
  const SimRuntimeCounters& counters() const { return counters_; }
  // Traced by the cluster: (what, instance, pid) for each start and exit.
  std::function<void(const char* what, const std::string& instance, int pid)> on_trace;

 private:
  struct Handle {  // the agent's view of an instance
    spec::DaemonSpec spec;
    int pid = 0;  // 0: created, not started
    bool adopted = false;
  };
  int64_t nowMs() const { return clock_.monotonicMs(); }
  SimProcess* live(const std::string& instance);
  const SimProcess* find(const std::string& instance) const;
  void exitProcess(SimProcess& p, runtime::ExitInfo info);
  void later(int64_t delay_ms, std::function<void()> fn);  // dropped if the agent detaches

  ManualTimers& world_;
  const Clock& clock_;
  Rng rng_;
  SimRuntimeOptions options_;
  ExitCallback exit_cb_;
  SecretOpener open_secret_;
  runtime::InstanceStore* records_ = nullptr;
  std::map<std::string, Handle> handles_;
  std::map<std::string, int64_t> removed_at_ms_;
  std::map<int, SimProcess> processes_;
  int next_pid_ = 1000;
  uint64_t agent_generation_ = 1;
  SimRuntimeCounters counters_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshos::sim
