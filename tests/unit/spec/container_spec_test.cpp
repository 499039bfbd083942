// runtime = "oci" and [daemon.container] (issue 20): parsed, validated, carried by Cap'n
// Proto, and absent from the canonical bytes of a process daemon.
#include <doctest/doctest.h>

#include "agent/spec/daemon_spec.h"
#include "tests/unit/spec/spec_test_util.h"

using namespace meshos;
using namespace meshos::spec;
using meshos::spec::testing::contains;
using meshos::spec::testing::errorOf;

namespace {

std::string containerDaemon(const std::string& top, const std::string& container) {
  return "[[daemon]]\nname = \"web\"\ncommand = [\"/bin/httpd\", \"-f\"]\n" + top + "\n[daemon.container]\n" + container + "\n";
}

}  // namespace

TEST_CASE("a container daemon parses and round trips; a process daemon's bytes are unchanged") {
  auto r = parseDaemonsToml(containerDaemon("runtime = \"oci\"", "rootfs = \"/srv/web\"\nnetwork = \"none\"\n"
                                   "capabilities = [\"CAP_NET_BIND_SERVICE\", \"CAP_CHOWN\"]\nwritable_rootfs = true"),
                            "local.toml");
  REQUIRE(r.isOk());
  const DaemonSpec& s = r->at(0);
  CHECK(s.runtime == RuntimeKind::kOci);
  CHECK(s.container.rootfs == "/srv/web");
  CHECK(s.container.network == ContainerNetwork::kNone);
  CHECK(s.container.writable_rootfs);
  auto back = fromBytes(canonicalBytes(s));
  REQUIRE(back.isOk());
  CHECK(back->runtime == RuntimeKind::kOci);
  CHECK(back->container == normalized(s).container);
  CHECK(back->container.capabilities == std::vector<std::string>{"CAP_CHOWN", "CAP_NET_BIND_SERVICE"});
  DaemonSpec process = s;
  process.runtime = RuntimeKind::kProcess;
  process.container = {};
  DaemonSpec plain;
  plain.name = "web";
  plain.command = {"/bin/httpd", "-f"};
  CHECK(canonicalBytes(process) == canonicalBytes(plain));
  CHECK(canonicalBytes(process) != canonicalBytes(s));
  auto image = parseDaemonsToml(containerDaemon("runtime = \"oci\"", "image = \"/srv/images/web:1.2\""), "local.toml");
  REQUIRE(image.isOk());
  CHECK(image->at(0).container.image == "/srv/images/web:1.2");
}

TEST_CASE("bad container settings are refused with the key and the reason") {
  CHECK(contains(errorOf(containerDaemon("", "rootfs = \"/srv/web\"")), "container: needs runtime = \"oci\""));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "")), "exactly one of rootfs and image"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "rootfs = \"/a\"\nimage = \"/b:1\"")), "exactly one of rootfs and image"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "rootfs = \"srv/web\"")), "container.rootfs: must be an absolute path"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "image = \"/srv/web\"")), "container.image: expected"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "image = \"web:1\"")), "container.image: expected"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "rootfs = \"/a\"\ncapabilities = [\"NET_ADMIN\"]")),
                 "'NET_ADMIN' is not a capability name"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "rootfs = \"/a\"\nnetwork = \"bridge\"")), "network"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"docker\"", "rootfs = \"/a\"")), "runtime"));
  CHECK(contains(errorOf(containerDaemon("runtime = \"oci\"", "rootfs = \"/a\"\nports = 1")), "ports"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"web\"\ncommand = [\"/bin/httpd\"]\nruntime = \"oci\"\n"
                         "[daemon.container]\nrootfs = \"/a\"\nnetwork = \"none\"\n"
                         "[daemon.health.readiness]\ntype = \"tcp\"\nport = 80\n"),
                 "cannot reach a container with network = \"none\""));
  CHECK(contains(errorOf("[[daemon]]\nname = \"web\"\ncommand = [\"/bin/httpd\"]\nruntime = \"oci\"\n"
                         "env = { PW = { secret = \"db\" } }\n[daemon.container]\nrootfs = \"/a\"\n"),
                 "gets secrets as files only"));
  CHECK(parseDaemonsToml("[[daemon]]\nname = \"web\"\ncommand = [\"/bin/httpd\"]\nruntime = \"oci\"\n"
                         "secret_files = [\"db\"]\n[daemon.container]\nrootfs = \"/a\"\n",
                         "local.toml")
            .isOk());
}
