// Keyring: the cluster keys that seal and open every gossip packet and stream frame.
//
// Envelope (what goes on the wire), decided before any decoding happens:
//   encrypted: [0x01][24-byte random nonce][XChaCha20-Poly1305-IETF ciphertext + 16-byte tag]
//              associated data = the cluster id, so a packet of another cluster fails to open
//   plaintext: [0x00][1-byte cluster id length][cluster id][payload]  (no keyring installed)
// The primary key seals; open() tries every installed key. Rotation: install(new) on every
// node, use(new), then remove(old).
//
// Keyring file (text, mode 0600): "meshos-gossip-keyring-v1" on the first line, then one
// base64 32-byte key per line; the first key line is the primary. Blank lines and lines
// starting with '#' are ignored.
//
// A value owned by one GossipService / Membership; loop thread only.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "agent/core/bytes.h"
#include "agent/core/file_system.h"
#include "agent/core/status.h"

namespace meshos::gossip {

using ClusterKey = std::array<uint8_t, 32>;

inline constexpr uint8_t kEnvelopePlain = 0x00;
inline constexpr uint8_t kEnvelopeXChaCha = 0x01;
inline constexpr size_t kNonceBytes = 24;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kSealOverheadBytes = 1 + kNonceBytes + kTagBytes;

// Why open() refused a packet; the caller counts drops by this.
enum class OpenError { kNone, kTruncated, kBadVersion, kWrongCluster, kDecryptFailed, kPlainRefused, kEncryptedRefused };
const char* openErrorName(OpenError e);

ClusterKey generateClusterKey();
std::string clusterKeyToBase64(const ClusterKey& key);
Result<ClusterKey> clusterKeyFromBase64(std::string_view text);

class Keyring {
 public:
  Keyring() = default;
  explicit Keyring(std::vector<ClusterKey> keys) : keys_(std::move(keys)) {}

  bool empty() const { return keys_.empty(); }
  const std::vector<ClusterKey>& keys() const { return keys_; }
  // Adds a key for decryption (no-op if present); the first key installed becomes primary.
  void install(const ClusterKey& key);
  // Makes an installed key the primary.
  Status use(const ClusterKey& key);
  // Removes a key that is not the primary.
  Status remove(const ClusterKey& key);

  // Seals payload for the wire (plaintext envelope when the ring is empty), with a fresh
  // random nonce.
  Bytes seal(std::string_view cluster_id, ByteView payload) const;
  // The same with a given nonce: for known-answer vectors only (a nonce must never repeat
  // under one key).
  Bytes sealWithNonce(std::string_view cluster_id, ByteView payload, const std::array<uint8_t, kNonceBytes>& nonce) const;
  // Opens a sealed packet; on failure returns the reason and leaves out empty.
  OpenError open(std::string_view cluster_id, ByteView packet, Bytes& out) const;
  size_t overheadBytes(std::string_view cluster_id) const {
    return keys_.empty() ? 2 + cluster_id.size() : kSealOverheadBytes;
  }

 private:
  std::vector<ClusterKey> keys_;  // [0] is the primary
};

// The keyring file: a header line, then one base64 key per line, the primary first
// ('#' comments and blank lines allowed). name is the path, for errors (file:line).
Result<Keyring> parseKeyring(std::string_view text, const std::string& name);
std::string keyringText(const Keyring& ring);
Result<Keyring> loadKeyring(const FileSystem& fs, const std::filesystem::path& path);
// Written atomically with mode 0600.
Status saveKeyring(FileSystem& fs, const std::filesystem::path& path, const Keyring& ring);

}  // namespace meshos::gossip
