// ProcessRuntime: logs (read and rotated), exec, resource stats (instance_files.h).
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

#include "agent/runtime/instance_files.h"
#include "probes/health_check.h"

#ifndef CGROUP2_SUPER_MAGIC
#define CGROUP2_SUPER_MAGIC 0x63677270
#endif

namespace meshos::runtime {

using namespace detail;

Result<LogChunk> ProcessRuntime::logs(const std::string& instance, const LogQuery& q) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  return readLogChunk(it->second->log_path, q);
}

void ProcessRuntime::rotateLogsNow() {
  for (auto& [name, p] : procs_) rotateLogFile(p->log_path, p->spec.logs);
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
                            [done = std::move(done)](const probes::CommandResult& r) { done(toExecResult(r)); });
}

Result<ResourceStats> ProcessRuntime::stats(const std::string& instance) const {
  auto it = procs_.find(instance);
  if (it == procs_.end()) return Status::notFound("no instance " + instance);
  const Proc& p = *it->second;
  if (p.state != ProcessState::kRunning && p.state != ProcessState::kStopping) {
    return Status::unavailable("instance " + instance + " is not running");
  }
  // cpu.stat is read from the first group, as before: the unified one when there is one.
  const StatsFiles files{p.cgroup ? p.cgroup_path : "", p.memory_usage_file, p.cgroup ? p.cgroup_path : ""};
  return readResourceStats(p.pid, files);
}

}  // namespace meshos::runtime
