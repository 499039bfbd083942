// The OCI runtime's start floor (run by hand as root; figures go to docs/BENCHMARKS.md): a
// busybox container whose config.json ociConfig() wrote (the bundle the container runtime
// of issue 20 will hand to runc), started with `runc run --detach` until runc returns with
// it running, against posix_spawn of the same busybox `sleep` on the host. Median, p90 and
// max over --iterations; every container is deleted and every process reaped.
// Usage: oci_start_bench [--iterations 20] [--runc runc] [--busybox /bin/busybox]
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "agent/runtime/oci_config.h"
#include "tests/temp_dir.h"

extern char** environ;

using namespace meshos;
using Clk = std::chrono::steady_clock;

namespace {

double msSince(Clk::time_point t0) { return std::chrono::duration<double, std::milli>(Clk::now() - t0).count(); }

void report(const char* what, std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  std::printf("%-44s median %7.2f ms   p90 %7.2f ms   max %7.2f ms   (n=%zu)\n", what, ms[ms.size() / 2],
              ms[ms.size() * 9 / 10], ms.back(), ms.size());
}

int sh(const std::string& cmd) { return std::system(cmd.c_str()); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"start latency: a busybox container under runc, against a host process"};
  int iterations = 20;
  std::string runc = "runc", busybox = "/bin/busybox";
  app.add_option("--iterations", iterations)->check(CLI::Range(1, 1000));
  app.add_option("--runc", runc);
  app.add_option("--busybox", busybox);
  CLI11_PARSE(app, argc, argv);
  if (::geteuid() != 0) {
    std::fprintf(stderr, "oci_start_bench: runc needs root\n");
    return 2;
  }
  const meshos::testing::TempDir tmp("meshos-oci-bench");  // removed on every return
  const std::filesystem::path dir = tmp.path, rootfs = dir / "rootfs";
  std::filesystem::create_directories(rootfs / "bin");
  std::filesystem::copy_file(busybox, rootfs / "bin/busybox");
  std::filesystem::create_symlink("busybox", rootfs / "bin/sleep");
  for (const char* d : {"proc", "dev", "sys", "tmp"}) std::filesystem::create_directories(rootfs / d);
  spec::DaemonSpec s;
  s.name = "bench";
  s.command = {"/bin/sleep", "300"};
  runtime::OciInstance inst;
  inst.rootfs = rootfs.string();
  inst.env = {"PATH=/bin", "HOME=/"};
  auto config = runtime::ociConfig(s, inst);
  if (!config) {
    std::fprintf(stderr, "%s\n", config.status().message().c_str());
    return 1;
  }
  std::ofstream(dir / "config.json") << config->dump(1);

  std::vector<double> oci, host;
  int failures = 0;
  for (int i = 0; i < iterations; ++i) {
    const std::string id = "meshos-bench-" + std::to_string(::getpid()) + "-" + std::to_string(i);
    const auto t0 = Clk::now();
    const int rc = sh(runc + " run --detach --bundle " + dir.string() + " " + id + " </dev/null >/dev/null 2>&1");
    if (rc == 0) oci.push_back(msSince(t0)); else ++failures;
    (void)sh(runc + " delete --force " + id + " >/dev/null 2>&1");

    const std::string bb = (rootfs / "bin/busybox").string();
    char* args[] = {const_cast<char*>("sleep"), const_cast<char*>("300"), nullptr};
    pid_t pid = 0;
    const auto t1 = Clk::now();
    if (::posix_spawn(&pid, bb.c_str(), nullptr, nullptr, args, environ) == 0) {
      host.push_back(msSince(t1));
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  }
  if (oci.empty()) {
    std::fprintf(stderr, "oci_start_bench: runc started no container (%d failures)\n", failures);
    return 1;
  }
  report("runc run --detach, ociConfig() bundle", oci);
  report("posix_spawn busybox sleep (host process)", host);
  if (failures > 0) std::printf("%d runc runs failed\n", failures);
  return 0;
}
