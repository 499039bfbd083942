// Stable 64-bit hashing for placement: rendezvous weights and the Assigner's fingerprint.
// Every node must compute the same values from the same strings, so nothing here depends
// on the platform (byte order is fixed, no std::hash). Not cryptographic: names come from
// signed commits and the membership, not from an adversary choosing collisions.
// Pure functions; any thread.
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>

namespace meshos::placement {

inline constexpr uint64_t kNodeSeed = 0x6d6573686e6f6465ULL;    // "meshnode"
inline constexpr uint64_t kDaemonSeed = 0x6d6573686461656dULL;  // "meshdaem"

// MurmurHash3's 64-bit finaliser: a bijection with full avalanche.
inline uint64_t mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdULL;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ULL;
  x ^= x >> 33;
  return x;
}

inline uint64_t load64le(const char* p) {
  uint64_t w;
  std::memcpy(&w, p, sizeof w);
  if constexpr (std::endian::native == std::endian::big) w = __builtin_bswap64(w);
  return w;
}

inline uint64_t hashString(std::string_view s, uint64_t seed) {
  constexpr uint64_t k1 = 0x87c37b91114253d5ULL;
  constexpr uint64_t k2 = 0x4cf5ad432745937fULL;
  uint64_t h = seed ^ (static_cast<uint64_t>(s.size()) * k1);
  size_t i = 0;
  for (; i + 8 <= s.size(); i += 8) {
    h ^= std::rotl(load64le(s.data() + i) * k1, 31) * k2;
    h = std::rotl(h, 27) * 5 + 0x52dce729;
  }
  uint64_t tail = 0;
  for (size_t j = 0; i + j < s.size(); ++j) tail |= uint64_t{static_cast<uint8_t>(s[i + j])} << (8 * j);
  h ^= std::rotl(tail * k1, 31) * k2;
  return mix64(h);
}

// Rendezvous weight of (daemon, node) from their precomputed (already well mixed) hashes:
// one 64x64->128 multiply folded (wyhash's "mum"), the cheapest good mix for the hot loop.
inline constexpr uint64_t kRendezvousDaemonMix = 0xa0761d6478bd642fULL;
inline constexpr uint64_t kRendezvousNodeMix = 0xe7037ed1a0b428dbULL;
// The same from both hashes already xored with their mix constants (hot loops keep them so).
inline uint64_t rendezvousMixed(uint64_t daemon_mixed, uint64_t node_mixed) {
  const unsigned __int128 p = static_cast<unsigned __int128>(daemon_mixed) * node_mixed;
  return static_cast<uint64_t>(p >> 64) ^ static_cast<uint64_t>(p);
}
inline uint64_t rendezvous(uint64_t daemon_hash, uint64_t node_hash) {
  return rendezvousMixed(daemon_hash ^ kRendezvousDaemonMix, node_hash ^ kRendezvousNodeMix);
}

// Order-sensitive streaming hash of fields.
class Hasher {
 public:
  explicit Hasher(uint64_t seed) : h_(seed) {}
  void add(uint64_t v) { h_ = (std::rotl(h_, 23) ^ v) * 0x9e3779b97f4a7c15ULL; }
  void add(std::string_view s) { add(hashString(s, 0x737472696e676861ULL)); }
  void add(const std::string& s) { add(std::string_view(s)); }
  void add(const char*) = delete;
  uint64_t done() const { return mix64(h_); }

 private:
  uint64_t h_;
};

}  // namespace meshos::placement
