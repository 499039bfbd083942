#include "tests/temp_dir.h"
#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "agent/core/crypto.h"
#include "agent/core/node_identity.h"

using namespace meshos;
namespace fs = std::filesystem;

namespace {
using TempDir = meshos::testing::TempDir;
}  // namespace

TEST_CASE("blake2b incremental equals one-shot") {
  REQUIRE(initCrypto().isOk());
  Bytes data{1, 2, 3, 4, 5};
  Blake2b h;
  h.update(ByteView(data.data(), 2)).update(ByteView(data.data() + 2, 3));
  CHECK(h.finish() == blake2b256(data));
}

TEST_CASE("signatures verify only for the signed message and key") {
  REQUIRE(initCrypto().isOk());
  SigningKey a = SigningKey::generate(), b = SigningKey::generate();
  Bytes msg{'h', 'i'};
  Signature sig = a.sign(msg);
  CHECK(verifySignature(a.public_key, msg, sig));
  CHECK_FALSE(verifySignature(b.public_key, msg, sig));
  msg[0] = 'H';
  CHECK_FALSE(verifySignature(a.public_key, msg, sig));
  auto pk = publicKeyFromBase64(publicKeyToBase64(a.public_key));
  REQUIRE(pk.isOk());
  CHECK(*pk == a.public_key);
  CHECK_FALSE(publicKeyFromBase64("AAAA").isOk());
  CHECK_FALSE(publicKeyFromBase64("not base64!").isOk());
}

TEST_CASE("node identity is created once with mode 0600 and reused") {
  REQUIRE(initCrypto().isOk());
  TempDir dir;
  PosixFileSystem fs;
  auto first = loadOrCreateNodeIdentity(fs, dir.path);
  REQUIRE(first.isOk());
  CHECK(first->created);
  CHECK(first->id.size() == 16);
  struct stat st {};
  REQUIRE(::stat((dir.path / "node.key").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto second = loadOrCreateNodeIdentity(fs, dir.path);
  REQUIRE(second.isOk());
  CHECK_FALSE(second->created);
  CHECK(second->id == first->id);
  CHECK(second->key.public_key == first->key.public_key);
}

TEST_CASE("a damaged or exposed key file is refused") {
  REQUIRE(initCrypto().isOk());
  TempDir dir;
  PosixFileSystem fs;
  REQUIRE(loadOrCreateNodeIdentity(fs, dir.path).isOk());
  auto path = dir.path / "node.key";
  ::chmod(path.c_str(), 0644);
  auto exposed = loadOrCreateNodeIdentity(fs, dir.path);
  CHECK(exposed.status().code() == Code::kPermissionDenied);
  ::chmod(path.c_str(), 0600);
  { std::ofstream(path) << "garbage\n"; }
  auto damaged = loadOrCreateNodeIdentity(fs, dir.path);
  CHECK(damaged.status().code() == Code::kInvalidArgument);
}
