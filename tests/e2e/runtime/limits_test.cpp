// Limits that hold, on this host's real cgroups (v2, or the v1 memory, cpu and pids
// hierarchies of a legacy or hybrid host): a memory hog is killed at memory_max and the kill
// is named in the failure, a fork loop stops at pids_max, a CPU spinner gets its quota, and
// a limit the host cannot apply fails the start (enforce) or runs with a warning
// (best-effort). Needs root and a cgroup hierarchy with the controller; a test whose
// controller this host lacks says so and is skipped.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "agent/runtime/cgroups.h"
#include "tests/unit/runtime/harness.h"

using namespace meshos;
using namespace meshos::runtime;
using namespace meshos::runtime::testing;

namespace {

constexpr const char* kRoot = "/sys/fs/cgroup";

// The cgroup version every controller must have, from MESHOS_LIMITS_REQUIRE ("1" or "2"),
// or 0: then a controller this host lacks skips its test. The cgroup v2 VM test sets "2",
// so that a guest whose controllers went missing fails rather than skips.
int requiredVersion() {
  const char* v = std::getenv("MESHOS_LIMITS_REQUIRE");
  return v != nullptr ? std::atoi(v) : 0;
}

// This host's home of a controller under /sys/fs/cgroup, or a skip message.
bool haveController(CgroupController c) {
  const int required = requiredVersion();
  if (::geteuid() != 0) {
    MESSAGE("not root: cgroup limit tests skipped");
    REQUIRE_MESSAGE(required == 0, "MESHOS_LIMITS_REQUIRE needs root");
    return false;
  }
  const CgroupLayout layout = detectCgroupLayout(kRoot);
  MESSAGE("cgroups: " << layout.describe());
  if (required != 0) {
    REQUIRE_MESSAGE(layout.home(c).version == required,
                    controllerName(c) << " is not on cgroup v" << required << ": " << layout.describe());
    return true;
  }
  if (layout.home(c).version == 0) {
    MESSAGE("no " << controllerName(c) << " controller here (" << layout.describe() << "): skipped");
    return false;
  }
  return true;
}

// A per-run parent so concurrent runs (and a leftover of a killed run) never collide.
std::string parentName() { return "meshos-limits-" + std::to_string(::getpid()); }

// The runtime removes an instance's groups once its members are gone; a harness shut down
// right after the stop may not have waited for the last of them. Bounded: 3 s.
void removeParents(const std::string& parent) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  for (const char* c : {"", "/memory", "/cpu", "/pids", "/unified"}) {
    const std::filesystem::path dir = std::string(kRoot) + c + "/" + parent;
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) continue;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (!e.is_directory()) continue;
      while (::rmdir(e.path().c_str()) != 0 && errno == EBUSY && std::chrono::steady_clock::now() < deadline) {
        ::usleep(20'000);
      }
    }
    CHECK_MESSAGE(::rmdir(dir.c_str()) == 0, "cannot remove " << dir.string() << ": " << std::strerror(errno));
  }
}

int64_t cpuTicks(int pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const size_t p = stat.rfind(')');
  if (p == std::string::npos) return -1;
  std::istringstream fields(stat.substr(p + 2));
  std::string f;
  int64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> f; ++i) {
    if (i == 14) utime = std::stoll(f);
    if (i == 15) stime = std::stoll(f);
  }
  return utime + stime;
}

}  // namespace

TEST_CASE("memory_max: a hog is killed at its limit and the failure says so") {
  if (!haveController(CgroupController::kMemory)) return;
  const std::string parent = parentName();
  {
    Harness h(nullptr, nullptr, "", kRoot, parent);
    // Grows by 8 MiB a step, far past the 64 MiB limit, then sleeps: only the limit ends it.
    auto s = service("hog", {"/usr/bin/python3", "-c",
                             "import time\nb=[]\nfor i in range(64):\n b.append(b'x'*(8<<20))\n"
                             "time.sleep(60)"});
    s.limits.memory_max = 64 << 20;
    s.restart = spec::RestartPolicy::kNever;
    REQUIRE(h.sup().apply(one(s)));
    REQUIRE(h.runUntil([&] { return h.rec.failuresOf("crash") > 0; }, 20'000));
    std::string message;
    for (const auto& f : h.rec.failures) {
      if (f.kind == "crash") message = f.message;
    }
    MESSAGE("the failure: " << message);
    CHECK(message.find("killed at memory limit (memory_max 67108864 bytes)") != std::string::npos);
    h.shutdown(true);
  }
  removeParents(parent);
}

TEST_CASE("pids_max: a fork loop stops at the limit") {
  if (!haveController(CgroupController::kPids)) return;
  const std::string parent = parentName();
  {
    Harness h(nullptr, nullptr, "", kRoot, parent);
    const std::string out = h.dir() + "/forked";
    // Forks up to 200 sleepers and counts the forks that worked; the forker itself is one
    // of the 16 pids, so at most 15 more run.
    auto s = service("forker", {"/usr/bin/python3", "-c",
                                "import os,time\nn=0\nfor i in range(200):\n"
                                " try:\n  pid=os.fork()\n except OSError:\n  continue\n"
                                " if pid==0:\n  time.sleep(30)\n  os._exit(0)\n n+=1\n"
                                "open('" + out + ".tmp','w').write(str(n))\n"
                                "os.rename('" + out + ".tmp','" + out + "')\ntime.sleep(30)"});
    s.limits.pids_max = 16;
    s.stop_grace_ms = 200;
    REQUIRE(h.sup().apply(one(s)));
    int running = -1;
    REQUIRE(h.runUntil([&] {
      std::ifstream in(out);
      return static_cast<bool>(in >> running);
    }, 20'000));
    auto stats = h.runtime().stats("forker#0");
    REQUIRE(stats);
    MESSAGE("forks that worked: " << running << ", processes in the group: " << stats->processes);
    CHECK(running > 0);
    CHECK(running <= 15);
    h.shutdown(true);
  }
  removeParents(parent);
}

TEST_CASE("cpu_max_millicores: a spinner gets its quota") {
  if (!haveController(CgroupController::kCpu)) return;
  const std::string parent = parentName();
  {
    Harness h(nullptr, nullptr, "", kRoot, parent);
    auto s = service("spinner", {"/bin/sh", "-c", "while :; do :; done"});
    s.limits.cpu_max_millicores = 200;  // 20 ms of every 100 ms
    s.stop_grace_ms = 200;
    REQUIRE(h.sup().apply(one(s)));
    REQUIRE(h.waitState("spinner#0", InstanceState::kReady));
    const int pid = h.pidOf("spinner#0");
    const double hz = static_cast<double>(::sysconf(_SC_CLK_TCK));
    const int64_t before = cpuTicks(pid);
    const auto t0 = std::chrono::steady_clock::now();
    h.runFor(2000);
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double share = (cpuTicks(pid) - before) / hz / wall;
    MESSAGE("spinner used " << share * 1000 << " millicores (limit 200)");
    // The quota caps it at 0.2 of a core; a little over for a period's edge and tick rounding.
    CHECK(share > 0.05);
    CHECK(share < 0.3);
    h.shutdown(true);
  }
  removeParents(parent);
}

TEST_CASE("a limit the host cannot apply: enforce fails the start, best-effort runs with a warning") {
  // A root whose hierarchies lack a controller: a directory that is no cgroup mount at all.
  // The layout then has no memory controller, as on a host without one.
  meshos::testing::TempDir fake_root("meshos-nocgroup");
  Harness h(nullptr, nullptr, "", fake_root.path.string(), "meshos-test");
  auto s = service("bounded", {"/bin/sleep", "30"});
  s.limits.memory_max = 64 << 20;
  s.stop_grace_ms = 200;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("bounded#0", InstanceState::kFailed));
  REQUIRE(h.rec.failuresOf("start") == 1);
  CHECK(h.rec.failures.back().message.find("memory_max: no memory controller") != std::string::npos);
  CHECK(h.pidOf("bounded#0") == 0);

  s.limits.mode = spec::LimitsMode::kBestEffort;
  REQUIRE(h.sup().apply(one(s)));
  REQUIRE(h.waitState("bounded#0", InstanceState::kReady));
  std::vector<std::string> warnings;
  for (const auto& i : h.sup().snapshot()) {
    if (i.instance == "bounded#0") warnings = i.warnings;
  }
  REQUIRE(warnings.size() == 1);
  CHECK(warnings[0].find("memory_max not applied: no memory controller") == 0);
  CHECK(h.rec.failuresOf("limits") == 1);
  h.shutdown(true);
}
