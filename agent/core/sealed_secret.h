// Sealed secrets (docs/SECRETS.md): a value an admin encrypts offline to the nodes that may
// read it, so that a signed commit carries it to every node while only those nodes can
// open it.
//
// Each copy is a libsodium sealed box (X25519 with a fresh sender key, XSalsa20-Poly1305)
// to one recipient:
//   - a node: the X25519 key derived from its ed25519 node key (node.key), so a node needs
//     no second key and an admin names it by the key the cluster already knows;
//   - the cluster: an X25519 key pair an operator makes (`meshos-admin secret cluster-key`)
//     and gives every node that may open cluster secrets ([secrets] cluster_key_file).
// The sealed plaintext binds the name ("meshos-secret-v1" 0x00 name 0x00 value), so a copy
// moved under another name does not open. Pure: no I/O; plaintext and private keys are
// zeroed when their holders are dropped.
#pragma once

#include <array>
#include <string>
#include <string_view>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/crypto.h"
#include "agent/core/status.h"

namespace meshos {

inline constexpr size_t kMaxSecretBytes = 64 * 1024;
inline constexpr size_t kMaxSecretCopies = 64;

enum class SecretRecipient : uint8_t { kNode, kCluster };
std::string_view secretRecipientName(SecretRecipient r);  // "node" | "cluster"

struct SealedCopy {
  SecretRecipient to = SecretRecipient::kNode;
  PublicKey key{};  // the node's ed25519 key, or the cluster's X25519 key
  Bytes box;        // crypto_box_seal output
  bool operator==(const SealedCopy&) const = default;
};

struct SealedSecret {
  std::string name;
  std::vector<SealedCopy> copies;
  bool operator==(const SealedSecret&) const = default;
};

// A secret's plaintext, zeroed when dropped. Move-only, so it is never copied by accident.
class SecretValue {
 public:
  SecretValue() = default;
  explicit SecretValue(Bytes bytes) : bytes_(std::move(bytes)) {}
  SecretValue(SecretValue&& other) noexcept;
  SecretValue& operator=(SecretValue&& other) noexcept;
  SecretValue(const SecretValue&) = delete;
  SecretValue& operator=(const SecretValue&) = delete;
  ~SecretValue();

  std::string_view view() const { return {reinterpret_cast<const char*>(bytes_.data()), bytes_.size()}; }
  size_t size() const { return bytes_.size(); }

 private:
  void wipe();
  Bytes bytes_;
};

// Zeroes a string's characters (plaintext that had to pass through one).
void wipeString(std::string& s);

// The cluster key pair. Key file (text, mode 0600):
//   line 1: "meshos-x25519-secret-v1"
//   line 2: base64 of the 32-byte X25519 secret key (the public key is derived)
struct ClusterSecretKey {
  PublicKey public_key{};
  std::array<uint8_t, 32> secret_key{};

  ClusterSecretKey() = default;
  ClusterSecretKey(const ClusterSecretKey&) = default;
  ClusterSecretKey& operator=(const ClusterSecretKey&) = default;
  ~ClusterSecretKey();
  static ClusterSecretKey generate();
};
std::string clusterSecretKeyFileText(const ClusterSecretKey& key);
Result<ClusterSecretKey> parseClusterSecretKeyFile(std::string_view text, const std::string& name);

// Names: 1..64 of [a-z0-9_.-], starting with a letter or digit (like daemon names).
Status validateSecretName(std::string_view name);
// A sealed secret as a commit may carry it: a valid name, 1..kMaxSecretCopies copies with
// distinct recipients, boxes no larger than a kMaxSecretBytes value sealed.
Status validateSealedSecret(const SealedSecret& s);

// Seals `value` under `name` to one recipient. InvalidArgument for a value over
// kMaxSecretBytes or a node key that is not a valid ed25519 point.
Result<SealedCopy> sealSecret(SecretRecipient to, const PublicKey& key, std::string_view name, ByteView value);

// Opens the copy sealed to this node (its node key) or, failing that, to the cluster (when
// this node holds the cluster key). PermissionDenied names why this node cannot.
Result<SecretValue> openSecret(const SealedSecret& s, const SigningKey& node_key, const ClusterSecretKey* cluster);

// Whether a copy is sealed to this node key (without opening it), or to the cluster.
bool sealedToNode(const SealedSecret& s, const PublicKey& node_key);
bool sealedToCluster(const SealedSecret& s);

}  // namespace meshos
