// Supervisor: cron schedules, operator operations, and the snapshot.
#include "agent/runtime/supervisor.h"

#include <signal.h>

#include <algorithm>

#include "agent/runtime/supervisor_records.h"

namespace meshos::runtime {

// ---------------------------------------------------------------------------------------
// Cron.

// Cron and wall-clock steps. The schedule is in wall time, timers run on the monotonic
// clock, so the wall clock is read again whenever a timer fires:
// - a timer waits at most kCronRecheckMs: a step forward is seen within a minute;
// - the next slot is always after the last one fired: a step back never fires a slot twice;
// - slots a step forward passed over are counted (missed_runs), said in the failure chain,
//   and the missed-runs policy applies, as for an agent that was down.
namespace {
constexpr int64_t kCronRecheckMs = 60'000;
}  // namespace

void Supervisor::armCron(Daemon& d) {
  if (!d.cron || !d.cron_enabled || d.removing) return;
  const int64_t now = clock_.wallMs();
  d.next_fire_ms = d.cron->nextAfter(std::max(now, d.last_fire_ms));
  if (d.next_fire_ms < 0) return;
  const std::string name = d.spec.name;
  d.cron_timer =
      timers_.after(std::min(d.next_fire_ms - now, kCronRecheckMs), [this, name] { onCronFire(name); });
}

void Supervisor::recordFire(Daemon& d, int64_t fire_ms) {
  d.last_fire_ms = fire_ms;
  if (Status st = store_.saveLastFire(d.spec.name, fire_ms); !st) {
    failure(d.spec.name, "cron", "cannot persist the last fire time: " + st.message());
  }
}

void Supervisor::recoverCron(Daemon& d) {
  const std::string& name = d.spec.name;
  const int64_t now = clock_.wallMs();
  auto last = store_.lastFire(name);
  if (!last) {
    // First time scheduled here (or an unreadable record): missed runs count from now.
    if (last.status().code() != Code::kNotFound) {
      failure(name, "cron", last.status().message() + "; missed runs count from now");
    }
    recordFire(d, now);
    return;
  }
  d.last_fire_ms = *last;
  // Fires scheduled after the last handled one, up to now: missed while the agent was down.
  int64_t missed = 0;
  int64_t last_missed = -1;
  for (int64_t t = d.cron->nextAfter(*last); t >= 0 && t <= now && missed < 100'000;
       t = d.cron->nextAfter(t)) {
    ++missed;
    last_missed = t;
  }
  if (missed == 0) return;
  d.missed_runs += missed;
  const bool run_once = d.spec.missed_runs == spec::MissedRunPolicy::kRunOnce;
  failure(name, "cron",
          std::to_string(missed) + " fire(s) missed since the last one at " + std::to_string(*last) +
              (run_once ? " (agent down); running once" : " (agent down); skipped"));
  if (run_once) (void)newExecution(d, "cron-missed");
  recordFire(d, last_missed);
}

void Supervisor::onCronFire(const std::string& name) {
  Daemon* d = findDaemon(name);
  if (d == nullptr) return;
  d->cron_timer = 0;
  const int64_t now = clock_.wallMs();
  if (now < d->next_fire_ms) {  // a recheck, or the wall clock stepped back: not due yet
    armCron(*d);
    return;
  }
  int64_t passed = 0;
  int64_t last_slot = d->next_fire_ms;
  for (int64_t t = d->cron->nextAfter(d->next_fire_ms); t >= 0 && t <= now && passed < 100'000;
       t = d->cron->nextAfter(t)) {
    ++passed;
    last_slot = t;
  }
  if (passed > 0) {
    d->missed_runs += passed;
    failure(name, "cron",
            std::to_string(passed) + " later fire(s) already past (the wall clock moved forward or the host "
                                     "slept); handled as one fire under the missed-runs policy");
  }
  const bool late = now - d->next_fire_ms >= 60'000;
  if (late && d->spec.missed_runs == spec::MissedRunPolicy::kSkip) {
    ++d->missed_runs;
    failure(name, "cron", "fire at " + std::to_string(d->next_fire_ms) + " missed (late), skipped");
  } else {
    auto e = newExecution(*d, "cron");
    if (!e) {
      ++d->skipped_overlaps;
      failure(name, "cron", "fire skipped: " + e.status().message());
    }
  }
  recordFire(*d, last_slot);
  armCron(*d);
}

Status Supervisor::setCronEnabled(const std::string& name, bool enabled) {
  Daemon* d = findDaemon(name);
  if (d == nullptr || d->removing) return Status::notFound("no daemon '" + name + "'");
  if (!d->cron) return Status::invalid("daemon '" + name + "' is not a cron daemon");
  if (d->cron_enabled == enabled) return Status::ok();
  d->cron_enabled = enabled;
  const int64_t now = clock_.wallMs();
  if (!enabled) {
    if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
    d->cron_timer = 0;
    d->disabled_at_ms = now;
    return Status::ok();
  }
  int64_t missed = 0;
  int64_t last_missed = -1;
  for (int64_t t = d->cron->nextAfter(d->disabled_at_ms); t >= 0 && t <= now && missed < 100'000;
       t = d->cron->nextAfter(t)) {
    ++missed;
    last_missed = t;
  }
  d->missed_runs += missed;
  if (missed > 0 && d->spec.missed_runs == spec::MissedRunPolicy::kRunOnce) {
    (void)newExecution(*d, "cron-missed");
  }
  if (missed > 0) recordFire(*d, last_missed);
  armCron(*d);
  return Status::ok();
}

Result<std::string> Supervisor::trigger(const std::string& name) {
  Daemon* d = findDaemon(name);
  if (d == nullptr || d->removing) return Status::notFound("no daemon '" + name + "'");
  if (d->spec.kind == spec::DaemonKind::kService) {
    return Status::invalid("daemon '" + name + "' is a service; use restart");
  }
  auto r = newExecution(*d, "manual");
  evaluateWaiting();
  return r;
}

// ---------------------------------------------------------------------------------------
// Operator operations.

Status Supervisor::restart(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  std::set<std::string> seen;
  for (Instance* inst : list) seen.insert(inst->daemon);
  for (Instance* inst : list) {
    inst->last_restart = "restart requested";
    inst->held = false;
    inst->tracker.attempt = 0;
    inst->tracker.gate.reset();
    if (inst->has_process()) {
      inst->restart_after_stop = true;
      stopInstance(*inst, "restart requested", state::ActionCause::kOperator);
    } else {
      cancelTimer(*inst);
      beginWaiting(*inst, state::ActionCause::kOperator);
    }
  }
  for (const std::string& d : std::set<std::string>(seen)) restartWith(d, "dependency " + d + " restarted", seen);
  return Status::ok();
}

Status Supervisor::pause(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    if (inst->state != InstanceState::kRunning && inst->state != InstanceState::kReady &&
        inst->state != InstanceState::kStarting) {
      return Status::invalid("instance " + inst->id + " is " +
                             std::string(instanceStateName(inst->state)) + ", not running");
    }
    MESHOS_RETURN_IF_ERROR(runtime_.signal(inst->id, SIGSTOP));
    stopProbes(*inst);
    inst->paused_from = inst->state;
    transition(*inst, InstanceState::kPaused, "paused by operator");
  }
  return Status::ok();
}

Status Supervisor::resume(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    if (inst->state != InstanceState::kPaused) continue;
    MESHOS_RETURN_IF_ERROR(runtime_.signal(inst->id, SIGCONT));
    transition(*inst, inst->paused_from, "resumed by operator");
    if (inst->startup && inst->state == InstanceState::kStarting) inst->startup->start();
    if (inst->liveness) inst->liveness->start();
    if (inst->readiness) inst->readiness->start();
  }
  return Status::ok();
}

Status Supervisor::quarantine(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    inst->held = true;
    inst->held_state = InstanceState::kQuarantined;
    stopInstance(*inst, "quarantined by operator", state::ActionCause::kOperator);
  }
  return Status::ok();
}

Status Supervisor::stop(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    inst->held = true;
    inst->held_state = InstanceState::kStopped;
    stopInstance(*inst, "stopped by operator", state::ActionCause::kOperator);
  }
  return Status::ok();
}

Status Supervisor::start(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    inst->held = false;
    // An operator's start releases a quarantined group's count (its members stay held
    // until they are started too).
    if (auto g = groups_.find(groupOf(*inst)); g != groups_.end() && g->second.quarantined) {
      g->second.quarantined = false;
      g->second.restarts.clear();
    }
    if (inst->has_process()) continue;
    inst->tracker.attempt = 0;
    inst->tracker.gate.reset();
    beginWaiting(*inst, state::ActionCause::kOperator);
  }
  return Status::ok();
}

Status Supervisor::signal(const std::string& target, int sig) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  int sent = 0;
  for (Instance* inst : list) {
    if (!inst->has_process()) continue;
    MESHOS_RETURN_IF_ERROR(runtime_.signal(inst->id, sig));
    ++sent;
  }
  if (sent == 0) return Status::invalid("no instance of '" + target + "' is running");
  return Status::ok();
}

const spec::DaemonSpec* Supervisor::specOf(const std::string& target) {
  auto list = targets(target);
  return list.empty() ? nullptr : &list.front()->spec;
}

Status Supervisor::exec(const std::string& instance, std::vector<std::string> argv,
                        int64_t timeout_ms, std::function<void(Result<ExecResult>)> done) {
  const Instance* inst = findInstance(instance);
  if (inst == nullptr) return Status::notFound("no instance '" + instance + "'");
  timeout_ms = std::clamp<int64_t>(timeout_ms, 1, options_.exec_timeout_ms_max);
  return runtime_.exec(instance, std::move(argv), timeout_ms, options_.max_exec_output,
                       std::move(done));
}

Result<LogChunk> Supervisor::logs(const std::string& instance, const LogQuery& q) const {
  return runtime_.logs(instance, q);
}

// ---------------------------------------------------------------------------------------
// Snapshot.

Result<InstanceState> Supervisor::state(const std::string& instance) const {
  const Instance* inst = findInstance(instance);
  if (inst == nullptr) return Status::notFound("no instance '" + instance + "'");
  return inst->state;
}

std::vector<Execution> Supervisor::executions(const std::string& daemon) const {
  const Daemon* d = findDaemon(daemon);
  if (d == nullptr) return {};
  return {d->executions.begin(), d->executions.end()};
}

std::vector<InstanceSnapshot> Supervisor::snapshot() const {
  std::vector<InstanceSnapshot> out;
  for (const auto& [n, d] : daemons_) {
    for (const auto& [id, inst] : d->instances) {
      InstanceSnapshot s;
      s.daemon = n;
      s.instance = id;
      s.kind = inst->spec.kind;
      s.state = inst->state;
      if (auto st = runtime_.status(id); st && inst->has_process()) {
        s.pid = st->pid;
        s.cgroup = st->cgroup;
        s.warnings = st->limit_warnings;
      }
      s.restarts = inst->tracker.restarts;
      auto health = [](const std::unique_ptr<probes::HealthProbe>& p, bool configured) {
        if (!configured) return std::string("none");
        if (!p) return std::string("unknown");
        return std::string(probes::healthStatusName(p->status()));
      };
      s.liveness = health(inst->liveness, inst->spec.health.liveness.has_value());
      s.readiness = health(inst->readiness, inst->spec.health.readiness.has_value());
      s.ready = inst->state == InstanceState::kReady;
      s.backoff_ms = inst->backoff_ms;
      s.adopted = inst->adopted;
      if (inst->last_exit) {
        s.exit_code_known = inst->last_exit->code_known;
        s.last_exit_code = inst->last_exit->exit_code;
        s.last_exit = inst->last_exit->detail;
      }
      s.reason = inst->reason;
      s.group = d->spec.supervision.group;
      s.strategy = std::string(spec::groupStrategyName(d->spec.supervision.strategy));
      s.last_restart = inst->last_restart;
      s.runtime = inst->spec.runtime;
      out.push_back(std::move(s));
    }
  }
  return out;
}

nlohmann::json Supervisor::snapshotJson(bool with_stats) const {
  nlohmann::json daemons = nlohmann::json::array();
  for (const auto& s : snapshot()) {
    nlohmann::json j = {
        {"name", s.daemon},           {"instance", s.instance},
        {"kind", std::string(spec::kindName(s.kind))},
        {"state", std::string(instanceStateName(s.state))},
        {"pid", s.pid},               {"restarts", s.restarts},
        {"liveness", s.liveness},     {"readiness", s.readiness},
        {"ready", s.ready},           {"backoff_ms", s.backoff_ms},
        {"adopted", s.adopted},       {"cgroup", s.cgroup},
        {"reason", s.reason},
    };
    if (!s.warnings.empty()) j["warnings"] = s.warnings;
    if (s.runtime != spec::RuntimeKind::kProcess) j["runtime"] = spec::runtimeKindName(s.runtime);
    if (!s.group.empty()) {
      j["group"] = s.group;
      j["strategy"] = s.strategy;
    }
    if (!s.last_restart.empty()) j["last_restart"] = s.last_restart;
    if (!s.last_exit.empty()) {
      j["last_exit"] = s.last_exit;
      j["exit_code_known"] = s.exit_code_known;
      if (s.exit_code_known) j["last_exit_code"] = s.last_exit_code;
    }
    if (with_stats && s.pid > 0) {
      if (auto st = runtime_.stats(s.instance)) {
        j["stats"] = {{"cpu_user_ms", st->cpu_user_ms},   {"cpu_system_ms", st->cpu_system_ms},
                      {"rss_bytes", st->rss_bytes},       {"open_fds", st->open_fds},
                      {"processes", st->processes},       {"cgroup_memory_bytes", st->cgroup_memory_bytes},
                      {"cgroup_cpu_usage_us", st->cgroup_cpu_usage_us}};
      }
    }
    daemons.push_back(std::move(j));
  }
  nlohmann::json execs = nlohmann::json::array();
  nlohmann::json crons = nlohmann::json::array();
  for (const auto& [n, d] : daemons_) {
    for (const auto& e : d->executions) {
      execs.push_back({{"id", e.id},
                       {"daemon", e.daemon},
                       {"state", std::string(executionStateName(e.state))},
                       {"attempts", e.attempts},
                       {"retry_limit", e.retry_limit},
                       {"exit_code", e.exit_code},
                       {"detail", e.detail},
                       {"trigger", e.trigger},
                       {"created_ms", e.created_wall_ms},
                       {"started_ms", e.started_wall_ms},
                       {"finished_ms", e.finished_wall_ms}});
    }
    if (d->cron) {
      crons.push_back({{"name", n},
                       {"schedule", d->cron->text},
                       {"enabled", d->cron_enabled},
                       {"next_fire_ms", d->next_fire_ms},
                       {"last_fire_ms", d->last_fire_ms},
                       {"missed_runs", d->missed_runs},
                       {"skipped_overlaps", d->skipped_overlaps}});
    }
  }
  nlohmann::json groups = nlohmann::json::array();
  for (const auto& g : this->groups()) {
    groups.push_back({{"name", g.name},
                      {"strategy", g.strategy},
                      {"members", g.members},
                      {"restarts_in_window", g.restarts_in_window},
                      {"restart_intensity", g.restart_intensity},
                      {"quarantined", g.quarantined},
                      {"reason", g.reason}});
  }
  return {{"daemons", daemons}, {"executions", execs}, {"cron", crons}, {"groups", groups}};
}

}  // namespace meshos::runtime
