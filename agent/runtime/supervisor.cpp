#include "agent/runtime/supervisor.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "agent/runtime/supervisor_records.h"

namespace meshos::runtime {

std::string_view executionStateName(ExecutionState s) {
  switch (s) {
    case ExecutionState::kPending: return "pending";
    case ExecutionState::kRunning: return "running";
    case ExecutionState::kSucceeded: return "succeeded";
    case ExecutionState::kFailed: return "failed";
    case ExecutionState::kCancelled: return "cancelled";
    case ExecutionState::kLost: return "lost";
  }
  return "?";
}


Supervisor::Supervisor(Clock& clock, Timers& timers, Rng& rng, Runtime& runtime,
                       InstanceStore& store, SupervisorCallbacks callbacks,
                       SupervisorOptions options)
    : clock_(clock),
      timers_(timers),
      rng_(options.rng_seed != 0 ? Rng(options.rng_seed) : rng.fork()),
      runtime_(runtime),
      store_(store),
      callbacks_(std::move(callbacks)),
      options_(options) {
  runtime_.setExitCallback([this](const std::string& instance, const ExitInfo& info) {
    onProcessExit(instance, info);
  });
}

Supervisor::~Supervisor() {
  *alive_ = false;
  runtime_.setExitCallback(nullptr);
  for (auto& [n, d] : daemons_) {
    if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
    for (auto& [i, inst] : d->instances) {
      if (inst->timer != 0) timers_.cancel(inst->timer);
    }
  }
}

// ---------------------------------------------------------------------------------------
// Lookups and reporting.

Supervisor::Daemon* Supervisor::findDaemon(const std::string& name) {
  auto it = daemons_.find(name);
  return it == daemons_.end() ? nullptr : it->second.get();
}
const Supervisor::Daemon* Supervisor::findDaemon(const std::string& name) const {
  auto it = daemons_.find(name);
  return it == daemons_.end() ? nullptr : it->second.get();
}
Supervisor::Instance* Supervisor::findInstance(const std::string& id) {
  Daemon* d = findDaemon(id.substr(0, id.find('#')));
  if (d == nullptr) return nullptr;
  auto it = d->instances.find(id);
  return it == d->instances.end() ? nullptr : it->second.get();
}
const Supervisor::Instance* Supervisor::findInstance(const std::string& id) const {
  const Daemon* d = findDaemon(id.substr(0, id.find('#')));
  if (d == nullptr) return nullptr;
  auto it = d->instances.find(id);
  return it == d->instances.end() ? nullptr : it->second.get();
}

std::vector<Supervisor::Instance*> Supervisor::targets(const std::string& target) {
  std::vector<Instance*> out;
  if (Instance* i = findInstance(target); i != nullptr && target.find('#') != std::string::npos) {
    out.push_back(i);
    return out;
  }
  if (Daemon* d = findDaemon(target)) {
    for (auto& [id, inst] : d->instances) out.push_back(inst.get());
  }
  return out;
}

void Supervisor::transition(Instance& inst, InstanceState to, const std::string& reason) {
  if (inst.state == to) {
    inst.reason = reason;
    return;
  }
  TransitionEvent e{inst.daemon, inst.id, inst.state, to, reason, clock_.wallMs()};
  inst.state = to;
  inst.reason = reason;
  if (callbacks_.on_transition) callbacks_.on_transition(e);
}

void Supervisor::failure(const Instance& inst, const std::string& kind, const std::string& msg) {
  if (callbacks_.on_failure) {
    callbacks_.on_failure(FailureEvent{inst.daemon, inst.id, kind, msg, clock_.wallMs()});
  }
}
void Supervisor::failure(const std::string& daemon, const std::string& kind,
                         const std::string& msg) {
  if (callbacks_.on_failure) {
    callbacks_.on_failure(FailureEvent{daemon, "", kind, msg, clock_.wallMs()});
  }
}

probes::CommandContext Supervisor::commandContext(const Instance& inst) const {
  // The runtime's: the environment, working directory (the default one when the spec has
  // none) and user the process itself got.
  if (auto ctx = runtime_.commandContext(inst.id)) return *ctx;
  probes::CommandContext ctx;
  ctx.env.push_back("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
  for (const auto& [k, v] : inst.spec.env) ctx.env.push_back(k + "=" + v);
  ctx.cwd = inst.spec.workdir;
  return ctx;
}

void Supervisor::cancelTimer(Instance& inst) {
  if (inst.timer != 0) timers_.cancel(inst.timer);
  inst.timer = 0;
}

// ---------------------------------------------------------------------------------------
// recover / apply

Status Supervisor::recover() {
  std::vector<std::string> skipped;
  auto recs = store_.loadAll(&skipped);
  if (!recs) return recs.status();
  for (const auto& s : skipped) failure("", "adoption", "unreadable instance record " + s);
  for (auto& r : *recs) recovered_[r.instance] = r;
  return Status::ok();
}

Status Supervisor::apply(std::vector<spec::DaemonSpec> desired, bool settle_leftovers) {
  MESHOS_RETURN_IF_ERROR(spec::validateSet(desired));
  // Check every new or changed spec can run here before changing anything.
  for (const auto& s : desired) {
    const Daemon* d = findDaemon(s.name);
    if (d != nullptr && !d->removing && d->hash == specHash(s)) continue;
    const std::string probe = s.name + "#check";
    Status c = runtime_.create(probe, s);
    if (c) (void)runtime_.remove(probe);
    if (!c) return c;
  }
  applying_ = true;
  apply_cause_ = applied_once_ ? state::ActionCause::kChange : state::ActionCause::kPolicy;
  applied_once_ = true;
  const state::ActionCause cause = apply_cause_;
  std::set<std::string> names;
  for (const auto& s : desired) names.insert(s.name);
  // Removed daemons stop, dependents first.
  for (auto& [n, d] : daemons_) {
    if (names.count(n) == 0 && !d->removing) {
      d->removing = true;
      if (d->cron) (void)store_.eraseLastFire(n);  // no longer wanted: forget its history
      if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
      d->cron_timer = 0;
      stopping_daemons_.insert(n);
    }
  }
  // New and changed daemons, in start order.
  auto order = spec::startOrder(desired);
  std::map<std::string, const spec::DaemonSpec*> by_name;
  for (const auto& s : desired) by_name[s.name] = &s;
  for (const auto& name : *order) {
    const spec::DaemonSpec& s = *by_name[name];
    Daemon* d = findDaemon(name);
    if (d != nullptr && d->removing) {
      // Removed and re-added before it stopped: let it go and start afresh afterwards is
      // complex; treat as changed instead.
      d->removing = false;
      stopping_daemons_.erase(name);
      d->hash.clear();
    }
    if (d == nullptr) {
      addDaemon(s);
      continue;
    }
    const std::string hash = specHash(s);
    if (d->hash == hash) continue;
    // Replicas and supervision change no process: the instances keep running.
    const bool replicas_only = [&] {
      spec::DaemonSpec a = d->spec;
      a.replicas = s.replicas;
      a.supervision = s.supervision;
      return specHash(a) == hash;
    }();
    d->spec = s;
    d->hash = hash;
    if (s.kind == spec::DaemonKind::kService) {
      // Scale down / restart changed / scale up.
      for (auto& [id, inst] : d->instances) {
        const int idx = std::atoi(id.substr(id.find('#') + 1).c_str());
        if (idx >= s.replicas) {
          inst->removing = true;
          stopInstance(*inst, "scaled down", cause);
        } else if (!replicas_only) {
          inst->pending_spec = s;
          if (inst->has_process()) {
            inst->restart_after_stop = true;
            stopInstance(*inst, "spec changed", cause);
          } else {
            cancelTimer(*inst);
            resetProbes(*inst);
            (void)runtime_.remove(inst->id);
            inst->spec = s;
            inst->pending_spec.reset();
            (void)runtime_.create(inst->id, s);
            inst->held = false;
            beginWaiting(*inst, cause);
          }
        }
      }
      for (int64_t i = 0; i < s.replicas; ++i) {
        const std::string id = s.name + "#" + std::to_string(i);
        if (d->instances.count(id) == 0) addInstance(*d, id, nullptr, cause);
      }
    } else {
      if (s.kind == spec::DaemonKind::kCron) {
        d->cron = *spec::parseCron(s.schedule);
        if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
        d->cron_timer = 0;
        armCron(*d);
      } else {
        auto e = newExecution(*d, "apply");
        (void)e;  // an execution still running keeps running; the next one uses the new spec
      }
    }
  }
  for (const auto& id : std::exchange(exited_while_down_, {})) {
    ExitInfo lost;
    lost.code_known = false;
    lost.detail = "exited while the agent was down (exit code unknown)";
    if (Instance* inst = findInstance(id)) afterExit(*inst, lost);
  }
  // Whatever a previous agent left that nobody wants now: stop it (once the caller's view
  // has settled; until then it keeps waiting).
  if (settle_leftovers) {
    for (const auto& [id, rec] : recovered_) {
      runtime_.stopRecorded(rec);
      (void)store_.erase(id);
      failure(rec.daemon, "adoption",
              "instance " + id + " (pid " + std::to_string(rec.pid) +
                  ") left by the previous agent is not desired (or changed kind); stopped");
    }
    recovered_.clear();
  }
  applying_ = false;
  finishStopOrdered();
  evaluateWaiting();
  return Status::ok();
}

void Supervisor::addDaemon(const spec::DaemonSpec& s) {
  auto d = std::make_unique<Daemon>();
  d->spec = s;
  d->hash = specHash(s);
  Daemon& ref = *d;
  daemons_[s.name] = std::move(d);
  switch (s.kind) {
    case spec::DaemonKind::kService:
      for (int64_t i = 0; i < s.replicas; ++i) {
        addInstance(ref, s.name + "#" + std::to_string(i), nullptr, apply_cause_);
      }
      break;
    case spec::DaemonKind::kJob:
      // An execution the previous agent left is this apply's: no second one.
      if (!adoptExecutions(ref)) (void)newExecution(ref, "apply");
      break;
    case spec::DaemonKind::kCron:
      ref.cron = *spec::parseCron(s.schedule);
      (void)adoptExecutions(ref);
      recoverCron(ref);
      armCron(ref);
      break;
  }
}

void Supervisor::addInstance(Daemon& d, const std::string& id, Execution* exec, state::ActionCause cause) {
  auto inst = std::make_unique<Instance>();
  inst->id = id;
  inst->daemon = d.spec.name;
  inst->spec = d.spec;
  inst->tracker.gate.configure(d.spec.crash_loop);
  if (exec != nullptr) inst->execution = exec->id;
  Instance& ref = *inst;
  d.instances[id] = std::move(inst);
  TransitionEvent created{ref.daemon, id, InstanceState::kStopped, InstanceState::kWaiting,
                          "created", clock_.wallMs()};
  if (callbacks_.on_transition) callbacks_.on_transition(created);

  auto rec = recovered_.find(id);
  if (rec != recovered_.end() && exec == nullptr) {
    InstanceRecord r = rec->second;
    recovered_.erase(rec);
    Status a = runtime_.adopt(r, d.spec);
    if (a) {
      ref.adopted = true;
      ref.started_mono_ms = clock_.monotonicMs();
      adopted_.push_back(id);
      transition(ref, InstanceState::kRunning, "re-adopted pid " + std::to_string(r.pid));
      if (r.spec_hash != d.hash) {
        ref.restart_after_stop = true;
        stopInstance(ref, "spec changed while the agent was down", cause);
        return;
      }
      startProbes(ref);
      return;
    }
    failure(ref, "exited-while-down",
            "instance " + id + " (pid " + std::to_string(r.pid) +
                ") exited while the agent was down: " + a.message());
    Status c = runtime_.create(id, d.spec);
    if (!c) {
      failure(ref, "start", c.message());
      transition(ref, InstanceState::kFailed, c.message());
      return;
    }
    // Its exit is decided once the whole set is added: its group's strategy and its
    // dependents' restarts reach members not added yet (re-adopted ones included).
    exited_while_down_.push_back(id);
    return;
  }
  Status c = runtime_.create(id, d.spec);
  if (!c) {
    failure(ref, "start", c.message());
    transition(ref, InstanceState::kFailed, c.message());
    return;
  }
  beginWaiting(ref, cause);
}

bool Supervisor::adoptExecutions(Daemon& d) {
  std::vector<InstanceRecord> mine;
  for (auto it = recovered_.begin(); it != recovered_.end();) {
    if (it->second.daemon == d.spec.name) {
      mine.push_back(it->second);
      it = recovered_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& r : mine) {
    const auto hash_pos = r.instance.find('#');
    const int64_t n = hash_pos == std::string::npos ? 0 : std::atoll(r.instance.c_str() + hash_pos + 1);
    d.next_exec = std::max(d.next_exec, n + 1);
    Execution e;
    e.id = r.instance;
    e.daemon = d.spec.name;
    e.state = ExecutionState::kRunning;
    e.attempts = 1;  // attempts are counted from the adoption
    e.retry_limit = d.spec.job_retries;
    e.trigger = "adopted";
    e.created_wall_ms = r.started_wall_ms;
    e.started_wall_ms = r.started_wall_ms;
    d.executions.push_back(e);
    auto inst = std::make_unique<Instance>();
    inst->id = r.instance;
    inst->daemon = d.spec.name;
    inst->spec = d.spec;
    inst->tracker.gate.configure(d.spec.crash_loop);
    inst->execution = e.id;
    Instance& ref = *inst;
    d.instances[r.instance] = std::move(inst);
    TransitionEvent created{ref.daemon, ref.id, InstanceState::kStopped, InstanceState::kWaiting,
                            "created", clock_.wallMs()};
    if (callbacks_.on_transition) callbacks_.on_transition(created);
    // The runtime reports its end (now, when it ended while the agent was down with its
    // exit code recorded) through the exit callback: afterExit records the outcome.
    Status a = runtime_.adopt(r, d.spec);
    if (a) {
      ref.adopted = true;
      ref.started_mono_ms = clock_.monotonicMs();
      adopted_.push_back(ref.id);
      transition(ref, InstanceState::kRunning, "re-adopted execution pid " + std::to_string(r.pid));
      continue;
    }
    Execution* ex = d.execution(e.id);
    ex->state = ExecutionState::kLost;
    ex->detail = "ended while the agent was down; outcome unknown (" + a.message() + ")";
    ex->finished_wall_ms = clock_.wallMs();
    failure(ref, "job", "execution " + e.id + " lost: " + ex->detail);
    transition(ref, InstanceState::kFailed, "lost: outcome unknown");
  }
  return !mine.empty();
}

Result<std::string> Supervisor::newExecution(Daemon& d, const std::string& trigger) {
  if (d.executionActive()) {
    return Status::exists("daemon '" + d.spec.name + "' already has an execution pending or running");
  }
  // Bound the history: drop the oldest finished executions (and their instances).
  while (d.executions.size() >= options_.executions_kept) {
    const std::string old = d.executions.front().id;
    d.executions.pop_front();
    auto it = d.instances.find(old);
    if (it != d.instances.end() && !it->second->has_process()) {
      cancelTimer(*it->second);
      (void)runtime_.remove(old);
      d.instances.erase(it);
    }
  }
  Execution e;
  e.id = d.spec.name + "#" + std::to_string(d.next_exec++);
  e.daemon = d.spec.name;
  e.retry_limit = d.spec.job_retries;
  e.trigger = trigger;
  e.created_wall_ms = clock_.wallMs();
  d.executions.push_back(e);
  // A manual trigger is an operator's; an apply's, the apply's; a cron fire keeps the
  // schedule that runs (policy).
  const state::ActionCause cause = trigger == "manual" ? state::ActionCause::kOperator
                                   : trigger == "apply" ? apply_cause_
                                                        : state::ActionCause::kPolicy;
  addInstance(d, e.id, &d.executions.back(), cause);
  return e.id;
}

// ---------------------------------------------------------------------------------------
// Waiting for dependencies, launching.

void Supervisor::beginWaiting(Instance& inst, state::ActionCause cause, bool restart) {
  cancelTimer(inst);
  inst.cause = cause;
  asked_.erase(inst.id);  // a new wait: asked for again when its dependencies allow
  inst.waiting_since_ms = clock_.monotonicMs();
  inst.ignored_deps.clear();
  inst.restart_wait = restart;
  transition(inst, InstanceState::kWaiting,
             inst.nextSpec().depends_on.empty() ? "starting" : "waiting for dependencies");
  if (!applying_) evaluateWaiting();
}

bool Supervisor::dependencySatisfied(const spec::Dependency& dep) const {
  const Daemon* d = findDaemon(dep.name);
  if (d == nullptr || d->removing) return false;
  for (const auto& e : d->executions) {
    if (e.state == ExecutionState::kSucceeded) return true;
  }
  for (const auto& [id, inst] : d->instances) {
    const InstanceState s = inst->state;
    switch (dep.condition) {
      case spec::DependencyCondition::kStarted:
        if (s == InstanceState::kRunning || s == InstanceState::kReady ||
            s == InstanceState::kStarting || s == InstanceState::kPaused) {
          return true;
        }
        break;
      case spec::DependencyCondition::kHealthy:
        if ((s == InstanceState::kRunning || s == InstanceState::kReady) &&
            (!inst->liveness || inst->liveness->status() == probes::HealthStatus::kPassing)) {
          return true;
        }
        break;
      case spec::DependencyCondition::kReady:
        if (s == InstanceState::kReady) return true;
        break;
    }
  }
  return false;
}

void Supervisor::evaluateWaiting() {
  static thread_local int depth = 0;
  if (depth > 0) return;  // the outer pass loops until nothing changes
  ++depth;
  bool changed = true;
  for (int rounds = 0; changed && rounds < 64; ++rounds) {
    changed = false;
    std::vector<std::string> ids;
    for (auto& [n, d] : daemons_) {
      for (auto& [id, inst] : d->instances) {
        // One whose start is already asked for waits for the executor, not for a new pass.
        if (inst->state == InstanceState::kWaiting && !inst->held && !inst->removing && asked_.count(id) == 0) {
          ids.push_back(id);
        }
      }
    }
    const int64_t now = clock_.monotonicMs();
    for (const auto& id : ids) {
      Instance* inst = findInstance(id);
      if (inst == nullptr || inst->state != InstanceState::kWaiting) continue;
      bool ready = true;
      bool failed = false;
      int64_t next_check = -1;
      for (const auto& dep : inst->nextSpec().depends_on) {
        if (inst->ignored_deps.count(dep.name) != 0 || dependencySatisfied(dep)) continue;
        if (inst->restart_wait) {  // the dependency restarts by policy too: no deadline
          ready = false;
          continue;
        }
        const int64_t waited = now - inst->waiting_since_ms;
        if (waited >= dep.timeout_ms) {
          const std::string msg = "dependency '" + dep.name + "' not " +
                                  std::string(spec::conditionName(dep.condition)) + " after " +
                                  std::to_string(dep.timeout_ms) + " ms";
          if (dep.on_timeout == spec::OnTimeout::kFail) {
            failure(*inst, "dependency", msg);
            cancelTimer(*inst);
            transition(*inst, InstanceState::kFailed, msg);
            if (Daemon* d = findDaemon(inst->daemon)) {
              if (Execution* e = d->execution(inst->execution)) {
                e->state = ExecutionState::kFailed;
                e->detail = msg;
                e->finished_wall_ms = clock_.wallMs();
              }
            }
            failed = true;
            changed = true;
            break;
          }
          if (dep.on_timeout == spec::OnTimeout::kWarn) failure(*inst, "dependency", msg + " (starting anyway)");
          inst->ignored_deps.insert(dep.name);
          continue;
        }
        ready = false;
        const int64_t left = dep.timeout_ms - waited;
        next_check = next_check < 0 ? left : std::min(next_check, left);
      }
      if (failed) continue;
      if (ready) {
        cancelTimer(*inst);
        launch(*inst);
        changed = true;
      } else if (next_check >= 0) {
        cancelTimer(*inst);
        inst->timer = timers_.after(next_check, [this, id] {
          if (Instance* i = findInstance(id)) i->timer = 0;
          evaluateWaiting();
        });
      }
    }
  }
  --depth;
}

void Supervisor::launch(Instance& inst) {
  if (routed_) {
    ask(inst, state::ActionKind::kStart, inst.reason);
  } else {
    launchNow(inst);
  }
}

void Supervisor::launchNow(Instance& inst) {
  // Every process gets fresh probes, built from the spec it runs: a changed spec brings its
  // own checks, and a restarted process does not inherit the previous one's status.
  resetProbes(inst);
  if (inst.pending_spec) {
    (void)runtime_.remove(inst.id);
    inst.spec = *inst.pending_spec;
    inst.pending_spec.reset();
    inst.tracker.gate.configure(inst.spec.crash_loop);
    Status c = runtime_.create(inst.id, inst.spec);
    if (!c) {
      failure(inst, "start", c.message());
      transition(inst, InstanceState::kFailed, c.message());
      return;
    }
  }
  Status s = runtime_.start(inst.id);
  Daemon* d = findDaemon(inst.daemon);
  Execution* e = d != nullptr ? d->execution(inst.execution) : nullptr;
  if (!s && s.code() == Code::kIoError && inst.spec.kind == spec::DaemonKind::kService) {
    // The node failed, not the daemon (its disk cannot record the instance): tried again
    // later, never counted towards the crash-loop gate, so a full disk does not
    // quarantine every daemon that wanted to start meanwhile.
    failure(inst, "start", s.message());
    inst.backoff_ms = kEnvironmentRetryMs;
    transition(inst, InstanceState::kBackingOff, "the node cannot start it now: " + s.message());
    relaunchAfter(inst, kEnvironmentRetryMs);
    return;
  }
  if (!s && s.code() == Code::kInvalidArgument) {
    // This host cannot run it as specified (an enforced limit it cannot apply): starting
    // it again would fail the same way, so it is failed until the spec or the host changes
    // (a new apply, or an operator start).
    failure(inst, "start", s.message());
    if (e != nullptr) {
      ++e->attempts;
      e->state = ExecutionState::kFailed;
      e->detail = s.message();
      e->finished_wall_ms = clock_.wallMs();
    }
    transition(inst, InstanceState::kFailed, s.message());
    return;
  }
  if (!s) {
    failure(inst, "start", s.message());
    ExitInfo info;
    info.exit_code = -1;
    info.code_known = true;
    info.detail = "spawn failed: " + s.message();
    if (e != nullptr) ++e->attempts;
    afterExit(inst, info);
    return;
  }
  inst.adopted = false;
  inst.forced_failure = false;
  inst.started_mono_ms = clock_.monotonicMs();
  if (e != nullptr) {
    ++e->attempts;
    e->state = ExecutionState::kRunning;
    e->started_wall_ms = clock_.wallMs();
  }
  auto st = runtime_.status(inst.id);
  // A container's pid is known once its OCI runtime has created it (tens of ms later).
  const std::string pid = !st ? "pid ?" : st->pid > 0 ? "pid " + std::to_string(st->pid) : "(pid to come)";
  if (st && !st->limit_warnings.empty() && st->limit_warnings != inst.limit_warnings) {
    // limits = "best-effort": running without some of them. Recorded once, not per restart.
    std::string all;
    for (const auto& w : st->limit_warnings) all += (all.empty() ? "" : "; ") + w;
    failure(inst, "limits", "instance " + inst.id + " runs without some limits: " + all);
  }
  inst.limit_warnings = st ? st->limit_warnings : std::vector<std::string>{};
  if (inst.spec.health.startup) {
    transition(inst, InstanceState::kStarting, "started " + pid);
  } else {
    transition(inst, InstanceState::kRunning, "started " + pid);
  }
  startProbes(inst);
  evaluateWaiting();
}

}  // namespace meshos::runtime
