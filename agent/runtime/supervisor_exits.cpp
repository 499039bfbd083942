// Supervisor: health checks, process exits and restarts, stopping (in dependency order).
#include "agent/runtime/supervisor.h"

#include <signal.h>

#include <algorithm>

#include "agent/runtime/supervisor_records.h"

namespace meshos::runtime {

// ---------------------------------------------------------------------------------------
// Health.

void Supervisor::startProbes(Instance& inst) {
  const std::string id = inst.id;
  // One attempt of a check runs through the runtime (an exec check in the instance's
  // environment, inside its container for an OCI runtime).
  auto attempt = [this, id](const spec::HealthCheck& check) {
    return [this, id, check](std::function<void(bool, std::string)> done) { runtime_.check(id, check, std::move(done)); };
  };
  if (inst.state == InstanceState::kStarting && inst.spec.health.startup) {
    inst.startup = std::make_unique<probes::HealthProbe>(
        timers_, *inst.spec.health.startup, attempt(*inst.spec.health.startup),
        [this, id](probes::HealthStatus s, const std::string& detail) {
          Instance* i = findInstance(id);
          if (i == nullptr || i->state != InstanceState::kStarting) return;
          if (s == probes::HealthStatus::kPassing) {
            i->startup->stop();
            transition(*i, InstanceState::kRunning, "startup check passed (" + detail + ")");
            startProbes(*i);
            evaluateWaiting();
          } else if (s == probes::HealthStatus::kFailing) {
            killForHealth(*i, "startup check failed: " + detail);
          }
        });
    inst.startup->start();
    return;
  }
  if (inst.state != InstanceState::kRunning && inst.state != InstanceState::kReady) return;
  if (inst.spec.health.liveness) {
    if (!inst.liveness) {
      inst.liveness = std::make_unique<probes::HealthProbe>(
          timers_, *inst.spec.health.liveness, attempt(*inst.spec.health.liveness),
          [this, id](probes::HealthStatus s, const std::string& detail) {
            Instance* i = findInstance(id);
            if (i == nullptr) return;
            if (s == probes::HealthStatus::kFailing &&
                (i->state == InstanceState::kRunning || i->state == InstanceState::kReady)) {
              killForHealth(*i, "liveness check failed: " + detail);
              return;
            }
            evaluateWaiting();  // "healthy" dependencies
          });
    }
    inst.liveness->start();
  }
  if (inst.spec.health.readiness) {
    if (!inst.readiness) {
      inst.readiness = std::make_unique<probes::HealthProbe>(
          timers_, *inst.spec.health.readiness, attempt(*inst.spec.health.readiness),
          [this, id](probes::HealthStatus s, const std::string& detail) {
            Instance* i = findInstance(id);
            if (i == nullptr) return;
            if (s == probes::HealthStatus::kPassing && i->state == InstanceState::kRunning) {
              transition(*i, InstanceState::kReady, "readiness check passed (" + detail + ")");
            } else if (s == probes::HealthStatus::kFailing && i->state == InstanceState::kReady) {
              transition(*i, InstanceState::kRunning, "readiness check failing (" + detail + ")");
            }
            evaluateWaiting();
          });
    }
    inst.readiness->start();
  } else if (inst.state == InstanceState::kRunning) {
    transition(inst, InstanceState::kReady, "running (no readiness check)");
  }
}

void Supervisor::resetProbes(Instance& inst) {
  stopProbes(inst);
  inst.startup.reset();
  inst.liveness.reset();
  inst.readiness.reset();
}

void Supervisor::stopProbes(Instance& inst) {
  if (inst.startup) inst.startup->stop();
  if (inst.liveness) inst.liveness->stop();
  if (inst.readiness) inst.readiness->stop();
}

void Supervisor::killForHealth(Instance& inst, const std::string& why) {
  failure(inst, "health", why);
  stopProbes(inst);
  inst.forced_failure = true;
  inst.cause = state::ActionCause::kPolicy;
  transition(inst, InstanceState::kStopping, why);
  stopProcess(inst);
}

// ---------------------------------------------------------------------------------------
// Exits.

void Supervisor::onProcessExit(const std::string& instance, const ExitInfo& info) {
  Instance* inst = findInstance(instance);
  if (inst == nullptr) return;
  stopProbes(*inst);
  inst->last_exit = info;
  const bool deliberate = !inst->forced_failure && (info.stopped_by_us || inst->removing ||
                                                    inst->held || inst->restart_after_stop ||
                                                    inst->state == InstanceState::kStopping);
  if (deliberate && !inst->execution.empty()) {
    if (Daemon* d = findDaemon(inst->daemon)) {
      if (Execution* e = d->execution(inst->execution);
          e != nullptr && (e->state == ExecutionState::kPending || e->state == ExecutionState::kRunning)) {
        e->state = inst->restart_after_stop ? ExecutionState::kPending : ExecutionState::kCancelled;
        e->exit_code = info.code_known ? info.exit_code : -1;
        e->detail = info.detail;
        if (e->state == ExecutionState::kCancelled) e->finished_wall_ms = clock_.wallMs();
      }
    }
  }
  if (!deliberate) {
    afterExit(*inst, info);
  } else if (inst->removing) {
    transition(*inst, InstanceState::kStopped, "stopped (" + info.detail + ")");
  } else if (inst->restart_after_stop) {
    inst->restart_after_stop = false;
    transition(*inst, InstanceState::kStopped, "stopped for restart (" + info.detail + ")");
    if (inst->group_hold) {
      resumeGroup(groupOf(*inst));  // starts with its group, in order
    } else {
      // The restart's cause: a change, an operator, a dependency. A changed spec starts as a
      // first start does (a dependency it adds may never come: its timeout applies).
      beginWaiting(*inst, inst->cause, inst->cause != state::ActionCause::kChange);
    }
  } else if (inst->held) {
    transition(*inst, inst->held_state, inst->reason);
  } else {
    transition(*inst, InstanceState::kStopped, "stopped (" + info.detail + ")");
  }
  finishStopOrdered();
  evaluateWaiting();
}

// A restart waits for its dependencies as a first start does, but with no deadline (they
// restart by policy too): a dependent whose dependency is down with it (a group restarted
// in order, starts a full disk refused, a crash while the agent was down) comes up after it.
void Supervisor::relaunch(Instance& inst) {
  inst.cause = state::ActionCause::kPolicy;
  const auto& deps = inst.nextSpec().depends_on;
  if (std::all_of(deps.begin(), deps.end(), [&](const spec::Dependency& d) { return dependencySatisfied(d); })) {
    launch(inst);
    return;
  }
  beginWaiting(inst, state::ActionCause::kPolicy, true);
}

void Supervisor::relaunchAfter(Instance& inst, int64_t delay_ms) {
  cancelTimer(inst);
  auto launchLater = [this, id = inst.id] {
    Instance* i = findInstance(id);
    if (i == nullptr) return;
    i->timer = 0;
    if (i->state != InstanceState::kBackingOff && i->state != InstanceState::kQuarantined) return;
    i->backoff_ms = 0;
    relaunch(*i);
  };
  if (delay_ms <= 0) {
    launchLater();
  } else {
    inst.timer = timers_.after(delay_ms, launchLater);
  }
}

void Supervisor::afterExit(Instance& inst, const ExitInfo& info) {
  Daemon* d = findDaemon(inst.daemon);
  if (d == nullptr) return;
  const int64_t now = clock_.monotonicMs();
  const int64_t run_ms = now - inst.started_mono_ms;
  const std::string id = inst.id;
  if (inst.spec.kind == spec::DaemonKind::kService) {
    ExitDecision dec = decideServiceExit(inst.spec, info, inst.forced_failure, run_ms, now,
                                         inst.tracker, rng_);
    inst.forced_failure = false;
    if (!dec.success) {
      failure(inst, inst.state == InstanceState::kStopping ? "health" : "crash",
              "instance " + id + " " + info.detail);
    }
    if (dec.quarantine) failure(inst, "quarantine", dec.reason);
    inst.backoff_ms = dec.delay_ms;
    transition(inst, dec.state, dec.reason);
    if (dec.restart) {
      ++inst.tracker.restarts;
      // Its group (strategy, intensity) and its restart_with_dependency dependents.
      if (memberRestarts(inst, (dec.success ? "exited: " : "crashed: ") + info.detail)) return;
      relaunchAfter(inst, dec.delay_ms);
    }
    return;
  }
  // Jobs and cron runs.
  Execution* e = d->execution(inst.execution);
  if (!info.code_known) {
    // A re-adopted run that ended without a recorded exit code (its shim was killed):
    // whether it succeeded is unknowable, so it is neither retried nor counted a success.
    inst.forced_failure = false;
    if (e != nullptr) {
      e->state = ExecutionState::kLost;
      e->detail = info.detail;
      e->finished_wall_ms = clock_.wallMs();
    }
    failure(inst, "job", "execution " + id + " lost: " + info.detail);
    transition(inst, InstanceState::kFailed, "lost: " + info.detail);
    return;
  }
  const bool ok = !inst.forced_failure && isSuccessExit(inst.spec, info);
  inst.forced_failure = false;
  if (e != nullptr) {
    e->exit_code = info.code_known ? info.exit_code : -1;
    e->detail = info.detail;
  }
  if (ok) {
    if (e != nullptr) {
      e->state = ExecutionState::kSucceeded;
      e->finished_wall_ms = clock_.wallMs();
    }
    transition(inst, InstanceState::kExited, "succeeded (" + info.detail + ")");
    return;
  }
  const int64_t attempts = e != nullptr ? e->attempts : 1;
  if (attempts <= inst.spec.job_retries) {
    const int64_t delay = backoffDelayMs(inst.spec.backoff, attempts, rng_);
    failure(inst, "job", "execution " + id + " attempt " + std::to_string(attempts) + " " +
                             info.detail + ", retrying in " + std::to_string(delay) + " ms");
    if (e != nullptr) e->state = ExecutionState::kPending;
    inst.backoff_ms = delay;
    ++inst.tracker.restarts;
    transition(inst, InstanceState::kBackingOff, info.detail + ", retry in " + std::to_string(delay) + " ms");
    cancelTimer(inst);
    inst.timer = timers_.after(delay, [this, id] {
      Instance* i = findInstance(id);
      if (i == nullptr || i->state != InstanceState::kBackingOff) return;
      i->timer = 0;
      relaunch(*i);
    });
    return;
  }
  if (e != nullptr) {
    e->state = ExecutionState::kFailed;
    e->finished_wall_ms = clock_.wallMs();
  }
  failure(inst, "job", "execution " + id + " failed after " + std::to_string(attempts) +
                           " attempt(s): " + info.detail);
  transition(inst, InstanceState::kFailed, info.detail);
}

// ---------------------------------------------------------------------------------------
// Stopping.

void Supervisor::stopInstance(Instance& inst, const std::string& reason, state::ActionCause cause) {
  cancelTimer(inst);
  stopProbes(inst);
  inst.cause = cause;
  asked_.erase(inst.id);  // a start asked for and not yet carried out is no longer wanted
  if (inst.has_process()) {
    transition(inst, InstanceState::kStopping, reason);
    stopProcess(inst);
    return;
  }
  if (Daemon* d = findDaemon(inst.daemon)) {
    if (Execution* e = d->execution(inst.execution);
        e != nullptr && (e->state == ExecutionState::kPending || e->state == ExecutionState::kRunning)) {
      e->state = ExecutionState::kCancelled;
      e->finished_wall_ms = clock_.wallMs();
    }
  }
  if (inst.held) {
    transition(inst, inst.held_state, reason);
  } else {
    transition(inst, InstanceState::kStopped, reason);
  }
}

void Supervisor::finishStopOrdered() {
  // Erase instances that were removed and have stopped.
  for (auto& [n, d] : daemons_) {
    for (auto it = d->instances.begin(); it != d->instances.end();) {
      Instance& inst = *it->second;
      if (inst.removing && !inst.has_process()) {
        cancelTimer(inst);
        (void)runtime_.remove(inst.id);
        it = d->instances.erase(it);
      } else {
        ++it;
      }
    }
  }
  // Removed daemons: stop one only when no other live removed daemon depends on it.
  bool progress = true;
  while (progress) {
    progress = false;
    // Daemons that a live (still has instances) removed daemon depends on wait for it.
    std::set<std::string> needed;
    for (const auto& other : stopping_daemons_) {
      const Daemon* o = findDaemon(other);
      if (o == nullptr || o->instances.empty()) continue;
      for (const auto& dep : o->spec.depends_on) needed.insert(dep.name);
    }
    for (auto it = stopping_daemons_.begin(); it != stopping_daemons_.end();) {
      Daemon* d = findDaemon(*it);
      if (d == nullptr) {
        it = stopping_daemons_.erase(it);
        progress = true;
        continue;
      }
      const bool has_live_dependent = needed.count(*it) != 0;
      if (!has_live_dependent) {
        std::vector<std::string> ids;
        for (auto& [id, inst] : d->instances) ids.push_back(id);
        for (const auto& id : ids) {
          auto f = d->instances.find(id);
          if (f == d->instances.end()) continue;
          Instance& inst = *f->second;
          if (!inst.removing) {
            inst.removing = true;
            if (inst.state != InstanceState::kStopping) stopInstance(inst, "removed", state::ActionCause::kChange);
          }
        }
        for (auto f = d->instances.begin(); f != d->instances.end();) {
          if (!f->second->has_process()) {
            cancelTimer(*f->second);
            (void)runtime_.remove(f->first);
            f = d->instances.erase(f);
          } else {
            ++f;
          }
        }
      }
      if (d->instances.empty()) {
        if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
        daemons_.erase(*it);
        it = stopping_daemons_.erase(it);
        progress = true;
      } else {
        ++it;
      }
    }
  }
  if (stop_all_ && stopping_daemons_.empty()) {
    stop_all_ = false;
    auto waiters = std::move(stop_all_waiters_);
    stop_all_waiters_.clear();
    for (auto& w : waiters) w();
  }
}

void Supervisor::stopAll(std::function<void()> done) {
  stop_all_ = true;
  if (done) stop_all_waiters_.push_back(std::move(done));
  // What was asked and not yet carried out: stops are sent now (the executor is closed
  // while the agent stops), starts are no longer wanted.
  auto asked = std::move(asked_);
  asked_.clear();
  for (const auto& [id, a] : asked) {
    Instance* inst = findInstance(id);
    if (a.action.kind == state::ActionKind::kStop && inst != nullptr && inst->state == InstanceState::kStopping) {
      (void)runtime_.stop(id);
    }
  }
  for (auto& [n, d] : daemons_) {
    d->removing = true;
    if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
    d->cron_timer = 0;
    stopping_daemons_.insert(n);
  }
  finishStopOrdered();
}

}  // namespace meshos::runtime
