// A spec's secrets ([[daemon]] env = { X = { secret = "db" } }, secret_files): parsed,
// validated and carried by Cap'n Proto; a spec names secrets, never holds a value.
#include <doctest/doctest.h>

#include "tests/unit/spec/spec_test_util.h"

using namespace meshos::spec;
using namespace meshos::spec::testing;

namespace {
const std::string kSecretsHead = "[[daemon]]\nname = \"web\"\ncommand = [\"/bin/true\"]\n";
}

TEST_CASE("secret references parse from env and secret_files, and round-trip through Cap'n Proto") {
  auto r = parseDaemonsToml(kSecretsHead + "env = { A = \"plain\", PW = { secret = \"db\" } }\nsecret_files = [\"tls\", \"db\"]\n",
                            "local.toml");
  REQUIRE(r);
  const DaemonSpec& s = r->at(0);
  CHECK(s.env == std::map<std::string, std::string>{{"A", "plain"}});
  CHECK(s.secrets.env == std::map<std::string, std::string>{{"PW", "db"}});
  CHECK(s.secrets.names() == std::vector<std::string>{"db", "tls"});
  auto back = fromBytes(canonicalBytes(s));
  REQUIRE(back);
  CHECK(canonicalEqual(*back, s));
  CHECK(back->secrets.files == std::vector<std::string>{"db", "tls"});
}

TEST_CASE("a spec without secrets keeps its canonical bytes") {
  auto r = parseDaemonsToml(kSecretsHead, "local.toml");
  REQUIRE(r);
  DaemonSpec with = r->at(0);
  with.secrets.env["PW"] = "db";
  CHECK(canonicalBytes(r->at(0)) != canonicalBytes(with));
  with.secrets = {};
  CHECK(canonicalBytes(r->at(0)) == canonicalBytes(with));
}

TEST_CASE("bad secret references are refused, named") {
  CHECK(contains(errorOf(kSecretsHead + "env = { PW = { secret = 3 } }\n"), "env.PW: expected a string or { secret = \"NAME\" }"));
  CHECK(contains(errorOf(kSecretsHead + "env = { PW = { secret = \"db\", x = 1 } }\n"), "env.PW"));
  CHECK(contains(errorOf(kSecretsHead + "env = { PW = { secret = \"../x\" } }\n"), "env.PW.secret: '../x' is not a valid secret name"));
  CHECK(contains(errorOf(kSecretsHead + "secret_files = [\"a/b\"]\n"), "secret_files: 'a/b' is not a valid secret name"));
  DaemonSpec s;
  s.name = "web";
  s.command = {"/bin/true"};
  s.env["PW"] = "x";
  s.secrets.env["PW"] = "db";
  CHECK(validate(s).message() == "daemon 'web': env.PW: both a value and a secret");
}
