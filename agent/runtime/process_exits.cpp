// ProcessRuntime: exits, orphans and strays reaped, remove, signal, status.
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
#include "probes/health_check.h"

namespace meshos::runtime {

using namespace detail;

void ProcessRuntime::onExit(const std::string& instance, ExitInfo info) {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return;
  Proc& p = *it->second;
  if (p.kill_timer != 0) timers_.cancel(p.kill_timer);
  p.kill_timer = 0;
  removeSecretFiles(instance);  // the plaintext lives as long as its process
  info.stopped_by_us = p.stop_requested;
  noteMemoryLimitKills(p, info);
  const bool run_in_grace = p.pgid > 0 && p.stop_requested && !p.exit_file.empty() &&
                            p.stop_deadline_ms > 0 && clock_.monotonicMs() < p.stop_deadline_ms;
  if (run_in_grace) {
    // A job or cron run being stopped: its shim (the main process) ended at the stop
    // signal, the run itself may still be finishing. It keeps the rest of its grace
    // period; then what is left of the group is killed (and reaped, as orphans).
    const int pgid = p.pgid;
    const std::vector<std::string> groups = p.cgroup_groups;
    const int64_t left = p.stop_deadline_ms - clock_.monotonicMs();
    (void)timers_.after(left, [this, pgid, groups] {
      killCgroupMembers(groups);
      for (const std::string& g : groups) removeCgroup(g);
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
    killCgroupMembers(p.cgroup_groups);
    const int64_t deadline = clock_.monotonicMs() + 5'000;
    for (int pid : groupMembers(p.pgid)) orphans_[pid] = deadline;
    reapOrphans();
  }
  // A stopped run keeps its groups (and limits) through its grace period (the timer above).
  if (!run_in_grace) {
    for (const std::string& g : p.cgroup_groups) removeCgroup(g);
  }
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

void ProcessRuntime::noteMemoryLimitKills(const Proc& p, ExitInfo& info) const {
  // Read before the group is killed and removed. The kernel's own count says whether the
  // SIGKILL was the memory limit's (a job's shim sees its run killed as exit code 137).
  const int64_t kills = memoryLimitKills(p.oom_events_file);
  if (kills <= 0) return;
  const std::string limit = "memory_max " + std::to_string(p.spec.limits.memory_max.value_or(0)) + " bytes";
  if (info.term_signal == SIGKILL || (info.code_known && info.exit_code == 128 + SIGKILL)) {
    info.memory_limit_kill = true;
    info.detail = "killed at memory limit (" + limit + "): " + info.detail;
  } else {
    info.detail += "; " + std::to_string(kills) + " process(es) killed at memory limit (" + limit + ")";
  }
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
  for (const std::string& g : p.cgroup_groups) removeCgroup(g);
  removeSecretFiles(instance);
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
  s.limit_warnings = p.limit_warnings;
  s.log_path = p.log_path;
  s.exit = p.exit;
  return s;
}

}  // namespace meshos::runtime
