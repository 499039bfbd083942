#include "agent/gossip/keyring.h"

#include <sodium.h>

#include <algorithm>
#include <sstream>

namespace meshos::gossip {

namespace {
constexpr const char* kKeyringHeader = "meshos-gossip-keyring-v1";
}

const char* openErrorName(OpenError e) {
  switch (e) {
    case OpenError::kNone: return "none";
    case OpenError::kTruncated: return "truncated";
    case OpenError::kBadVersion: return "bad_version";
    case OpenError::kWrongCluster: return "wrong_cluster";
    case OpenError::kDecryptFailed: return "decrypt_failed";
    case OpenError::kPlainRefused: return "plaintext_refused";
    case OpenError::kEncryptedRefused: return "encrypted_refused";
  }
  return "unknown";
}

ClusterKey generateClusterKey() {
  ClusterKey k{};
  crypto_aead_xchacha20poly1305_ietf_keygen(k.data());
  return k;
}

std::string clusterKeyToBase64(const ClusterKey& key) { return toBase64(ByteView(key.data(), key.size())); }

Result<ClusterKey> clusterKeyFromBase64(std::string_view text) {
  auto raw = fromBase64(text);
  if (!raw) return raw.status().withContext("cluster key");
  if (raw->size() != 32) return Status::invalid("cluster key must be 32 bytes, got " + std::to_string(raw->size()));
  ClusterKey k{};
  std::copy(raw->begin(), raw->end(), k.begin());
  return k;
}

void Keyring::install(const ClusterKey& key) {
  if (std::find(keys_.begin(), keys_.end(), key) == keys_.end()) keys_.push_back(key);
}

Status Keyring::use(const ClusterKey& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) return Status::notFound("key is not installed");
  std::rotate(keys_.begin(), it, it + 1);
  return Status::ok();
}

Status Keyring::remove(const ClusterKey& key) {
  auto it = std::find(keys_.begin(), keys_.end(), key);
  if (it == keys_.end()) return Status::notFound("key is not installed");
  if (it == keys_.begin()) return Status::invalid("cannot remove the primary key; use another key first");
  keys_.erase(it);
  return Status::ok();
}

Bytes Keyring::seal(std::string_view cluster_id, ByteView payload) const {
  std::array<uint8_t, kNonceBytes> nonce{};
  if (!keys_.empty()) randombytes_buf(nonce.data(), nonce.size());
  return sealWithNonce(cluster_id, payload, nonce);
}

Bytes Keyring::sealWithNonce(std::string_view cluster_id, ByteView payload,
                             const std::array<uint8_t, kNonceBytes>& nonce_in) const {
  Bytes out;
  if (keys_.empty()) {
    out.reserve(2 + cluster_id.size() + payload.size());
    out.push_back(kEnvelopePlain);
    out.push_back(static_cast<uint8_t>(std::min<size_t>(cluster_id.size(), 255)));
    out.insert(out.end(), cluster_id.begin(), cluster_id.begin() + std::min<size_t>(cluster_id.size(), 255));
    out.insert(out.end(), payload.begin(), payload.end());
    return out;
  }
  out.resize(1 + kNonceBytes + payload.size() + kTagBytes);
  out[0] = kEnvelopeXChaCha;
  uint8_t* nonce = out.data() + 1;
  std::copy(nonce_in.begin(), nonce_in.end(), nonce);
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
      out.data() + 1 + kNonceBytes, &clen, payload.data(), payload.size(),
      reinterpret_cast<const unsigned char*>(cluster_id.data()), cluster_id.size(), nullptr, nonce,
      keys_[0].data());
  out.resize(1 + kNonceBytes + clen);
  return out;
}

OpenError Keyring::open(std::string_view cluster_id, ByteView packet, Bytes& out) const {
  out.clear();
  if (packet.empty()) return OpenError::kTruncated;
  if (packet[0] == kEnvelopePlain) {
    if (!keys_.empty()) return OpenError::kPlainRefused;
    if (packet.size() < 2) return OpenError::kTruncated;
    size_t n = packet[1];
    if (packet.size() < 2 + n) return OpenError::kTruncated;
    if (asChars(packet.subspan(2, n)) != cluster_id) return OpenError::kWrongCluster;
    out.assign(packet.begin() + 2 + n, packet.end());
    return OpenError::kNone;
  }
  if (packet[0] != kEnvelopeXChaCha) return OpenError::kBadVersion;
  if (keys_.empty()) return OpenError::kEncryptedRefused;
  if (packet.size() < kSealOverheadBytes) return OpenError::kTruncated;
  const uint8_t* nonce = packet.data() + 1;
  ByteView cipher = packet.subspan(1 + kNonceBytes);
  out.resize(cipher.size() - kTagBytes);
  for (const auto& key : keys_) {
    unsigned long long mlen = 0;
    if (crypto_aead_xchacha20poly1305_ietf_decrypt(
            out.data(), &mlen, nullptr, cipher.data(), cipher.size(),
            reinterpret_cast<const unsigned char*>(cluster_id.data()), cluster_id.size(), nonce,
            key.data()) == 0) {
      out.resize(mlen);
      return OpenError::kNone;
    }
  }
  out.clear();
  // Wrong key and wrong cluster id are indistinguishable by design (the AD is authenticated).
  return OpenError::kDecryptFailed;
}

Result<Keyring> parseKeyring(std::string_view file_text, const std::string& name) {
  std::istringstream in{std::string(file_text)};
  std::string line;
  int line_no = 0;
  bool header = false;
  Keyring ring;
  while (std::getline(in, line)) {
    ++line_no;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::string_view text = std::string_view(line).substr(start);
    if (!header) {
      if (text != kKeyringHeader)
        return Status::invalid(name + ":" + std::to_string(line_no) + ": expected header '" + kKeyringHeader + "'");
      header = true;
      continue;
    }
    auto key = clusterKeyFromBase64(text);
    if (!key) return key.status().withContext(name + ":" + std::to_string(line_no));
    ring.install(*key);
  }
  if (!header) return Status::invalid(name + ": empty keyring file (no header)");
  if (ring.empty()) return Status::invalid(name + ": keyring holds no key");
  return ring;
}

std::string keyringText(const Keyring& ring) {
  std::string text = std::string(kKeyringHeader) + "\n";
  for (const auto& k : ring.keys()) text += clusterKeyToBase64(k) + "\n";
  return text;
}

Result<Keyring> loadKeyring(const FileSystem& fs, const std::filesystem::path& path) {
  auto text = fs.read(path);
  if (!text) {
    if (text.status().code() == Code::kNotFound) return Status::notFound("cannot open keyring " + path.string());
    return text.status();
  }
  return parseKeyring(*text, path.string());
}

Status saveKeyring(FileSystem& fs, const std::filesystem::path& path, const Keyring& ring) {
  return fs.writeAtomically(path, keyringText(ring), 0600);
}

}  // namespace meshos::gossip
