// TrustSet and DesiredState: what the commit log folds to.
//
// DesiredState is a value: the daemons the cluster should run (with pause flags and
// one-shot restart / relocation-kill generations), node maintenance, the freeze, and the
// trust set (admin keys + threshold) in force after the last commit. applyCommitOps() is
// the fold step: pure, all-or-nothing, and strict (a daemon spec is validated as strictly
// as a config file, the set with spec::validateSet()). Owned by the CommitLog on the loop
// thread; copies may go anywhere.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "agent/commits/commit_format.h"
#include "agent/core/crypto.h"
#include "agent/core/status.h"
#include "agent/spec/daemon_spec.h"

namespace meshos::commits {

inline constexpr size_t kMaxAdminKeys = 64;

struct TrustSet {
  std::set<PublicKey> admins;
  uint32_t threshold = 1;

  bool contains(const PublicKey& k) const { return admins.count(k) != 0; }
  // threshold in [1, admins.size()], at most kMaxAdminKeys keys.
  Status validate() const;
  bool operator==(const TrustSet&) const = default;
};

// From node.toml [trust]: admins = ["<base64>", ...], threshold = N.
Result<TrustSet> trustFromConfig(const std::vector<std::string>& admins_base64, int64_t threshold);

struct DesiredDaemon {
  spec::DaemonSpec spec;
  bool paused = false;
  uint64_t restart_generation = 0;          // seq of the last force-restart commit, 0 = none
  uint64_t kill_relocation_generation = 0;  // seq of the last kill-relocation commit
  uint64_t updated_seq = 0;                 // the commit that last changed this entry
  bool operator==(const DesiredDaemon&) const = default;
};

// A sealed secret as the last commit that put it left it (ciphertext only).
struct DesiredSecret {
  SealedSecret sealed;
  uint64_t seq = 0;  // that commit; the daemons using it carry it (SecretUses::versions)
  bool operator==(const DesiredSecret&) const = default;
};
inline constexpr size_t kMaxSecrets = 1000;

struct NodeMaintenance {
  MaintenanceMode mode = MaintenanceMode::kDrain;
  int64_t deadline_ms = 0;
  uint64_t seq = 0;
  bool operator==(const NodeMaintenance&) const = default;
};

struct FreezeState {
  int64_t expires_at_ms = 0;
  std::string reason;
  uint64_t seq = 0;
  bool operator==(const FreezeState&) const = default;
};

struct DesiredState {
  uint64_t seq = 0;  // head of the log this state is the fold of
  Hash256 hash{};
  std::map<std::string, DesiredDaemon> daemons;
  std::map<std::string, DesiredSecret> secrets;
  std::map<std::string, NodeMaintenance> maintenance;  // nodes not active only
  std::optional<FreezeState> freeze;                   // the last freeze, until thawed
  TrustSet trust;

  // For reconcile: a freeze holds until its absolute expiry (wall-clock ms).
  bool frozenAt(int64_t now_wall_ms) const {
    return freeze.has_value() && now_wall_ms < freeze->expires_at_ms;
  }
  bool operator==(const DesiredState&) const = default;
};

// Applies every operation of `commit` to a copy of `state` and returns it, or the first
// operation that does not hold ("operation 2 (scale): no daemon \"web\""). Does not check
// signatures, seq or freeze; CommitLog does that.
Result<DesiredState> applyCommitOps(const DesiredState& state, const Commit& commit,
                                    const Hash256& hash);

}  // namespace meshos::commits
