#include "tests/temp_dir.h"
#include <doctest/doctest.h>

#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "agent/core/crypto.h"
#include "agent/gossip/keyring.h"

using namespace meshos;
using namespace meshos::gossip;

TEST_CASE("keyring: seal and open round trip; cluster id is authenticated") {
  REQUIRE(initCrypto().isOk());
  Keyring ring;
  ring.install(generateClusterKey());
  Bytes payload{1, 2, 3, 4, 5};
  Bytes sealed = ring.seal("prod", payload);
  CHECK(sealed.size() == payload.size() + kSealOverheadBytes);
  CHECK(sealed[0] == kEnvelopeXChaCha);
  Bytes out;
  CHECK(ring.open("prod", sealed, out) == OpenError::kNone);
  CHECK(out == payload);
  CHECK(ring.open("staging", sealed, out) == OpenError::kDecryptFailed);
  CHECK(out.empty());
  // Two seals of the same payload differ (random nonce).
  CHECK(ring.seal("prod", payload) != sealed);
}

TEST_CASE("keyring: wrong key, truncated, garbage, flipped bits are refused") {
  REQUIRE(initCrypto().isOk());
  Keyring a, b;
  a.install(generateClusterKey());
  b.install(generateClusterKey());
  Bytes sealed = a.seal("c", Bytes(100, 7));
  Bytes out;
  CHECK(b.open("c", sealed, out) == OpenError::kDecryptFailed);
  CHECK(a.open("c", ByteView(sealed.data(), 10), out) == OpenError::kTruncated);
  CHECK(a.open("c", Bytes{}, out) == OpenError::kTruncated);
  Bytes garbage(64, 0x99);
  CHECK(a.open("c", garbage, out) == OpenError::kBadVersion);
  garbage[0] = kEnvelopeXChaCha;
  CHECK(a.open("c", garbage, out) == OpenError::kDecryptFailed);
  Bytes flipped = sealed;
  flipped[40] ^= 1;
  CHECK(a.open("c", flipped, out) == OpenError::kDecryptFailed);
  // Plaintext into an encrypted ring and the reverse are refused.
  Keyring plain;
  CHECK(a.open("c", plain.seal("c", Bytes{1}), out) == OpenError::kPlainRefused);
  CHECK(plain.open("c", sealed, out) == OpenError::kEncryptedRefused);
}

TEST_CASE("keyring: plaintext mode still checks the cluster id") {
  Keyring plain;
  Bytes sealed = plain.seal("prod", Bytes{9, 8});
  Bytes out;
  CHECK(plain.open("prod", sealed, out) == OpenError::kNone);
  CHECK(out == Bytes{9, 8});
  CHECK(plain.open("dev", sealed, out) == OpenError::kWrongCluster);
  CHECK(plain.open("prod", ByteView(sealed.data(), 3), out) == OpenError::kTruncated);
}

TEST_CASE("keyring: rotation install -> use -> remove") {
  REQUIRE(initCrypto().isOk());
  ClusterKey k1 = generateClusterKey(), k2 = generateClusterKey();
  Keyring node_a({k1}), node_b({k1});
  Bytes old_packet = node_a.seal("c", Bytes{1});
  node_a.install(k2);
  node_b.install(k2);
  CHECK(node_a.use(k2).isOk());
  Bytes out;
  // b still decrypts what a now seals with k2, and a still reads k1 packets.
  CHECK(node_b.open("c", node_a.seal("c", Bytes{2}), out) == OpenError::kNone);
  CHECK(node_a.open("c", old_packet, out) == OpenError::kNone);
  CHECK(node_a.remove(k2).code() == Code::kInvalidArgument);  // primary cannot go
  CHECK(node_a.remove(k1).isOk());
  CHECK(node_a.open("c", old_packet, out) == OpenError::kDecryptFailed);
  CHECK(node_a.remove(k1).code() == Code::kNotFound);
  CHECK(node_a.use(k1).code() == Code::kNotFound);
}

TEST_CASE("keyring: file save/load with mode 0600, bad files are refused") {
  REQUIRE(initCrypto().isOk());
  PosixFileSystem fs;
  meshos::testing::TempDir tmp("meshos-keyring");
  const std::filesystem::path& dir = tmp.path;
  Keyring ring({generateClusterKey(), generateClusterKey()});
  auto path = dir / "keyring";
  REQUIRE(saveKeyring(fs, path, ring).isOk());
  struct stat st{};
  REQUIRE(::stat(path.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  auto loaded = loadKeyring(fs, path);
  REQUIRE(loaded.isOk());
  CHECK(loaded->keys() == ring.keys());
  {
    std::ofstream f(dir / "bad");
    f << "meshos-gossip-keyring-v1\nnot-base64!!\n";
  }
  auto bad = loadKeyring(fs, dir / "bad");
  CHECK(!bad.isOk());
  CHECK(bad.status().message().find(":2") != std::string::npos);
  {
    std::ofstream f(dir / "short");
    f << "meshos-gossip-keyring-v1\n" << toBase64(Bytes(16, 1)) << "\n";
  }
  CHECK(!loadKeyring(fs, dir / "short").isOk());
  CHECK(loadKeyring(fs, dir / "missing").status().code() == Code::kNotFound);
}
