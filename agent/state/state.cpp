#include "agent/state/state.h"

#include <type_traits>

#include "agent/state/action.h"

namespace meshos::state {

std::string_view memberStateName(MemberState s) {
  switch (s) {
    case MemberState::kAlive: return "alive";
    case MemberState::kSuspect: return "suspect";
    case MemberState::kDead: return "dead";
    case MemberState::kLeft: return "left";
  }
  return "unknown";
}

std::string_view instanceStateName(InstanceState s) {
  switch (s) {
    case InstanceState::kWaiting: return "waiting";
    case InstanceState::kStarting: return "starting";
    case InstanceState::kRunning: return "running";
    case InstanceState::kReady: return "ready";
    case InstanceState::kStopping: return "stopping";
    case InstanceState::kStopped: return "stopped";
    case InstanceState::kExited: return "exited";
    case InstanceState::kFailed: return "failed";
    case InstanceState::kBackingOff: return "backing-off";
    case InstanceState::kQuarantined: return "quarantined";
    case InstanceState::kPaused: return "paused";
  }
  return "unknown";
}

std::string_view actionKindName(ActionKind kind) {
  switch (kind) {
    case ActionKind::kApply: return "apply";
    case ActionKind::kStart: return "start";
    case ActionKind::kStop: return "stop";
  }
  return "unknown";
}

std::string_view actionCauseName(ActionCause cause) {
  switch (cause) {
    case ActionCause::kChange: return "change";
    case ActionCause::kPolicy: return "policy";
    case ActionCause::kOperator: return "operator";
  }
  return "unknown";
}

namespace {

struct Folder {
  State& s;

  bool operator()(const Tick& e) {
    s.now_ms = e.now_ms;
    ++s.ticks;
    return false;
  }

  bool operator()(const MembershipChanged& e) {
    auto it = s.members.find(e.member.id);
    if (it == s.members.end()) {
      s.members.emplace(e.member.id, e.member);
      return true;
    }
    bool structural = it->second.state != e.member.state || it->second.address != e.member.address ||
                      it->second.name != e.member.name;
    it->second = e.member;
    return structural;
  }

  bool operator()(const PeerStateUpdated& e) {
    auto& slot = s.peer_states[e.node_id];
    if (e.version < slot.version) return false;  // newer version per origin wins
    // Load, memory and coordinates move all the time and nothing planned depends on them
    // moving a little: only the rest of the report is a structural change.
    auto placed = [](NodeReport r) {
      r.inventory = {};
      r.coordinate.reset();
      return r;
    };
    bool structural = placed(slot.report) != placed(e.report);
    slot = e;
    return structural;
  }

  bool operator()(const CommitReceived& e) {
    if (e.seq < s.commit_head.seq) return false;
    bool changed = e.seq != s.commit_head.seq || e.hash_hex != s.commit_head.hash_hex;
    s.commit_head = e;
    return changed;
  }

  bool operator()(const DaemonSignal& e) {
    if (e.removed) return s.instances.erase(e.instance.id) > 0;
    auto it = s.instances.find(e.instance.id);
    if (it == s.instances.end()) {
      s.instances.emplace(e.instance.id, e.instance);
      return true;
    }
    bool structural = it->second.state != e.instance.state || it->second.pid != e.instance.pid ||
                      it->second.generation != e.instance.generation ||
                      it->second.health != e.instance.health;
    it->second = e.instance;
    return structural;
  }

  bool operator()(const DesiredDaemonsChanged& e) {
    bool changed = false;
    std::map<std::string, const DesiredDaemonsChanged::Entry*> incoming;
    for (const auto& d : e.daemons) incoming[d.name] = &d;
    for (auto it = s.desired.begin(); it != s.desired.end();) {
      if (it->second.source == e.source && incoming.count(it->first) == 0) {
        it = s.desired.erase(it);
        changed = true;
      } else {
        ++it;
      }
    }
    for (const auto& [name, d] : incoming) {
      DesiredDaemon next{d->name, d->generation, d->replicas, d->paused, e.source};
      auto it = s.desired.find(name);
      if (it == s.desired.end()) {
        s.desired.emplace(name, next);
        changed = true;
      } else if (it->second.generation != next.generation ||
                 it->second.replicas != next.replicas || it->second.paused != next.paused ||
                 it->second.source != next.source) {
        it->second = next;
        changed = true;
      }
    }
    if (changed) ++s.desired_set_generation;
    return changed;
  }

  bool operator()(const DesiredReapply&) {
    ++s.desired_set_generation;
    return true;
  }

  bool operator()(const DesiredApplied& e) {
    if (e.generation <= s.applied_set_generation) return false;
    s.applied_set_generation = e.generation;
    return true;
  }

  bool operator()(const ProbeSample& e) {
    s.probes[e.probe] = e;
    return false;
  }

  bool operator()(const ControlCommand& e) {
    if (s.recent_commands.size() >= kRecentCommandsMax) {
      s.recent_commands.erase(s.recent_commands.begin());
    }
    s.recent_commands.push_back(e);
    return false;
  }

  bool operator()(const ChainFlushed& e) {
    auto& seq = s.chain_flushed[e.chain];
    if (e.seq > seq) seq = e.seq;
    return false;
  }

  bool operator()(const Shutdown&) {
    bool changed = !s.shutting_down;
    s.shutting_down = true;
    return changed;
  }
};

}  // namespace

bool fold(State& state, const Event& event) {
  ++state.events_folded;
  bool structural = std::visit(Folder{state}, event);
  if (structural) ++state.structural_generation;
  return structural;
}

}  // namespace meshos::state
