// OciRuntime: status, logs, exec and checks inside, stats, re-adoption, remove.
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "agent/runtime/instance_files.h"
#include "agent/runtime/oci_box.h"
#include "agent/runtime/process_internal.h"
#include "probes/health_check.h"

namespace meshos::runtime {

using namespace detail;

namespace {

// The OCI runtime itself runs on the host, as the agent; what it runs is inside.
probes::CommandContext hostContext() {
  return probes::CommandContext{{std::string("PATH=") + kDefaultPath}, "/", {}, {}};
}

}  // namespace

std::vector<std::string> OciRuntime::instances() const {
  std::vector<std::string> out;
  for (const auto& [n, b] : boxes_) out.push_back(n);
  return out;
}

Status OciRuntime::remove(const std::string& instance) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  if (it->second->state == ProcessState::kRunning || it->second->state == ProcessState::kStopping) {
    return Status::invalid("instance " + instance + " is still running; stop it first");
  }
  std::error_code ec;
  std::filesystem::remove_all(it->second->bundle, ec);
  boxes_.erase(it);
  return Status::ok();
}

Status OciRuntime::signal(const std::string& instance, int sig) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  Box& b = *it->second;
  if (b.pidfd < 0) return Status::unavailable("instance " + instance + " is not running");
  if (sig == SIGSTOP || sig == SIGCONT) {
    // A pause is the whole container's: runc freezes its cgroup (a SIGSTOP would stop
    // pid 1 alone).
    pauseContainer(b, sig == SIGSTOP);
    return Status::ok();
  }
  sendSignal(b, sig);
  return Status::ok();
}

Result<ProcessStatus> OciRuntime::status(const std::string& instance) const {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  const Box& b = *it->second;
  ProcessStatus s;
  s.instance = instance;
  s.daemon = b.spec.name;
  s.state = b.state;
  s.pid = b.pid;
  s.pgid = b.pid;
  s.start_ticks = b.start_ticks;
  s.started_wall_ms = b.started_wall_ms;
  s.adopted = b.adopted;
  s.cgroup = !b.cgroups.groups.empty();
  if (s.cgroup) s.cgroup_path = b.cgroups.groups.front();
  s.limit_warnings = b.limit_warnings;
  s.log_path = b.log_path;
  s.exit = b.exit;
  return s;
}

Result<LogChunk> OciRuntime::logs(const std::string& instance, const LogQuery& q) const {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  return readLogChunk(it->second->log_path, q);
}

Result<ResourceStats> OciRuntime::stats(const std::string& instance) const {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  const Box& b = *it->second;
  if (b.pid <= 0 || (b.state != ProcessState::kRunning && b.state != ProcessState::kStopping)) {
    return Status::unavailable("instance " + instance + " is not running");
  }
  const std::string first = b.cgroups.groups.empty() ? "" : b.cgroups.groups.front();
  return readResourceStats(b.pid, StatsFiles{first, b.cgroups.memory_usage_file, first});
}

Result<probes::CommandContext> OciRuntime::commandContext(const std::string& instance) const {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  const Box& b = *it->second;
  return probes::CommandContext{b.env, b.spec.workdir.empty() ? "/" : b.spec.workdir, b.uid, b.gid};
}

std::vector<std::string> OciRuntime::execArgv(const Box& b, const std::vector<std::string>& argv) const {
  // The process gets the container's environment, directory and user from config.json.
  std::vector<std::string> args{"exec", containerId(b.instance)};
  args.insert(args.end(), argv.begin(), argv.end());
  return cli_.argv(args);
}

Status OciRuntime::exec(const std::string& instance, std::vector<std::string> argv, int64_t timeout_ms,
                        size_t max_output, std::function<void(Result<ExecResult>)> done) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end()) return Status::notFound("no instance " + instance);
  if (argv.empty()) return Status::invalid("exec: empty command");
  const Box& b = *it->second;
  if (b.pidfd < 0) return Status::unavailable("instance " + instance + " is not running");
  return probes::runCommand(loop_, execArgv(b, argv), hostContext(), timeout_ms, max_output,
                            [done = std::move(done)](const probes::CommandResult& r) { done(toExecResult(r)); });
}

void OciRuntime::check(const std::string& instance, const spec::HealthCheck& check,
                       std::function<void(bool ok, std::string detail)> done) {
  auto it = boxes_.find(instance);
  if (it == boxes_.end() || it->second->pidfd < 0) {
    const std::string why = it == boxes_.end() ? "no instance " + instance : "container " + instance + " is not running";
    (void)timers_.after(0, [done = std::move(done), why] { done(false, why); });
    return;
  }
  spec::HealthCheck inside = check;
  if (check.type == spec::CheckType::kExec) inside.command = execArgv(*it->second, check.command);
  probes::checkOnce(loop_, inside, hostContext(),
                    [done = std::move(done)](bool ok, const std::string& detail) { done(ok, detail); });
}

Status OciRuntime::adopt(const InstanceRecord& rec, const spec::DaemonSpec& spec) {
  if (boxes_.count(rec.instance) != 0) return Status::exists("instance " + rec.instance + " exists");
  // The OCI runtime's own word that it runs, with the pid recorded, whose start time is
  // the one recorded (a recycled pid is never taken for the container).
  auto state = available_ ? cli_.runAndWait({"state", containerId(rec.instance)}, 5'000)
                          : Result<std::string>(Status::unavailable(status_text_));
  auto gone = [&](const std::string& why) {
    (void)store_.erase(rec.instance);
    if (available_) deleteContainer(rec.instance);
    return Status::notFound("container " + rec.instance + " " + why);
  };
  if (!state) return gone("is gone: " + state.status().message());
  auto j = nlohmann::json::parse(*state, nullptr, false);
  const std::string status = j.is_object() ? j.value("status", std::string()) : "";
  const int pid = j.is_object() ? j.value("pid", 0) : 0;
  if (status != "running" && status != "paused") return gone("is " + (status.empty() ? "unknown" : status));
  if (pid != rec.pid || processStartTicks(pid) != rec.start_ticks) return gone("runs another process than recorded");
  MESHOS_RETURN_IF_ERROR(create(rec.instance, spec));
  Box& b = *boxes_.at(rec.instance);
  b.pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (b.pidfd < 0) {
    boxes_.erase(rec.instance);
    return gone("ended while it was adopted");
  }
  b.spec_hash = rec.spec_hash;
  b.pid = pid;
  b.start_ticks = rec.start_ticks;
  b.started_wall_ms = rec.started_wall_ms;
  b.adopted = true;
  b.paused = status == "paused";
  b.state = ProcessState::kRunning;
  watch(b);
  return Status::ok();
}

void OciRuntime::stopRecorded(const InstanceRecord& rec) {
  // Nobody wants it: its init gets SIGTERM (as a process would), and the OCI runtime's
  // delete ends what is left after the default grace.
  if (rec.pid > 0 && processStartTicks(rec.pid) == rec.start_ticks) ::kill(rec.pid, SIGTERM);
  if (!available_) return;
  const std::string name = rec.instance;
  (void)timers_.after(10'000, [this, name] {
    if (boxes_.count(name) == 0) deleteContainer(name);
  });
}

}  // namespace meshos::runtime
