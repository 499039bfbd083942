// OciRuntime's record of one container (oci_runtime.cpp: create, start, exits, stop;
// oci_runtime_ops.cpp: the rest). Private to agent/runtime.
#pragma once

#include <uv.h>

#include <optional>
#include <string>
#include <vector>

#include "agent/runtime/cgroup_layout.h"
#include "agent/runtime/oci_runtime.h"

namespace meshos::runtime {

struct OciRuntime::Box {
  std::string instance;
  spec::DaemonSpec spec;       // as given
  spec::DaemonSpec run_spec;   // what the container gets: limits this host cannot apply dropped (best-effort)
  std::string spec_hash;
  ProcessState state = ProcessState::kCreated;
  std::string rootfs;
  std::string bundle;          // <data_dir>/runtime/oci/bundles/<instance>
  std::string log_path;
  std::vector<std::string> env;  // the container process's, as in config.json
  uint32_t uid = 0, gid = 0;
  InstanceCgroupPlan cgroups;  // where runc puts it: stats and memory-limit kills are read there
  std::vector<std::string> limit_warnings;
  int pid = 0;
  int pidfd = -1;
  uv_poll_t* poll = nullptr;   // the pidfd watcher; freed in its close callback
  int64_t start_ticks = 0;
  int64_t started_wall_ms = 0;
  uint64_t launch = 0;         // counts launches: an answer for an older one is stale
  bool launching = false;      // `<oci> run` has not answered yet
  bool waiting_for_delete = false;  // a launch waits for the container's `delete` to end
  bool before_run = false;     // started, but `<oci> run` not spawned yet (image, delete)
  bool adopted = false;
  bool paused = false;         // frozen by `<oci> pause`
  bool stop_requested = false;
  int64_t stop_grace_ms = 0;   // of a stop asked while launching
  TimerId kill_timer = 0;
  std::string failed_start;    // killed at once, for this reason: its exit reports it
  std::optional<ExitInfo> exit;
};

}  // namespace meshos::runtime
