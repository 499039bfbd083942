// Supervisor, routed: starts and stops as actions for the node's bounded executor.
//
// The supervisor still decides every start and stop (policy, backoff, dependencies, health,
// operators); routed, it records what it decided in asked_ (one action per instance: a
// later decision replaces an earlier one) and the executor carries it out through
// perform(). Between the two the instance keeps the state it showed: waiting or backing
// off until its start runs, stopping until its stop is sent.
#include <algorithm>

#include "agent/runtime/supervisor.h"
#include "agent/runtime/supervisor_records.h"

namespace meshos::runtime {

void Supervisor::routeActions(std::function<void()> on_pending) {
  routed_ = true;
  on_pending_ = std::move(on_pending);
}

std::vector<state::Action> Supervisor::pendingActions() const {
  std::vector<const Asked*> order;
  order.reserve(asked_.size());
  for (const auto& [id, a] : asked_) order.push_back(&a);
  std::sort(order.begin(), order.end(), [](const Asked* x, const Asked* y) { return x->order < y->order; });
  std::vector<state::Action> out;
  out.reserve(order.size());
  for (const Asked* a : order) out.push_back(a->action);
  return out;
}

void Supervisor::ask(Instance& inst, state::ActionKind kind, const std::string& reason) {
  const uint64_t n = next_ask_++;
  asked_[inst.id] = Asked{state::Action{kind, inst.daemon, inst.id, n, reason, inst.cause}, n};
  if (on_pending_) on_pending_();
}

void Supervisor::stopProcess(Instance& inst) {
  if (routed_ && !stop_all_) {
    ask(inst, state::ActionKind::kStop, inst.reason);
  } else {
    asked_.erase(inst.id);
    (void)runtime_.stop(inst.id);
  }
}

Status Supervisor::perform(const state::Action& action) {
  if (action.kind != state::ActionKind::kStart && action.kind != state::ActionKind::kStop) {
    return Status::invalid("the supervisor carries out starts and stops, not " +
                           std::string(state::actionKindName(action.kind)));
  }
  auto it = asked_.find(action.instance);
  if (it == asked_.end() || it->second.action.generation != action.generation) return Status::ok();
  asked_.erase(it);
  Instance* inst = findInstance(action.instance);
  if (inst == nullptr) return Status::ok();
  if (action.kind == state::ActionKind::kStart) {
    const bool startable = inst->state == InstanceState::kWaiting || inst->state == InstanceState::kBackingOff ||
                           inst->state == InstanceState::kQuarantined;
    if (startable && !inst->held && !inst->removing) launchNow(*inst);
  } else if (inst->state == InstanceState::kStopping) {
    (void)runtime_.stop(inst->id);
  }
  return Status::ok();
}

}  // namespace meshos::runtime
