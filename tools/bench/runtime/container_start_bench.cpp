// Start latency on the agent's own path (run by hand as root; figures go to
// docs/BENCHMARKS.md): Runtime::start() until the instance has a pid, for the process
// runtime and for the OCI runtime (runc) on a busybox root filesystem given as a directory
// and as an image, warm (in the store) and cold (unpacked by that start). Median, p90 and
// max over --iterations; every instance is stopped, every container deleted.
// Usage: container_start_bench [--iterations 20] [--busybox /bin/busybox]
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "agent/core/clock.h"
#include "agent/core/file_system.h"
#include "agent/net/uv_loop.h"
#include "agent/runtime/oci_runtime.h"
#include "agent/runtime/process_runtime.h"
#include "tests/temp_dir.h"
#include "tests/unit/runtime/busybox_rootfs.h"

using namespace meshos;
using namespace meshos::runtime;
using Clk = std::chrono::steady_clock;

namespace {

void report(const std::string& what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-52s median %7.2f ms   p90 %7.2f ms   max %7.2f ms   (n=%zu)\n", what.c_str(), ms[ms.size() / 2],
              ms[ms.size() * 9 / 10], ms.back(), ms.size());
}

struct Bench {
  uv_loop_t loop;
  SystemClock clock;
  PosixFileSystem fs;
  std::unique_ptr<UvTimers> timers;
  Bench() {
    uv_loop_init(&loop);
    timers = std::make_unique<UvTimers>(&loop);
  }
  void turnUntil(const std::function<bool()>& pred, int64_t timeout_ms = 30'000) {
    const auto deadline = Clk::now() + std::chrono::milliseconds(timeout_ms);
    bool tick = false;
    while (!pred() && Clk::now() < deadline) {
      timers->after(1, [&] { tick = true; });
      while (!tick) uv_run(&loop, UV_RUN_ONCE);
      tick = false;
    }
  }
  // Starts `spec` `n` times (a new instance each time): the time from start() to a pid.
  std::vector<double> starts(Runtime& rt, const spec::DaemonSpec& spec, int n, const std::string& tag) {
    std::vector<double> ms;
    int exited = 0;
    rt.setExitCallback([&](const std::string&, const ExitInfo&) { ++exited; });
    for (int i = 0; i < n; ++i) {
      const std::string inst = spec.name + "-" + tag + "#" + std::to_string(i);
      if (Status s = rt.create(inst, spec); !s) {
        std::fprintf(stderr, "%s\n", s.toString().c_str());
        std::exit(1);
      }
      const auto t0 = Clk::now();
      if (Status s = rt.start(inst); !s) {
        std::fprintf(stderr, "%s\n", s.toString().c_str());
        std::exit(1);
      }
      turnUntil([&] { return rt.status(inst)->pid > 0 || exited > i; });
      ms.push_back(std::chrono::duration<double, std::milli>(Clk::now() - t0).count());
      (void)rt.stop(inst, 0);
      turnUntil([&] { return exited > i; });
    }
    return ms;
  }
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"start latency on the agent's path: processes and busybox containers"};
  int iterations = 20;
  app.add_option("--iterations", iterations)->check(CLI::Range(2, 1000));
  CLI11_PARSE(app, argc, argv);
  if (std::string why = meshos::testing::containerSkipReason(); !why.empty()) {
    std::fprintf(stderr, "container_start_bench: %s\n", why.c_str());
    return 2;
  }
  const meshos::testing::TempDir tmp("meshos-start-bench");
  const std::string dir = tmp.path.string();
  const auto rootfs = meshos::testing::makeBusyboxRootfs(tmp.path / "src");
  const std::string layout = dir + "/layout";
  const bool images = std::system(("umoci init --layout " + layout + " && umoci new --image " + layout +
                                   ":v1 && umoci unpack --image " + layout + ":v1 " + dir + "/work && cp -a " +
                                   rootfs.string() + "/. " + dir + "/work/rootfs/ && umoci repack --image " + layout +
                                   ":v1 " + dir + "/work >/dev/null 2>&1").c_str()) == 0;
  Bench b;
  auto store = FileInstanceStore::open(b.fs, dir + "/data/runtime/instances");
  if (!store) return 1;
  spec::DaemonSpec s;
  s.name = "bench";
  s.command = {"/bin/sleep", "3600"};
  s.stop_grace_ms = 0;
  {
    RuntimeOptions o;
    o.data_dir = dir + "/data";
    ProcessRuntime rt(&b.loop, b.clock, **store, o);
    if (!rt.init()) return 1;
    spec::DaemonSpec host = s;
    host.command = {rootfs.string() + "/bin/sleep", "3600"};
    report("process runtime: start() to pid", b.starts(rt, host, iterations, "p"));
    rt.close();
  }
  auto oci = [&](const std::string& data) {
    OciRuntimeOptions o;
    o.data_dir = data;
    o.cgroup_parent = "meshos-bench";
    auto rt = std::make_unique<OciRuntime>(&b.loop, b.clock, **store, o);
    if (!rt->init()) std::exit(1);
    return rt;
  };
  spec::DaemonSpec boxed = s;
  boxed.runtime = spec::RuntimeKind::kOci;
  boxed.container.rootfs = rootfs.string();
  auto rt = oci(dir + "/data");
  report("oci runtime (runc), rootfs: start() to pid", b.starts(*rt, boxed, iterations, "r"));
  if (images) {
    boxed.container.rootfs.clear();
    boxed.container.image = layout + ":v1";
    b.starts(*rt, boxed, 1, "first");  // into the store
    report("oci runtime (runc), image in the store: start() to pid", b.starts(*rt, boxed, iterations, "w"));
    std::vector<double> cold;
    for (int i = 0; i < std::max(2, iterations / 4); ++i) {
      auto fresh = oci(dir + "/cold" + std::to_string(i));  // an empty store: the start unpacks
      auto one = b.starts(*fresh, boxed, 1, "c" + std::to_string(i));
      cold.push_back(one.front());
      fresh->close();
    }
    report("oci runtime (runc), image unpacked by the start", cold);
  } else {
    std::printf("(no umoci: image figures skipped)\n");
  }
  b.turnUntil([] { return false; }, 300);  // the last containers' delete
  rt->close();
  b.timers->close();
  uv_run(&b.loop, UV_RUN_DEFAULT);
  meshos::testing::removeCgroupParent("meshos-bench");
  return 0;
}
