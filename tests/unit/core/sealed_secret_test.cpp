// Sealed secrets: a copy opens for its recipient only, binds its name, and is checked
// before anything is opened.
#include <doctest/doctest.h>

#include "agent/core/sealed_secret.h"

using namespace meshos;

namespace {

SigningKey nodeKey(uint8_t n) {
  std::array<uint8_t, 32> seed{};
  seed.fill(n);
  return SigningKey::fromSeed(seed);
}

SealedSecret sealedTo(const std::string& name, std::string_view value, std::vector<PublicKey> nodes,
                      const ClusterSecretKey* cluster = nullptr) {
  SealedSecret s{name, {}};
  for (const auto& k : nodes) s.copies.push_back(*sealSecret(SecretRecipient::kNode, k, name, asBytes(value)));
  if (cluster) s.copies.push_back(*sealSecret(SecretRecipient::kCluster, cluster->public_key, name, asBytes(value)));
  return s;
}

}  // namespace

TEST_CASE("a secret sealed to nodes opens on each of them and nowhere else") {
  REQUIRE(initCrypto());
  const SigningKey a = nodeKey(1), b = nodeKey(2), c = nodeKey(3);
  const SealedSecret s = sealedTo("db", "hunter2", {a.public_key, b.public_key});
  CHECK(validateSealedSecret(s));
  for (const SigningKey* k : {&a, &b}) {
    auto v = openSecret(s, *k, nullptr);
    REQUIRE(v);
    CHECK(v->view() == "hunter2");
  }
  auto refused = openSecret(s, c, nullptr);
  REQUIRE_FALSE(refused);
  CHECK(refused.status().code() == Code::kPermissionDenied);
  CHECK(refused.status().message() == "secret db is not sealed to this node");
  CHECK(sealedToNode(s, a.public_key));
  CHECK_FALSE(sealedToNode(s, c.public_key));
  CHECK_FALSE(sealedToCluster(s));
}

TEST_CASE("a secret sealed to the cluster opens with the cluster key only") {
  REQUIRE(initCrypto());
  const ClusterSecretKey cluster = ClusterSecretKey::generate();
  const SealedSecret s = sealedTo("token", "abc", {}, &cluster);
  auto v = openSecret(s, nodeKey(1), &cluster);
  REQUIRE(v);
  CHECK(v->view() == "abc");
  auto none = openSecret(s, nodeKey(1), nullptr);
  REQUIRE_FALSE(none);
  CHECK(none.status().message().find("sealed to the cluster key, and this node has none") != std::string::npos);
  const ClusterSecretKey other = ClusterSecretKey::generate();
  CHECK_FALSE(openSecret(s, nodeKey(1), &other));
}

TEST_CASE("a copy moved under another name, or altered, does not open") {
  REQUIRE(initCrypto());
  const SigningKey a = nodeKey(1);
  SealedSecret s = sealedTo("db", "hunter2", {a.public_key});
  SealedSecret moved = s;
  moved.name = "other";
  auto v = openSecret(moved, a, nullptr);
  REQUIRE_FALSE(v);
  CHECK(v.status().message().find("made for another secret") != std::string::npos);
  s.copies[0].box[40] ^= 1;
  CHECK_FALSE(openSecret(s, a, nullptr));
}

TEST_CASE("an empty value and the largest value seal and open") {
  REQUIRE(initCrypto());
  const SigningKey a = nodeKey(1);
  const std::string big(kMaxSecretBytes, 'x');
  for (const std::string& value : {std::string(), big}) {
    const SealedSecret s = sealedTo("v", value, {a.public_key});
    CHECK(validateSealedSecret(s));
    auto v = openSecret(s, a, nullptr);
    REQUIRE(v);
    CHECK(v->view() == value);
  }
  CHECK_FALSE(sealSecret(SecretRecipient::kNode, a.public_key, "v", asBytes(big + "x")));
}

TEST_CASE("what a commit may carry is checked: names, recipients, sizes") {
  REQUIRE(initCrypto());
  const SigningKey a = nodeKey(1);
  CHECK_FALSE(validateSecretName(""));
  CHECK_FALSE(validateSecretName("../etc"));
  CHECK_FALSE(validateSecretName("a/b"));
  CHECK_FALSE(validateSecretName(std::string(64, 'a')));
  CHECK(validateSecretName("db.password-2_x"));
  SealedSecret none{"db", {}};
  CHECK(validateSealedSecret(none).message() == "secret db: sealed to nobody");
  SealedSecret twice = sealedTo("db", "x", {a.public_key, a.public_key});
  CHECK(validateSealedSecret(twice).message().find("sealed twice") != std::string::npos);
  SealedSecret small = sealedTo("db", "x", {a.public_key});
  small.copies[0].box.resize(10);
  CHECK(validateSealedSecret(small).message().find("a sealed copy of 10 bytes") != std::string::npos);
  PublicKey bad{};
  bad.fill(0xff);
  CHECK_FALSE(sealSecret(SecretRecipient::kNode, bad, "db", asBytes(std::string_view("x"))));
}

TEST_CASE("the cluster key file round-trips and refuses what it is not") {
  REQUIRE(initCrypto());
  const ClusterSecretKey k = ClusterSecretKey::generate();
  auto back = parseClusterSecretKeyFile(clusterSecretKeyFileText(k), "f");
  REQUIRE(back);
  CHECK(back->public_key == k.public_key);
  CHECK(back->secret_key == k.secret_key);
  CHECK_FALSE(parseClusterSecretKeyFile("meshos-ed25519-secret-v1\nAAAA\n", "f"));
  CHECK_FALSE(parseClusterSecretKeyFile("meshos-x25519-secret-v1\nAAAA\n", "f"));
}
