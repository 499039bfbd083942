#include "agent/gossip/member_identity.h"

#include <algorithm>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace meshos::gossip {

namespace {

constexpr size_t kSweepEvery = 4096;  // inserts between sweeps of expired entries

}  // namespace

struct MemberIdentityPool::State {
  // Inside State, not in the anonymous namespace: in a unity build (tools/dev's) this file
  // is an included one, and GCC refuses a field whose type has internal linkage there.
  struct IdHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  mutable std::mutex mu;
  // By id; more than one entry when a member moved (a new address) or was renamed.
  std::unordered_map<std::string, std::vector<std::weak_ptr<const MemberIdentity>>, IdHash, std::equal_to<>> by_id;
  size_t inserts_since_sweep = 0;

  void sweep() {
    for (auto it = by_id.begin(); it != by_id.end();) {
      auto& v = it->second;
      v.erase(std::remove_if(v.begin(), v.end(), [](const auto& w) { return w.expired(); }), v.end());
      it = v.empty() ? by_id.erase(it) : std::next(it);
    }
    inserts_since_sweep = 0;
  }
};

MemberIdentityPool::MemberIdentityPool() : state_(std::make_unique<State>()) {}
MemberIdentityPool::~MemberIdentityPool() = default;

MemberIdentityRef MemberIdentityPool::intern(std::string_view id, std::string_view name, std::string_view address,
                                             ByteView public_key) {
  State& p = *state_;
  std::lock_guard<std::mutex> lock(p.mu);
  auto found = p.by_id.find(id);
  if (found == p.by_id.end()) found = p.by_id.emplace(std::string(id), std::vector<std::weak_ptr<const MemberIdentity>>{}).first;
  auto& versions = found->second;
  for (auto it = versions.begin(); it != versions.end();) {
    MemberIdentityRef live = it->lock();
    if (!live) {
      it = versions.erase(it);
      continue;
    }
    if (live->same(id, name, address, public_key)) return live;
    ++it;
  }
  // Not make_shared: the identity is freed with its last holder, not with the pool's weak ref.
  MemberIdentityRef made(new MemberIdentity{std::string(id), std::string(name), std::string(address),
                                            Bytes(public_key.begin(), public_key.end())});
  versions.push_back(made);
  if (++p.inserts_since_sweep >= kSweepEvery) p.sweep();
  return made;
}

size_t MemberIdentityPool::size() const {
  std::lock_guard<std::mutex> lock(state_->mu);
  size_t n = 0;
  for (const auto& [id, v] : state_->by_id) n += v.size();
  return n;
}

}  // namespace meshos::gossip
