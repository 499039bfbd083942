// What both host runtimes (processes and OCI containers) do the same way: an instance's
// log file (tail or follow, rotation by copy-and-truncate), the resource use of its main
// process and cgroups, exec answers, pidfd watchers. Private to agent/runtime.
#pragma once

#include <uv.h>

#include <string>

#include "agent/core/status.h"
#include "agent/runtime/runtime.h"
#include "probes/health_check.h"

namespace meshos::runtime::detail {

// The chunk of `path` (and its newest rotated file, for a tail) that `q` asks for.
LogChunk readLogChunk(const std::string& path, const LogQuery& q);

// Rotates `path` once it is past rotation.max_bytes: keep_files older copies (.1 newest),
// then the file truncated (the daemon keeps its O_APPEND descriptor).
void rotateLogFile(const std::string& path, const spec::LogRotation& rotation);

// The cgroup side of an instance's stats: where to read them ("" when it has none).
struct StatsFiles {
  std::string procs_group;        // a group whose cgroup.procs lists its processes
  std::string memory_usage_file;  // memory.current or memory.usage_in_bytes
  std::string cpu_stat_group;     // a unified group with cpu.stat
};

// /proc/<pid> (cpu, rss, open descriptors) and the cgroup files; Unavailable when the pid
// has no /proc entry.
Result<ResourceStats> readResourceStats(int pid, const StatsFiles& files);

// `name` if it holds a '/' and is an executable file, else the first executable `name` in
// search_path (an empty entry is the current directory); "" when none.
std::string findInPath(const std::string& name, const std::string& search_path);

// An exec's answer as the Runtime interface gives it.
ExecResult toExecResult(const probes::CommandResult& r);

// Stops and frees a pidfd watcher, and closes the pidfd once libuv is done with it.
void closePidfdWatch(uv_poll_t* poll, int pidfd);

}  // namespace meshos::runtime::detail
