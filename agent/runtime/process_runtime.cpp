#include "agent/runtime/process_runtime.h"

#include <dirent.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/magic.h>
#include <pwd.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
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

#include "probes/health_check.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace meshos::runtime {

namespace {

std::string errnoText(const std::string& what) { return what + ": " + std::strerror(errno); }

// Fields of /proc/<pid>/stat after the command name (which may hold spaces and parens).
std::vector<std::string> statFields(int pid) {
  char path[64];
  std::snprintf(path, sizeof(path), "/proc/%d/stat", pid);
  int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return {};
  char buf[1024];
  ssize_t n = ::read(fd, buf, sizeof(buf) - 1);
  ::close(fd);
  if (n <= 0) return {};
  std::string_view line(buf, static_cast<size_t>(n));
  auto close = line.rfind(')');
  if (close == std::string_view::npos || close + 2 > line.size()) return {};
  std::vector<std::string> f;
  f.reserve(52);
  size_t i = close + 2;
  while (i < line.size()) {
    size_t j = line.find_first_of(" \n", i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) f.emplace_back(line.substr(i, j - i));
    i = j + 1;
  }
  return f;  // f[0] is field 3 (state)
}

int64_t field(const std::vector<std::string>& f, int n) {  // n: 1-based field number
  size_t i = static_cast<size_t>(n - 3);
  if (i >= f.size()) return -1;
  try {
    return std::stoll(f[i]);
  } catch (const std::exception&) {
    return -1;
  }
}

// Pids whose process group is pgid (zombies included).
std::vector<int> groupMembers(int pgid) {
  std::vector<int> out;
  DIR* d = ::opendir("/proc");
  if (d == nullptr) return out;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    int pid = std::atoi(e->d_name);
    auto f = statFields(pid);
    if (!f.empty() && field(f, 5) == pgid) out.push_back(pid);
  }
  ::closedir(d);
  return out;
}

bool writeFile(const std::string& path, const std::string& data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = ::write(fd, data.data(), data.size());
  ::close(fd);
  return n == static_cast<ssize_t>(data.size());
}

// 'text' for /bin/sh, whatever text holds.
std::string shellQuote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

// The exit code the shim recorded; nullopt when there is none (or it is unreadable).
std::optional<int> readExitFile(const std::string& path) {
  if (path.empty()) return std::nullopt;
  std::ifstream in(path);
  int rc = -1;
  if (!(in >> rc) || rc < 0 || rc > 255) return std::nullopt;
  return rc;
}

std::string readSmallFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

int64_t fileSize(const std::string& path) {
  struct stat st{};
  if (::stat(path.c_str(), &st) != 0) return -1;
  return st.st_size;
}

std::string readRange(const std::string& path, int64_t offset, int64_t max) {
  std::string out;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return out;
  out.resize(static_cast<size_t>(max));
  ssize_t n = ::pread(fd, out.data(), out.size(), offset);
  ::close(fd);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

std::string signalName(int sig) {
  const char* d = sigabbrev_np(sig);
  return d != nullptr ? std::string("SIG") + d : std::to_string(sig);
}

constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

}  // namespace

int64_t processStartTicks(int pid) {
  auto f = statFields(pid);
  if (f.empty()) return -1;
  return field(f, 22);
}

struct ProcessRuntime::Proc {
  std::string instance;
  spec::DaemonSpec spec;
  std::string spec_hash;
  ProcessState state = ProcessState::kCreated;
  Handle* handle = nullptr;  // our child; freed in its close callback
  uv_poll_t* poll = nullptr;  // adopted: pidfd watcher; freed in its close callback
  int pidfd = -1;
  int pid = 0;
  int pgid = 0;
  int64_t start_ticks = 0;
  int64_t started_wall_ms = 0;
  bool adopted = false;
  bool cgroup = false;
  std::string cgroup_path;
  std::string log_path;
  std::string exit_file;  // jobs and cron runs: where the shim records the exit code
  std::string exe;
  std::string cwd;
  std::vector<std::string> env;
  std::optional<uint32_t> uid;
  std::optional<uint32_t> gid;
  bool stop_requested = false;
  bool start_aborted = false;  // killed right after its spawn: its exit is nobody's news
  int64_t stop_deadline_ms = 0;  // monotonic: when the stop's grace period ends
  TimerId kill_timer = 0;
  std::optional<ExitInfo> exit;
};

struct ProcessRuntime::Handle {
  uv_process_t proc;
  ProcessRuntime* rt;
  std::string instance;
};

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
  // cgroup v2: the root must be a cgroup2 mount we can create groups in.
  cgroups_enabled_ = false;
  if (options_.cgroup_root.empty()) {
    cgroup_status_ = "cgroups disabled by configuration";
  } else {
    struct statfs sf{};
    if (::statfs(options_.cgroup_root.c_str(), &sf) != 0) {
      cgroup_status_ = "cgroups not used: " + errnoText(options_.cgroup_root);
    } else if (static_cast<uint64_t>(sf.f_type) != CGROUP2_SUPER_MAGIC) {
      cgroup_status_ = "cgroups not used: " + options_.cgroup_root + " is not a cgroup2 mount";
    } else {
      // Each level of <cgroup_parent> is created (when missing) and delegates the
      // controllers we set to the next one; a delegation failure only loses those limits.
      cgroup_base_ = options_.cgroup_root;
      (void)writeFile(cgroup_base_ + "/cgroup.subtree_control", "+memory +cpu +pids");
      std::string failed;
      std::stringstream segments(options_.cgroup_parent);
      for (std::string seg; std::getline(segments, seg, '/');) {
        cgroup_base_ += "/" + seg;
        if (::mkdir(cgroup_base_.c_str(), 0755) != 0 && errno != EEXIST) {
          failed = errnoText("mkdir " + cgroup_base_);
          break;
        }
        (void)writeFile(cgroup_base_ + "/cgroup.subtree_control", "+memory +cpu +pids");
      }
      if (!failed.empty()) {
        cgroup_status_ = "cgroups not used: " + failed;
      } else {
        cgroups_enabled_ = true;
        cgroup_status_ = "cgroup v2 at " + cgroup_base_ + " (controllers: " +
                         readSmallFile(cgroup_base_ + "/cgroup.subtree_control") + ")";
        while (!cgroup_status_.empty() && cgroup_status_.back() == '\n') cgroup_status_.pop_back();
      }
    }
  }
  if (options_.log_check_interval_ms > 0) {
    // A plain self-rescheduling timer.
    struct Rearm {
      static void arm(ProcessRuntime* rt) {
        rt->log_timer_ = rt->timers_.after(rt->options_.log_check_interval_ms, [rt] {
          rt->rotateLogsNow();
          rt->reapStrays();
          arm(rt);
        });
      }
    };
    Rearm::arm(this);
  }
  return Status::ok();
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
      p->poll->data = reinterpret_cast<void*>(static_cast<intptr_t>(p->pidfd));
      uv_close(reinterpret_cast<uv_handle_t*>(p->poll), [](uv_handle_t* h) {
        ::close(static_cast<int>(reinterpret_cast<intptr_t>(h->data)));
        delete reinterpret_cast<uv_poll_t*>(h);
      });
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
    std::stringstream path(search_path);
    std::string dir;
    while (std::getline(path, dir, ':')) {
      std::string cand = (dir.empty() ? "." : dir) + "/" + prog;
      struct stat st{};
      if (::stat(cand.c_str(), &st) == 0 && S_ISREG(st.st_mode) && ::access(cand.c_str(), X_OK) == 0) {
        p->exe = cand;
        break;
      }
    }
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
  // Prepared before the spawn; the child joins it itself before exec (see start()), so
  // nothing it forks can be outside it.
  p.cgroup = false;
  p.cgroup_path.clear();
  if (!cgroups_enabled_) return Status::ok();
  const std::string path = cgroup_base_ + "/" + p.instance;
  if (::mkdir(path.c_str(), 0755) != 0 && errno != EEXIST) return Status::io(errnoText("mkdir " + path));
  const auto& l = p.spec.limits;
  if (l.memory_max) (void)writeFile(path + "/memory.max", std::to_string(*l.memory_max));
  if (l.cpu_max_millicores) {
    (void)writeFile(path + "/cpu.max", std::to_string(*l.cpu_max_millicores * 100) + " 100000");
  }
  if (l.pids_max) (void)writeFile(path + "/pids.max", std::to_string(*l.pids_max));
  p.cgroup = true;
  p.cgroup_path = path;
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

Status ProcessRuntime::start(const std::string& instance) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  Proc& p = *it->second;
  if (p.state == ProcessState::kRunning || p.state == ProcessState::kStopping) {
    return Status::exists("instance " + instance + " is already running");
  }
  int log_fd = ::open(p.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  if (log_fd < 0) return Status::io(errnoText("open " + p.log_path));
  if (p.uid) (void)::fchown(log_fd, *p.uid, p.gid.value_or(0));
  if (Status cg = setupCgroup(p); !cg) p.cgroup = false;  // degrade: run without a cgroup
  // uv_spawn has no pre-exec hook. When the child must join a cgroup or lower its limits
  // before it runs, a /bin/sh shim does that and then execs the daemon (same pid): joining
  // the cgroup after the spawn would race with the daemon's first fork, and prlimit on a
  // process of another user needs CAP_SYS_RESOURCE.
  const std::string procs_file = p.cgroup ? p.cgroup_path + "/cgroup.procs" : "-";
  std::string script;
  if (p.cgroup) {
    script += "echo 0 > \"$0\" || { echo \"meshos: cannot join cgroup $0\" >&2; exit 126; }; ";
  }
  if (p.spec.limits.open_files) {
    script += "ulimit -n " + std::to_string(*p.spec.limits.open_files) +
              " || { echo 'meshos: cannot set the open files limit' >&2; exit 126; }; ";
  }
  if (p.spec.limits.core_size && *p.spec.limits.core_size == 0) {
    script += "ulimit -c 0 || exit 126; ";
  }
  // A run-to-completion process (job, cron run) runs under the shim, which records its exit
  // code in exit_file: an agent that restarts while it runs re-adopts it (not its parent
  // any more) and still learns its outcome. A service is exec'd (same pid, no extra shell).
  const bool record_exit = !p.exit_file.empty();
  const bool shim = !script.empty() || record_exit;
  if (record_exit) {
    (void)::unlink(p.exit_file.c_str());
    // A stop signal reaches the whole group, the shim too, which then ends at once
    // without recording anything; the run still gets its grace period (see onExit).
    script += "\"$@\"; rc=$?; echo $rc > " + shellQuote(p.exit_file) + "; exit $rc";
  } else {
    script += "exec \"$@\"";
  }
  static const std::string kShim = "/bin/sh";
  static const std::string kShimArg0 = "meshos-shim";
  static const std::string kShimDashC = "-c";
  std::vector<char*> args;
  if (shim) {
    args.push_back(const_cast<char*>(kShimArg0.c_str()));
    args.push_back(const_cast<char*>(kShimDashC.c_str()));
    args.push_back(const_cast<char*>(script.c_str()));
    args.push_back(const_cast<char*>(procs_file.c_str()));
  }
  args.push_back(const_cast<char*>(p.exe.c_str()));
  for (size_t i = 1; i < p.spec.command.size(); ++i) {
    args.push_back(const_cast<char*>(p.spec.command[i].c_str()));
  }
  args.push_back(nullptr);
  std::vector<char*> envp;
  for (const auto& e : p.env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);
  uv_stdio_container_t stdio[3];
  stdio[0].flags = UV_IGNORE;
  stdio[1].flags = UV_INHERIT_FD;
  stdio[1].data.fd = log_fd;
  stdio[2].flags = UV_INHERIT_FD;
  stdio[2].data.fd = log_fd;
  uv_process_options_t opts{};
  opts.file = shim ? kShim.c_str() : p.exe.c_str();
  opts.args = args.data();
  opts.env = envp.data();
  opts.cwd = p.cwd.c_str();
  opts.stdio = stdio;
  opts.stdio_count = 3;
  opts.flags = UV_PROCESS_DETACHED;
  if (p.uid) {
    opts.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
    opts.uid = *p.uid;
    opts.gid = *p.gid;
  }
  opts.exit_cb = [](uv_process_t* proc, int64_t status, int sig) {
    auto* h = static_cast<Handle*>(proc->data);
    ProcessRuntime* rt = h->rt;
    std::string instance = h->instance;
    uv_close(reinterpret_cast<uv_handle_t*>(proc),
             [](uv_handle_t* hh) { delete static_cast<Handle*>(hh->data); });
    if (rt == nullptr) return;
    auto found = rt->procs_.find(instance);
    if (found != rt->procs_.end()) found->second->handle = nullptr;
    ExitInfo info;
    info.exit_code = sig != 0 ? -1 : static_cast<int>(status);
    info.term_signal = sig;
    info.detail = sig != 0 ? "killed by " + signalName(sig) : "exited " + std::to_string(status);
    rt->onExit(instance, std::move(info));
  };
  auto* h = new Handle();
  h->rt = this;
  h->instance = instance;
  h->proc.data = h;
  int rc = uv_spawn(loop_, &h->proc, &opts);
  ::close(log_fd);
  if (rc != 0) {
    h->rt = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&h->proc),
             [](uv_handle_t* hh) { delete static_cast<Handle*>(hh->data); });
    removeCgroup(p.cgroup_path);
    if (rc == UV_ENOENT && p.spec.workdir.empty()) {
      // The default workdir (made once, then assumed) may have been deleted: made again
      // for the next attempt (the restart policy's).
      workdirs_made_.erase(p.cwd);
      if (makeDirs(p.cwd)) workdirs_made_.insert(p.cwd);
    }
    return Status::unavailable("daemon '" + p.spec.name + "': spawn " + p.exe + ": " +
                               uv_strerror(rc));
  }
  p.handle = h;
  p.pid = h->proc.pid;
  p.pgid = p.pid;  // DETACHED: setsid() made it a session and group leader
  p.start_ticks = processStartTicks(p.pid);
  p.started_wall_ms = clock_.wallMs();
  p.adopted = false;
  p.stop_requested = false;
  p.stop_deadline_ms = 0;
  p.exit.reset();
  p.state = ProcessState::kRunning;
  // A non-zero core size: from outside (the shell's ulimit units differ between shells).
  if (p.spec.limits.core_size && *p.spec.limits.core_size > 0) {
    rlimit r{static_cast<rlim_t>(*p.spec.limits.core_size),
             static_cast<rlim_t>(*p.spec.limits.core_size)};
    (void)::prlimit(p.pid, RLIMIT_CORE, &r, nullptr);
  }
  InstanceRecord rec{p.instance, p.spec.name, p.spec_hash, p.pid, p.pgid, p.start_ticks,
                     p.started_wall_ms, p.cgroup_path, p.log_path};
  if (Status saved = store_.save(rec); !saved) {
    // Without its record a restarted agent could not re-adopt the process: it would run
    // unwatched beside the one its successor starts. So it does not run at all; the
    // supervisor sees a start that failed (and retries with its backoff).
    p.start_aborted = true;
    p.stop_requested = true;
    p.state = ProcessState::kStopping;
    ::kill(-p.pgid, SIGKILL);
    return saved.withContext("daemon '" + p.spec.name + "' not started: its instance record cannot be written");
  }
  return Status::ok();
}

void ProcessRuntime::killGroup(Proc& p, int sig) {
  if (p.pgid > 0) ::kill(-p.pgid, sig);
  if (p.cgroup && sig == SIGKILL) (void)writeFile(p.cgroup_path + "/cgroup.kill", "1");
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

void ProcessRuntime::onExit(const std::string& instance, ExitInfo info) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return;
  Proc& p = *it->second;
  if (p.kill_timer != 0) timers_.cancel(p.kill_timer);
  p.kill_timer = 0;
  info.stopped_by_us = p.stop_requested;
  if (p.pgid > 0 && p.stop_requested && !p.exit_file.empty() && p.stop_deadline_ms > 0 &&
      clock_.monotonicMs() < p.stop_deadline_ms) {
    // A job or cron run being stopped: its shim (the main process) ended at the stop
    // signal, the run itself may still be finishing. It keeps the rest of its grace
    // period; then what is left of the group is killed (and reaped, as orphans).
    const int pgid = p.pgid;
    const std::string cgroup = p.cgroup ? p.cgroup_path : "";
    const int64_t left = p.stop_deadline_ms - clock_.monotonicMs();
    (void)timers_.after(left, [this, pgid, cgroup] {
      if (!cgroup.empty()) {
        (void)writeFile(cgroup + "/cgroup.kill", "1");
        removeCgroup(cgroup);
      }
      const auto members = groupMembers(pgid);
      if (members.empty()) return;
      ::kill(-pgid, SIGKILL);
      const int64_t deadline = clock_.monotonicMs() + 5'000;
      for (int pid : members) orphans_[pid] = deadline;
      reapOrphans();
    });
    const int64_t deadline = p.stop_deadline_ms + 5'000;
    for (int pid : groupMembers(pgid)) orphans_[pid] = deadline;
    reapOrphans();
  } else if (p.pgid > 0) {
    // Whatever is left of the group goes with its leader; as subreaper we reap it.
    ::kill(-p.pgid, SIGKILL);
    if (p.cgroup) (void)writeFile(p.cgroup_path + "/cgroup.kill", "1");
    const int64_t deadline = clock_.monotonicMs() + 5'000;
    for (int pid : groupMembers(p.pgid)) orphans_[pid] = deadline;
    reapOrphans();
  }
  removeCgroup(p.cgroup_path);
  if (!p.exit_file.empty()) (void)::unlink(p.exit_file.c_str());
  if (p.start_aborted) {
    p.state = ProcessState::kExited;
    p.exit = info;
    p.start_aborted = false;
    return;
  }
  p.state = ProcessState::kExited;
  p.exit = info;
  (void)store_.erase(instance);
  if (exit_cb_) exit_cb_(instance, info);
}

void ProcessRuntime::reapOrphans() {
  const int64_t now = clock_.monotonicMs();
  for (auto it = orphans_.begin(); it != orphans_.end();) {
    int status = 0;
    pid_t r = ::waitpid(it->first, &status, WNOHANG);
    // ECHILD: not (yet) ours. A grandchild is re-parented to us only once its own parent
    // is gone, so keep trying while it exists, until the deadline.
    const bool gone = r < 0 && errno == ECHILD && processStartTicks(it->first) < 0;
    if (r == it->first || gone || now > it->second) {
      it = orphans_.erase(it);  // reaped, gone, or given up on (another reaper has it)
    } else {
      ++it;
    }
  }
  for (auto it = cgroups_to_remove_.begin(); it != cgroups_to_remove_.end();) {
    if (::rmdir(it->first.c_str()) == 0 || errno == ENOENT || now > it->second) {
      it = cgroups_to_remove_.erase(it);
    } else {
      ++it;
    }
  }
  if ((!orphans_.empty() || !cgroups_to_remove_.empty()) && reap_timer_ == 0 && !closed_) {
    reap_timer_ = timers_.after(10, [this] {
      reap_timer_ = 0;
      reapOrphans();
    });
  }
}

void ProcessRuntime::reapStrays() {
  // Grandchildren that a running daemon double-forked were re-parented to us (subreaper);
  // when they exit they must be reaped here, or they stay zombies until the group is gone.
  // Only zombies of a known daemon group that are not its main process (libuv reaps those).
  std::map<int, int> main_by_pgid;
  for (const auto& [n, p] : procs_) {
    if (p->state == ProcessState::kRunning || p->state == ProcessState::kStopping) {
      main_by_pgid[p->pgid] = p->pid;
    }
  }
  if (main_by_pgid.empty()) return;
  DIR* d = ::opendir("/proc/self/task");
  if (d == nullptr) return;
  std::vector<int> children;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] == '.') continue;
    std::ifstream in(std::string("/proc/self/task/") + e->d_name + "/children");
    int pid = 0;
    while (in >> pid) children.push_back(pid);
  }
  ::closedir(d);
  std::set<int> mains;
  for (const auto& [pg, pid] : main_by_pgid) mains.insert(pid);
  for (int pid : children) {
    if (mains.count(pid) != 0) continue;  // a daemon's main process: libuv reaps it
    auto f = statFields(pid);
    if (f.empty() || f[0] != "Z") continue;
    auto m = main_by_pgid.find(static_cast<int>(field(f, 5)));
    if (m == main_by_pgid.end() || m->second == pid) continue;
    int status = 0;
    ::waitpid(pid, &status, WNOHANG);
  }
}

Status ProcessRuntime::remove(const std::string& instance) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  Proc& p = *it->second;
  if (p.state == ProcessState::kRunning || p.state == ProcessState::kStopping) {
    return Status::invalid("instance " + instance + " is still running; stop it first");
  }
  removeCgroup(p.cgroup_path);
  // A record exists only from a start to the exit (onExit erases it); an instance that
  // never ran (apply's pre-check, a created one) has none: no syscall for it.
  if (p.pid != 0) (void)store_.erase(instance);
  procs_.erase(it);
  return Status::ok();
}

Status ProcessRuntime::signal(const std::string& instance, int sig) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  Proc& p = *it->second;
  if (p.state != ProcessState::kRunning && p.state != ProcessState::kStopping) {
    return Status::invalid("instance " + instance + " is not running");
  }
  if (::kill(-p.pgid, sig) != 0) return Status::io(errnoText("kill"));
  return Status::ok();
}

Result<ProcessStatus> ProcessRuntime::status(const std::string& instance) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const Proc& p = *it->second;
  ProcessStatus s;
  s.instance = p.instance;
  s.daemon = p.spec.name;
  s.state = p.state;
  s.pid = p.pid;
  s.pgid = p.pgid;
  s.start_ticks = p.start_ticks;
  s.started_wall_ms = p.started_wall_ms;
  s.adopted = p.adopted;
  s.cgroup = p.cgroup;
  s.cgroup_path = p.cgroup_path;
  s.log_path = p.log_path;
  s.exit = p.exit;
  return s;
}

Result<LogChunk> ProcessRuntime::logs(const std::string& instance, const LogQuery& q) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const std::string& path = it->second->log_path;
  const int64_t max = std::max<int64_t>(1, std::min<int64_t>(q.max_bytes, 16 << 20));
  LogChunk c;
  int64_t size = std::max<int64_t>(0, fileSize(path));
  if (q.tail_lines >= 0) {
    // The last N lines: from the current file, then the newest rotated one if needed.
    std::string data = readRange(path, std::max<int64_t>(0, size - max), std::min(size, max));
    auto countLines = [](const std::string& d) {
      return static_cast<int64_t>(std::count(d.begin(), d.end(), '\n'));
    };
    if (countLines(data) < q.tail_lines && static_cast<int64_t>(data.size()) < max) {
      const std::string older = path + ".1";
      int64_t osize = std::max<int64_t>(0, fileSize(older));
      int64_t room = max - static_cast<int64_t>(data.size());
      data = readRange(older, std::max<int64_t>(0, osize - room), std::min(osize, room)) + data;
    }
    // Keep the last tail_lines lines (a final unterminated line counts as one).
    int64_t lines = 0;
    size_t cut = 0;
    for (size_t i = data.size(); i-- > 0;) {
      if (data[i] == '\n' && i != data.size() - 1) {
        if (++lines == q.tail_lines) {
          cut = i + 1;
          break;
        }
      }
    }
    if (q.tail_lines == 0) cut = data.size();
    c.data = data.substr(cut);
    c.next_offset = size;
    return c;
  }
  int64_t offset = q.offset;
  if (offset > size) {
    c.rotated = true;
    offset = 0;
  }
  c.data = readRange(path, offset, std::min(max, size - offset));
  c.next_offset = offset + static_cast<int64_t>(c.data.size());
  return c;
}

void ProcessRuntime::rotateLogsNow() {
  for (auto& [name, pp] : procs_) {
    Proc& p = *pp;
    int64_t size = fileSize(p.log_path);
    if (size < 0 || size <= p.spec.logs.max_bytes) continue;
    const int64_t keep = p.spec.logs.keep_files;
    if (keep > 0) {
      ::unlink((p.log_path + "." + std::to_string(keep)).c_str());
      for (int64_t k = keep - 1; k >= 1; --k) {
        ::rename((p.log_path + "." + std::to_string(k)).c_str(),
                 (p.log_path + "." + std::to_string(k + 1)).c_str());
      }
      // Copy then truncate: the daemon keeps its O_APPEND descriptor to the current file.
      int in = ::open(p.log_path.c_str(), O_RDONLY | O_CLOEXEC);
      int out = ::open((p.log_path + ".1").c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
      if (in >= 0 && out >= 0) {
        loff_t remaining = size;
        while (remaining > 0) {
          ssize_t n = ::copy_file_range(in, nullptr, out, nullptr, static_cast<size_t>(remaining), 0);
          if (n <= 0) break;
          remaining -= n;
        }
      }
      if (in >= 0) ::close(in);
      if (out >= 0) ::close(out);
    }
    (void)::truncate(p.log_path.c_str(), 0);
  }
}

Status ProcessRuntime::exec(const std::string& instance, std::vector<std::string> argv,
                            int64_t timeout_ms, size_t max_output,
                            std::function<void(Result<ExecResult>)> done) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  if (argv.empty()) return Status::invalid("exec: empty command");
  const Proc& p = *it->second;
  const probes::CommandContext ctx{p.env, p.cwd, p.uid, p.gid};
  return probes::runCommand(loop_, argv, ctx, timeout_ms, max_output,
                            [done = std::move(done)](const probes::CommandResult& r) {
                              ExecResult e;
                              e.exit_code = r.exit_code;
                              e.term_signal = r.term_signal;
                              e.output = r.output;
                              e.truncated = r.truncated;
                              e.timed_out = r.timed_out;
                              done(e);
                            });
}

Result<ResourceStats> ProcessRuntime::stats(const std::string& instance) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const Proc& p = *it->second;
  if (p.state != ProcessState::kRunning && p.state != ProcessState::kStopping) {
    return Status::unavailable("instance " + instance + " is not running");
  }
  ResourceStats s;
  auto f = statFields(p.pid);
  if (f.empty()) return Status::unavailable("no /proc entry for pid " + std::to_string(p.pid));
  const int64_t tick = ::sysconf(_SC_CLK_TCK);
  const int64_t page = ::sysconf(_SC_PAGESIZE);
  s.cpu_user_ms = field(f, 14) * 1000 / tick;
  s.cpu_system_ms = field(f, 15) * 1000 / tick;
  s.rss_bytes = field(f, 24) * page;
  if (DIR* d = ::opendir(("/proc/" + std::to_string(p.pid) + "/fd").c_str())) {
    while (dirent* e = ::readdir(d)) {
      if (e->d_name[0] != '.') ++s.open_fds;
    }
    ::closedir(d);
  }
  s.processes = 1;
  if (p.cgroup) {
    std::string procs = readSmallFile(p.cgroup_path + "/cgroup.procs");
    s.processes = static_cast<int64_t>(std::count(procs.begin(), procs.end(), '\n'));
    try {
      s.cgroup_memory_bytes = std::stoll(readSmallFile(p.cgroup_path + "/memory.current"));
    } catch (const std::exception&) {
    }
    std::istringstream cpu(readSmallFile(p.cgroup_path + "/cpu.stat"));
    std::string k;
    int64_t v = 0;
    while (cpu >> k >> v) {
      if (k == "usage_usec") s.cgroup_cpu_usage_us = v;
    }
  }
  return s;
}

Status ProcessRuntime::adopt(const InstanceRecord& rec, const spec::DaemonSpec& spec) {
  if (procs_.count(rec.instance) != 0) return Status::exists("instance " + rec.instance + " exists");
  const std::string exit_file = exitFileFor(rec.instance, spec);
  auto gone = [&](const std::string& why) {
    // A job or cron run whose shim recorded its exit code: adopted as having exited, its
    // outcome reported through the exit callback on the next loop turn.
    if (auto rc = readExitFile(exit_file)) {
      (void)store_.erase(rec.instance);
      auto p = std::make_unique<Proc>();
      p->instance = rec.instance;
      p->spec = spec;
      p->spec_hash = rec.spec_hash;
      p->pid = rec.pid;
      p->start_ticks = rec.start_ticks;
      p->started_wall_ms = rec.started_wall_ms;
      p->adopted = true;
      p->log_path = rec.log_path;
      p->exit_file = exit_file;
      p->exe = spec.command.empty() ? "" : spec.command[0];
      (void)fillEnvironment(*p, rec.instance, spec);
      p->state = ProcessState::kRunning;  // until the exit is reported
      procs_[rec.instance] = std::move(p);
      const std::string name = rec.instance;
      const int code = *rc;
      (void)timers_.after(0, [this, name, code] {
        ExitInfo info;
        info.code_known = true;
        info.exit_code = code;
        info.detail = "exited " + std::to_string(code) + " while the agent was down";
        onExit(name, std::move(info));
      });
      return Status::ok();
    }
    (void)::unlink(exit_file.c_str());
    (void)store_.erase(rec.instance);
    return Status::notFound("instance " + rec.instance + " (pid " + std::to_string(rec.pid) +
                            "): " + why);
  };
  if (processStartTicks(rec.pid) != rec.start_ticks) return gone("no longer running");
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, rec.pid, 0));
  if (pidfd < 0) return gone(errnoText("pidfd_open"));
  // Checked again with the pidfd held: the pid cannot be recycled under us any more.
  if (processStartTicks(rec.pid) != rec.start_ticks) {
    ::close(pidfd);
    return gone("no longer running (pid reused)");
  }
  // A zombie (exited but not reaped) is not running.
  auto f = statFields(rec.pid);
  if (!f.empty() && f[0] == "Z") {
    siginfo_t si{};
    ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG);
    ::close(pidfd);
    return gone("exited while the agent was down");
  }
  auto p = std::make_unique<Proc>();
  p->instance = rec.instance;
  p->spec = spec;
  p->spec_hash = rec.spec_hash;
  p->pid = rec.pid;
  p->pgid = rec.pgid;
  p->start_ticks = rec.start_ticks;
  p->started_wall_ms = rec.started_wall_ms;
  p->adopted = true;
  p->cgroup = !rec.cgroup_path.empty();
  p->cgroup_path = rec.cgroup_path;
  p->log_path = rec.log_path;
  p->exit_file = exit_file;
  p->state = ProcessState::kRunning;
  p->pidfd = pidfd;
  // The same environment, working directory and user as a process this agent starts, for
  // exec checks and operator exec (a user that vanished since: run as the agent).
  (void)fillEnvironment(*p, rec.instance, spec);
  p->exe = spec.command[0];
  auto* poll = new uv_poll_t();
  uv_poll_init(loop_, poll, pidfd);
  poll->data = this;
  p->poll = poll;
  std::string name = rec.instance;
  procs_[name] = std::move(p);
  uv_poll_start(poll, UV_READABLE, [](uv_poll_t* h, int, int) {
    auto* rt = static_cast<ProcessRuntime*>(h->data);
    // Find the instance that owns this poll handle.
    for (auto& [n, pp] : rt->procs_) {
      if (pp->poll != h) continue;
      Proc& p = *pp;
      ExitInfo info;
      siginfo_t si{};
      // We can learn the code only if it is still our child (same agent process).
      if (::waitid(P_PIDFD, static_cast<id_t>(p.pidfd), &si, WEXITED | WNOHANG) == 0 &&
          si.si_pid != 0) {
        info.code_known = true;
        if (si.si_code == CLD_EXITED) {
          info.exit_code = si.si_status;
          info.detail = "exited " + std::to_string(si.si_status);
        } else {
          info.term_signal = si.si_status;
          info.detail = "killed by " + signalName(si.si_status);
        }
      } else if (auto rc = readExitFile(p.exit_file)) {
        // Not our child, but a job's shim recorded the code.
        info.code_known = true;
        info.exit_code = *rc;
        info.detail = "exited " + std::to_string(*rc);
      } else {
        info.code_known = false;
        info.detail = "exit code unknown (re-adopted process, not our child)";
      }
      int fd = p.pidfd;
      p.pidfd = -1;
      p.poll = nullptr;
      h->data = reinterpret_cast<void*>(static_cast<intptr_t>(fd));
      uv_close(reinterpret_cast<uv_handle_t*>(h), [](uv_handle_t* hh) {
        ::close(static_cast<int>(reinterpret_cast<intptr_t>(hh->data)));
        delete reinterpret_cast<uv_poll_t*>(hh);
      });
      rt->onExit(n, std::move(info));
      return;
    }
  });
  return Status::ok();
}

}  // namespace meshos::runtime
