// ProcessRuntime: re-adopting what a previous agent left running (pidfd + start time).
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

#include "agent/runtime/cgroups.h"
#include "agent/runtime/instance_files.h"
#include "probes/health_check.h"

namespace meshos::runtime {

using namespace detail;

Status ProcessRuntime::adoptGone(const InstanceRecord& rec, const spec::DaemonSpec& spec,
                                 const std::string& exit_file, const std::string& why) {
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
  return Status::notFound("instance " + rec.instance + " (pid " + std::to_string(rec.pid) + "): " + why);
}

Status ProcessRuntime::adopt(const InstanceRecord& rec, const spec::DaemonSpec& spec) {
  if (procs_.count(rec.instance) != 0) return Status::exists("instance " + rec.instance + " exists");
  const std::string exit_file = exitFileFor(rec.instance, spec);
  if (processStartTicks(rec.pid) != rec.start_ticks) return adoptGone(rec, spec, exit_file, "no longer running");
  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, rec.pid, 0));
  if (pidfd < 0) return adoptGone(rec, spec, exit_file, errnoText("pidfd_open"));
  // Checked again with the pidfd held: the pid cannot be recycled under us any more.
  if (processStartTicks(rec.pid) != rec.start_ticks) {
    ::close(pidfd);
    return adoptGone(rec, spec, exit_file, "no longer running (pid reused)");
  }
  // A zombie (exited but not reaped) is not running.
  auto f = statFields(rec.pid);
  if (!f.empty() && f[0] == "Z") {
    siginfo_t si{};
    ::waitid(P_PIDFD, static_cast<id_t>(pidfd), &si, WEXITED | WNOHANG);
    ::close(pidfd);
    return adoptGone(rec, spec, exit_file, "exited while the agent was down");
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
  // Its groups are found again from the layout (the record names the first one only).
  p->cgroup_groups = existingInstanceGroups(cgroup_layout_, options_.cgroup_parent, rec.instance);
  if (!rec.cgroup_path.empty() &&
      std::find(p->cgroup_groups.begin(), p->cgroup_groups.end(), rec.cgroup_path) == p->cgroup_groups.end()) {
    p->cgroup_groups.insert(p->cgroup_groups.begin(), rec.cgroup_path);
  }
  p->cgroup = !p->cgroup_groups.empty();
  p->cgroup_path = rec.cgroup_path.empty() && p->cgroup ? p->cgroup_groups.front() : rec.cgroup_path;
  const InstanceCgroupPlan plan = planInstanceCgroups(cgroup_layout_, spec.limits, options_.cgroup_parent, rec.instance);
  p->oom_events_file = plan.oom_events_file;
  p->memory_usage_file = plan.memory_usage_file;
  p->log_path = rec.log_path;
  p->exit_file = exit_file;
  p->state = ProcessState::kRunning;
  // The same environment, working directory and user as a process this agent starts, for
  // exec checks and operator exec (a user that vanished since: run as the agent).
  (void)fillEnvironment(*p, rec.instance, spec);
  p->exe = spec.command[0];
  procs_[rec.instance] = std::move(p);
  watchAdopted(rec.instance, pidfd);
  armLogCheck();
  return Status::ok();
}

void ProcessRuntime::watchAdopted(const std::string& instance, int pidfd) {
  Proc& p = *procs_.at(instance);
  p.pidfd = pidfd;
  auto* poll = new uv_poll_t();
  uv_poll_init(loop_, poll, pidfd);
  poll->data = this;
  p.poll = poll;
  uv_poll_start(poll, UV_READABLE, &ProcessRuntime::onAdoptedExit);
}

void ProcessRuntime::onAdoptedExit(uv_poll_t* h, int, int) {
  auto* rt = static_cast<ProcessRuntime*>(h->data);
  // Find the instance that owns this poll handle.
  for (auto& [n, pp] : rt->procs_) {
    if (pp->poll != h) continue;
    Proc& p = *pp;
    ExitInfo info;
    siginfo_t si{};
    // We can learn the code only if it is still our child (same agent process).
    if (::waitid(P_PIDFD, static_cast<id_t>(p.pidfd), &si, WEXITED | WNOHANG) == 0 && si.si_pid != 0) {
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
    closePidfdWatch(h, fd);
    rt->onExit(n, std::move(info));
    return;
  }
}

}  // namespace meshos::runtime
