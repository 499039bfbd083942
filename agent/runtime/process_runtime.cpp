#include "agent/runtime/process_internal.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <set>
#include <string_view>
#include <cstring>
#include <fstream>
#include <sstream>

#include "agent/runtime/cgroups.h"
#include "agent/runtime/instance_files.h"
#include "probes/health_check.h"

namespace meshos::runtime {

using namespace detail;

int64_t processStartTicks(int pid) {
  auto f = statFields(pid);
  if (f.empty()) return -1;
  return field(f, 22);
}


ProcessRuntime::ProcessRuntime(uv_loop_t* loop, Clock& clock, InstanceStore& store,
                               RuntimeOptions options)
    : loop_(loop), clock_(clock), store_(store), options_(std::move(options)), timers_(loop) {}

ProcessRuntime::~ProcessRuntime() { close(); }

Status validateCgroupParent(std::string_view parent) {
  auto bad = [&](const std::string& why) {
    return Status::invalid("runtime: cgroup_parent " + why + ", got \"" + std::string(parent) + "\"");
  };
  if (parent.empty()) return bad("must not be empty");
  if (parent.size() > 255) return bad("must be at most 255 characters");
  size_t start = 0;
  while (start <= parent.size()) {
    size_t end = parent.find('/', start);
    if (end == std::string_view::npos) end = parent.size();
    const std::string_view seg = parent.substr(start, end - start);
    if (seg.empty()) return bad("must be a relative path without empty segments");
    if (seg == "." || seg == "..") return bad("must not contain '.' or '..' segments");
    for (char ch : seg) {
      const bool ok = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
                      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-';
      if (!ok) return bad("segments may use only A-Z a-z 0-9 . _ -");
    }
    start = end + 1;
  }
  return Status::ok();
}

Status ProcessRuntime::init() {
  if (options_.data_dir.empty()) return Status::invalid("runtime: data_dir is not set");
  MESHOS_RETURN_IF_ERROR(validateCgroupParent(options_.cgroup_parent));
  MESHOS_RETURN_IF_ERROR(makeDirs(options_.data_dir + "/runtime/logs"));
  MESHOS_RETURN_IF_ERROR(makeDirs(options_.data_dir + "/runtime/work"));
  MESHOS_RETURN_IF_ERROR(makeDirs(options_.data_dir + "/runtime/exit"));
  if (options_.subreaper) ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  // Where the memory, cpu and pids controllers are (v2 or v1 hierarchies under cgroup_root);
  // groups are made per instance, when it starts.
  cgroup_layout_ = detectCgroupLayout(options_.cgroup_root);
  cgroups_enabled_ = !cgroup_layout_.unified_root.empty();
  for (const ControllerHome& h : cgroup_layout_.homes) cgroups_enabled_ = cgroups_enabled_ || h.version != 0;
  cgroup_status_ = options_.cgroup_root.empty() ? "cgroups disabled by configuration"
                                                 : "cgroups: " + cgroup_layout_.describe();
  armLogCheck();
  return Status::ok();
}

void ProcessRuntime::armLogCheck() {
  // Every log_check_interval_ms while there are instances; an agent with none does not
  // wake for it (start() arms it again).
  if (options_.log_check_interval_ms <= 0 || log_timer_ != 0) return;
  log_timer_ = timers_.after(options_.log_check_interval_ms, [this] {
    log_timer_ = 0;
    rotateLogsNow();
    reapStrays();
    if (!procs_.empty()) armLogCheck();
  });
}

void ProcessRuntime::close() {
  if (closed_) return;
  closed_ = true;
  timers_.close();
  for (auto& [name, p] : procs_) {
    if (p->handle != nullptr) {
      p->handle->rt = nullptr;
      uv_close(reinterpret_cast<uv_handle_t*>(&p->handle->proc),
               [](uv_handle_t* h) { delete static_cast<Handle*>(h->data); });
      p->handle = nullptr;
    }
    if (p->poll != nullptr) {
      closePidfdWatch(p->poll, p->pidfd);
      p->poll = nullptr;
      p->pidfd = -1;
    }
  }
}

std::vector<std::string> ProcessRuntime::instances() const {
  std::vector<std::string> out;
  for (const auto& [n, p] : procs_) out.push_back(n);
  return out;
}

Status ProcessRuntime::fillEnvironment(Proc& p, const std::string& instance,
                                       const spec::DaemonSpec& spec) const {
  // Environment: a small base, then the spec's.
  std::map<std::string, std::string> env;
  env["PATH"] = kDefaultPath;
  env["LANG"] = "C.UTF-8";
  env["HOME"] = "/";
  env["MESHOS_DAEMON"] = spec.name;
  env["MESHOS_INSTANCE"] = instance;
  p.uid.reset();
  p.gid.reset();
  if (!spec.user.empty() && ::geteuid() == 0) {
    struct passwd pw{};
    struct passwd* found = nullptr;
    std::vector<char> buf(16384);
    if (::getpwnam_r(spec.user.c_str(), &pw, buf.data(), buf.size(), &found) != 0 ||
        found == nullptr) {
      return Status::invalid("daemon '" + spec.name + "': user: no such user '" + spec.user + "'");
    }
    p.uid = pw.pw_uid;
    p.gid = pw.pw_gid;
    env["HOME"] = pw.pw_dir;
    env["USER"] = spec.user;
  }
  for (const auto& [k, v] : spec.env) env[k] = v;
  p.env.clear();
  for (const auto& [k, v] : env) p.env.push_back(k + "=" + v);
  p.cwd = spec.workdir.empty() ? defaultWorkdir(spec.name) : spec.workdir;
  return Status::ok();
}

std::string ProcessRuntime::exitFileFor(const std::string& instance,
                                        const spec::DaemonSpec& spec) const {
  if (spec.kind == spec::DaemonKind::kService) return "";
  return options_.data_dir + "/runtime/exit/" + instance;
}

std::string ProcessRuntime::defaultWorkdir(const std::string& daemon) const {
  return options_.data_dir + "/runtime/work/" + daemon;
}

Result<probes::CommandContext> ProcessRuntime::commandContext(const std::string& instance) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const Proc& p = *it->second;
  return probes::CommandContext{p.env, p.cwd, p.uid, p.gid};
}

void ProcessRuntime::stopRecorded(const InstanceRecord& rec) {
  if (rec.pid > 0 && rec.pgid > 0 && processStartTicks(rec.pid) == rec.start_ticks) ::kill(-rec.pgid, SIGTERM);
}

void ProcessRuntime::check(const std::string& instance, const spec::HealthCheck& check,
                           std::function<void(bool ok, std::string detail)> done) {
  auto ctx = commandContext(instance);
  if (!ctx) {
    // Never inside the call: the answer comes on a later turn of the loop.
    timers_.after(0, [done = std::move(done), why = ctx.status().message()] { done(false, why); });
    return;
  }
  probes::checkOnce(loop_, check, *ctx, [done = std::move(done)](bool ok, const std::string& detail) { done(ok, detail); });
}

Status ProcessRuntime::create(const std::string& instance, const spec::DaemonSpec& spec) {
  if (closed_) return Status::unavailable("runtime closed");
  if (procs_.count(instance) != 0) return Status::exists("instance " + instance + " exists");
  MESHOS_RETURN_IF_ERROR(spec::validate(spec));
  auto p = std::make_unique<Proc>();
  p->instance = instance;
  p->spec = spec;
  p->spec_hash = specHash(spec);
  MESHOS_RETURN_IF_ERROR(fillEnvironment(*p, instance, spec));
  std::string search_path = kDefaultPath;
  for (const auto& kv : p->env) {
    if (kv.rfind("PATH=", 0) == 0) search_path = kv.substr(5);
  }
  // The program: a path, or a name looked up in the daemon's PATH.
  const std::string& prog = spec.command[0];
  if (prog.find('/') != std::string::npos) {
    if (::access(prog.c_str(), X_OK) != 0) {
      return Status::invalid("daemon '" + spec.name + "': command: " + errnoText("'" + prog + "'"));
    }
    p->exe = prog;
  } else {
    p->exe = findInPath(prog, search_path);
    if (p->exe.empty()) {
      return Status::invalid("daemon '" + spec.name + "': command: '" + prog +
                             "' not found in PATH (" + search_path + ")");
    }
  }
  if (spec.workdir.empty()) {
    // Created once per daemon per agent run (not per instance, not per restart).
    if (workdirs_made_.count(p->cwd) == 0) {
      MESHOS_RETURN_IF_ERROR(makeDirs(p->cwd));
      if (workdirs_made_.size() < 65'536) workdirs_made_.insert(p->cwd);
    }
  } else {
    struct stat st{};
    if (::stat(spec.workdir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::invalid("daemon '" + spec.name + "': workdir: '" + spec.workdir +
                             "' is not a directory");
    }
    p->cwd = spec.workdir;
  }
  p->log_path = options_.data_dir + "/runtime/logs/" + instance + ".log";
  p->exit_file = exitFileFor(instance, spec);
  procs_[instance] = std::move(p);
  return Status::ok();
}

Status ProcessRuntime::setupCgroup(Proc& p) {
  // Made before the spawn; the process is placed in them before it execs (placeSpawned), so
  // nothing it forks can be outside them.
  p.cgroup = false;
  p.cgroup_path.clear();
  p.cgroup_groups.clear();
  p.oom_events_file.clear();
  p.memory_usage_file.clear();
  p.limit_warnings.clear();
  const InstanceCgroupPlan plan =
      planInstanceCgroups(cgroup_layout_, p.spec.limits, options_.cgroup_parent, p.instance);
  auto made = createInstanceCgroups(plan, p.spec.limits.mode);
  if (!made) return made.status().withContext("daemon '" + p.spec.name + "'");
  p.cgroup_groups = std::move(made->groups);
  p.oom_events_file = std::move(made->oom_events_file);
  p.memory_usage_file = std::move(made->memory_usage_file);
  p.limit_warnings = std::move(made->warnings);
  p.cgroup = !p.cgroup_groups.empty();
  if (p.cgroup) p.cgroup_path = p.cgroup_groups.front();
  return Status::ok();
}

void ProcessRuntime::removeCgroup(const std::string& path) {
  if (path.empty()) return;
  if (::rmdir(path.c_str()) == 0 || errno == ENOENT) {
    cgroups_to_remove_.erase(path);
    return;
  }
  // EBUSY while killed members are still exiting: the reap timer tries again.
  cgroups_to_remove_.emplace(path, clock_.monotonicMs() + 5'000);
  if (reap_timer_ == 0 && !closed_) {
    reap_timer_ = timers_.after(10, [this] {
      reap_timer_ = 0;
      reapOrphans();
    });
  }
}

namespace {

// uv_spawn has no pre-exec hook. When the child must be in its cgroups or lower its limits
// before it runs, a /bin/sh shim does that and then execs the daemon (same pid): it waits
// on fd 3 (a pipe) until the agent has placed it in its groups (as root, whatever user the
// daemon runs as; joining after the exec would race with the daemon's first fork), and
// prlimit on a process of another user needs CAP_SYS_RESOURCE. A run-to-completion process (job, cron
// run) runs under the shim, which records its exit code in exit_file: an agent that
// restarts while it runs re-adopts it (not its parent any more) and still learns its
// outcome. A service is exec'd (same pid, no extra shell). Empty: no shim needed.
std::string shimScript(const spec::DaemonSpec& spec, bool cgroup, const std::string& exit_file) {
  std::string script;
  if (cgroup) {
    script += "read -r placed <&3 && [ \"$placed\" = placed ] || "
              "{ echo 'meshos: not placed in its cgroups' >&2; exit 126; }; exec 3<&-; ";
  }
  if (spec.limits.open_files) {
    script += "ulimit -n " + std::to_string(*spec.limits.open_files) +
              " || { echo 'meshos: cannot set the open files limit' >&2; exit 126; }; ";
  }
  if (spec.limits.core_size && *spec.limits.core_size == 0) script += "ulimit -c 0 || exit 126; ";
  if (exit_file.empty()) {
    if (!script.empty()) script += "exec \"$@\"";
    return script;
  }
  // A stop signal reaches the whole group, the shim too, which then ends at once without
  // recording anything; the run still gets its grace period (see onExit).
  return script + "\"$@\"; rc=$?; echo $rc > " + shellQuote(exit_file) + "; exit $rc";
}

}  // namespace

void ProcessRuntime::onSpawnedExit(uv_process_t* proc, int64_t status, int sig) {
  auto* h = static_cast<Handle*>(proc->data);
  ProcessRuntime* rt = h->rt;
  std::string instance = h->instance;
  uv_close(reinterpret_cast<uv_handle_t*>(proc), [](uv_handle_t* hh) { delete static_cast<Handle*>(hh->data); });
  if (rt == nullptr) return;
  auto found = rt->procs_.find(instance);
  if (found != rt->procs_.end()) found->second->handle = nullptr;
  ExitInfo info;
  info.exit_code = sig != 0 ? -1 : static_cast<int>(status);
  info.term_signal = sig;
  info.detail = sig != 0 ? "killed by " + signalName(sig) : "exited " + std::to_string(status);
  rt->onExit(instance, std::move(info));
}

// uv_spawn, detached (its own session and group), output to the log file. With cgroups,
// gate_fd is the write end of the pipe the shim waits on (placeSpawned releases it).
Status ProcessRuntime::spawn(Proc& p, const std::string& instance, int log_fd, int& gate_fd,
                             const std::vector<std::string>& secret_env) {
  gate_fd = -1;
  int gate[2] = {-1, -1};
  if (p.cgroup && ::pipe2(gate, O_CLOEXEC) != 0) return Status::io(errnoText("pipe"));
  if (!p.exit_file.empty()) (void)::unlink(p.exit_file.c_str());
  const std::string script = shimScript(p.spec, p.cgroup, p.exit_file);
  const bool shim = !script.empty();
  static const std::string kShim = "/bin/sh";
  static const std::string kShimArg0 = "meshos-shim";
  static const std::string kShimDashC = "-c";
  std::vector<char*> args;
  if (shim) {
    args.push_back(const_cast<char*>(kShimArg0.c_str()));
    args.push_back(const_cast<char*>(kShimDashC.c_str()));
    args.push_back(const_cast<char*>(script.c_str()));
    args.push_back(const_cast<char*>(kShimArg0.c_str()));  // $0
  }
  args.push_back(const_cast<char*>(p.exe.c_str()));
  for (size_t i = 1; i < p.spec.command.size(); ++i) args.push_back(const_cast<char*>(p.spec.command[i].c_str()));
  args.push_back(nullptr);
  std::vector<char*> envp;
  std::set<std::string_view> secret_vars;
  for (const auto& e : secret_env) {
    envp.push_back(const_cast<char*>(e.c_str()));
    secret_vars.insert(std::string_view(e).substr(0, e.find('=')));
  }
  for (const auto& e : p.env) {
    if (!secret_vars.count(std::string_view(e).substr(0, e.find('=')))) envp.push_back(const_cast<char*>(e.c_str()));
  }
  envp.push_back(nullptr);
  uv_stdio_container_t stdio[4];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = log_fd;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = log_fd;
  stdio[3].flags = UV_INHERIT_FD;  // the shim's gate (dup2 in the child clears its CLOEXEC)
  stdio[3].data.fd = gate[0];
  uv_process_options_t opts{};
  opts.file = shim ? kShim.c_str() : p.exe.c_str();
  opts.args = args.data();
  opts.env = envp.data();
  opts.cwd = p.cwd.c_str();
  opts.stdio = stdio;
  opts.stdio_count = p.cgroup ? 4 : 3;
  opts.flags = UV_PROCESS_DETACHED;
  if (p.uid) {
    opts.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    opts.uid = *p.uid;
    opts.gid = *p.gid;
  }
  opts.exit_cb = &ProcessRuntime::onSpawnedExit;
  auto* h = new Handle();
  h->rt = this;
  h->instance = instance;
  h->proc.data = h;
  int rc = uv_spawn(loop_, &h->proc, &opts);
  if (gate[0] >= 0) ::close(gate[0]);
  if (rc != 0) {
    if (gate[1] >= 0) ::close(gate[1]);
    h->rt = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->proc), [](uv_handle_t* hh) { delete static_cast<Handle*>(hh->data); });
    for (const std::string& g : p.cgroup_groups) removeCgroup(g);
    if (rc == UV_ENOENT && p.spec.workdir.empty()) {
      // The default workdir (made once, then assumed) may have been deleted: made again
      // for the next attempt (the restart policy's).
      workdirs_made_.erase(p.cwd);
      if (makeDirs(p.cwd)) workdirs_made_.insert(p.cwd);
    }
    return Status::unavailable("daemon '" + p.spec.name + "': spawn " + p.exe + ": " + uv_strerror(rc));
  }
  p.handle = h;
  p.pid = h->proc.pid;
  gate_fd = gate[1];
  return Status::ok();
}

Status ProcessRuntime::placeSpawned(Proc& p, int gate_fd) {
  Status placed = Status::ok();
  for (const std::string& g : p.cgroup_groups) {
    Status joined = joinCgroups({g}, p.pid);
    if (joined) continue;
    if (p.spec.limits.mode == spec::LimitsMode::kEnforce) {
      placed = joined;
      break;
    }
    p.limit_warnings.push_back("limits of " + g + " not applied: " + joined.message());
  }
  // Released only once placed: "placed" lets the shim exec the daemon; EOF (the pipe closed
  // without it) makes it exit 126.
  if (placed) {
    static constexpr char kPlaced[] = "placed\n";
    if (::write(gate_fd, kPlaced, sizeof(kPlaced) - 1) != static_cast<ssize_t>(sizeof(kPlaced) - 1)) {
      placed = Status::io(errnoText("release the shim"));
    }
  }
  ::close(gate_fd);
  return placed;
}

Status ProcessRuntime::abortStart(Proc& p, Status why) {
  // Killed at once; its exit is nobody's news (the supervisor sees this failed start).
  p.start_aborted = true;
  p.stop_requested = true;
  p.state = ProcessState::kStopping;
  ::kill(-p.pgid, SIGKILL);
  return why;
}

Status ProcessRuntime::start(const std::string& instance) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  Proc& p = *it->second;
  if (p.state == ProcessState::kRunning || p.state == ProcessState::kStopping) {
    return Status::exists("instance " + instance + " is already running");
  }
  armLogCheck();
  auto secrets = openSecrets(p);
  if (!secrets) {
    removeSecretFiles(instance);
    return secrets.status();
  }
  int log_fd = ::open(p.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return Status::io(errnoText("open " + p.log_path));
  if (p.uid) (void)::fchown(log_fd, *p.uid, p.gid.value_or(0));
  if (Status cg = setupCgroup(p); !cg) {
    ::close(log_fd);
    return cg;
  }
  int gate_fd = -1;
  Status spawned = spawn(p, instance, log_fd, gate_fd, (*secrets)->env);
  ::close(log_fd);
  secrets->reset();  // the process has its copy; ours is wiped
  if (!spawned) {
    removeSecretFiles(instance);
    return spawned;
  }
  p.pgid = p.pid;  // DETACHED: setsid() made it a session and group leader
  p.start_ticks = processStartTicks(p.pid);
  p.started_wall_ms = clock_.wallMs();
  p.adopted = false;
  p.stop_requested = false;
  p.stop_deadline_ms = 0;
  p.exit.reset();
  p.state = ProcessState::kRunning;
  if (gate_fd >= 0) {
    if (Status placed = placeSpawned(p, gate_fd); !placed) {
      return abortStart(p, placed.withContext("daemon '" + p.spec.name + "' not started"));
    }
  }
  // A non-zero core size: from outside (the shell's ulimit units differ between shells).
  if (p.spec.limits.core_size && *p.spec.limits.core_size > 0) {
    rlimit r{static_cast<rlim_t>(*p.spec.limits.core_size), static_cast<rlim_t>(*p.spec.limits.core_size)};
    (void)::prlimit(p.pid, RLIMIT_CORE, &r, nullptr);
  }
  InstanceRecord rec{p.instance, p.spec.name, p.spec_hash, p.pid, p.pgid, p.start_ticks,
                     p.started_wall_ms, p.cgroup_path, p.log_path};
  if (Status saved = store_.save(rec); !saved) {
    // Without its record a restarted agent could not re-adopt the process: it would run
    // unwatched beside the one its successor starts. So it does not run at all; the
    // supervisor sees a start that failed (and retries with its backoff).
    return abortStart(p, saved.withContext("daemon '" + p.spec.name + "' not started: its instance record cannot be written"));
  }
  return Status::ok();
}

void ProcessRuntime::killGroup(Proc& p, int sig) {
  if (p.pgid > 0) ::kill(-p.pgid, sig);
  if (p.cgroup && sig == SIGKILL) killCgroupMembers(p.cgroup_groups);
}

Status ProcessRuntime::stop(const std::string& instance, int64_t grace_ms) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  Proc& p = *it->second;
  if (p.state != ProcessState::kRunning && p.state != ProcessState::kStopping) return Status::ok();
  if (grace_ms < 0) grace_ms = p.spec.stop_grace_ms;
  p.stop_requested = true;
  if (p.state == ProcessState::kStopping) {
    // A second stop shortens the grace.
    if (grace_ms == 0) killGroup(p, SIGKILL);
    return Status::ok();
  }
  p.state = ProcessState::kStopping;
  p.stop_deadline_ms = clock_.monotonicMs() + grace_ms;
  auto sig = spec::signalNumber(p.spec.stop_signal);
  killGroup(p, sig ? *sig : SIGTERM);
  killGroup(p, SIGCONT);  // a paused group must be able to act on the signal
  std::string name = instance;
  p.kill_timer = timers_.after(grace_ms, [this, name] {
    auto f = procs_.find(name);
    if (f == procs_.end()) return;
    f->second->kill_timer = 0;
    if (f->second->state == ProcessState::kStopping) killGroup(*f->second, SIGKILL);
  });
  return Status::ok();
}

}  // namespace meshos::runtime
