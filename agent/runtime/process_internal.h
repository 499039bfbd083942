// ProcessRuntime's records of its processes and the /proc and file helpers its parts share
// (process_runtime.cpp: create, start, stop; process_exits.cpp: exits and reaping;
// process_logs.cpp: logs, exec, stats; process_adopt.cpp: re-adoption). Private to
// agent/runtime.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "agent/runtime/process_runtime.h"

namespace meshos::runtime {

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
  std::string cgroup_path;                  // the first of cgroup_groups (recorded, shown)
  std::vector<std::string> cgroup_groups;   // one per hierarchy (unified, v1 memory, cpu, pids)
  std::string oom_events_file;              // counts kills at memory_max
  std::string memory_usage_file;
  std::vector<std::string> limit_warnings;  // best-effort: limits not applied
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

// The secret environment entries of one start, wiped when dropped.
struct ProcessRuntime::LaunchSecrets {
  std::vector<std::string> env;  // "VAR=value"
  LaunchSecrets() = default;
  LaunchSecrets(const LaunchSecrets&) = delete;
  LaunchSecrets& operator=(const LaunchSecrets&) = delete;
  ~LaunchSecrets() {
    for (auto& e : env) wipeString(e);
  }
};

struct ProcessRuntime::Handle {
  uv_process_t proc;
  ProcessRuntime* rt;
  std::string instance;
};

namespace detail {

inline constexpr const char* kDefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

std::string errnoText(const std::string& what);
std::vector<std::string> statFields(int pid);
int64_t field(const std::vector<std::string>& f, int n);
std::vector<int> groupMembers(int pgid);
bool writeFile(const std::string& path, const std::string& data);
std::string shellQuote(const std::string& text);
std::optional<int> readExitFile(const std::string& path);
std::string readSmallFile(const std::string& path);
int64_t fileSize(const std::string& path);
std::string readRange(const std::string& path, int64_t offset, int64_t max);
std::string signalName(int sig);

}  // namespace detail
}  // namespace meshos::runtime
