#include "agent/reconcile/reconcile.h"

namespace meshos::reconcile {

using state::Action;
using state::ActionKind;

std::vector<Action> reconcile(const state::State& state) {
  std::vector<Action> actions;
  if (state.shutting_down) return actions;
  if (state.desired_set_generation != state.applied_set_generation) {
    actions.push_back({ActionKind::kApply, "", kApplyTarget, state.desired_set_generation,
                       std::to_string(state.desired.size()) + " desired daemon(s), generation " +
                           std::to_string(state.applied_set_generation) + " -> " +
                           std::to_string(state.desired_set_generation)});
  }
  return actions;
}

}  // namespace meshos::reconcile
