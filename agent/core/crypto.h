// Cryptography for every module, all through libsodium: BLAKE2b-256 hashes and ed25519
// signing keys, and the key files they are stored in.
//
// Key file format (text, mode 0600):
//   line 1: "meshos-ed25519-secret-v1"
//   line 2: base64 of the 64-byte libsodium secret key (seed followed by public key)
// Public keys are shown and configured as base64 of their 32 bytes.
#pragma once

#include <array>
#include <filesystem>
#include <string>

#include "agent/core/bytes.h"
#include "agent/core/status.h"

namespace meshos {

using Hash256 = std::array<uint8_t, 32>;
using PublicKey = std::array<uint8_t, 32>;
using Signature = std::array<uint8_t, 64>;

// Must succeed before any other call here; safe to call more than once.
Status initCrypto();

Hash256 blake2b256(ByteView data);

// Incremental BLAKE2b-256 over several parts.
class Blake2b {
 public:
  Blake2b();
  Blake2b& update(ByteView data);
  Blake2b& update(std::string_view s) { return update(asBytes(s)); }
  Blake2b& updateU64(uint64_t v);
  Hash256 finish();

 private:
  alignas(64) unsigned char state_[384];
};

struct SigningKey {
  PublicKey public_key{};
  std::array<uint8_t, 64> secret_key{};

  static SigningKey generate();
  // The key a 32-byte seed determines (known-answer tests, simulations).
  static SigningKey fromSeed(const std::array<uint8_t, 32>& seed);
  Signature sign(ByteView message) const;
};

bool verifySignature(const PublicKey& key, ByteView message, const Signature& sig);

Result<PublicKey> publicKeyFromBase64(std::string_view text);
std::string publicKeyToBase64(const PublicKey& key);

// A two-line key file's body: line 1 must be `header`, line 2 the base64 of `size` bytes
// ("<what> file <name> does not ..." otherwise). The caller wipes what it gets.
Result<Bytes> keyFileBody(std::string_view text, std::string_view header, size_t size, const std::string& what,
                          const std::string& name);

// The key file's text, and its parse (name: the path, for errors).
std::string keyFileText(const SigningKey& key);
Result<SigningKey> parseKeyFile(std::string_view text, const std::string& name);
// On the real file system (tools); the agent goes through its FileSystem.
Status writeKeyFile(const std::filesystem::path& path, const SigningKey& key);
Result<SigningKey> readKeyFile(const std::filesystem::path& path);

}  // namespace meshos
