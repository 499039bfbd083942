#include "agent/sim/sim_runtime.h"

#include <csignal>

namespace meshos::sim {

namespace {
constexpr size_t kKeptExitedMax = 4096;
}

SimRuntime::SimRuntime(ManualTimers& world, const Clock& clock, Rng rng, SimRuntimeOptions options)
    : world_(world), clock_(clock), rng_(rng), options_(options) {}

SimRuntime::~SimRuntime() { *alive_ = false; }

void SimRuntime::later(int64_t delay_ms, std::function<void()> fn) {
  world_.after(delay_ms, [this, alive = std::weak_ptr<bool>(alive_), gen = agent_generation_, fn = std::move(fn)] {
    if (alive.expired() || gen != agent_generation_) return;
    fn();
  });
}

SimProcess* SimRuntime::live(const std::string& instance) {
  auto h = handles_.find(instance);
  if (h == handles_.end() || h->second.pid == 0) return nullptr;
  auto p = processes_.find(h->second.pid);
  return p != processes_.end() && p->second.alive ? &p->second : nullptr;
}

const SimProcess* SimRuntime::find(const std::string& instance) const {
  auto h = handles_.find(instance);
  if (h == handles_.end() || h->second.pid == 0) return nullptr;
  auto p = processes_.find(h->second.pid);
  return p != processes_.end() ? &p->second : nullptr;
}

Status SimRuntime::create(const std::string& instance, const spec::DaemonSpec& spec) {
  if (handles_.count(instance) != 0) return Status::exists("instance " + instance + " exists");
  if (spec.command.empty()) return Status::invalid(instance + ": empty command");
  handles_[instance] = Handle{spec, 0, false};
  return Status::ok();
}

Status SimRuntime::start(const std::string& instance) {
  auto h = handles_.find(instance);
  if (h == handles_.end()) return Status::notFound("no instance " + instance);
  // As the real runtimes (the runtime contract test holds all three to it).
  if (live(instance) != nullptr) return Status::exists("instance " + instance + " is already running");
  SimProcess p;
  for (const auto& name : h->second.spec.secrets.names()) {
    auto v = open_secret_ ? open_secret_(name) : Result<SecretValue>(Status::denied("no opener"));
    if (!v) return Status::invalid("daemon '" + h->second.spec.name + "': " + v.status().message());
    p.secret_hashes[name] = blake2b256(asBytes(v->view()));
  }
  p.pid = next_pid_++;
  p.instance = instance;
  p.daemon = h->second.spec.name;
  p.spec = h->second.spec;
  p.started_ms = nowMs();
  const int64_t jitter = options_.ready_jitter_ms > 0 ? rng_.between(-options_.ready_jitter_ms, options_.ready_jitter_ms) : 0;
  p.ready_at_ms = p.started_ms + std::max<int64_t>(0, options_.ready_delay_ms + jitter);
  h->second.pid = p.pid;
  h->second.adopted = false;
  const int pid = p.pid;
  const bool job = p.spec.kind != spec::DaemonKind::kService;
  if (records_ != nullptr) {
    // As the process runtime: a process whose record cannot be written is not left running.
    Status saved = records_->save(runtime::InstanceRecord{instance, p.daemon, runtime::specHash(p.spec), pid, pid,
                                                          p.started_ms, clock_.wallMs(), "", ""});
    if (!saved) {
      h->second.pid = 0;
      return saved.withContext("daemon '" + p.daemon + "' not started: its instance record cannot be written");
    }
  }
  processes_[pid] = std::move(p);
  ++counters_.spawned;
  if (on_trace) on_trace("start", instance, pid);
  if (job) {
    // A job run ends by itself, whether or not an agent watches.
    world_.after(options_.job_run_ms, [this, alive = std::weak_ptr<bool>(alive_), pid] {
      if (alive.expired()) return;
      auto it = processes_.find(pid);
      if (it == processes_.end() || !it->second.alive) return;
      runtime::ExitInfo info;
      info.exit_code = 0;
      info.detail = "exited 0";
      exitProcess(it->second, info);
    });
  }
  return Status::ok();
}

void SimRuntime::exitProcess(SimProcess& p, runtime::ExitInfo info) {
  if (!p.alive) return;
  p.alive = false;
  p.exited_ms = nowMs();
  p.exit = info;
  ++counters_.exited;
  if (on_trace) on_trace("exit", p.instance, p.pid);
  // Told to the agent that watches it (the exit callback runs later, never inside a call).
  // A process nobody watches is reaped all the same (the agent as subreaper, or init).
  auto h = handles_.find(p.instance);
  if (h == handles_.end() || h->second.pid != p.pid || !exit_cb_) {
    p.reaped = true;
    return;
  }
  if (records_ != nullptr) (void)records_->erase(p.instance);
  if (h->second.adopted) info.code_known = false;
  later(0, [this, pid = p.pid, instance = p.instance, info] {
    auto it = processes_.find(pid);
    if (it != processes_.end()) it->second.reaped = true;
    if (exit_cb_) exit_cb_(instance, info);
  });
}

Status SimRuntime::stop(const std::string& instance, int64_t grace_ms) {
  SimProcess* p = live(instance);
  if (p == nullptr) return Status::ok();
  if (grace_ms < 0) grace_ms = p->spec.stop_grace_ms;
  p->stop_requested = true;
  const int pid = p->pid;
  const bool honours = !p->paused;  // a stopped (SIGSTOP) process cannot act on SIGTERM
  const int64_t after = honours ? std::min(options_.stop_delay_ms, grace_ms) : grace_ms;
  world_.after(after, [this, alive = std::weak_ptr<bool>(alive_), pid, honours] {
    if (alive.expired()) return;
    auto it = processes_.find(pid);
    if (it == processes_.end() || !it->second.alive) return;
    runtime::ExitInfo info;
    info.stopped_by_us = true;
    info.term_signal = honours ? SIGTERM : SIGKILL;
    info.detail = honours ? "killed by SIGTERM" : "killed by SIGKILL";
    exitProcess(it->second, info);
  });
  return Status::ok();
}

Status SimRuntime::remove(const std::string& instance) {
  auto h = handles_.find(instance);
  if (h == handles_.end()) return Status::ok();
  if (live(instance) != nullptr) return Status::invalid(instance + " is still running");
  if (h->second.pid != 0) {
    if (records_ != nullptr) (void)records_->erase(instance);
    auto it = processes_.find(h->second.pid);
    if (it != processes_.end()) it->second.reaped = true;
  }
  handles_.erase(h);
  removed_at_ms_[instance] = nowMs();
  if (processes_.size() > kKeptExitedMax) {
    for (auto it = processes_.begin(); it != processes_.end() && processes_.size() > kKeptExitedMax / 2;) {
      it = (!it->second.alive && it->second.reaped) ? processes_.erase(it) : std::next(it);
    }
  }
  return Status::ok();
}

Status SimRuntime::signal(const std::string& instance, int sig) {
  SimProcess* p = live(instance);
  if (p == nullptr) return Status::notFound(instance + " is not running");
  if (sig == SIGSTOP) p->paused = true;
  if (sig == SIGCONT) p->paused = false;
  if (sig == SIGKILL || sig == SIGTERM) {
    runtime::ExitInfo info;
    info.term_signal = sig;
    info.stopped_by_us = true;
    info.detail = sig == SIGKILL ? "killed by SIGKILL" : "killed by SIGTERM";
    exitProcess(*p, info);
  }
  return Status::ok();
}

Result<runtime::ProcessStatus> SimRuntime::status(const std::string& instance) const {
  auto h = handles_.find(instance);
  if (h == handles_.end()) return Status::notFound("no instance " + instance);
  runtime::ProcessStatus s;
  s.instance = instance;
  s.daemon = h->second.spec.name;
  s.adopted = h->second.adopted;
  const SimProcess* p = find(instance);
  if (p == nullptr) {
    s.state = runtime::ProcessState::kCreated;
    return s;
  }
  s.pid = p->pid;
  s.pgid = p->pid;
  s.start_ticks = p->started_ms;
  s.state = p->alive ? (p->stop_requested ? runtime::ProcessState::kStopping : runtime::ProcessState::kRunning)
                     : runtime::ProcessState::kExited;
  if (!p->alive) s.exit = p->exit;
  return s;
}

Result<runtime::LogChunk> SimRuntime::logs(const std::string& instance, const runtime::LogQuery& q) const {
  if (handles_.count(instance) == 0) return Status::notFound("no instance " + instance);
  runtime::LogChunk c;
  c.next_offset = q.offset;
  return c;
}

Status SimRuntime::exec(const std::string& instance, std::vector<std::string>, int64_t, size_t,
                        std::function<void(Result<runtime::ExecResult>)> done) {
  if (live(instance) == nullptr) return Status::notFound(instance + " is not running");
  later(options_.exec_latency_ms, [done] {
    runtime::ExecResult r;
    r.exit_code = 0;
    done(r);
  });
  return Status::ok();
}

Result<runtime::ResourceStats> SimRuntime::stats(const std::string& instance) const {
  if (handles_.count(instance) == 0) return Status::notFound("no instance " + instance);
  runtime::ResourceStats s;
  s.processes = find(instance) != nullptr && find(instance)->alive ? 1 : 0;
  return s;
}

Result<probes::CommandContext> SimRuntime::commandContext(const std::string& instance) const {
  if (handles_.count(instance) == 0) return Status::notFound("no instance " + instance);
  return probes::CommandContext{};
}

Status SimRuntime::adopt(const runtime::InstanceRecord& record, const spec::DaemonSpec& spec) {
  auto it = processes_.find(record.pid);
  // The start time tells a recycled pid from the process recorded (pids are never reused
  // here, but the check is the real runtime's).
  if (it == processes_.end() || !it->second.alive || it->second.started_ms != record.start_ticks ||
      it->second.instance != record.instance) {
    ++counters_.adopt_refused;
    if (it != processes_.end() && !it->second.alive) it->second.reaped = true;  // its record is dropped
    return Status::notFound(record.instance + " (pid " + std::to_string(record.pid) + ") is gone");
  }
  handles_[record.instance] = Handle{spec, record.pid, true};
  ++counters_.adopted;
  return Status::ok();
}

void SimRuntime::stopRecorded(const runtime::InstanceRecord& record) {
  auto it = processes_.find(record.pid);
  if (it == processes_.end() || !it->second.alive || it->second.started_ms != record.start_ticks) return;
  it->second.stop_requested = true;
  world_.after(options_.stop_delay_ms, [this, alive = std::weak_ptr<bool>(alive_), pid = record.pid] {
    if (alive.expired()) return;
    auto p = processes_.find(pid);
    if (p == processes_.end() || !p->second.alive) return;
    runtime::ExitInfo info;
    info.stopped_by_us = true;
    info.term_signal = SIGTERM;
    info.detail = "killed by SIGTERM";
    exitProcess(p->second, info);
  });
}

std::vector<std::string> SimRuntime::instances() const {
  std::vector<std::string> out;
  for (const auto& [name, h] : handles_) out.push_back(name);
  return out;
}

void SimRuntime::check(const std::string& instance, const spec::HealthCheck&,
                       std::function<void(bool ok, std::string detail)> done) {
  ++counters_.checks;
  const SimProcess* p = live(instance);
  bool ok = p != nullptr && !p->paused && nowMs() >= p->ready_at_ms;
  std::string detail = p == nullptr ? "not running" : p->paused ? "paused" : ok ? "ok" : "not ready yet";
  later(options_.check_latency_ms, [done = std::move(done), ok, detail] { done(ok, detail); });
}

void SimRuntime::detachAgent() {
  ++agent_generation_;
  exit_cb_ = nullptr;
  open_secret_ = nullptr;
  records_ = nullptr;
  handles_.clear();
}

void SimRuntime::crashMachine() {
  detachAgent();
  for (auto& [pid, p] : processes_) {
    if (!p.alive) {
      p.reaped = true;
      continue;
    }
    p.alive = false;
    p.exited_ms = nowMs();
    p.reaped = true;  // the machine is gone: nothing left to reap
    ++counters_.crashed;
    if (on_trace) on_trace("lost", p.instance, pid);
  }
}

void SimRuntime::killProcess(int pid, int term_signal) {
  auto it = processes_.find(pid);
  if (it == processes_.end() || !it->second.alive) return;
  runtime::ExitInfo info;
  info.term_signal = term_signal;
  info.exit_code = term_signal == 0 ? 1 : -1;
  info.detail = term_signal == 0 ? "exited 1" : "killed by signal " + std::to_string(term_signal);
  ++counters_.crashed;
  exitProcess(it->second, info);
}

std::map<std::string, uint32_t> SimRuntime::liveByDaemon() const {
  std::map<std::string, uint32_t> out;
  for (const auto& [pid, p] : processes_)
    if (p.alive) ++out[p.daemon];
  return out;
}

}  // namespace meshos::sim
