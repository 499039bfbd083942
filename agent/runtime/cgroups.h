// The cgroup file operations of the process runtime: reading this host's layout from /proc,
// carrying out an instance's plan (cgroup_layout.h: groups made, limits written), placing
// a process in its groups, killing what is in them, and reading kills at the memory limit.
// Plain file I/O on whatever directories the plan names, so a unit test runs it against a
// fake cgroupfs in a temporary directory. Stateless functions; any thread (the runtime
// calls them on its loop).
#pragma once

#include <string>
#include <vector>

#include "agent/core/status.h"
#include "agent/runtime/cgroup_layout.h"

namespace meshos::runtime {

// From /proc/self/mountinfo, /proc/cgroups and each cgroup2 mount's cgroup.controllers;
// only mounts at or below cgroup_root count ("" disables cgroups).
CgroupLayout detectCgroupLayout(const std::string& cgroup_root);

struct InstanceCgroups {
  std::vector<std::string> groups;    // made; the process is placed in each
  std::string oom_events_file;        // see InstanceCgroupPlan
  std::string memory_usage_file;
  std::vector<std::string> warnings;  // best-effort: "memory_max not applied: <why>"
};

// Runs the plan. enforce: the first limit that cannot be applied (no controller, a group
// that cannot be made, a write the kernel refuses) is an InvalidArgument naming the limit,
// the file and the reason, and the groups made for it are removed again. best-effort: such
// a limit becomes a warning and the instance runs without it (in the groups that could be made).
Result<InstanceCgroups> createInstanceCgroups(const InstanceCgroupPlan& plan, spec::LimitsMode mode);

// Moves pid into each group (cgroup.procs). The first failure is returned, naming the group.
Status joinCgroups(const std::vector<std::string>& groups, int pid);

// SIGKILL to everything in the groups: cgroup.kill where the kernel has it (v2), else each
// pid listed in cgroup.procs (v1).
void killCgroupMembers(const std::vector<std::string>& groups);

// How many processes of the group the kernel killed at its memory limit (oom_kill in
// memory.events or memory.oom_control); 0 when unknown.
int64_t memoryLimitKills(const std::string& oom_events_file);

// The instance groups under each hierarchy of the layout that exist now (for an instance a
// previous agent started).
std::vector<std::string> existingInstanceGroups(const CgroupLayout& layout, const std::string& parent,
                                                const std::string& instance);

}  // namespace meshos::runtime
