// [daemon.supervision] (issue 19): parsed, validated alone and across a set (a group's
// members agree), carried by Cap'n Proto, and absent from the canonical bytes by default.
#include <doctest/doctest.h>

#include "agent/spec/daemon_spec.h"
#include "tests/unit/spec/spec_test_util.h"

using namespace meshos;
using namespace meshos::spec;
using meshos::spec::testing::contains;
using meshos::spec::testing::errorOf;

namespace {


std::string daemon(const std::string& name, const std::string& supervision) {
  return "[[daemon]]\nname = \"" + name + "\"\ncommand = [\"/bin/sleep\", \"9\"]\n[daemon.supervision]\n" + supervision +
         "\n";
}

}  // namespace

TEST_CASE("a group parses, round trips and leaves the defaults' bytes alone") {
  auto r = parseDaemonsToml(daemon("db", "group = \"store\"\nstrategy = \"rest-for-one\"\nrestart_intensity = 3\n"
                                         "restart_window_ms = 10000\nrestart_with_dependency = true") +
                                daemon("api", "group = \"store\"\nstrategy = \"rest-for-one\"\nrestart_intensity = 3\n"
                                              "restart_window_ms = 10000"),
                            "local.toml");
  REQUIRE(r.isOk());
  const DaemonSpec& db = r->at(0);
  CHECK(db.supervision == Supervision{"store", GroupStrategy::kRestForOne, 3, 10'000, true});
  auto back = fromBytes(canonicalBytes(db));
  REQUIRE(back.isOk());
  CHECK(back->supervision == db.supervision);
  DaemonSpec plain = db;
  plain.supervision = {};
  DaemonSpec unset = plain;
  CHECK(canonicalBytes(plain) == canonicalBytes(unset));
  CHECK(canonicalBytes(plain) != canonicalBytes(db));
}

TEST_CASE("critical parses alone (no group needed) and round trips") {
  auto r = parseDaemonsToml(daemon("guard", "critical = true"), "local.toml");
  REQUIRE(r.isOk());
  CHECK(r->at(0).supervision.critical);
  auto back = fromBytes(canonicalBytes(r->at(0)));
  REQUIRE(back.isOk());
  CHECK(back->supervision.critical);
}

TEST_CASE("bad supervision is refused with the key and the reason") {
  CHECK(contains(errorOf(daemon("a", "strategy = \"one-for-all\"")), "supervision.strategy: needs a group"));
  CHECK(contains(errorOf(daemon("a", "restart_intensity = 2")), "supervision.restart_intensity: needs a group"));
  CHECK(contains(errorOf(daemon("a", "group = \"g\"\nstrategy = \"all\"")), "strategy"));
  CHECK(contains(errorOf(daemon("a", "group = \"g\"\nrestart_window_ms = 5")), "restart_window_ms"));
  CHECK(contains(errorOf(daemon("a", "group = \"no spaces\"")), "not a valid group name"));
  CHECK(contains(errorOf(daemon("a", "critical = 1")), "supervision.critical"));
  CHECK(contains(errorOf("[[daemon]]\nname = \"j\"\nkind = \"job\"\ncommand = [\"/bin/true\"]\n"
                         "[daemon.supervision]\ngroup = \"g\"\n"),
                 "only a service"));
  const std::string mismatch = errorOf(daemon("a", "group = \"g\"\nstrategy = \"one-for-all\"") +
                                       daemon("b", "group = \"g\"\nstrategy = \"rest-for-one\""));
  CHECK(contains(mismatch, "group 'g': 'a' and 'b' state different strategies"));
}
