#include "agent/core/sealed_secret.h"

#include <sodium.h>

#include <cctype>
#include <cstring>
#include <set>

namespace meshos {

namespace {

constexpr std::string_view kSealDomain = "meshos-secret-v1";
constexpr std::string_view kClusterKeyHeader = "meshos-x25519-secret-v1";

// What is sealed: domain 0x00 name 0x00 value.
Bytes sealedPlaintext(std::string_view name, ByteView value) {
  Bytes out(kSealDomain.size() + name.size() + 2 + value.size(), 0);
  std::memcpy(out.data(), kSealDomain.data(), kSealDomain.size());
  std::memcpy(out.data() + kSealDomain.size() + 1, name.data(), name.size());
  if (!value.empty()) std::memcpy(out.data() + kSealDomain.size() + name.size() + 2, value.data(), value.size());
  return out;
}

size_t prefixSize(std::string_view name) { return kSealDomain.size() + name.size() + 2; }

// Opens one box with an X25519 pair; the value after the prefix when the name matches.
Result<SecretValue> openBox(const SealedCopy& copy, std::string_view name, const uint8_t* pk, const uint8_t* sk) {
  if (copy.box.size() < crypto_box_SEALBYTES + prefixSize(name)) {
    return Status::corruption("secret " + std::string(name) + ": the sealed copy is too short");
  }
  Bytes buf(copy.box.size() - crypto_box_SEALBYTES);
  const bool opened = crypto_box_seal_open(buf.data(), copy.box.data(), copy.box.size(), pk, sk) == 0;
  SecretValue plain(std::move(buf));  // zeroed however this returns
  if (!opened) {
    return Status::corruption("secret " + std::string(name) + ": the copy sealed to this " +
                              std::string(secretRecipientName(copy.to)) + " does not open (corrupt or not ours)");
  }
  const std::string_view all = plain.view();
  const Bytes prefix = sealedPlaintext(name, {});
  if (all.substr(0, prefix.size()) != asChars(prefix)) {
    return Status::corruption("secret " + std::string(name) + ": the sealed copy was made for another secret");
  }
  return SecretValue(Bytes(all.begin() + static_cast<std::ptrdiff_t>(prefix.size()), all.end()));
}

}  // namespace

std::string_view secretRecipientName(SecretRecipient r) { return r == SecretRecipient::kCluster ? "cluster" : "node"; }

SecretValue::SecretValue(SecretValue&& other) noexcept : bytes_(std::move(other.bytes_)) { other.bytes_.clear(); }

SecretValue& SecretValue::operator=(SecretValue&& other) noexcept {
  if (this != &other) {
    wipe();
    bytes_ = std::move(other.bytes_);
    other.bytes_.clear();
  }
  return *this;
}

SecretValue::~SecretValue() { wipe(); }

void SecretValue::wipe() {
  if (!bytes_.empty()) sodium_memzero(bytes_.data(), bytes_.size());
  bytes_.clear();
}

void wipeString(std::string& s) {
  if (!s.empty()) sodium_memzero(s.data(), s.size());
  s.clear();
}

ClusterSecretKey::~ClusterSecretKey() { sodium_memzero(secret_key.data(), secret_key.size()); }

ClusterSecretKey ClusterSecretKey::generate() {
  ClusterSecretKey k;
  crypto_box_keypair(k.public_key.data(), k.secret_key.data());
  return k;
}

std::string clusterSecretKeyFileText(const ClusterSecretKey& key) {
  return std::string(kClusterKeyHeader) + "\n" + toBase64(key.secret_key) + "\n";
}

Result<ClusterSecretKey> parseClusterSecretKeyFile(std::string_view text, const std::string& name) {
  auto secret = keyFileBody(text, kClusterKeyHeader, 32, "cluster key", name);
  if (!secret) return secret.status();
  ClusterSecretKey k;
  std::memcpy(k.secret_key.data(), secret->data(), 32);
  sodium_memzero(secret->data(), secret->size());
  crypto_scalarmult_base(k.public_key.data(), k.secret_key.data());
  return k;
}

Status validateSecretName(std::string_view n) {
  bool ok = !n.empty() && n.size() <= 63 && std::isalnum(static_cast<unsigned char>(n[0]));
  for (char c : n) ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.');
  if (ok) return Status::ok();
  return Status::invalid("'" + escapeNonUtf8(std::string(n)) +
                         "' is not a valid secret name (1-63 characters: letters, digits, '-', '_', '.'; "
                         "starting with a letter or digit)");
}

Status validateSealedSecret(const SealedSecret& s) {
  MESHOS_RETURN_IF_ERROR(validateSecretName(s.name));
  if (s.copies.empty()) return Status::invalid("secret " + s.name + ": sealed to nobody");
  if (s.copies.size() > kMaxSecretCopies) {
    return Status::invalid("secret " + s.name + ": sealed to " + std::to_string(s.copies.size()) +
                           " recipients, at most " + std::to_string(kMaxSecretCopies));
  }
  std::set<std::pair<SecretRecipient, PublicKey>> seen;
  const size_t max_box = crypto_box_SEALBYTES + prefixSize(s.name) + kMaxSecretBytes;
  const size_t min_box = crypto_box_SEALBYTES + prefixSize(s.name);
  for (const auto& c : s.copies) {
    if (!seen.insert({c.to, c.key}).second) {
      return Status::invalid("secret " + s.name + ": sealed twice to the " + std::string(secretRecipientName(c.to)) +
                             " key " + toBase64(c.key));
    }
    if (c.box.size() < min_box || c.box.size() > max_box) {
      return Status::invalid("secret " + s.name + ": a sealed copy of " + std::to_string(c.box.size()) +
                             " bytes (a value of 0.." + std::to_string(kMaxSecretBytes) + " bytes seals to " +
                             std::to_string(min_box) + ".." + std::to_string(max_box) + ")");
    }
  }
  return Status::ok();
}

Result<SealedCopy> sealSecret(SecretRecipient to, const PublicKey& key, std::string_view name, ByteView value) {
  MESHOS_RETURN_IF_ERROR(validateSecretName(name));
  if (value.size() > kMaxSecretBytes) {
    return Status::invalid("secret " + std::string(name) + ": " + std::to_string(value.size()) +
                           " bytes, at most " + std::to_string(kMaxSecretBytes));
  }
  std::array<uint8_t, 32> x25519{};
  if (to == SecretRecipient::kNode) {
    if (crypto_sign_ed25519_pk_to_curve25519(x25519.data(), key.data()) != 0) {
      return Status::invalid("node key " + toBase64(key) + " is not a valid ed25519 public key");
    }
  } else {
    x25519 = key;
  }
  Bytes plain = sealedPlaintext(name, value);
  SealedCopy copy{to, key, Bytes(plain.size() + crypto_box_SEALBYTES)};
  const int rc = crypto_box_seal(copy.box.data(), plain.data(), plain.size(), x25519.data());
  sodium_memzero(plain.data(), plain.size());
  if (rc != 0) return Status::invalid("secret " + std::string(name) + ": sealing failed");
  return copy;
}

Result<SecretValue> openSecret(const SealedSecret& s, const SigningKey& node_key, const ClusterSecretKey* cluster) {
  for (const auto& c : s.copies) {
    if (c.to != SecretRecipient::kNode || c.key != node_key.public_key) continue;
    std::array<uint8_t, 32> pk{}, sk{};
    if (crypto_sign_ed25519_pk_to_curve25519(pk.data(), node_key.public_key.data()) != 0 ||
        crypto_sign_ed25519_sk_to_curve25519(sk.data(), node_key.secret_key.data()) != 0) {
      return Status::internal("this node's key does not convert to X25519");
    }
    auto out = openBox(c, s.name, pk.data(), sk.data());
    sodium_memzero(sk.data(), sk.size());
    return out;
  }
  for (const auto& c : s.copies) {
    if (c.to != SecretRecipient::kCluster) continue;
    if (cluster == nullptr) {
      return Status::denied("secret " + s.name +
                                      " is sealed to the cluster key, and this node has none ([secrets] "
                                      "cluster_key_file)");
    }
    if (c.key != cluster->public_key) continue;
    return openBox(c, s.name, cluster->public_key.data(), cluster->secret_key.data());
  }
  return Status::denied("secret " + s.name + " is not sealed to this node" +
                                  (sealedToCluster(s) ? " nor to its cluster key" : ""));
}

bool sealedToNode(const SealedSecret& s, const PublicKey& node_key) {
  for (const auto& c : s.copies)
    if (c.to == SecretRecipient::kNode && c.key == node_key) return true;
  return false;
}

bool sealedToCluster(const SealedSecret& s) {
  for (const auto& c : s.copies)
    if (c.to == SecretRecipient::kCluster) return true;
  return false;
}

}  // namespace meshos
