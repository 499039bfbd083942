// spec::interpolate(): ${node.*} variables filled in for the node that runs a daemon.
#include <doctest/doctest.h>

#include "agent/spec/interpolate.h"

using namespace meshos;
using namespace meshos::spec;

namespace {

const std::map<std::string, std::string> kVars = {
    {"node.host", "10.77.0.11"}, {"node.name", "n1"}, {"node.id", "abcd"}, {"node.label.zone", "a"}};

DaemonSpec web() {
  DaemonSpec s;
  s.name = "web";
  s.command = {"python3", "-m", "http.server", "8080", "--bind", "${node.host}"};
  s.env = {{"ZONE", "${node.label.zone}"}, {"HOME_DIR", "${HOME}"}};
  HealthCheck c;
  c.type = CheckType::kHttp;
  c.host = "${node.host}";
  c.port = 8080;
  c.path = "/${node.name}";
  s.health.readiness = c;
  return s;
}

}  // namespace

TEST_CASE("command, env and health check fields are filled in") {
  auto r = interpolate(web(), kVars);
  REQUIRE(r);
  CHECK(r->command.back() == "10.77.0.11");
  CHECK(r->env.at("ZONE") == "a");
  CHECK(r->env.at("HOME_DIR") == "${HOME}");  // shell-style variables are left alone
  CHECK(r->health.readiness->host == "10.77.0.11");
  CHECK(r->health.readiness->path == "/n1");
  CHECK(validate(web()).isOk());
}

TEST_CASE("text without variables, lone dollars and several variables") {
  CHECK(*interpolateText("plain", kVars) == "plain");
  CHECK(*interpolateText("$5 and $", kVars) == "$5 and $");
  CHECK(*interpolateText("${node.name}-${node.id}", kVars) == "n1-abcd");
}

TEST_CASE("unknown forms and unterminated variables are errors naming the field") {
  auto s = web();
  s.command.push_back("${node.colour}");
  auto r = interpolate(s, kVars);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("command[6]") != std::string::npos);
  CHECK(r.status().message().find("${node.colour}") != std::string::npos);
  CHECK_FALSE(validate(s).isOk());  // commit-time validation catches it too

  CHECK_FALSE(interpolateText("${node.host", kVars));
  CHECK_FALSE(interpolateText("${node.label.}", kVars));
}

TEST_CASE("a label this node does not have is an error on this node only") {
  auto s = web();
  s.env["RACK"] = "${node.label.rack}";
  CHECK(validate(s).isOk());
  auto r = interpolate(s, kVars);
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("no value on this node") != std::string::npos);
}
