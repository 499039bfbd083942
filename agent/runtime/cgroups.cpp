// Cgroup file operations of the process runtime (cgroups.h).
#include "agent/runtime/cgroups.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <sstream>

#include "agent/runtime/process_internal.h"

namespace meshos::runtime {

using detail::readSmallFile;

namespace {

// "" when written, else why not (the kernel's errno for a cgroup file says what it refused).
std::string writeCgroupFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return std::strerror(errno);
  ssize_t n = ::write(fd, value.data(), value.size());
  const int err = errno;
  ::close(fd);
  if (n == static_cast<ssize_t>(value.size())) return "";
  return n < 0 ? std::strerror(err) : "short write";
}

}  // namespace

CgroupLayout detectCgroupLayout(const std::string& cgroup_root) {
  CgroupInputs in;
  in.cgroup_root = cgroup_root;
  if (!cgroup_root.empty()) {
    in.mounts = parseCgroupMounts(readSmallFile("/proc/self/mountinfo"));
    in.enabled = parseEnabledControllers(readSmallFile("/proc/cgroups"));
    for (const CgroupMount& m : in.mounts) {
      if (m.unified) in.unified_controllers[m.mount_point] = readSmallFile(m.mount_point + "/cgroup.controllers");
    }
  }
  return chooseCgroupLayout(in);
}

Result<InstanceCgroups> createInstanceCgroups(const InstanceCgroupPlan& plan, spec::LimitsMode mode) {
  const bool enforce = mode == spec::LimitsMode::kEnforce;
  std::vector<std::string> problems = plan.unavailable;
  std::map<std::string, std::string> failed_groups;  // group -> why it could not be made
  auto undo = [&] {
    for (auto it = plan.groups.rbegin(); it != plan.groups.rend(); ++it) (void)::rmdir(it->c_str());
  };
  for (const CgroupStep& step : plan.steps) {
    if (enforce && !problems.empty()) break;
    if (auto f = failed_groups.find(step.group); f != failed_groups.end()) {
      if (step.kind == CgroupStep::kLimit) problems.push_back(step.limit + ": " + f->second);
      continue;
    }
    switch (step.kind) {
      case CgroupStep::kMakeDir:
        if (::mkdir(step.path.c_str(), 0755) != 0 && errno != EEXIST) {
          failed_groups[step.group] = "cannot create " + step.path + ": " + std::strerror(errno);
        }
        break;
      case CgroupStep::kDelegate:
        (void)writeCgroupFile(step.path, step.value);
        break;
      case CgroupStep::kLimit:
        if (std::string why = writeCgroupFile(step.path, step.value); !why.empty()) {
          problems.push_back(step.limit + ": cannot write " + step.value + " to " + step.path + ": " + why);
        }
        break;
    }
  }
  if (enforce && !problems.empty()) {
    undo();
    return Status::invalid("limits cannot be enforced on this node: " + problems.front() +
                           " (with [daemon.limits] limits = \"best-effort\" it runs without them)");
  }
  InstanceCgroups out;
  for (const std::string& g : plan.groups) {
    if (failed_groups.count(g) == 0) out.groups.push_back(g);
  }
  out.oom_events_file = plan.oom_events_file;
  out.memory_usage_file = plan.memory_usage_file;
  for (const std::string& p : problems) {
    const size_t colon = p.find(": ");
    out.warnings.push_back(colon == std::string::npos ? p : p.substr(0, colon) + " not applied" + p.substr(colon));
  }
  return out;
}

Status joinCgroups(const std::vector<std::string>& groups, int pid) {
  for (const std::string& g : groups) {
    if (std::string why = writeCgroupFile(g + "/cgroup.procs", std::to_string(pid)); !why.empty()) {
      return Status::invalid("cannot place pid " + std::to_string(pid) + " in " + g + ": " + why);
    }
  }
  return Status::ok();
}

void killCgroupMembers(const std::vector<std::string>& groups) {
  for (const std::string& g : groups) {
    if (writeCgroupFile(g + "/cgroup.kill", "1").empty()) continue;
    // v1 has no cgroup.kill: each member by pid (a process forked meanwhile is in the
    // process group the caller also kills, or is found by the next call).
    std::istringstream procs(readSmallFile(g + "/cgroup.procs"));
    for (int pid = 0; procs >> pid;) {
      if (pid > 0) ::kill(pid, SIGKILL);
    }
  }
}

int64_t memoryLimitKills(const std::string& oom_events_file) {
  if (oom_events_file.empty()) return 0;
  return std::max<int64_t>(0, keyedCount(readSmallFile(oom_events_file), "oom_kill"));
}

std::vector<std::string> existingInstanceGroups(const CgroupLayout& layout, const std::string& parent,
                                                const std::string& instance) {
  std::vector<std::string> roots;
  if (!layout.unified_root.empty()) roots.push_back(layout.unified_root);
  for (const ControllerHome& h : layout.homes) {
    if (h.version == 1 && std::find(roots.begin(), roots.end(), h.root) == roots.end()) roots.push_back(h.root);
  }
  std::vector<std::string> out;
  for (const std::string& r : roots) {
    const std::string g = r + "/" + parent + "/" + instance;
    struct stat st{};
    if (::stat(g.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) out.push_back(g);
  }
  return out;
}

}  // namespace meshos::runtime
