#include "agent/runtime/supervisor.h"

#include <signal.h>

#include <algorithm>
#include <deque>


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
  int64_t started_mono_ms = 0;
  bool forced_failure = false;
  bool restart_after_stop = false;
  bool held = false;
  InstanceState held_state = InstanceState::kStopped;
  bool removing = false;
  std::optional<spec::DaemonSpec> pending_spec;
  std::unique_ptr<probes::HealthProbe> startup, liveness, readiness;
  int64_t backoff_ms = 0;
  std::string reason;
  bool adopted = false;
  std::optional<ExitInfo> last_exit;
  std::string execution;  // job/cron: the execution this instance runs
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

Status Supervisor::apply(std::vector<spec::DaemonSpec> desired) {
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
    const bool replicas_only = [&] {
      spec::DaemonSpec a = d->spec;
      a.replicas = s.replicas;
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
          stopInstance(*inst, "scaled down");
        } else if (!replicas_only) {
          inst->pending_spec = s;
          if (inst->has_process()) {
            inst->restart_after_stop = true;
            stopInstance(*inst, "spec changed");
          } else {
            cancelTimer(*inst);
            resetProbes(*inst);
            (void)runtime_.remove(inst->id);
            inst->spec = s;
            inst->pending_spec.reset();
            (void)runtime_.create(inst->id, s);
            inst->held = false;
            beginWaiting(*inst);
          }
        }
      }
      for (int64_t i = 0; i < s.replicas; ++i) {
        const std::string id = s.name + "#" + std::to_string(i);
        if (d->instances.count(id) == 0) addInstance(*d, id, nullptr);
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
  // Whatever a previous agent left that nobody wants now: stop it.
  for (const auto& [id, rec] : recovered_) {
    runtime_.stopRecorded(rec);
    (void)store_.erase(id);
    failure(rec.daemon, "adoption",
            "instance " + id + " (pid " + std::to_string(rec.pid) +
                ") left by the previous agent is not desired (or changed kind); stopped");
  }
  recovered_.clear();
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
      for (int64_t i = 0; i < s.replicas; ++i) addInstance(ref, s.name + "#" + std::to_string(i), nullptr);
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

void Supervisor::addInstance(Daemon& d, const std::string& id, Execution* exec) {
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
        stopInstance(ref, "spec changed while the agent was down");
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
    ExitInfo lost;
    lost.code_known = false;
    lost.detail = "exited while the agent was down (exit code unknown)";
    afterExit(ref, lost);
    return;
  }
  Status c = runtime_.create(id, d.spec);
  if (!c) {
    failure(ref, "start", c.message());
    transition(ref, InstanceState::kFailed, c.message());
    return;
  }
  beginWaiting(ref);
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
  addInstance(d, e.id, &d.executions.back());
  return e.id;
}

// ---------------------------------------------------------------------------------------
// Waiting for dependencies, launching.

void Supervisor::beginWaiting(Instance& inst) {
  cancelTimer(inst);
  inst.waiting_since_ms = clock_.monotonicMs();
  inst.ignored_deps.clear();
  transition(inst, InstanceState::kWaiting,
             inst.spec.depends_on.empty() ? "starting" : "waiting for dependencies");
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
        if (inst->state == InstanceState::kWaiting && !inst->held && !inst->removing) ids.push_back(id);
      }
    }
    const int64_t now = clock_.monotonicMs();
    for (const auto& id : ids) {
      Instance* inst = findInstance(id);
      if (inst == nullptr || inst->state != InstanceState::kWaiting) continue;
      bool ready = true;
      bool failed = false;
      int64_t next_check = -1;
      for (const auto& dep : inst->spec.depends_on) {
        if (inst->ignored_deps.count(dep.name) != 0 || dependencySatisfied(dep)) continue;
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
  const std::string pid = st ? std::to_string(st->pid) : "?";
  if (inst.spec.health.startup) {
    transition(inst, InstanceState::kStarting, "started pid " + pid);
  } else {
    transition(inst, InstanceState::kRunning, "started pid " + pid);
  }
  startProbes(inst);
  evaluateWaiting();
}

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
  transition(inst, InstanceState::kStopping, why);
  (void)runtime_.stop(inst.id);
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
    beginWaiting(*inst);
  } else if (inst->held) {
    transition(*inst, inst->held_state, inst->reason);
  } else {
    transition(*inst, InstanceState::kStopped, "stopped (" + info.detail + ")");
  }
  finishStopOrdered();
  evaluateWaiting();
}

void Supervisor::relaunchAfter(Instance& inst, int64_t delay_ms) {
  cancelTimer(inst);
  auto launchLater = [this, id = inst.id] {
    Instance* i = findInstance(id);
    if (i == nullptr) return;
    i->timer = 0;
    if (i->state != InstanceState::kBackingOff && i->state != InstanceState::kQuarantined) return;
    i->backoff_ms = 0;
    launch(*i);
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
      launch(*i);
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

void Supervisor::stopInstance(Instance& inst, const std::string& reason) {
  cancelTimer(inst);
  stopProbes(inst);
  if (inst.has_process()) {
    transition(inst, InstanceState::kStopping, reason);
    (void)runtime_.stop(inst.id);
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
            if (inst.state != InstanceState::kStopping) stopInstance(inst, "removed");
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
  for (auto& [n, d] : daemons_) {
    d->removing = true;
    if (d->cron_timer != 0) timers_.cancel(d->cron_timer);
    d->cron_timer = 0;
    stopping_daemons_.insert(n);
  }
  finishStopOrdered();
}

// ---------------------------------------------------------------------------------------
// Cron.

void Supervisor::armCron(Daemon& d) {
  if (!d.cron || !d.cron_enabled || d.removing) return;
  const int64_t now = clock_.wallMs();
  d.next_fire_ms = d.cron->nextAfter(now);
  if (d.next_fire_ms < 0) return;
  const std::string name = d.spec.name;
  d.cron_timer = timers_.after(d.next_fire_ms - now, [this, name] { onCronFire(name); });
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
  recordFire(*d, d->next_fire_ms);
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
  for (Instance* inst : list) {
    inst->held = false;
    inst->tracker.attempt = 0;
    inst->tracker.gate.reset();
    if (inst->has_process()) {
      inst->restart_after_stop = true;
      stopInstance(*inst, "restart requested");
    } else {
      cancelTimer(*inst);
      beginWaiting(*inst);
    }
  }
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
    stopInstance(*inst, "quarantined by operator");
  }
  return Status::ok();
}

Status Supervisor::stop(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    inst->held = true;
    inst->held_state = InstanceState::kStopped;
    stopInstance(*inst, "stopped by operator");
  }
  return Status::ok();
}

Status Supervisor::start(const std::string& target) {
  auto list = targets(target);
  if (list.empty()) return Status::notFound("no daemon or instance '" + target + "'");
  for (Instance* inst : list) {
    inst->held = false;
    if (inst->has_process()) continue;
    inst->tracker.attempt = 0;
    inst->tracker.gate.reset();
    beginWaiting(*inst);
  }
  return Status::ok();
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
  return {{"daemons", daemons}, {"executions", execs}, {"cron", crons}};
}

}  // namespace meshos::runtime
