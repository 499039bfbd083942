// The OCI bundle configuration (agent/runtime/oci_config.h): what the spec and the instance
// put in config.json, the errors for what cannot be expressed, and the real thing: runc
// runs a busybox container from it, as the user given, without capabilities, on a
// read-only root, with only loopback under network = none, and with its memory limit.
#include <doctest/doctest.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "agent/runtime/oci_config.h"
#include "tests/temp_dir.h"
#include "tests/unit/runtime/busybox_rootfs.h"

using namespace meshos;
using namespace meshos::runtime;
using nlohmann::json;

namespace {

spec::DaemonSpec box() {
  spec::DaemonSpec s;
  s.name = "box";
  s.command = {"/bin/sh", "-c", "echo hi"};
  return s;
}

OciInstance instance(const std::string& rootfs) {
  OciInstance i;
  i.rootfs = rootfs;
  i.env = {"PATH=/bin", "HOME=/"};
  return i;
}

bool hasNamespace(const json& c, const std::string& type) {
  for (const auto& n : c["linux"]["namespaces"])
    if (n["type"] == type) return true;
  return false;
}

// Runs a shell command; its stdout, or "" when it could not run.
std::string run(const std::string& cmd) {
  std::string out;
  FILE* f = ::popen(cmd.c_str(), "r");
  if (f == nullptr) return out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = std::fread(buf.data(), 1, buf.size(), f)) > 0) out.append(buf.data(), n);
  ::pclose(f);
  return out;
}

}  // namespace

TEST_CASE("oci config: command, environment, user, workdir and a read-only root without capabilities") {
  auto s = box();
  s.workdir = "/srv";
  auto inst = instance("/var/lib/meshos/images/abc/rootfs");
  inst.uid = 65534;
  inst.gid = 65534;
  auto c = ociConfig(s, inst);
  REQUIRE(c);
  const json& p = (*c)["process"];
  CHECK(p["args"] == json({"/bin/sh", "-c", "echo hi"}));
  CHECK(p["env"] == json({"PATH=/bin", "HOME=/"}));
  CHECK(p["cwd"] == "/srv");
  CHECK(p["user"]["uid"] == 65534);
  CHECK(p["terminal"] == false);
  CHECK(p["noNewPrivileges"] == true);
  CHECK(p["capabilities"]["bounding"].empty());
  CHECK(p["capabilities"]["effective"].empty());
  CHECK((*c)["root"]["path"] == "/var/lib/meshos/images/abc/rootfs");
  CHECK((*c)["root"]["readonly"] == true);
  CHECK(hasNamespace(*c, "pid"));
  CHECK(hasNamespace(*c, "mount"));
  CHECK_FALSE(hasNamespace(*c, "network"));  // the host's network by default
  CHECK_FALSE(c->contains("hostname"));      // and the host's name
  CHECK_FALSE((*c)["linux"].contains("cgroupsPath"));
}

TEST_CASE("oci config: limits, capabilities, mounts, network none and a cgroup path") {
  auto s = box();
  s.limits.memory_max = 64 << 20;
  s.limits.cpu_max_millicores = 250;
  s.limits.pids_max = 32;
  s.limits.open_files = 256;
  s.limits.core_size = 0;
  auto inst = instance("/r");
  inst.network = OciNetwork::kNone;
  inst.capabilities = {"CAP_NET_BIND_SERVICE"};
  inst.mounts = {{"/run/secrets", "/dev/shm/meshos-n1/box-0", true}};
  inst.cgroups_path = "/meshos/box-0";
  inst.read_only_rootfs = false;
  auto c = ociConfig(s, inst);
  REQUIRE(c);
  const json& r = (*c)["linux"]["resources"];
  CHECK(r["memory"]["limit"] == 64 << 20);
  CHECK(r["cpu"]["quota"] == 25'000);
  CHECK(r["cpu"]["period"] == 100'000);
  CHECK(r["pids"]["limit"] == 32);
  CHECK((*c)["process"]["rlimits"] == json::parse(R"([{"type":"RLIMIT_NOFILE","hard":256,"soft":256},
                                                      {"type":"RLIMIT_CORE","hard":0,"soft":0}])"));
  CHECK((*c)["process"]["capabilities"]["permitted"] == json({"CAP_NET_BIND_SERVICE"}));
  CHECK(hasNamespace(*c, "network"));
  CHECK((*c)["hostname"] == "box");
  CHECK((*c)["linux"]["cgroupsPath"] == "/meshos/box-0");
  CHECK((*c)["root"]["readonly"] == false);
  const json& last = (*c)["mounts"].back();
  CHECK(last["destination"] == "/run/secrets");
  CHECK(last["source"] == "/dev/shm/meshos-n1/box-0");
  CHECK(last["options"] == json({"rbind", "nosuid", "nodev", "ro"}));
}

TEST_CASE("oci config: what cannot be expressed is refused, named") {
  auto s = box();
  CHECK(ociConfig(s, instance("rootfs")).status().message() ==
        "daemon 'box': the container's root filesystem must be an absolute path, got 'rootfs'");
  auto inst = instance("/r");
  inst.capabilities = {"CAP_FLY"};
  CHECK(ociConfig(s, inst).status().message() == "daemon 'box': unknown capability 'CAP_FLY'");
  inst.capabilities = {};
  inst.mounts = {{"run", "/x", true}};
  CHECK(ociConfig(s, inst).status().message().find("a mount needs absolute paths") != std::string::npos);
  s.workdir = "srv";
  CHECK(ociConfig(s, instance("/r")).status().message() ==
        "daemon 'box': workdir must be absolute inside the container, got 'srv'");
  s.command.clear();
  CHECK_FALSE(ociConfig(s, instance("/r")));
  CHECK(knownCapability("CAP_SYS_ADMIN"));
  CHECK_FALSE(knownCapability("SYS_ADMIN"));
}

TEST_CASE("oci config: runc runs it (busybox: user, no capabilities, read-only root, loopback only, memory limit)") {
  if (const std::string why = meshos::testing::containerSkipReason(); !why.empty()) {
    MESSAGE("skipped: " << why);
    return;
  }
  meshos::testing::TempDir tmp("meshos-oci");
  const auto rootfs = meshos::testing::makeBusyboxRootfs(tmp.path);

  auto s = box();
  s.limits.memory_max = 48 << 20;
  s.command = {"/bin/sh", "-c",
               "id -u; grep CapEff /proc/self/status; ls /sys/class/net; touch /x 2>/dev/null || echo read-only; "
               "cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes"};
  auto inst = instance(rootfs.string());
  inst.uid = 65534;
  inst.gid = 65534;
  inst.network = OciNetwork::kNone;
  auto c = ociConfig(s, inst);
  REQUIRE(c);
  std::ofstream(tmp.path / "config.json") << c->dump(1);
  const std::string id = "meshos-test-" + std::to_string(::getpid());
  const std::string out = run("runc run --bundle " + tmp.path.string() + " " + id + " </dev/null 2>&1");
  (void)run("runc delete --force " + id + " >/dev/null 2>&1");
  INFO("runc said: " << out);
  CHECK(out.find("65534\n") == 0);
  CHECK(out.find("CapEff:\t0000000000000000") != std::string::npos);
  CHECK(out.find("\nlo\n") != std::string::npos);
  CHECK(out.find("eth") == std::string::npos);
  CHECK(out.find("read-only") != std::string::npos);
  CHECK(out.find(std::to_string(48 << 20)) != std::string::npos);
}
