// TraceHash: a running 64-bit digest of what happened in a simulation (deliveries, process
// starts and exits, commit heads, chain acks, faults), so two runs of one seed can be
// compared by one number, across processes. Deterministic by construction: it mixes only
// values the simulation computed, never addresses or the real clock.
#pragma once

#include <cstdint>
#include <string_view>

namespace meshos::sim {

class TraceHash {
 public:
  void mix(uint64_t v) {
    // splitmix64's finaliser over the running state: cheap, and every bit of v matters.
    uint64_t z = state_ ^ (v + 0x9e3779b97f4a7c15ULL + (state_ << 6) + (state_ >> 2));
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    state_ = z ^ (z >> 31);
    ++events_;
  }
  void mix(std::string_view s) {
    uint64_t h = 0xcbf29ce484222325ULL;  // FNV-1a
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ULL;
    mix(h);
  }
  uint64_t value() const { return state_; }
  uint64_t events() const { return events_; }

 private:
  uint64_t state_ = 0x6d6573686f73ULL;
  uint64_t events_ = 0;
};

}  // namespace meshos::sim
