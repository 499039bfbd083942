// Action: one thing the node asks the bounded executor to do. An `apply` hands the node's
// desired daemon set to the supervisor; a `start` or `stop` carries out one instance's start
// or stop that the supervisor decided (it keeps owning each instance's life: policy, backoff,
// dependencies, health; see docs/ARCHITECTURE.md, "Instance starts and stops are executor
// actions"). A value; its target() is the key the executor uses to suppress duplicates (one
// action in flight per target).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace meshos::state {

enum class ActionKind {
  kApply,  // hand this node's desired daemon set to the supervisor
  kStart,  // start one instance's process
  kStop,   // stop one instance's process (grace, then kill)
};

// Why an action exists. A freeze holds changes (the executor refuses them as gated until the
// thaw) but never what keeps the running set as it is, nor what an operator asked for.
enum class ActionCause {
  kChange,    // a new desired set: a daemon added, removed, changed or scaled
  kPolicy,    // keeps what runs: a restart after a crash or a failed check, a job retry, a
              // cron fire, the set restored when the agent starts
  kOperator,  // an operator's start, stop, restart or quarantine (audited on the socket)
};

std::string_view actionKindName(ActionKind kind);
std::string_view actionCauseName(ActionCause cause);

struct Action {
  ActionKind kind = ActionKind::kApply;
  std::string daemon;       // daemon name ("" for an apply)
  std::string instance;     // the target: the node's set ("node") or an instance
  uint64_t generation = 0;  // apply: the desired set generation; start/stop: the request's
  std::string reason;       // why it is wanted, for the log chain
  ActionCause cause = ActionCause::kChange;

  const std::string& target() const { return instance; }
  friend bool operator==(const Action&, const Action&) = default;
};

}  // namespace meshos::state
