// reconcile(): the difference between desired and actual, as actions. Pure and
// level-triggered: the same State always gives the same actions, in the same order, and
// running it again before anything changed gives the same list (the executor suppresses
// what is already in flight). It never reads a clock.
//
// The supervisor (agent/runtime) owns the life of each instance on this node: it starts
// what a desired set adds, stops what it removes, restarts what changed, and applies the
// restart policy, backoff, dependencies and health checks. So the node-level difference is
// one thing: the desired set this node should run (local daemons now; assigned daemons once
// placement lands) has a newer generation than the one the supervisor accepted → one
// `apply` action carrying that generation (caused by a change, except the first set since
// the agent started, which restores what ran). While the node shuts down it asks for nothing.
// The instance starts and stops that follow are the supervisor's to ask for.
#pragma once

#include <vector>

#include "agent/state/action.h"
#include "agent/state/state.h"

namespace meshos::reconcile {

// The target of apply actions: one per node, so the executor runs one apply at a time.
inline constexpr const char* kApplyTarget = "node";

std::vector<state::Action> reconcile(const state::State& state);

}  // namespace meshos::reconcile
