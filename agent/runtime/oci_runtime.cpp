// OciRuntime: create, start (the bundle and `<oci> run`), exits, stop, delete.
#include "agent/runtime/oci_runtime.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "agent/runtime/cgroups.h"
#include "agent/runtime/instance_files.h"
#include "agent/runtime/oci_box.h"
#include "agent/runtime/oci_config.h"
#include "agent/runtime/process_internal.h"

namespace meshos::runtime {

using detail::errnoText;
using detail::kDefaultPath;
using detail::rotateLogFile;

namespace {

constexpr const char* kSecretsMount = "/run/secrets";

// Whether the container can find its program: a path in the root filesystem, or a name
// in one of the container's PATH directories (symbolic links inside count as there).
bool programInRootfs(const std::string& rootfs, const std::string& program, const std::string& path) {
  struct stat st{};
  if (program.find('/') != std::string::npos) return ::lstat((rootfs + "/" + program).c_str(), &st) == 0;
  std::stringstream dirs(path);
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (!dir.empty() && ::lstat((rootfs + "/" + dir + "/" + program).c_str(), &st) == 0) return true;
  }
  return false;
}

// A limit whose controller this host lacks (planInstanceCgroups() names it unavailable) is
// left out of the container's configuration when limits are best-effort.
spec::DaemonSpec withoutUnavailableLimits(spec::DaemonSpec s, const CgroupLayout& layout) {
  auto missing = [&](CgroupController c) { return layout.home(c).version == 0; };
  if (missing(CgroupController::kMemory)) s.limits.memory_max.reset();
  if (missing(CgroupController::kCpu)) s.limits.cpu_max_millicores.reset();
  if (missing(CgroupController::kPids)) s.limits.pids_max.reset();
  return s;
}

}  // namespace

OciRuntime::OciRuntime(uv_loop_t* loop, Clock& clock, InstanceStore& store, OciRuntimeOptions options)
    : loop_(loop), clock_(clock), store_(store), options_(std::move(options)), timers_(loop) {}

OciRuntime::~OciRuntime() { close(); }

Status OciRuntime::init() {
  if (options_.data_dir.empty()) return Status::invalid("oci runtime: data_dir is not set");
  // Absolute: the OCI runtime is also run from other directories (exec, checks).
  std::error_code ec;
  options_.data_dir = std::filesystem::absolute(options_.data_dir, ec).lexically_normal().string();
  const std::string base = options_.data_dir + "/runtime";
  MESHOS_RETURN_IF_ERROR(makeDirs(base + "/logs"));
  MESHOS_RETURN_IF_ERROR(makeDirs(base + "/oci/bundles"));
  MESHOS_RETURN_IF_ERROR(makeDirs(base + "/oci/state"));
  // The container's init is re-parented to the agent once the OCI runtime detaches: as
  // its subreaper the agent reads its exit status.
  ::prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
  cgroup_layout_ = detectCgroupLayout(options_.cgroup_root);
  images_ = std::make_unique<OciImages>(loop_, timers_, base + "/oci/images");
  MESHOS_RETURN_IF_ERROR(images_->init());
  armLogCheck();
  const std::string binary = findExecutable(options_.oci);
  if (binary.empty()) {
    status_text_ = "no OCI runtime: '" + options_.oci + "' not found (install runc; [runtime] oci names another)";
    return Status::unavailable(status_text_);
  }
  cli_.configure(binary, base + "/oci/state");
  available_ = true;
  status_text_ = "containers with " + binary;
  return Status::ok();
}

void OciRuntime::close() {
  if (closed_) return;
  closed_ = true;
  timers_.close();
  for (auto& [name, b] : boxes_) {
    if (b->poll == nullptr) continue;
    detail::closePidfdWatch(b->poll, b->pidfd);
    b->poll = nullptr;
    b->pidfd = -1;
  }
}

void OciRuntime::armLogCheck() {
  if (options_.log_check_interval_ms <= 0 || log_timer_ != 0 || closed_) return;
  log_timer_ = timers_.after(options_.log_check_interval_ms, [this] {
    log_timer_ = 0;
    rotateLogsNow();
    if (!boxes_.empty()) armLogCheck();
  });
}

void OciRuntime::rotateLogsNow() {
  for (auto& [name, b] : boxes_) rotateLogFile(b->log_path, b->spec.logs);
}

Status OciRuntime::create(const std::string& instance, const spec::DaemonSpec& spec) {
  if (closed_) return Status::unavailable("runtime closed");
  if (boxes_.count(instance) != 0) return Status::exists("instance " + instance + " exists");
  MESHOS_RETURN_IF_ERROR(spec::validate(spec));
  const std::string who = "daemon '" + spec.name + "': ";
  if (spec.runtime != spec::RuntimeKind::kOci) return Status::invalid(who + "not a container (runtime = \"oci\")");
  if (!available_) return Status::invalid(who + status_text_);
  auto b = std::make_unique<Box>();
  b->instance = instance;
  b->spec = spec;
  b->spec_hash = specHash(spec);
  std::map<std::string, std::string> env{{"PATH", kDefaultPath}, {"HOME", "/"}, {"MESHOS_DAEMON", spec.name},
                                         {"MESHOS_INSTANCE", instance}};
  for (const auto& [k, v] : spec.env) env[k] = v;
  for (const auto& [k, v] : env) b->env.push_back(k + "=" + v);
  if (!spec.container.image.empty()) {
    // The layout and tag now; the root filesystem (and the user in it) once unpacked.
    auto unpacked = images_->unpacked(spec.container.image);
    if (!unpacked) return unpacked.status().withContext("daemon '" + spec.name + "': container.image");
    b->rootfs = *unpacked;
  } else {
    b->rootfs = spec.container.rootfs;
    struct stat st{};
    if (::stat(b->rootfs.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return Status::invalid(who + "container.rootfs: '" + b->rootfs + "' is not a directory");
    }
  }
  if (!b->rootfs.empty()) {
    auto user = containerUser(b->rootfs, spec.user);
    if (!user) return user.status().withContext("daemon '" + spec.name + "'");
    if (!programInRootfs(b->rootfs, spec.command[0], env["PATH"])) {
      return Status::invalid(who + "command: '" + spec.command[0] + "' is not in the container's root filesystem " + b->rootfs);
    }
  }
  b->cgroups = planInstanceCgroups(cgroup_layout_, spec.limits, options_.cgroup_parent, instance);
  if (!b->cgroups.unavailable.empty() && spec.limits.mode == spec::LimitsMode::kEnforce) {
    return Status::invalid(who + "limits cannot be enforced here: " + b->cgroups.unavailable.front());
  }
  for (const std::string& u : b->cgroups.unavailable) b->limit_warnings.push_back(u + " (not applied)");
  b->run_spec = withoutUnavailableLimits(spec, cgroup_layout_);
  b->bundle = options_.data_dir + "/runtime/oci/bundles/" + instance;
  b->log_path = options_.data_dir + "/runtime/logs/" + instance + ".log";
  boxes_[instance] = std::move(b);
  return Status::ok();
}

Status OciRuntime::prepare(Box& b) const {
  auto user = containerUser(b.rootfs, b.spec.user);
  if (!user) return user.status();
  std::tie(b.uid, b.gid) = *user;
  OciInstance oci;
  oci.rootfs = b.rootfs;
  oci.read_only_rootfs = !b.spec.container.writable_rootfs;
  oci.network = b.spec.container.network == spec::ContainerNetwork::kNone ? OciNetwork::kNone : OciNetwork::kHost;
  oci.hostname = b.spec.name;
  oci.uid = b.uid;
  oci.gid = b.gid;
  oci.env = b.env;
  oci.capabilities = b.spec.container.capabilities;
  if (!b.spec.secrets.files.empty()) {
    // Opened at each start (a rotation needs no agent restart), gone when it ends (onExit).
    auto dir = writeSecretFiles(options_.secrets_dir, open_secret_, b.instance, b.spec, b.uid, b.gid);
    if (!dir) return dir.status();
    oci.mounts.push_back(OciMount{kSecretsMount, *dir, true});
    oci.env.push_back(std::string("MESHOS_SECRETS_DIR=") + kSecretsMount);
  }
  oci.cgroups_path = "/" + options_.cgroup_parent + "/" + b.instance;
  auto config = ociConfig(b.run_spec, oci);
  if (!config) return config.status();
  MESHOS_RETURN_IF_ERROR(makeDirs(b.bundle));
  // Written whole, then renamed: `<oci> exec` reads it again for every exec and check.
  const std::string tmp = b.bundle + "/config.json.tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << config->dump();
    if (!out.flush()) return Status::io("write " + tmp + ": " + std::strerror(errno));
  }
  if (::rename(tmp.c_str(), (b.bundle + "/config.json").c_str()) != 0) return Status::io(errnoText("rename " + tmp));
  return Status::ok();
}

Status OciRuntime::start(const std::string& instance) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  Box& b = *it->second;
  if (b.state == ProcessState::kRunning || b.state == ProcessState::kStopping) {
    return Status::exists("instance " + instance + " is already running");
  }
  const bool image = !b.spec.container.image.empty();
  if (image) {
    auto unpacked = images_->unpacked(b.spec.container.image);
    if (!unpacked) return unpacked.status().withContext("daemon '" + b.spec.name + "' not started");
    b.rootfs = *unpacked;
  }
  if (!b.rootfs.empty()) {
    if (Status s = prepare(b); !s) return s.withContext("daemon '" + b.spec.name + "' not started");
  }
  armLogCheck();
  b.state = ProcessState::kRunning;
  b.pid = 0;
  b.start_ticks = 0;
  b.started_wall_ms = clock_.wallMs();
  b.adopted = false;
  b.stop_requested = false;
  b.exit.reset();
  b.launching = true;
  b.before_run = true;
  const uint64_t launch = ++b.launch;
  if (!b.rootfs.empty()) {
    proceed(instance);
    return Status::ok();
  }
  // The image is unpacked first (once; later starts find it in the store).
  images_->unpack(b.spec.container.image, [this, alive = std::weak_ptr<bool>(alive_), instance, launch](Result<std::string> rootfs) {
    if (alive.expired()) return;
    auto f = boxes_.find(instance);
    if (f == boxes_.end() || f->second->launch != launch) return;
    if (!rootfs) return failStart(instance, rootfs.status().message());
    f->second->rootfs = *rootfs;
    if (Status s = prepare(*f->second); !s) return failStart(instance, s.message());
    proceed(instance);
  });
  return Status::ok();
}

void OciRuntime::proceed(const std::string& instance) {
  // A container of this name left by an earlier run (its delete still going, or an agent
  // that died before recording it) is removed first: the name must be free.
  Box& b = *boxes_.at(instance);
  if (deleting_.count(instance) != 0) {
    b.waiting_for_delete = true;
  } else {
    launch(instance);
  }
}

void OciRuntime::failStart(const std::string& instance, const std::string& why) {
  Box& b = *boxes_.at(instance);
  b.launching = false;
  b.before_run = false;
  ExitInfo info;
  info.exit_code = 126;  // as a shell says of a program it cannot run
  info.detail = "container not started: " + why;
  onExit(instance, std::move(info));
}

void OciRuntime::launch(const std::string& instance) {
  Box& b = *boxes_.at(instance);
  if (cli_.hasState(containerId(instance))) {
    // A container of this name that nobody recorded (an agent died before it could): it
    // is deleted first, then this one runs (deleteContainer() calls back here).
    b.waiting_for_delete = true;
    return deleteContainer(instance);
  }
  b.waiting_for_delete = false;
  b.before_run = false;
  const uint64_t launch = b.launch;
  auto answered = [this, alive = std::weak_ptr<bool>(alive_), instance, launch](const OciCommandResult& r) {
    if (alive.expired()) return;
    auto f = boxes_.find(instance);
    if (f == boxes_.end() || f->second->launch != launch) {
      if (r.ok()) deleteContainer(instance);  // nobody wants it any more
      return;
    }
    onLaunched(instance, r);
  };
  const int log_fd = ::open(b.log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
  Status spawned = Status::unavailable(errnoText("open " + b.log_path));
  if (log_fd >= 0) {
    const std::vector<std::string> args{"run", "--detach", "--bundle", b.bundle, "--pid-file", b.bundle + "/pid",
                                        containerId(instance)};
    spawned = cli_.run(loop_, args, log_fd, b.bundle + "/oci.log", answered);
    ::close(log_fd);
  }
  if (!spawned) {
    (void)timers_.after(0, [answered, why = spawned.message()] { answered(OciCommandResult{-1, 0, why}); });
  }
}

void OciRuntime::onLaunched(const std::string& instance, const OciCommandResult& r) {
  Box& b = *boxes_.at(instance);
  b.launching = false;
  auto failed = [&](const std::string& why) { failStart(instance, why); };
  if (!r.ok()) return failed(r.error);
  std::ifstream pid_file(b.bundle + "/pid");
  int pid = 0;
  if (!(pid_file >> pid) || pid <= 0) return failed("no pid from " + cli_.binary());
  b.pid = pid;
  b.start_ticks = processStartTicks(pid);
  b.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (b.pidfd < 0) {
    deleteContainer(instance);
    return failed(errnoText("pidfd_open " + std::to_string(pid)));
  }
  const InstanceRecord rec{b.instance, b.spec.name, b.spec_hash, b.pid, b.pid, b.start_ticks,
                           b.started_wall_ms, b.cgroups.groups.empty() ? "" : b.cgroups.groups.front(),
                           b.log_path, "oci"};
  watch(b);
  if (Status saved = store_.save(rec); !saved) {
    // Without its record a restarted agent could not re-adopt it (process_runtime.cpp):
    // it does not run at all, and its end is reported as this failed start.
    b.failed_start = "its instance record cannot be written: " + saved.message();
    sendSignal(b, SIGKILL);
    return;
  }
  if (b.stop_requested) beginStop(b, b.stop_grace_ms);
}

void OciRuntime::watch(Box& b) {
  b.poll = new uv_poll_t;
  uv_poll_init(loop_, b.poll, b.pidfd);
  b.poll->data = this;
  uv_poll_start(b.poll, UV_READABLE, &OciRuntime::onPidfd);
}

void OciRuntime::onPidfd(uv_poll_t* handle, int, int) {
  auto* rt = static_cast<OciRuntime*>(handle->data);
  for (auto& [name, b] : rt->boxes_) {
    if (b->poll != handle) continue;
    siginfo_t si{};
    // Our child once the OCI runtime detached: its status is ours to read. An adopted
    // container is not (ECHILD): its exit code is unknown.
    const int rc = ::waitid(static_cast<idtype_t>(P_PIDFD), static_cast<id_t>(b->pidfd), &si, WEXITED | WNOHANG);
    if (rc == 0 && si.si_pid == 0) return;  // not yet
    ExitInfo info;
    if (rc != 0) {
      info.code_known = false;
      info.detail = b->adopted ? "exited (re-adopted: exit code unknown)" : "exited (exit code unknown)";
    } else if (si.si_code == CLD_EXITED) {
      info.exit_code = si.si_status;
      info.detail = "exited " + std::to_string(si.si_status);
    } else {
      info.exit_code = -1;
      info.term_signal = si.si_status;
      info.detail = "killed by signal " + std::to_string(si.si_status) + " (" + strsignal(si.si_status) + ")";
    }
    const int fd = b->pidfd;
    b->pidfd = -1;
    b->poll = nullptr;
    detail::closePidfdWatch(handle, fd);
    if (!b->failed_start.empty()) {
      info = ExitInfo{};
      info.exit_code = 126;
      info.detail = "container not started: " + b->failed_start;
      b->failed_start.clear();
    }
    rt->onExit(name, std::move(info));
    return;
  }
}

void OciRuntime::onExit(const std::string& instance, ExitInfo info) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return;
  Box& b = *it->second;
  if (b.kill_timer != 0) timers_.cancel(b.kill_timer);
  b.kill_timer = 0;
  info.stopped_by_us = b.stop_requested;
  // Read before `delete` removes the groups.
  const int64_t kills = memoryLimitKills(b.cgroups.oom_events_file);
  if (kills > 0 && info.term_signal == SIGKILL) {
    info.memory_limit_kill = true;
    info.detail = "killed at memory limit (memory_max " + std::to_string(b.spec.limits.memory_max.value_or(0)) +
                  " bytes): " + info.detail;
  }
  if (b.pid > 0) deleteContainer(instance);
  removeSecretFilesOf(options_.secrets_dir, instance);  // the plaintext lives as long as the container
  b.state = ProcessState::kExited;
  b.exit = info;
  (void)store_.erase(instance);
  if (exit_cb_) exit_cb_(instance, info);
}

void OciRuntime::sendSignal(Box& b, int sig) {
  if (b.pidfd >= 0) (void)::syscall(SYS_pidfd_send_signal, b.pidfd, sig, nullptr, 0);
}

void OciRuntime::pauseContainer(Box& b, bool pause) {
  b.paused = pause;
  (void)cli_.run(loop_, {pause ? "pause" : "resume", containerId(b.instance)}, -1, "", [](const OciCommandResult&) {});
}

void OciRuntime::beginStop(Box& b, int64_t grace_ms) {
  b.state = ProcessState::kStopping;
  auto sig = spec::signalNumber(b.spec.stop_signal);
  sendSignal(b, sig ? *sig : SIGTERM);
  // A paused container is thawed to act on it (the signal waits for it meanwhile).
  if (b.paused) pauseContainer(b, false);
  const std::string name = b.instance;
  b.kill_timer = timers_.after(grace_ms, [this, name] {
    auto f = boxes_.find(name);
    if (f == boxes_.end()) return;
    f->second->kill_timer = 0;
    if (f->second->state == ProcessState::kStopping) sendSignal(*f->second, SIGKILL);
  });
}

Status OciRuntime::stop(const std::string& instance, int64_t grace_ms) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  Box& b = *it->second;
  if (b.state != ProcessState::kRunning && b.state != ProcessState::kStopping) return Status::ok();
  if (grace_ms < 0) grace_ms = b.spec.stop_grace_ms;
  b.stop_requested = true;
  if (b.launching) {
    b.stop_grace_ms = grace_ms;  // begun once the container exists (onLaunched)
    if (b.before_run) {
      ++b.launch;  // never run: it ends here
      b.waiting_for_delete = false;
      b.before_run = false;
      b.launching = false;
      ExitInfo info;
      info.detail = "stopped before it started";
      (void)timers_.after(0, [this, instance, info] { onExit(instance, info); });
    }
    return Status::ok();
  }
  if (b.state == ProcessState::kStopping) {
    if (grace_ms == 0) sendSignal(b, SIGKILL);
    return Status::ok();
  }
  beginStop(b, grace_ms);
  return Status::ok();
}

void OciRuntime::deleteContainer(const std::string& instance) {
  if (!deleting_.insert(instance).second) return;
  Status s = cli_.run(loop_, {"delete", "--force", containerId(instance)}, -1, "", [this, alive = std::weak_ptr<bool>(alive_), instance](const OciCommandResult&) {
    if (alive.expired()) return;
    deleting_.erase(instance);
    auto f = boxes_.find(instance);
    if (f != boxes_.end() && f->second->waiting_for_delete && !cli_.hasState(containerId(instance))) {
      launch(instance);
    } else if (f != boxes_.end() && f->second->waiting_for_delete) {
      failStart(instance, "a container named " + containerId(instance) + " exists and cannot be deleted");
    }
  });
  if (!s) deleting_.erase(instance);
}

}  // namespace meshos::runtime
