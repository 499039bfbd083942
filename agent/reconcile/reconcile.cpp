#include "agent/reconcile/reconcile.h"

namespace meshos::reconcile {

using state::Action;
using state::ActionKind;

std::vector<Action> reconcile(const state::State& state) {
  std::vector<Action> actions;
  if (state.shutting_down) return actions;
  if (state.desired_set_generation != state.applied_set_generation) {
    // The first set since the agent started restores what this node ran (a freeze keeps
    // it); any later one is a change.
    const auto cause = state.applied_set_generation == 0 ? state::ActionCause::kPolicy : state::ActionCause::kChange;
    actions.push_back({ActionKind::kApply, "", kApplyTarget, state.desired_set_generation,
                       std::to_string(state.desired.size()) + " desired daemon(s), generation " +
                           std::to_string(state.applied_set_generation) + " -> " +
                           std::to_string(state.desired_set_generation),
                       cause});
  }
  return actions;
}

}  // namespace meshos::reconcile
