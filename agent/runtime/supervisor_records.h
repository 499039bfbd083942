// The Supervisor's records of its daemons and their instances, shared by the files that
// implement it (supervisor.cpp: the desired set, waiting and launching;
// supervisor_exits.cpp: health, exits, stopping; supervisor_ops.cpp: cron, operator
// operations, the snapshot). Private to agent/runtime.
#pragma once

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "agent/runtime/supervisor.h"

namespace meshos::runtime {

struct Supervisor::Instance {
  std::string id;
  std::string daemon;
  spec::DaemonSpec spec;
  InstanceState state = InstanceState::kWaiting;
  InstanceState paused_from = InstanceState::kRunning;
  RestartTracker tracker;
  TimerId timer = 0;
  int64_t waiting_since_ms = 0;
  std::set<std::string> ignored_deps;
  bool restart_wait = false;  // a restart waiting for its dependencies: no timeout applies
  int64_t started_mono_ms = 0;
  bool forced_failure = false;
  bool restart_after_stop = false;
  bool held = false;
  InstanceState held_state = InstanceState::kStopped;
  bool removing = false;
  // Why its next start or stop happens (a freeze holds changes, not policy or operators).
  state::ActionCause cause = state::ActionCause::kChange;
  std::string last_restart;  // why it last restarted ("crashed", "dependency db restarted", ...)
  bool group_hold = false;   // stopped for its group's restart: starts when the group has stopped
  std::optional<spec::DaemonSpec> pending_spec;
  std::unique_ptr<probes::HealthProbe> startup, liveness, readiness;
  int64_t backoff_ms = 0;
  std::string reason;
  bool adopted = false;
  std::optional<ExitInfo> last_exit;
  std::string execution;  // job/cron: the execution this instance runs
  std::vector<std::string> limit_warnings;  // of its last start (limits = "best-effort")
  // The spec its next start runs: a changed one waits for its own dependencies.
  const spec::DaemonSpec& nextSpec() const { return pending_spec ? *pending_spec : spec; }
  bool has_process() const {
    return state == InstanceState::kStarting || state == InstanceState::kRunning ||
           state == InstanceState::kReady || state == InstanceState::kStopping ||
           state == InstanceState::kPaused;
  }
};

struct Supervisor::Daemon {
  spec::DaemonSpec spec;
  std::string hash;
  std::map<std::string, std::unique_ptr<Instance>> instances;
  std::deque<Execution> executions;
  int64_t next_exec = 1;
  std::optional<spec::CronSchedule> cron;
  bool cron_enabled = true;
  int64_t next_fire_ms = -1;
  int64_t last_fire_ms = -1;  // the last handled fire (persisted in the store)
  TimerId cron_timer = 0;
  int64_t disabled_at_ms = -1;
  int64_t missed_runs = 0;
  int64_t skipped_overlaps = 0;
  bool removing = false;

  Execution* execution(const std::string& id) {
    for (auto& e : executions) {
      if (e.id == id) return &e;
    }
    return nullptr;
  }
  bool executionActive() const {
    return std::any_of(executions.begin(), executions.end(), [](const Execution& e) {
      return e.state == ExecutionState::kPending || e.state == ExecutionState::kRunning;
    });
  }
};

}  // namespace meshos::runtime
