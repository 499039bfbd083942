// Supervisor: keeps a node's desired daemons running, on top of a Runtime.
//
// apply(specs) is the one entry point for what should run (a local daemons file, commits,
// placement): new daemons start (in dependency order, each waiting for its dependencies'
// conditions), removed ones stop (dependents first), changed ones restart. Per instance it
// applies the restart policy with exponential backoff and jitter, the crash-loop gate
// (quarantine for a cooldown), startup / liveness / readiness checks, and it runs jobs
// (executions with retries) and cron schedules. Operators restart, pause, resume,
// quarantine, stop, start, exec and read logs through it. Every state transition and every
// failure is reported through the callbacks (the agent routes them to the log and failure
// chains). Decisions live in supervisor_core.h; this carries them out on a Runtime.
//
// recover() re-adopts the instances a previous agent left running (from the
// InstanceStore); call it once before the first apply(): an adopted instance whose spec is
// unchanged keeps running with the same pid.
//
// By default the supervisor starts and stops processes itself, at once. After
// routeActions() it only asks: each start and stop becomes a state::Action (with why: a
// change, its policy, an operator) that the node's bounded executor admits, defers or gates
// (a freeze holds changes), and perform() carries out. Its decisions stay its own.
//
// Owned by the node; loop thread only. Callbacks run on the loop thread. Transitions caused
// directly by a call (apply, an operator operation) are reported before that call returns,
// so a callback must not call back into the Supervisor: record, or post to the loop.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/rng.h"
#include "agent/core/timers.h"
#include "agent/runtime/instance_store.h"
#include "agent/runtime/runtime.h"
#include "agent/runtime/supervisor_core.h"
#include "agent/spec/cron.h"
#include "agent/state/action.h"
#include "probes/health_probe.h"

namespace meshos::runtime {

struct TransitionEvent {
  std::string daemon;
  std::string instance;
  InstanceState from;
  InstanceState to;
  std::string reason;
  int64_t wall_ms = 0;
};

struct FailureEvent {
  std::string daemon;
  std::string instance;
  // crash | quarantine | health | start | dependency | exited-while-down | job | cron | limits
  std::string kind;
  std::string message;
  int64_t wall_ms = 0;
};

struct SupervisorCallbacks {
  std::function<void(const TransitionEvent&)> on_transition;
  std::function<void(const FailureEvent&)> on_failure;
};

// kLost: the execution's process ended while no agent watched it and its outcome cannot be
// known (its shim left no exit code); recorded as a failure, never retried or forgotten.
enum class ExecutionState { kPending, kRunning, kSucceeded, kFailed, kCancelled, kLost };
std::string_view executionStateName(ExecutionState s);

struct Execution {
  std::string id;        // "<daemon>#<n>", also the instance name
  std::string daemon;
  ExecutionState state = ExecutionState::kPending;
  int64_t attempts = 0;
  int64_t retry_limit = 0;
  int exit_code = -1;
  std::string detail;
  std::string trigger;   // "apply" | "cron" | "cron-missed" | "manual" | "adopted"
  int64_t created_wall_ms = 0;
  int64_t started_wall_ms = 0;
  int64_t finished_wall_ms = 0;
};

struct InstanceSnapshot {
  std::string daemon;
  std::string instance;
  spec::DaemonKind kind = spec::DaemonKind::kService;
  InstanceState state = InstanceState::kWaiting;
  int pid = 0;
  int64_t restarts = 0;
  std::string liveness = "none";   // none | unknown | passing | failing
  std::string readiness = "none";
  bool ready = false;
  int64_t backoff_ms = 0;          // current restart delay (backing-off / quarantined)
  bool adopted = false;
  bool exit_code_known = true;
  int last_exit_code = -1;
  std::string last_exit;
  bool cgroup = false;
  std::vector<std::string> warnings;  // limits not applied (limits = "best-effort")
  std::string reason;              // of the last transition
  std::string group;               // [daemon.supervision] group, "" for none
  std::string strategy;            // its strategy ("one-for-one" without a group)
  std::string last_restart;        // why it last restarted, "" if never
  spec::RuntimeKind runtime = spec::RuntimeKind::kProcess;  // a process or an OCI container
};

// A supervision group as the supervisor holds it.
struct GroupSnapshot {
  std::string name;
  std::string strategy;
  std::vector<std::string> members;  // daemons, in dependency order
  int64_t restarts_in_window = 0;
  int64_t restart_intensity = 0;
  bool quarantined = false;
  std::string reason;                // why it was quarantined
};

struct SupervisorOptions {
  uint64_t rng_seed = 0;           // 0: from the Rng passed in
  size_t executions_kept = 16;     // finished executions kept per job/cron daemon
  size_t max_exec_output = 64 * 1024;
  int64_t exec_timeout_ms_max = 60'000;
};

class Supervisor {
 public:
  Supervisor(Clock& clock, Timers& timers, Rng& rng, Runtime& runtime, InstanceStore& store,
             SupervisorCallbacks callbacks, SupervisorOptions options = {});
  ~Supervisor();
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  // Loads what a previous agent left running; apply() adopts those of unchanged specs.
  Status recover();
  // The desired set. Invalid specs, a missing binary, a dependency cycle → error, nothing
  // changes. Otherwise starts new daemons, stops removed ones, restarts changed ones, and
  // stops what the previous agent left that the set does not name — unless
  // settle_leftovers is false (the caller's view is not settled yet): those keep waiting.
  Status apply(std::vector<spec::DaemonSpec> desired, bool settle_leftovers = true);

  // Operator operations; `target` is a daemon name (all its instances) or an instance.
  Status restart(const std::string& target);
  Status pause(const std::string& target);
  Status resume(const std::string& target);
  Status quarantine(const std::string& target);  // stop and hold until start()
  Status stop(const std::string& target);        // stop and hold until start()
  Status start(const std::string& target);       // release a hold; start now
  // Sends sig to the process group of each running instance; changes no state.
  Status signal(const std::string& target, int sig);
  // The spec of the daemon a target (daemon or instance) names; nullptr when none.
  const spec::DaemonSpec* specOf(const std::string& target);
  Status exec(const std::string& instance, std::vector<std::string> argv, int64_t timeout_ms,
              std::function<void(Result<ExecResult>)> done);
  Result<LogChunk> logs(const std::string& instance, const LogQuery& q) const;
  // Jobs and cron: start an execution now.
  Result<std::string> trigger(const std::string& daemon);
  Status setCronEnabled(const std::string& daemon, bool enabled);

  // Stops everything, dependents first; `done` runs when all have stopped. Stops at once,
  // routed or not: the executor's gate is closed while the agent shuts down.
  void stopAll(std::function<void()> done);

  // From now on, starts and stops are asked for, not done; `on_pending` runs (inside a
  // Supervisor call: post to the loop, do not call back) whenever something new is asked.
  void routeActions(std::function<void()> on_pending);
  // What is asked for and not yet carried out, one action per instance, oldest first.
  // Level-triggered: an action the executor refused is still here at the next call.
  std::vector<state::Action> pendingActions() const;
  // Carries out an action from pendingActions(). One no longer wanted (superseded, its
  // instance gone or in another state) does nothing and succeeds.
  Status perform(const state::Action& action);

  std::vector<InstanceSnapshot> snapshot() const;
  std::vector<GroupSnapshot> groups() const;
  // {"daemons": [...], "executions": [...], "cron": [...]}; with_stats adds /proc figures.
  nlohmann::json snapshotJson(bool with_stats = false) const;
  std::vector<Execution> executions(const std::string& daemon) const;
  Result<InstanceState> state(const std::string& instance) const;
  const std::vector<std::string>& recoveredInstances() const { return adopted_; }
  // Records a previous agent left that no apply has adopted or stopped yet.
  size_t awaitingAdoption() const { return recovered_.size(); }
  bool awaitingAdoption(const std::string& daemon) const {
    for (const auto& [id, rec] : recovered_)
      if (rec.daemon == daemon) return true;
    return false;
  }

 private:
  struct Instance;
  struct Daemon;

  Daemon* findDaemon(const std::string& name);
  const Daemon* findDaemon(const std::string& name) const;
  Instance* findInstance(const std::string& id);
  const Instance* findInstance(const std::string& id) const;
  std::vector<Instance*> targets(const std::string& target);

  void transition(Instance& inst, InstanceState to, const std::string& reason);
  void failure(const Instance& inst, const std::string& kind, const std::string& message);
  void failure(const std::string& daemon, const std::string& kind, const std::string& message);

  void addDaemon(const spec::DaemonSpec& spec);
  void addInstance(Daemon& d, const std::string& id, Execution* exec, state::ActionCause cause);
  // Job / cron: takes over the executions a previous agent left (running, or ended with a
  // recorded exit code, or lost). True when there was one.
  bool adoptExecutions(Daemon& d);
  void removeDaemonWhenStopped(const std::string& name);
  // restart: a restart, which waits for its dependencies with no deadline.
  void beginWaiting(Instance& inst, state::ActionCause cause, bool restart = false);
  void relaunch(Instance& inst);
  void evaluateWaiting();
  bool dependencySatisfied(const spec::Dependency& dep) const;
  // Starts the process (asks for it, when routed; the cause is the instance's).
  void launch(Instance& inst);
  void launchNow(Instance& inst);
  // Sends the stop (grace, then kill) to a process the instance already shows as stopping.
  void stopProcess(Instance& inst);
  void ask(Instance& inst, state::ActionKind kind, const std::string& reason);
  void onProcessExit(const std::string& instance, const ExitInfo& info);
  void afterExit(Instance& inst, const ExitInfo& info);
  // Groups (supervisor_groups.cpp). A member that failed and restarts: counted against its
  // group's intensity (true: the group is quarantined now, the member with it), then its
  // group's strategy and its restart_with_dependency dependents restart the others.
  bool memberRestarts(Instance& inst, const std::string& why);
  void restartWith(const std::string& daemon, const std::string& why, std::set<std::string>& seen);
  // Restarts one instance for another's sake (hold: start only once its group has stopped).
  void restartFor(Instance& inst, const std::string& why, bool hold);
  void quarantineGroup(const std::string& group, const std::string& why);
  // The group's members that stopped for its restart start, in dependency order, once none
  // of them still runs.
  void resumeGroup(const std::string& group);
  std::vector<Daemon*> groupMembers(const std::string& group);
  std::vector<std::string> liveOrder() const;  // daemons not being removed, in start order
  const std::string& groupOf(const Instance& inst) const;
  void relaunchAfter(Instance& inst, int64_t delay_ms);
  // How soon a start the node itself refused (an I/O error) is tried again.
  static constexpr int64_t kEnvironmentRetryMs = 2000;
  void startProbes(Instance& inst);
  void stopProbes(Instance& inst);
  void resetProbes(Instance& inst);  // stops and drops them (launch builds new ones)
  void killForHealth(Instance& inst, const std::string& why);
  void cancelTimer(Instance& inst);
  void stopInstance(Instance& inst, const std::string& reason, state::ActionCause cause);
  void finishStopOrdered();
  Result<std::string> newExecution(Daemon& d, const std::string& trigger);
  void armCron(Daemon& d);
  // Loads the persisted last fire; fires missed since then get the missed-runs policy.
  void recoverCron(Daemon& d);
  void recordFire(Daemon& d, int64_t fire_ms);
  void onCronFire(const std::string& daemon);
  probes::CommandContext commandContext(const Instance& inst) const;

  Clock& clock_;
  Timers& timers_;
  Rng rng_;
  Runtime& runtime_;
  InstanceStore& store_;
  SupervisorCallbacks callbacks_;
  SupervisorOptions options_;
  std::map<std::string, std::unique_ptr<Daemon>> daemons_;
  std::map<std::string, InstanceRecord> recovered_;  // by instance, until apply adopts them
  std::vector<std::string> adopted_;
  std::vector<std::string> exited_while_down_;  // recorded instances found gone, during an apply
  std::set<std::string> stopping_daemons_;  // removed by apply; stopped dependents first
  struct GroupState {
    std::deque<int64_t> restarts;  // monotonic times of member restarts in the window
    bool quarantined = false;
    std::string reason;
  };
  std::map<std::string, GroupState> groups_;
  std::vector<std::function<void()>> stop_all_waiters_;
  bool stop_all_ = false;
  bool applying_ = false;  // apply() evaluates waiting instances once, at its end
  bool applied_once_ = false;  // the first apply restores what ran: policy, not a change
  state::ActionCause apply_cause_ = state::ActionCause::kChange;
  struct Asked {
    state::Action action;
    uint64_t order = 0;
  };
  bool routed_ = false;
  std::function<void()> on_pending_;
  std::map<std::string, Asked> asked_;  // by instance
  uint64_t next_ask_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace meshos::runtime
