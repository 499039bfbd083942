// MemberIdentity: the part of a member record that rarely changes (id, name, address, public
// key), held once and shared by reference. Every node holds every member, so in the
// simulator (N memberships in one process) the same identity would otherwise be copied N
// times; in an agent it is held once per member either way.
//
// MemberIdentityPool::intern() returns the live shared copy equal to the given fields, or
// makes one. An identity lives as long as a holder does; the pool keeps only weak
// references and sweeps dead ones. The owner of the Memberships owns the pool (the agent:
// one per Node; the simulator: one for the whole world) and keeps it alive longer than
// every Membership that uses it. Thread-safe (one mutex, taken only when an identity is
// looked up: a new member or a changed address/name/key, never on the per-packet path).
#pragma once

#include <algorithm>
#include <memory>
#include <string>
#include <string_view>

#include "agent/core/bytes.h"

namespace meshos::gossip {

struct MemberIdentity {
  std::string id;
  std::string name;
  std::string address;
  Bytes public_key;

  bool same(std::string_view id_, std::string_view name_, std::string_view address_, ByteView key) const {
    return id == id_ && name == name_ && address == address_ &&
           std::equal(public_key.begin(), public_key.end(), key.begin(), key.end());
  }
};

using MemberIdentityRef = std::shared_ptr<const MemberIdentity>;

class MemberIdentityPool {
 public:
  MemberIdentityPool();
  ~MemberIdentityPool();
  MemberIdentityPool(const MemberIdentityPool&) = delete;
  MemberIdentityPool& operator=(const MemberIdentityPool&) = delete;

  MemberIdentityRef intern(std::string_view id, std::string_view name, std::string_view address, ByteView public_key);
  // Identities tracked now (live or not yet swept); for tests.
  size_t size() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace meshos::gossip
