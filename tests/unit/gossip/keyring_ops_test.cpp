// Keyring rotation planning (what the control socket's keyring op does before persisting).
#include <doctest/doctest.h>

#include <unistd.h>

#include <filesystem>

#include "agent/core/crypto.h"
#include "agent/gossip/keyring_ops.h"

using namespace meshos;
using namespace meshos::gossip;

namespace {
ByteView view(const ClusterKey& k) { return ByteView(k.data(), k.size()); }
}  // namespace

TEST_CASE("keyring ops: install, use, remove, with ids, and nothing changes on bad input") {
  REQUIRE(initCrypto().isOk());
  PosixFileSystem fs;
  ClusterKey a = generateClusterKey(), b = generateClusterKey();
  Keyring ring({a});
  CHECK(clusterKeyId(a).size() == 16);
  CHECK(clusterKeyId(a) != clusterKeyId(b));
  CHECK(clusterKeyId(a).find(toHex(view(a)).substr(0, 16)) == std::string::npos);

  auto list = planKeyringOp(ring, KeyringOpKind::kList, {});
  REQUIRE(list.isOk());
  CHECK(!list->changed);
  REQUIRE(listKeys(list->ring).size() == 1);
  CHECK(listKeys(list->ring)[0].primary);

  // Bad input: clear errors; the ring passed in is untouched (planning works on a copy).
  Bytes short_key(31, 1);
  auto bad = planKeyringOp(ring, KeyringOpKind::kInstall, short_key);
  REQUIRE(!bad.isOk());
  CHECK(bad.status().message().find("32 bytes, got 31") != std::string::npos);
  CHECK(planKeyringOp(ring, KeyringOpKind::kUse, view(b)).status().code() == Code::kNotFound);
  CHECK(planKeyringOp(ring, KeyringOpKind::kRemove, Bytes(8, 0)).status().code() == Code::kNotFound);
  CHECK(planKeyringOp(ring, KeyringOpKind::kRemove, Bytes(5, 0)).status().code() == Code::kInvalidArgument);
  auto primary = planKeyringOp(ring, KeyringOpKind::kRemove, view(a));
  REQUIRE(!primary.isOk());
  CHECK(primary.status().message().find("primary") != std::string::npos);
  CHECK(ring.keys() == std::vector<ClusterKey>{a});

  auto inst = planKeyringOp(ring, KeyringOpKind::kInstall, view(b));
  REQUIRE(inst.isOk());
  CHECK(inst->changed);
  CHECK(inst->key_id == clusterKeyId(b));
  CHECK(inst->ring.keys() == std::vector<ClusterKey>{a, b});
  CHECK(!planKeyringOp(inst->ring, KeyringOpKind::kInstall, view(b))->changed);

  // use by id
  auto use = planKeyringOp(inst->ring, KeyringOpKind::kUse, clusterKeyIdBytes(b));
  REQUIRE(use.isOk());
  CHECK(use->changed);
  CHECK(use->ring.keys() == std::vector<ClusterKey>{b, a});
  CHECK(!planKeyringOp(use->ring, KeyringOpKind::kUse, view(b))->changed);

  auto rm = planKeyringOp(use->ring, KeyringOpKind::kRemove, view(a));
  REQUIRE(rm.isOk());
  CHECK(rm->ring.keys() == std::vector<ClusterKey>{b});
  CHECK(!planKeyringOp(rm->ring, KeyringOpKind::kRemove, view(b)).isOk());

  // Persisted and loaded back.
  auto dir = std::filesystem::temp_directory_path() / ("meshos-keyring-ops-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  REQUIRE(saveKeyring(fs, dir / "ring", use->ring).isOk());
  auto loaded = loadKeyring(fs, dir / "ring");
  REQUIRE(loaded.isOk());
  CHECK(loaded->keys() == std::vector<ClusterKey>{b, a});
  std::filesystem::remove_all(dir);
}

TEST_CASE("keyring ops: an empty ring (plaintext agent) refuses changes") {
  Keyring empty;
  CHECK(planKeyringOp(empty, KeyringOpKind::kList, {}).isOk());
  ClusterKey k = generateClusterKey();
  auto r = planKeyringOp(empty, KeyringOpKind::kInstall, ByteView(k.data(), k.size()));
  REQUIRE(!r.isOk());
  CHECK(r.status().message().find("without a keyring") != std::string::npos);
}
