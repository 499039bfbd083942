// CgroupLayout: where this host keeps the memory, cpu and pids controllers (cgroup v2, or
// the v1 hierarchies of a legacy or hybrid host), and what a daemon's limits become there:
// which groups an instance gets, which files are written with which values, and which limits
// cannot be applied here, with the reason.
//
// Pure: the process runtime reads /proc/self/mountinfo, /proc/cgroups and the
// cgroup.controllers of each cgroup2 mount and hands the text in (cgroups.h runs the plan).
// Everything here is decided from that text, so the layouts of hosts we do not have (pure
// v2, hybrid, v1 with cpu and cpuacct co-mounted) are unit-tested. Values; any thread.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "agent/spec/daemon_spec.h"

namespace meshos::runtime {

enum class CgroupController { kMemory, kCpu, kPids };
inline constexpr std::array<CgroupController, 3> kCgroupControllers = {
    CgroupController::kMemory, CgroupController::kCpu, CgroupController::kPids};
std::string_view controllerName(CgroupController c);  // "memory" | "cpu" | "pids"

struct CgroupMount {
  std::string mount_point;
  bool unified = false;                  // cgroup2
  bool read_only = false;                // mounted "ro": no groups can be made there
  std::vector<std::string> controllers;  // v1: from the super options ("cpu", "name=systemd", ...)
  bool operator==(const CgroupMount&) const = default;
};

// The cgroup and cgroup2 mounts of /proc/self/mountinfo text, in order; other lines, and
// lines that do not parse, are skipped. Octal escapes in mount points (\040) are decoded.
std::vector<CgroupMount> parseCgroupMounts(std::string_view mountinfo);
// The controllers /proc/cgroups lists with enabled = 1.
std::set<std::string> parseEnabledControllers(std::string_view proc_cgroups);
// The number after `key` in a flat keyed file ("oom_kill 3" in memory.events or
// memory.oom_control); -1 when the key is absent or its value is not a number.
int64_t keyedCount(std::string_view text, std::string_view key);

struct ControllerHome {
  int version = 0;   // 2 (the unified hierarchy), 1 (a v1 hierarchy), 0: not available here
  std::string root;  // the hierarchy's mount point
  bool operator==(const ControllerHome&) const = default;
};

struct CgroupInputs {
  std::string cgroup_root;  // only mounts at or below it are used ("" : none)
  std::vector<CgroupMount> mounts;
  std::map<std::string, std::string> unified_controllers;  // cgroup2 mount -> cgroup.controllers
  std::set<std::string> enabled;                          // parseEnabledControllers()
};

struct CgroupLayout {
  // The cgroup2 mount where every instance gets a group (membership, cgroup.kill, stats):
  // cgroup_root itself when it is a cgroup2 mount, or a cgroup2 mount below it that offers
  // memory, cpu or pids. "" : none.
  std::string unified_root;
  std::array<ControllerHome, 3> homes;  // by CgroupController; v2 preferred over v1
  std::array<std::string, 3> missing;   // by CgroupController: why it is not available
  const ControllerHome& home(CgroupController c) const { return homes[static_cast<size_t>(c)]; }
  // "memory v1 at /sys/fs/cgroup/memory, cpu v1 at ..., pids v1 at ..." and what is missing.
  std::string describe() const;
  bool operator==(const CgroupLayout&) const = default;
};

CgroupLayout chooseCgroupLayout(const CgroupInputs& in);

// One step of setting up an instance's groups, run in order by createInstanceCgroups().
struct CgroupStep {
  enum Kind {
    kMakeDir,   // mkdir path (an existing one is fine)
    kDelegate,  // write value to path (cgroup.subtree_control); a failure is not fatal: the
                // limit write that needs the controller reports it
    kLimit,     // write value to path; it fails: `limit` is not applied
  };
  Kind kind = kMakeDir;
  std::string path;
  std::string value;
  std::string group;  // the instance group this step serves (steps of a failed group are skipped)
  std::string limit;  // kLimit: the spec key it applies ("memory_max")
  bool operator==(const CgroupStep&) const = default;
};

struct InstanceCgroupPlan {
  std::vector<std::string> groups;  // the instance's groups, one per hierarchy used
  std::vector<CgroupStep> steps;
  // Limits set in the spec that this layout cannot apply: "memory_max: <why>".
  std::vector<std::string> unavailable;
  // Where a kill at the memory limit is counted ("oom_kill N"): memory.events (v2) or
  // memory.oom_control (v1) in the instance's memory group; "" without a memory limit.
  std::string oom_events_file;
  // Where the group's memory use is read: memory.current or memory.usage_in_bytes.
  std::string memory_usage_file;
  bool operator==(const InstanceCgroupPlan&) const = default;
};

// <home root>/<parent>/<instance> for each hierarchy the instance needs: the unified one
// (always, when there is one) and the v1 hierarchy of each controller whose limit is set.
// cpu_max_millicores becomes a quota per 100 ms period (per 1 s below 10 millicores, as
// the kernel refuses quotas under 1 ms).
InstanceCgroupPlan planInstanceCgroups(const CgroupLayout& layout, const spec::Limits& limits,
                                       std::string_view parent, std::string_view instance);

}  // namespace meshos::runtime
