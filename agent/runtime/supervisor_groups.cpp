// Supervisor, groups ([daemon.supervision], docs/RUNTIME.md "Supervision groups"), after the
// OTP supervisor's restart strategies: when a member of a group fails and is to restart,
// one-for-all restarts every other member, rest-for-one the members after it in dependency
// order, one-for-one none. Members restarted for the group stop first (dependents first) and
// start again in dependency order once none of them runs. More than restart_intensity
// restarts of members within restart_window_ms quarantine the whole group (held until an
// operator starts it), with a failure record. A daemon with restart_with_dependency restarts
// whenever a daemon it depends on restarts, in or out of a group.
#include <algorithm>

#include "agent/runtime/supervisor.h"
#include "agent/runtime/supervisor_records.h"

namespace meshos::runtime {

std::vector<std::string> Supervisor::liveOrder() const {
  std::vector<spec::DaemonSpec> live;
  for (const auto& [n, d] : daemons_) {
    if (!d->removing) live.push_back(d->spec);
  }
  auto order = spec::startOrder(live);  // the set applied is valid: no cycle
  return order ? *order : std::vector<std::string>{};
}

std::vector<Supervisor::Daemon*> Supervisor::groupMembers(const std::string& group) {
  std::vector<Daemon*> out;
  for (const auto& name : liveOrder()) {
    Daemon* d = findDaemon(name);
    if (d != nullptr && d->spec.supervision.group == group) out.push_back(d);
  }
  return out;
}

const std::string& Supervisor::groupOf(const Instance& inst) const {
  static const std::string kNone;
  const Daemon* d = findDaemon(inst.daemon);  // the daemon's spec: a supervision change restarts no instance
  return d != nullptr ? d->spec.supervision.group : kNone;
}

bool Supervisor::memberRestarts(Instance& inst, const std::string& why) {
  inst.last_restart = why;
  Daemon* d = findDaemon(inst.daemon);
  if (d == nullptr) return false;
  const spec::Supervision& sv = d->spec.supervision;
  std::set<std::string> seen{inst.daemon};
  if (!sv.group.empty()) {
    GroupState& g = groups_[sv.group];
    const int64_t now = clock_.monotonicMs();
    g.restarts.push_back(now);
    while (!g.restarts.empty() && g.restarts.front() <= now - sv.restart_window_ms) g.restarts.pop_front();
    if (sv.restart_intensity > 0 && static_cast<int64_t>(g.restarts.size()) > sv.restart_intensity) {
      quarantineGroup(sv.group, "group '" + sv.group + "' quarantined: " + std::to_string(g.restarts.size()) +
                                    " restarts within " + std::to_string(sv.restart_window_ms) +
                                    " ms (restart_intensity " + std::to_string(sv.restart_intensity) + "); the last: " +
                                    inst.id + " " + why);
      return true;
    }
    const std::string because =
        "group " + sv.group + " (" + std::string(spec::groupStrategyName(sv.strategy)) + "): " + inst.id + " " + why;
    std::vector<Daemon*> members = groupMembers(sv.group);
    size_t failed_at = members.size();
    for (size_t i = 0; i < members.size(); ++i)
      if (members[i]->spec.name == inst.daemon) failed_at = i;
    // Dependents first: stop in the reverse of the dependency order.
    for (size_t i = members.size(); i-- > 0;) {
      const bool wanted = sv.strategy == spec::GroupStrategy::kOneForAll ||
                          (sv.strategy == spec::GroupStrategy::kRestForOne && i > failed_at && failed_at < members.size());
      if (!wanted) continue;
      for (auto& [id, other] : members[i]->instances) {
        if (other.get() != &inst) restartFor(*other, because, true);
      }
      seen.insert(members[i]->spec.name);
    }
    resumeGroup(sv.group);  // nothing was running: start now
    for (Daemon* m : members) {
      if (seen.count(m->spec.name) != 0 && m->spec.name != inst.daemon) {
        restartWith(m->spec.name, "dependency " + m->spec.name + " restarted", seen);
      }
    }
  }
  restartWith(inst.daemon, "dependency " + inst.daemon + " restarted", seen);
  return false;
}

void Supervisor::restartWith(const std::string& daemon, const std::string& why, std::set<std::string>& seen) {
  std::vector<std::string> next;
  for (auto& [n, d] : daemons_) {
    if (d->removing || !d->spec.supervision.restart_with_dependency || seen.count(n) != 0) continue;
    const auto& deps = d->spec.depends_on;
    if (std::none_of(deps.begin(), deps.end(), [&](const spec::Dependency& x) { return x.name == daemon; })) continue;
    seen.insert(n);
    for (auto& [id, inst] : d->instances) restartFor(*inst, why, false);
    next.push_back(n);
  }
  for (const auto& n : next) restartWith(n, "dependency " + n + " restarted", seen);
}

void Supervisor::restartFor(Instance& inst, const std::string& why, bool hold) {
  if (inst.removing || inst.held) return;
  inst.last_restart = why;
  if (inst.has_process()) {
    ++inst.tracker.restarts;
    inst.restart_after_stop = true;
    inst.group_hold = hold;
    stopInstance(inst, why, state::ActionCause::kPolicy);
  }
  // Not running (waiting, backing off): it starts anyway, on its own schedule.
}

void Supervisor::resumeGroup(const std::string& group) {
  std::vector<Daemon*> members = groupMembers(group);
  for (Daemon* m : members) {
    for (auto& [id, inst] : m->instances) {
      if (inst->group_hold && inst->has_process()) return;  // still stopping
    }
  }
  for (Daemon* m : members) {
    for (auto& [id, inst] : m->instances) {
      if (!inst->group_hold) continue;
      inst->group_hold = false;
      beginWaiting(*inst, state::ActionCause::kPolicy, true);
    }
  }
}

void Supervisor::quarantineGroup(const std::string& group, const std::string& why) {
  GroupState& g = groups_[group];
  g.quarantined = true;
  g.reason = why;
  g.restarts.clear();
  std::vector<Daemon*> members = groupMembers(group);
  failure(members.empty() ? "" : members.front()->spec.name, "group", why);
  for (auto it = members.rbegin(); it != members.rend(); ++it) {
    for (auto& [id, inst] : (*it)->instances) {
      if (inst->removing) continue;
      inst->held = true;
      inst->held_state = InstanceState::kQuarantined;
      inst->group_hold = false;
      inst->restart_after_stop = false;
      stopInstance(*inst, why, state::ActionCause::kPolicy);
    }
  }
}

std::vector<GroupSnapshot> Supervisor::groups() const {
  std::map<std::string, GroupSnapshot> out;
  for (const auto& name : liveOrder()) {
    const Daemon* d = findDaemon(name);
    const spec::Supervision& sv = d->spec.supervision;
    if (sv.group.empty()) continue;
    GroupSnapshot& g = out[sv.group];
    g.name = sv.group;
    g.strategy = std::string(spec::groupStrategyName(sv.strategy));
    g.restart_intensity = sv.restart_intensity;
    g.members.push_back(name);
    auto st = groups_.find(sv.group);
    if (st != groups_.end()) {
      const int64_t now = clock_.monotonicMs();
      g.restarts_in_window = std::count_if(st->second.restarts.begin(), st->second.restarts.end(),
                                           [&](int64_t t) { return t > now - sv.restart_window_ms; });
      g.quarantined = st->second.quarantined;
      g.reason = st->second.reason;
    }
  }
  std::vector<GroupSnapshot> list;
  for (auto& [n, g] : out) list.push_back(std::move(g));
  return list;
}

}  // namespace meshos::runtime
