#include "agent/reconcile/reconcile.h"

#include <charconv>

namespace meshos::reconcile {

using state::Action;
using state::ActionKind;
using state::InstanceState;

std::string instanceId(const std::string& daemon, uint32_t ordinal) {
  return daemon + "/" + std::to_string(ordinal);
}

namespace {

// The ordinal of "name/N", or -1 if the id is not of that form.
int64_t ordinalOf(const std::string& id, const std::string& daemon) {
  if (id.size() <= daemon.size() + 1 || id.compare(0, daemon.size(), daemon) != 0 ||
      id[daemon.size()] != '/') {
    return -1;
  }
  int64_t v = -1;
  const char* first = id.data() + daemon.size() + 1;
  const char* last = id.data() + id.size();
  auto [ptr, ec] = std::from_chars(first, last, v);
  return (ec == std::errc() && ptr == last) ? v : -1;
}

bool isWinding(InstanceState s) {
  return s == InstanceState::kStopping || s == InstanceState::kStopped;
}

bool isRunning(InstanceState s) {
  return s == InstanceState::kRunning || s == InstanceState::kReady ||
         s == InstanceState::kStarting || s == InstanceState::kWaiting;
}

}  // namespace

std::vector<Action> reconcile(const state::State& state) {
  std::vector<Action> actions;
  if (state.shutting_down) return actions;

  for (const auto& [name, d] : state.desired) {
    if (d.paused) continue;
    for (uint32_t i = 0; i < d.replicas; ++i) {
      std::string id = instanceId(name, i);
      auto it = state.instances.find(id);
      if (it == state.instances.end()) {
        actions.push_back({ActionKind::kStart, name, id, d.generation, "desired, not running"});
      } else if (it->second.generation < d.generation && isRunning(it->second.state)) {
        actions.push_back({ActionKind::kRestart, name, id, d.generation,
                           "spec generation " + std::to_string(it->second.generation) + " -> " +
                               std::to_string(d.generation)});
      }
    }
  }

  for (const auto& [id, inst] : state.instances) {
    if (isWinding(inst.state)) continue;
    auto d = state.desired.find(inst.daemon);
    if (d == state.desired.end()) {
      actions.push_back({ActionKind::kStop, inst.daemon, id, inst.generation, "no longer desired"});
      continue;
    }
    int64_t ordinal = ordinalOf(id, inst.daemon);
    if (ordinal < 0 || ordinal >= static_cast<int64_t>(d->second.replicas)) {
      actions.push_back({ActionKind::kStop, inst.daemon, id, inst.generation,
                         "beyond the " + std::to_string(d->second.replicas) + " replicas wanted"});
    }
  }
  return actions;
}

}  // namespace meshos::reconcile
