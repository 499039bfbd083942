#include "agent/core/crypto.h"

#include "agent/core/file_system.h"

#include <sodium.h>

#include <cstring>
#include <sstream>

namespace meshos {

namespace {
constexpr std::string_view kKeyFileHeader = "meshos-ed25519-secret-v1";
static_assert(sizeof(crypto_generichash_state) <= 384, "Blake2b state buffer too small");
}  // namespace

Status initCrypto() {
  if (sodium_init() < 0) return Status::internal("libsodium failed to initialise");
  return Status::ok();
}

Hash256 blake2b256(ByteView data) {
  Hash256 out{};
  crypto_generichash(out.data(), out.size(), data.data(), data.size(), nullptr, 0);
  return out;
}

Blake2b::Blake2b() {
  crypto_generichash_init(reinterpret_cast<crypto_generichash_state*>(state_), nullptr, 0, 32);
}

Blake2b& Blake2b::update(ByteView data) {
  crypto_generichash_update(reinterpret_cast<crypto_generichash_state*>(state_), data.data(),
                            data.size());
  return *this;
}

Blake2b& Blake2b::updateU64(uint64_t v) {
  uint8_t b[8];
  for (int i = 0; i < 8; ++i) b[i] = static_cast<uint8_t>(v >> (56 - 8 * i));
  return update(ByteView(b, 8));
}

Hash256 Blake2b::finish() {
  Hash256 out{};
  crypto_generichash_final(reinterpret_cast<crypto_generichash_state*>(state_), out.data(),
                           out.size());
  return out;
}

SigningKey SigningKey::generate() {
  SigningKey k;
  crypto_sign_keypair(k.public_key.data(), k.secret_key.data());
  return k;
}

SigningKey SigningKey::fromSeed(const std::array<uint8_t, 32>& seed) {
  SigningKey k;
  crypto_sign_seed_keypair(k.public_key.data(), k.secret_key.data(), seed.data());
  return k;
}

Signature SigningKey::sign(ByteView message) const {
  Signature sig{};
  crypto_sign_detached(sig.data(), nullptr, message.data(), message.size(), secret_key.data());
  return sig;
}

bool verifySignature(const PublicKey& key, ByteView message, const Signature& sig) {
  return crypto_sign_verify_detached(sig.data(), message.data(), message.size(), key.data()) == 0;
}

Result<PublicKey> publicKeyFromBase64(std::string_view text) {
  auto bytes = fromBase64(text);
  if (!bytes) return Status::invalid("public key is not base64");
  if (bytes->size() != 32) {
    return Status::invalid("public key must be 32 bytes, got " + std::to_string(bytes->size()));
  }
  PublicKey key{};
  std::memcpy(key.data(), bytes->data(), 32);
  return key;
}

std::string publicKeyToBase64(const PublicKey& key) { return toBase64(key); }

std::string keyFileText(const SigningKey& key) {
  return std::string(kKeyFileHeader) + "\n" + toBase64(key.secret_key) + "\n";
}

Result<Bytes> keyFileBody(std::string_view text, std::string_view header, size_t size, const std::string& what,
                          const std::string& name) {
  const auto eol = text.find('\n');
  std::string_view body = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
  body = body.substr(0, body.find('\n'));
  if (text.substr(0, eol) != header) {
    return Status::invalid(what + " file " + name + " does not start with " + std::string(header));
  }
  auto secret = fromBase64(body);
  if (!secret || secret->size() != size) {
    if (secret) sodium_memzero(secret->data(), secret->size());
    return Status::invalid(what + " file " + name + " does not hold a " + std::to_string(size) + "-byte secret key");
  }
  return secret;
}

Result<SigningKey> parseKeyFile(std::string_view text, const std::string& name) {
  auto secret = keyFileBody(text, kKeyFileHeader, 64, "key", name);
  if (!secret) return secret.status();
  SigningKey k;
  std::memcpy(k.secret_key.data(), secret->data(), 64);
  sodium_memzero(secret->data(), secret->size());
  // The public half is derived, so a key file edited by hand cannot pair mismatched halves.
  crypto_sign_ed25519_sk_to_pk(k.public_key.data(), k.secret_key.data());
  if (std::memcmp(k.public_key.data(), k.secret_key.data() + 32, 32) != 0) {
    return Status::corruption("key file " + name + ": public half does not match");
  }
  return k;
}

Status writeKeyFile(const std::filesystem::path& path, const SigningKey& key) {
  return writeFileAtomically(path, keyFileText(key), 0600);
}

Result<SigningKey> readKeyFile(const std::filesystem::path& path) {
  auto text = PosixFileSystem().read(path);
  if (!text) {
    if (text.status().code() == Code::kNotFound) return Status::notFound("cannot open key file " + path.string());
    return text.status();
  }
  return parseKeyFile(*text, path.string());
}

}  // namespace meshos
