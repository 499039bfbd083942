// CgroupLayout: parsing the kernel's cgroup tables and planning an instance's groups.
#include "agent/runtime/cgroup_layout.h"

#include <algorithm>
#include <charconv>

namespace meshos::runtime {

namespace {

std::vector<std::string_view> splitOn(std::string_view text, char sep) {
  std::vector<std::string_view> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(sep, start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  const auto space = [](char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; };
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && space(line[i])) ++i;
    size_t j = i;
    while (j < line.size() && !space(line[j])) ++j;
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j;
  }
  return out;
}

// mountinfo escapes space, tab, newline and backslash as \ooo.
std::string unescapeOctal(std::string_view s) {
  std::string out;
  const auto octal = [&](size_t k) { return k < s.size() && s[k] >= '0' && s[k] <= '7'; };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out += static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0'));
      i += 3;
      continue;
    }
    out += s[i];
  }
  return out;
}

bool contains(const std::vector<std::string>& v, std::string_view x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

// At or below root: "/sys/fs/cgroup/memory" is under "/sys/fs/cgroup", "/sys/fs/cgroupX" is not.
bool under(std::string_view path, std::string_view root) {
  if (root.empty()) return false;
  if (root == "/") return true;
  if (path.substr(0, root.size()) != root) return false;
  return path.size() == root.size() || path[root.size()] == '/';
}

}  // namespace

std::string_view controllerName(CgroupController c) {
  switch (c) {
    case CgroupController::kMemory: return "memory";
    case CgroupController::kCpu: return "cpu";
    case CgroupController::kPids: return "pids";
  }
  return "?";
}

std::vector<CgroupMount> parseCgroupMounts(std::string_view mountinfo) {
  std::vector<CgroupMount> out;
  for (std::string_view line : splitOn(mountinfo, '\n')) {
    // id parent major:minor root mount_point options [optional...] - fstype source super_options
    const auto w = words(line);
    auto dash = std::find(w.begin(), w.end(), std::string_view("-"));
    if (dash == w.end()) continue;
    const size_t d = static_cast<size_t>(dash - w.begin());
    if (d < 6 || d + 1 >= w.size()) continue;  // no mount options, or no fstype
    const std::string_view fstype = w[d + 1];
    if (fstype != "cgroup" && fstype != "cgroup2") continue;
    CgroupMount m;
    m.mount_point = unescapeOctal(w[4]);
    m.unified = fstype == "cgroup2";
    for (std::string_view opt : splitOn(w[5], ',')) {
      if (opt == "ro") m.read_only = true;
    }
    if (!m.unified && d + 3 < w.size()) {
      for (std::string_view opt : splitOn(w[d + 3], ',')) {
        if (opt != "rw" && opt != "ro") m.controllers.emplace_back(opt);
      }
    }
    out.push_back(std::move(m));
  }
  return out;
}

std::set<std::string> parseEnabledControllers(std::string_view proc_cgroups) {
  // #subsys_name hierarchy num_cgroups enabled
  std::set<std::string> out;
  for (std::string_view line : splitOn(proc_cgroups, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const auto w = words(line);
    if (w.size() >= 4 && w[3] == "1") out.emplace(w[0]);
  }
  return out;
}

int64_t keyedCount(std::string_view text, std::string_view key) {
  for (std::string_view line : splitOn(text, '\n')) {
    const auto w = words(line);
    if (w.size() != 2 || w[0] != key) continue;
    int64_t v = -1;
    auto [p, ec] = std::from_chars(w[1].data(), w[1].data() + w[1].size(), v);
    if (ec != std::errc() || p != w[1].data() + w[1].size()) return -1;
    return v;
  }
  return -1;
}

std::string CgroupLayout::describe() const {
  std::string out;
  for (CgroupController c : kCgroupControllers) {
    const ControllerHome& h = home(c);
    if (!out.empty()) out += ", ";
    out += std::string(controllerName(c));
    if (h.version == 0) {
      out += " unavailable (" + missing[static_cast<size_t>(c)] + ")";
    } else {
      out += " v" + std::to_string(h.version) + " at " + h.root;
    }
  }
  if (!unified_root.empty()) out += "; a cgroup2 group per instance under " + unified_root;
  return out;
}

CgroupLayout chooseCgroupLayout(const CgroupInputs& in) {
  CgroupLayout l;
  const std::string& root = in.cgroup_root;
  auto offers = [&](const std::string& mount, std::string_view ctrl) {
    auto it = in.unified_controllers.find(mount);
    if (it == in.unified_controllers.end()) return false;
    for (std::string_view w : words(it->second)) {
      if (w == ctrl) return true;
    }
    return false;
  };
  // The unified hierarchy: cgroup_root itself (a pure v2 host), else the first cgroup2
  // mount below it that offers one of our controllers (a hybrid host whose v2 side has some).
  for (const CgroupMount& m : in.mounts) {
    if (!m.unified || m.read_only || !under(m.mount_point, root)) continue;
    bool useful = m.mount_point == root;
    for (CgroupController c : kCgroupControllers) useful = useful || offers(m.mount_point, controllerName(c));
    if (useful && (l.unified_root.empty() || m.mount_point == root)) l.unified_root = m.mount_point;
  }
  for (CgroupController c : kCgroupControllers) {
    const std::string name(controllerName(c));
    ControllerHome& h = l.homes[static_cast<size_t>(c)];
    std::string& why = l.missing[static_cast<size_t>(c)];
    if (root.empty()) {
      why = "cgroups disabled by configuration";
      continue;
    }
    if (!in.enabled.empty() && in.enabled.count(name) == 0) {
      why = "the kernel has no enabled " + name + " controller (/proc/cgroups)";
      continue;
    }
    if (!l.unified_root.empty() && offers(l.unified_root, name)) {
      h = ControllerHome{2, l.unified_root};
      continue;
    }
    std::string read_only;
    for (const CgroupMount& m : in.mounts) {
      if (m.unified || !under(m.mount_point, root) || !contains(m.controllers, name)) continue;
      if (m.read_only) {
        read_only = m.mount_point;
        continue;
      }
      h = ControllerHome{1, m.mount_point};
      break;
    }
    if (h.version != 0) continue;
    if (!read_only.empty()) {
      why = "its v1 hierarchy " + read_only + " is mounted read-only";
    } else {
      why = "no cgroup2 mount under " + root + " offers it";
      for (const CgroupMount& m : in.mounts) {
        if (!m.unified || !under(m.mount_point, root)) continue;
        auto it = in.unified_controllers.find(m.mount_point);
        std::string offered = it == in.unified_controllers.end() ? "" : it->second;
        while (!offered.empty() && (offered.back() == '\n' || offered.back() == ' ')) offered.pop_back();
        why += " (" + m.mount_point + " offers: " + (offered.empty() ? "none" : offered) + ")";
        break;
      }
      why += " and no cgroup v1 hierarchy under " + root + " has it";
    }
  }
  return l;
}

namespace {

struct CpuQuota {
  int64_t quota_us;
  int64_t period_us;
};

CpuQuota cpuQuota(int64_t millicores) {
  // A period of 100 ms; below 10 millicores the quota would be under the kernel's 1 ms
  // minimum, so the period is 1 s (the kernel's maximum) instead.
  if (millicores * 100 >= 1000) return {millicores * 100, 100'000};
  return {millicores * 1000, 1'000'000};
}

}  // namespace

InstanceCgroupPlan planInstanceCgroups(const CgroupLayout& layout, const spec::Limits& limits,
                                       std::string_view parent, std::string_view instance) {
  InstanceCgroupPlan plan;
  // Levels below a hierarchy's root down to the instance's group, made in order; on v2
  // each level delegates the controllers the instance needs to the next one.
  auto addGroup = [&](const std::string& root, const std::string& delegate) -> std::string {
    std::string dir = root;
    const std::string group = root + "/" + std::string(parent) + "/" + std::string(instance);
    if (std::find(plan.groups.begin(), plan.groups.end(), group) != plan.groups.end()) return group;
    if (!delegate.empty()) plan.steps.push_back({CgroupStep::kDelegate, dir + "/cgroup.subtree_control", delegate, group, ""});
    for (std::string_view seg : splitOn(parent, '/')) {
      dir += "/" + std::string(seg);
      plan.steps.push_back({CgroupStep::kMakeDir, dir, "", group, ""});
      if (!delegate.empty()) plan.steps.push_back({CgroupStep::kDelegate, dir + "/cgroup.subtree_control", delegate, group, ""});
    }
    plan.steps.push_back({CgroupStep::kMakeDir, group, "", group, ""});
    plan.groups.push_back(group);
    return group;
  };
  const bool want[3] = {limits.memory_max.has_value(), limits.cpu_max_millicores.has_value(),
                        limits.pids_max.has_value()};
  if (!layout.unified_root.empty()) {
    std::string delegate;
    for (CgroupController c : kCgroupControllers) {
      if (want[static_cast<size_t>(c)] && layout.home(c).version == 2) {
        delegate += (delegate.empty() ? "+" : " +") + std::string(controllerName(c));
      }
    }
    addGroup(layout.unified_root, delegate);
  }
  // v2: the unified group made above; v1: the controller's own hierarchy.
  auto groupFor = [&](CgroupController c) { return addGroup(layout.home(c).root, ""); };
  auto limit = [&](const std::string& group, const char* file, std::string value, const char* key) {
    plan.steps.push_back({CgroupStep::kLimit, group + "/" + file, std::move(value), group, key});
  };
  auto unavailable = [&](CgroupController c, const char* key) {
    if (layout.home(c).version != 0) return false;
    plan.unavailable.push_back(std::string(key) + ": no " + std::string(controllerName(c)) +
                               " controller: " + layout.missing[static_cast<size_t>(c)]);
    return true;
  };
  if (limits.memory_max && !unavailable(CgroupController::kMemory, "memory_max")) {
    const std::string g = groupFor(CgroupController::kMemory);
    const bool v2 = layout.home(CgroupController::kMemory).version == 2;
    limit(g, v2 ? "memory.max" : "memory.limit_in_bytes", std::to_string(*limits.memory_max), "memory_max");
    plan.oom_events_file = g + (v2 ? "/memory.events" : "/memory.oom_control");
    plan.memory_usage_file = g + (v2 ? "/memory.current" : "/memory.usage_in_bytes");
  } else if (!layout.unified_root.empty() && layout.home(CgroupController::kMemory).version == 2) {
    plan.memory_usage_file = plan.groups.front() + "/memory.current";
  }
  if (limits.cpu_max_millicores && !unavailable(CgroupController::kCpu, "cpu_max_millicores")) {
    const std::string g = groupFor(CgroupController::kCpu);
    const CpuQuota q = cpuQuota(*limits.cpu_max_millicores);
    if (layout.home(CgroupController::kCpu).version == 2) {
      limit(g, "cpu.max", std::to_string(q.quota_us) + " " + std::to_string(q.period_us), "cpu_max_millicores");
    } else {
      // The period first: the kernel checks the quota against the period in force.
      limit(g, "cpu.cfs_period_us", std::to_string(q.period_us), "cpu_max_millicores");
      limit(g, "cpu.cfs_quota_us", std::to_string(q.quota_us), "cpu_max_millicores");
    }
  }
  if (limits.pids_max && !unavailable(CgroupController::kPids, "pids_max")) {
    limit(groupFor(CgroupController::kPids), "pids.max", std::to_string(*limits.pids_max), "pids_max");
  }
  return plan;
}

}  // namespace meshos::runtime
