// Secrets in commits: the wire round trip, the fold (a daemon's spec carries the commit
// that last sealed each secret it uses), rotation, removal, and what is refused.
#include <doctest/doctest.h>

#include "agent/commits/commit_json.h"
#include "agent/commits/desired_state.h"
#include "tests/unit/commits/commit_test_util.h"

using namespace meshos;
using namespace meshos::commits;
using namespace meshos::commits::testing;

namespace {

SealedSecret sealed(const std::string& name, std::string_view value) {
  SealedSecret s{name, {}};
  s.copies.push_back(*sealSecret(SecretRecipient::kNode, SigningKey::generate().public_key, name, asBytes(value)));
  return s;
}

spec::DaemonSpec user(const std::string& name, const std::string& secret) {
  auto d = daemon(name);
  d.secrets.env["PASSWORD"] = secret;
  d.secrets.files = {secret};
  return d;
}

DesiredState empty() {
  DesiredState s;
  s.trust = Admins(1).trust(1);
  return s;
}

Result<DesiredState> fold(const DesiredState& s, uint64_t seq, std::vector<Operation> ops) {
  Commit c = makeCommit(seq, {}, std::move(ops));
  return applyCommitOps(s, c, commitHash(c));
}

}  // namespace

TEST_CASE("put-secret and a spec using it survive the wire, and the JSON shows no ciphertext") {
  REQUIRE(initCrypto());
  Commit c = makeCommit(1, {}, {OpPutSecret{sealed("db", "v1")}, OpPutDaemon{user("web", "db")}});
  auto d = decodeCommit(encodeCommit(c));
  REQUIRE(d);
  REQUIRE(d->operation_error.isOk());
  REQUIRE(d->commit.operations.size() == 2);
  CHECK(std::get<OpPutSecret>(d->commit.operations[0]).secret == std::get<OpPutSecret>(c.operations[0]).secret);
  CHECK(std::get<OpPutDaemon>(d->commit.operations[1]).spec.secrets.env.at("PASSWORD") == "db");
  const std::string j = commitToJson(*d, nullptr).dump();
  CHECK(j.find("<secret:db>") != std::string::npos);
  CHECK(j.find("sealed_bytes") != std::string::npos);
  CHECK(j.find(toBase64(std::get<OpPutSecret>(c.operations[0]).secret.copies[0].box)) == std::string::npos);
}

TEST_CASE("a malformed sealed secret is refused at decode, named") {
  REQUIRE(initCrypto());
  SealedSecret s = sealed("db", "v");
  s.copies[0].box.resize(20);
  auto d = decodeCommit(encodeCommit(makeCommit(1, {}, {OpPutSecret{s}})));
  REQUIRE(d);
  CHECK(d->operation_error.message().find("a sealed copy of 20 bytes") != std::string::npos);
  auto file = decodeSealedSecret(encodeSealedSecret(s));
  CHECK_FALSE(file);
  auto good = decodeSealedSecret(encodeSealedSecret(sealed("db", "v")));
  CHECK(good);
}

TEST_CASE("the fold stamps each daemon with the commit that sealed its secrets; a rotation changes it") {
  REQUIRE(initCrypto());
  auto s1 = fold(empty(), 1, {OpPutSecret{sealed("db", "v1")}, OpPutDaemon{user("web", "db")}});
  REQUIRE(s1);
  CHECK(s1->daemons.at("web").spec.secrets.versions == std::map<std::string, uint64_t>{{"db", 1}});
  CHECK(s1->secrets.at("db").seq == 1);
  // An admin cannot state a version: the fold sets it.
  auto claimed = user("web", "db");
  claimed.secrets.versions["db"] = 99;
  auto s2 = fold(*s1, 2, {OpPutDaemon{claimed}});
  REQUIRE(s2);
  CHECK(s2->daemons.at("web").spec.secrets.versions.at("db") == 1);
  auto s3 = fold(*s2, 3, {OpPutSecret{sealed("db", "v2")}});
  REQUIRE(s3);
  CHECK(s3->daemons.at("web").spec.secrets.versions.at("db") == 3);
  CHECK(s3->daemons.at("web").updated_seq == 3);
  CHECK(s3->daemons.at("web").spec != s2->daemons.at("web").spec);  // its instances are replaced
}

TEST_CASE("a daemon cannot use a secret no commit sealed; a secret in use cannot be removed") {
  REQUIRE(initCrypto());
  auto missing = fold(empty(), 1, {OpPutDaemon{user("web", "db")}});
  REQUIRE_FALSE(missing);
  CHECK(missing.status().message() ==
        "operation 1 (put-daemon): daemon \"web\" uses secret \"db\", which no commit has sealed (put-secret first)");
  auto s1 = fold(empty(), 1, {OpPutSecret{sealed("db", "v1")}, OpPutDaemon{user("web", "db")}});
  REQUIRE(s1);
  auto in_use = fold(*s1, 2, {OpRemoveSecret{"db"}});
  REQUIRE_FALSE(in_use);
  CHECK(in_use.status().message() == "operation 1 (remove-secret): secret \"db\" is used by daemon \"web\"");
  auto both = fold(*s1, 2, {OpRemoveDaemon{"web"}, OpRemoveSecret{"db"}});
  REQUIRE(both);
  CHECK(both->secrets.empty());
  CHECK_FALSE(fold(*both, 3, {OpRemoveSecret{"db"}}));
}
