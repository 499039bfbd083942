// Ports in a daemon spec (issue 18): parsed, validated, carried by Cap'n Proto and named by
// ${port.NAME} in the command.
#include <doctest/doctest.h>

#include "agent/spec/daemon_spec.h"
#include "tests/unit/spec/spec_test_util.h"
#include "agent/spec/interpolate.h"

using namespace meshos;
using namespace meshos::spec;
using meshos::spec::testing::contains;
using meshos::spec::testing::errorOf;

namespace {


const std::string kHead = "[[daemon]]\nname = \"web\"\ncommand = [\"/bin/web\", \"--listen\", \"${node.host}:${port.http}\"]\n";

}  // namespace

TEST_CASE("ports parse, sort by name and expand as ${port.NAME}") {
  auto r = parseDaemonsToml(kHead + "ports = [{ name = \"http\", port = 8080 }, { name = \"dns\", port = 53, protocol = \"udp\" }]\n",
                            "local.toml");
  REQUIRE(r.isOk());
  const DaemonSpec& s = r->at(0);
  REQUIRE(s.ports.size() == 2);
  CHECK(s.ports[0] == Port{"http", 8080, PortProtocol::kTcp});
  CHECK(s.ports[1] == Port{"dns", 53, PortProtocol::kUdp});
  CHECK(normalized(s).ports[0].name == "dns");
  auto m = interpolate(s, {{"node.host", "10.0.0.7"}, {"node.name", "n1"}, {"node.id", "x"}});
  REQUIRE(m.isOk());
  CHECK(m->command[2] == "10.0.0.7:8080");
}

TEST_CASE("bad ports are refused with the key and the reason") {
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 0 }]\n"), "port"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 70000 }]\n"), "port"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"HTTP\", port = 80 }]\n"), "not a port name"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"-x\", port = 80 }]\n"), "not a port name"));
  CHECK(contains(errorOf(kHead + "ports = [{ port = 80 }]\n"), "name: missing"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 80, protocol = \"sctp\" }]\n"), "protocol"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 80, colour = 1 }]\n"), "colour: unknown key"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 80 }, { name = \"http\", port = 81 }]\n"), "named twice"));
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"a\", port = 80 }, { name = \"b\", port = 80 }]\n"), "80/tcp declared twice"));
  CHECK(contains(errorOf(kHead + "ports = \"http\"\n"), "expected an array"));
  // ${port.x} must name a declared port.
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"admin\", port = 81 }]\n"), "${port.http}"));
  // Two instances on one node would share the port.
  CHECK(contains(errorOf(kHead + "ports = [{ name = \"http\", port = 80 }]\n[daemon.placement]\nmax_per_node = 2\n"),
                 "at most one instance per node"));
  // Two daemons of one set on one port.
  CHECK(contains(errorOf("[[daemon]]\nname = \"a\"\ncommand = [\"x\"]\nports = [{ name = \"http\", port = 80 }]\n"
                         "[[daemon]]\nname = \"b\"\ncommand = [\"x\"]\nports = [{ name = \"web\", port = 80 }]\n"),
                 "port 80/tcp is declared by both 'a' and 'b'"));
}

TEST_CASE("ports survive Cap'n Proto; a spec without ports keeps its canonical bytes") {
  DaemonSpec s;
  s.name = "web";
  s.command = {"/bin/web"};
  const Bytes bare = canonicalBytes(s);
  s.ports = {Port{"http", 8080, PortProtocol::kTcp}, Port{"stats", 9125, PortProtocol::kUdp}};
  const Bytes with = canonicalBytes(s);
  CHECK(with != bare);
  auto back = fromBytes(with);
  REQUIRE(back.isOk());
  CHECK(back->ports == s.ports);
  s.ports.clear();
  CHECK(canonicalBytes(s) == bare);
}
