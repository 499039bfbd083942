// reconcile(): the difference between desired and actual, as actions. Pure and
// level-triggered: the same State always gives the same actions, in the same order (daemons
// by name, instances by id), and running it again before anything changed gives the same
// list (the executor suppresses what is already in flight). It never reads a clock.
//
// Rules, per desired daemon D (not paused) wanting R instances here, ids "D/0".."D/R-1":
//   - a wanted instance the runtime does not have            -> start
//   - a wanted instance running an older generation of D     -> restart
//   - an instance of a daemon no longer desired, or id >= R  -> stop (unless stopping/stopped)
// While the node shuts down it asks for nothing. Instances the runtime supervises (crashed,
// backing off, quarantined, paused, stopped by an operator) are left to the runtime.
#pragma once

#include <string>
#include <vector>

#include "agent/state/action.h"
#include "agent/state/state.h"

namespace meshos::reconcile {

std::vector<state::Action> reconcile(const state::State& state);

std::string instanceId(const std::string& daemon, uint32_t ordinal);

}  // namespace meshos::reconcile
