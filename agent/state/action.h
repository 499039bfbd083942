// Action: one thing reconcile() asks the executor to do to a local daemon instance.
// A value; its target() is the key the executor uses to suppress duplicates (one action
// in flight per instance).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace meshos::state {

enum class ActionKind {
  kApply,         // hand this node's desired daemon set to the supervisor
  kStart,         // start an instance of a desired daemon assigned here
  kStop,          // stop (signal → grace → kill) an instance no longer wanted here
  kRestart,       // its spec changed, or an admin forced a restart
  kApplyBackoff,  // hold a crashed instance until its backoff expires
  kRelocate,      // make-before-break move to another node (placement)
  kCommitMaintenance,  // move this node's maintenance state one step forward
};

std::string_view actionKindName(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kStart;
  std::string daemon;       // daemon name
  std::string instance;     // instance id (daemon name + "/" + ordinal), or the node for maintenance
  uint64_t generation = 0;  // the desired daemon generation this action serves
  std::string reason;       // why reconcile wants it, for the log chain

  const std::string& target() const { return instance; }
  friend bool operator==(const Action&, const Action&) = default;
};

}  // namespace meshos::state
