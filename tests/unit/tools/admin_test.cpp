#include "tests/temp_dir.h"
#include "tools/admin/admin.h"
#include "agent/gossip/keyring.h"

#include <doctest/doctest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "agent/commits/commit_json.h"

using namespace meshos;
using namespace meshos::commits;
namespace fs = std::filesystem;

namespace {
using TempDir = meshos::testing::TempDir;
spec::DaemonSpec daemon(const std::string& name, int64_t replicas = 1) {
  spec::DaemonSpec s;
  s.name = name;
  s.command = {"/bin/sleep", "1000"};
  s.replicas = replicas;
  return s;
}
}  // namespace

TEST_CASE("diffDaemons puts new and changed specs, removes missing ones") {
  DesiredState cur;
  cur.daemons["same"].spec = spec::normalized(daemon("same"));
  cur.daemons["changed"].spec = spec::normalized(daemon("changed", 1));
  cur.daemons["gone"].spec = spec::normalized(daemon("gone"));
  std::vector<spec::DaemonSpec> want = {daemon("same"), daemon("changed", 4), daemon("new")};
  auto ops = admin::diffDaemons(cur, want, true);
  REQUIRE(ops.size() == 3);
  CHECK(std::get<OpRemoveDaemon>(ops[0]).name == "gone");
  CHECK(std::get<OpPutDaemon>(ops[1]).spec.name == "changed");
  CHECK(std::get<OpPutDaemon>(ops[2]).spec.name == "new");
  CHECK(admin::diffDaemons(cur, want, false).size() == 2);
}

TEST_CASE("parseOp: every operation, relative times, and clear errors") {
  const int64_t now = 1'000'000;
  CHECK(std::get<OpScale>(*admin::parseOp("scale web 3", now)).replicas == 3);
  CHECK(std::holds_alternative<OpRemoveDaemon>(*admin::parseOp("remove web", now)));
  CHECK(std::holds_alternative<OpPauseDaemon>(*admin::parseOp("pause web", now)));
  CHECK(std::holds_alternative<OpResumeDaemon>(*admin::parseOp("resume web", now)));
  CHECK(std::holds_alternative<OpForceRestart>(*admin::parseOp("restart web", now)));
  CHECK(std::holds_alternative<OpKillRelocation>(*admin::parseOp("kill-relocation web", now)));
  auto drain = std::get<OpSetMaintenance>(*admin::parseOp("drain node-1 +60", now));
  CHECK(drain.mode == MaintenanceMode::kDrain);
  CHECK(drain.deadline_ms == now + 60'000);
  CHECK(std::get<OpSetMaintenance>(*admin::parseOp("undrain node-1", now)).mode ==
        MaintenanceMode::kActive);
  auto freeze = std::get<OpFreeze>(*admin::parseOp("freeze 5000000 release week", now));
  CHECK(freeze.expires_at_ms == 5'000'000);
  CHECK(freeze.reason == "release week");
  CHECK(std::holds_alternative<OpThaw>(*admin::parseOp("thaw", now)));
  SigningKey k = SigningKey::generate();
  CHECK(std::get<OpAddAdminKey>(
            *admin::parseOp("add-admin-key " + publicKeyToBase64(k.public_key), now))
            .key == k.public_key);
  CHECK(std::holds_alternative<OpRemoveAdminKey>(
      *admin::parseOp("remove-admin-key " + publicKeyToBase64(k.public_key), now)));
  CHECK(std::get<OpSetThreshold>(*admin::parseOp("set-threshold 2", now)).threshold == 2);
  CHECK_FALSE(admin::parseOp("scale web", now).isOk());
  CHECK_FALSE(admin::parseOp("scale web x", now).isOk());
  CHECK_FALSE(admin::parseOp("explode web", now).isOk());
  CHECK_FALSE(admin::parseOp("set-threshold 0", now).isOk());
  CHECK_FALSE(admin::parseOp("add-admin-key notbase64", now).isOk());
  CHECK_FALSE(admin::parseOp("", now).isOk());
}

TEST_CASE("commit files, co-signing and the trust file") {
  REQUIRE(initCrypto().isOk());
  TempDir dir;
  SigningKey a = SigningKey::generate(), b = SigningKey::generate();
  Commit c;
  c.cluster_id = "prod";
  c.seq = 1;
  c.issued_at_ms = 10;
  c.operations = {OpPutDaemon{daemon("web")}};
  signCommit(c, a);
  fs::path f = dir.path / "c1";
  REQUIRE(admin::writeCommitFile(f, c).isOk());
  auto d = admin::readCommitFile(f);
  REQUIRE(d.isOk());
  auto cosigned = addSignature(*d, b);
  REQUIRE(cosigned.isOk());
  REQUIRE(admin::writeCommitBytes(f, *cosigned).isOk());
  auto d2 = admin::readCommitFile(f);
  REQUIRE(d2.isOk());
  CHECK(d2->hash == d->hash);
  CHECK(d2->commit.signatures.size() == 2);

  std::ofstream(dir.path / "admins.txt") << "# admins\n"
                                         << publicKeyToBase64(a.public_key) << "\n\n"
                                         << publicKeyToBase64(b.public_key) << "\n";
  auto t = admin::readTrustFile(dir.path / "admins.txt", 2);
  REQUIRE(t.isOk());
  CHECK(t->admins.size() == 2);
  auto checks = checkSignatures(*d2, &*t);
  REQUIRE(checks.size() == 2);
  CHECK((checks[0].verifies && checks[0].trusted && checks[1].verifies && checks[1].trusted));
  CHECK(admin::describeCommit(*d2, &*t).find("enough") != std::string::npos);
  CHECK_FALSE(admin::readTrustFile(dir.path / "admins.txt", 3).isOk());

  // Folding commit files gives the base for the next commit.
  auto base = admin::baseFromCommitFiles({f});
  REQUIRE(base.isOk());
  CHECK(base->head.seq == 1);
  CHECK(base->head.hash == d->hash);
  CHECK(base->state.daemons.count("web") == 1);
  CHECK(base->cluster_id == "prod");
  CHECK_FALSE(admin::baseFromCommitFiles({f, f}).isOk());  // seq 1 twice does not link
  CHECK_FALSE(admin::readCommitFile(dir.path / "missing").isOk());
}

TEST_CASE("cluster key file: a gossip keyring with one key, mode 0600, never overwritten") {
  REQUIRE(initCrypto().isOk());
  TempDir dir;
  fs::path f = dir.path / "cluster.key";
  REQUIRE(admin::writeClusterKeyFile(f).isOk());
  struct stat st {};
  REQUIRE(::stat(f.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto ring = gossip::loadKeyring(PosixFileSystem(), f);
  REQUIRE_MESSAGE(ring.isOk(), ring.status().toString());
  CHECK(ring->keys().size() == 1);
  CHECK_FALSE(admin::writeClusterKeyFile(f).isOk());
}
