// CgroupLayout: the hosts we do not have (pure v2, hybrid, v1 with cpu and cpuacct
// co-mounted, read-only mounts) decided from their /proc text, the plans for v1 and v2, and
// the plan carried out on a fake cgroupfs in a temporary directory (enforce and best-effort).
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "agent/runtime/cgroup_layout.h"
#include "agent/runtime/cgroups.h"
#include "tests/temp_dir.h"

using namespace meshos;
using namespace meshos::runtime;

namespace {

// A hybrid host like the one the tests run on: every controller on v1, cgroup2 without ours.
constexpr const char* kHybridMountinfo =
    "25 30 0:23 / /sys rw,nosuid - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "39 30 0:36 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";

constexpr const char* kProcCgroups =
    "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
    "cpu\t1\t1\t1\ncpuacct\t2\t1\t1\nmemory\t4\t46\t1\npids\t8\t1\t1\n";

CgroupInputs hybrid() {
  CgroupInputs in;
  in.cgroup_root = "/sys/fs/cgroup";
  in.mounts = parseCgroupMounts(kHybridMountinfo);
  in.enabled = parseEnabledControllers(kProcCgroups);
  in.unified_controllers["/sys/fs/cgroup/unified"] = "hugetlb\n";
  return in;
}

CgroupInputs pureV2() {
  CgroupInputs in;
  in.cgroup_root = "/sys/fs/cgroup";
  in.mounts = parseCgroupMounts("35 24 0:30 / /sys/fs/cgroup rw,nosuid,nodev shared:9 - cgroup2 cgroup2 rw,nsdelegate\n");
  in.enabled = parseEnabledControllers(kProcCgroups);
  in.unified_controllers["/sys/fs/cgroup"] = "cpuset cpu io memory hugetlb pids rdma misc\n";
  return in;
}

spec::Limits allLimits() {
  spec::Limits l;
  l.memory_max = 64 << 20;
  l.cpu_max_millicores = 250;
  l.pids_max = 32;
  return l;
}

void writeText(const std::filesystem::path& p, const std::string& text) {
  std::ofstream(p) << text;
}

}  // namespace

TEST_CASE("mountinfo: cgroup mounts, their controllers, escapes and read-only mounts") {
  auto mounts = parseCgroupMounts(kHybridMountinfo);
  REQUIRE(mounts.size() == 6);
  CHECK(mounts[0] == CgroupMount{"/sys/fs/cgroup/cpu", false, false, {"cpu"}});
  CHECK(mounts[4].controllers == std::vector<std::string>{"xattr", "name=systemd"});
  CHECK(mounts[5].unified);
  auto odd = parseCgroupMounts("1 2 0:1 / /c\\040g ro,relatime - cgroup cgroup rw,cpu,cpuacct\nnot a line\n- cgroup\n");
  REQUIRE(odd.size() == 1);
  CHECK(odd[0].mount_point == "/c g");
  CHECK(odd[0].read_only);
  CHECK(odd[0].controllers == std::vector<std::string>{"cpu", "cpuacct"});
  CHECK(parseEnabledControllers("#h\nmemory 0 1 0\npids 3 1 1\nbad\n") == std::set<std::string>{"pids"});
  CHECK(keyedCount("oom_kill_disable 0\nunder_oom 0\noom_kill 3\n", "oom_kill") == 3);
  CHECK(keyedCount("low 0\noom_kill x\n", "oom_kill") == -1);
  CHECK(keyedCount("", "oom_kill") == -1);
}

TEST_CASE("layout: a hybrid host uses its v1 hierarchies") {
  const CgroupLayout l = chooseCgroupLayout(hybrid());
  CHECK(l.unified_root.empty());  // its cgroup2 offers none of ours
  CHECK(l.home(CgroupController::kMemory) == ControllerHome{1, "/sys/fs/cgroup/memory"});
  CHECK(l.home(CgroupController::kCpu) == ControllerHome{1, "/sys/fs/cgroup/cpu"});
  CHECK(l.home(CgroupController::kPids) == ControllerHome{1, "/sys/fs/cgroup/pids"});
  CHECK(l.describe() == "memory v1 at /sys/fs/cgroup/memory, cpu v1 at /sys/fs/cgroup/cpu, pids v1 at /sys/fs/cgroup/pids");

  // Rooted at the hybrid's cgroup2 mount: a group per instance there, no controllers.
  CgroupInputs in = hybrid();
  in.cgroup_root = "/sys/fs/cgroup/unified";
  const CgroupLayout u = chooseCgroupLayout(in);
  CHECK(u.unified_root == "/sys/fs/cgroup/unified");
  CHECK(u.home(CgroupController::kMemory).version == 0);
  CHECK(u.missing[0].find("/sys/fs/cgroup/unified offers: hugetlb") != std::string::npos);
}

TEST_CASE("layout: a pure v2 host, co-mounted and read-only v1, disabled controllers") {
  const CgroupLayout v2 = chooseCgroupLayout(pureV2());
  CHECK(v2.unified_root == "/sys/fs/cgroup");
  for (CgroupController c : kCgroupControllers) CHECK(v2.home(c) == ControllerHome{2, "/sys/fs/cgroup"});

  CgroupInputs co;
  co.cgroup_root = "/sys/fs/cgroup";
  co.mounts = parseCgroupMounts(
      "1 0 0:1 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "2 0 0:2 / /sys/fs/cgroup/memory ro - cgroup cgroup rw,memory\n");
  const CgroupLayout l = chooseCgroupLayout(co);
  CHECK(l.home(CgroupController::kCpu) == ControllerHome{1, "/sys/fs/cgroup/cpu,cpuacct"});
  CHECK(l.home(CgroupController::kMemory).version == 0);
  CHECK(l.missing[0] == "its v1 hierarchy /sys/fs/cgroup/memory is mounted read-only");
  CHECK(l.home(CgroupController::kPids).version == 0);

  CgroupInputs off = hybrid();
  off.enabled.erase("memory");
  CHECK(chooseCgroupLayout(off).missing[0] == "the kernel has no enabled memory controller (/proc/cgroups)");
  CgroupInputs none = hybrid();
  none.cgroup_root = "";
  CHECK(chooseCgroupLayout(none).missing[2] == "cgroups disabled by configuration");
  CgroupInputs elsewhere = hybrid();
  elsewhere.cgroup_root = "/sys/fs/cgroupX";  // a prefix, not a parent
  CHECK(chooseCgroupLayout(elsewhere).home(CgroupController::kPids).version == 0);
}

TEST_CASE("plan: v1 writes each limit in its own hierarchy; v2 delegates and writes in one group") {
  const InstanceCgroupPlan v1 = planInstanceCgroups(chooseCgroupLayout(hybrid()), allLimits(), "meshos", "web#0");
  CHECK(v1.groups == std::vector<std::string>{"/sys/fs/cgroup/memory/meshos/web#0", "/sys/fs/cgroup/cpu/meshos/web#0",
                                              "/sys/fs/cgroup/pids/meshos/web#0"});
  std::vector<std::string> limits;
  for (const CgroupStep& s : v1.steps) {
    if (s.kind == CgroupStep::kLimit) limits.push_back(s.path + "=" + s.value);
  }
  CHECK(limits == std::vector<std::string>{"/sys/fs/cgroup/memory/meshos/web#0/memory.limit_in_bytes=67108864",
                                           "/sys/fs/cgroup/cpu/meshos/web#0/cpu.cfs_period_us=100000",
                                           "/sys/fs/cgroup/cpu/meshos/web#0/cpu.cfs_quota_us=25000",
                                           "/sys/fs/cgroup/pids/meshos/web#0/pids.max=32"});
  CHECK(v1.oom_events_file == "/sys/fs/cgroup/memory/meshos/web#0/memory.oom_control");
  CHECK(v1.unavailable.empty());

  spec::Limits tiny;
  tiny.cpu_max_millicores = 5;  // under 1 ms per 100 ms: a 1 s period instead
  const InstanceCgroupPlan v2 = planInstanceCgroups(chooseCgroupLayout(pureV2()), tiny, "a/b", "x#1");
  CHECK(v2.groups == std::vector<std::string>{"/sys/fs/cgroup/a/b/x#1"});
  REQUIRE(v2.steps.size() == 7);
  CHECK(v2.steps[0] == CgroupStep{CgroupStep::kDelegate, "/sys/fs/cgroup/cgroup.subtree_control", "+cpu", "/sys/fs/cgroup/a/b/x#1", ""});
  CHECK(v2.steps[1] == CgroupStep{CgroupStep::kMakeDir, "/sys/fs/cgroup/a", "", "/sys/fs/cgroup/a/b/x#1", ""});
  CHECK(v2.steps[6] == CgroupStep{CgroupStep::kLimit, "/sys/fs/cgroup/a/b/x#1/cpu.max", "5000 1000000",
                                  "/sys/fs/cgroup/a/b/x#1", "cpu_max_millicores"});
  CHECK(v2.memory_usage_file == "/sys/fs/cgroup/a/b/x#1/memory.current");

  CgroupInputs no_pids = hybrid();
  no_pids.enabled.erase("pids");
  const InstanceCgroupPlan missing = planInstanceCgroups(chooseCgroupLayout(no_pids), allLimits(), "meshos", "web#0");
  REQUIRE(missing.unavailable.size() == 1);
  CHECK(missing.unavailable[0].find("pids_max: no pids controller: the kernel has no enabled pids") == 0);
}

TEST_CASE("createInstanceCgroups on a fake cgroupfs: enforce undoes, best-effort warns") {
  meshos::testing::TempDir dir("meshos-cgfs");
  const std::string root = dir.path.string();
  // A v2 root that offers memory and cpu; the kernel would create the interface files in
  // each new group, the fake has them only where a test puts them.
  CgroupInputs in;
  in.cgroup_root = root;
  in.mounts = {CgroupMount{root, true, false, {}}};
  in.unified_controllers[root] = "memory cpu pids";
  const CgroupLayout layout = chooseCgroupLayout(in);
  writeText(dir.path / "cgroup.subtree_control", "");
  const InstanceCgroupPlan plan = planInstanceCgroups(layout, allLimits(), "meshos", "web#0");

  SUBCASE("enforce: a write the kernel refuses fails the start and removes the groups") {
    auto made = createInstanceCgroups(plan, spec::LimitsMode::kEnforce);
    REQUIRE(!made);
    CHECK(made.status().code() == Code::kInvalidArgument);
    CHECK(made.status().message().find("memory_max: cannot write 67108864 to " + root + "/meshos/web#0/memory.max") !=
          std::string::npos);
    CHECK(!std::filesystem::exists(dir.path / "meshos" / "web#0"));
  }
  SUBCASE("best-effort: the instance gets its group and a warning per limit not applied") {
    std::filesystem::create_directories(dir.path / "meshos" / "web#0");
    writeText(dir.path / "meshos" / "web#0" / "pids.max", "");
    auto made = createInstanceCgroups(plan, spec::LimitsMode::kBestEffort);
    REQUIRE(made);
    CHECK(made->groups == std::vector<std::string>{root + "/meshos/web#0"});
    REQUIRE(made->warnings.size() == 2);
    CHECK(made->warnings[0].find("memory_max not applied: cannot write") == 0);
    CHECK(made->warnings[1].find("cpu_max_millicores not applied: cannot write") == 0);
    std::ifstream pids(dir.path / "meshos" / "web#0" / "pids.max");
    std::string value;
    pids >> value;
    CHECK(value == "32");
    std::ifstream delegated(dir.path / "meshos" / "cgroup.subtree_control");
    std::string line;
    std::getline(delegated, line);
    CHECK(line.empty());  // only where the file exists: the fake's parent has none
  }
  SUBCASE("everything writable: no warnings, the kills are counted from memory.events") {
    std::filesystem::create_directories(dir.path / "meshos" / "web#0");
    for (const char* f : {"memory.max", "cpu.max", "pids.max"}) writeText(dir.path / "meshos" / "web#0" / f, "max");
    auto made = createInstanceCgroups(plan, spec::LimitsMode::kEnforce);
    REQUIRE(made);
    CHECK(made->warnings.empty());
    writeText(dir.path / "meshos" / "web#0" / "memory.events", "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n");
    CHECK(memoryLimitKills(made->oom_events_file) == 1);
    CHECK(memoryLimitKills("") == 0);
  }
}
