// Action: one thing reconcile() asks the executor to do. Today there is one kind: hand the
// node's desired daemon set to the supervisor, which owns each instance's life (see
// docs/ARCHITECTURE.md, "Reconcile hands the supervisor a desired set"). A value; its
// target() is the key the executor uses to suppress duplicates (one action in flight per
// target).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace meshos::state {

enum class ActionKind {
  kApply,  // hand this node's desired daemon set to the supervisor
};

std::string_view actionKindName(ActionKind kind);

struct Action {
  ActionKind kind = ActionKind::kApply;
  std::string daemon;       // daemon name
  std::string instance;     // the target: the node's set ("node") for an apply
  uint64_t generation = 0;  // the desired daemon generation this action serves
  std::string reason;       // why reconcile wants it, for the log chain

  const std::string& target() const { return instance; }
  friend bool operator==(const Action&, const Action&) = default;
};

}  // namespace meshos::state
