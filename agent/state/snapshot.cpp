#include "agent/state/snapshot.h"

#include <algorithm>
#include <sstream>

namespace meshos::state {

void LoopLagMeter::record(int64_t lag_us) {
  if (lag_us < 0) lag_us = 0;
  window_[next_] = lag_us;
  next_ = (next_ + 1) % kWindow;
  ++count_;
  last_us_ = lag_us;
  max_us_ = std::max(max_us_, lag_us);
}

LoopLag LoopLagMeter::summary() const {
  LoopLag l;
  l.last_us = last_us_;
  l.max_us = max_us_;
  l.samples = count_;
  size_t n = std::min<uint64_t>(count_, kWindow);
  if (n > 0) {
    std::vector<int64_t> sorted(window_.begin(), window_.begin() + static_cast<long>(n));
    size_t k = std::min(n - 1, (n * 99) / 100);
    std::nth_element(sorted.begin(), sorted.begin() + static_cast<long>(k), sorted.end());
    l.p99_us = sorted[k];
  }
  return l;
}

std::shared_ptr<const Snapshot> makeSnapshot(const State& state, SnapshotInputs inputs,
                                             const std::shared_ptr<const Snapshot>& previous,
                                             int64_t& lists_built_at_ms) {
  auto s = std::make_shared<Snapshot>();
  s->generation = state.structural_generation;
  s->node_id = state.node_id;
  s->node_name = state.node_name;
  s->version = std::move(inputs.version);
  s->cluster = std::move(inputs.cluster);
  s->uptime_ms = state.now_ms - state.started_ms;
  s->wall_ms = inputs.wall_ms;
  s->ticks = state.ticks;
  s->events_folded = state.events_folded;
  s->shutting_down = state.shutting_down;
  s->loop_lag = inputs.loop_lag;
  s->commit_head = state.commit_head;
  s->sections = std::move(inputs.sections);
  bool reuse = previous && previous->generation == state.structural_generation &&
               state.now_ms - lists_built_at_ms < inputs.refresh_ms;
  if (reuse) {
    s->members = previous->members;
    s->desired = previous->desired;
    s->instances = previous->instances;
  } else {
    auto members = std::make_shared<std::vector<Member>>();
    members->reserve(state.members.size());
    for (const auto& [id, m] : state.members) members->push_back(m);
    auto desired = std::make_shared<std::vector<DesiredDaemon>>();
    desired->reserve(state.desired.size());
    for (const auto& [name, d] : state.desired) desired->push_back(d);
    auto instances = std::make_shared<std::vector<Instance>>();
    instances->reserve(state.instances.size());
    for (const auto& [id, i] : state.instances) instances->push_back(i);
    s->members = std::move(members);
    s->desired = std::move(desired);
    s->instances = std::move(instances);
    lists_built_at_ms = state.now_ms;
  }
  return s;
}

nlohmann::json membersToJson(const Snapshot& s) {
  auto out = nlohmann::json::array();
  for (const auto& m : *s.members) {
    out.push_back({{"name", m.name},
                   {"id", m.id},
                   {"address", m.address},
                   {"state", memberStateName(m.state)},
                   {"incarnation", m.incarnation},
                   {"last_heard_ms", m.last_heard_ms},
                   {"rtt_ms", m.rtt_ms}});
  }
  return {{"members", out}};
}

nlohmann::json daemonsToJson(const Snapshot& s) {
  auto out = nlohmann::json::array();
  for (const auto& i : *s.instances) {
    out.push_back({{"name", i.daemon},
                   {"instance", i.id},
                   {"state", instanceStateName(i.state)},
                   {"pid", i.pid},
                   {"restarts", i.restarts},
                   {"health", i.health},
                   {"generation", i.generation},
                   {"since_ms", i.since_ms}});
  }
  auto desired = nlohmann::json::array();
  for (const auto& d : *s.desired) {
    desired.push_back({{"name", d.name},
                       {"generation", d.generation},
                       {"replicas", d.replicas},
                       {"paused", d.paused},
                       {"source", d.source}});
  }
  return {{"daemons", out}, {"desired", desired}};
}

nlohmann::json snapshotToJson(const Snapshot& s) {
  nlohmann::json j = {
      {"generation", s.generation},
      {"node", {{"id", s.node_id}, {"name", s.node_name}, {"version", s.version},
                {"cluster", s.cluster}, {"uptime_ms", s.uptime_ms}, {"wall_ms", s.wall_ms},
                {"shutting_down", s.shutting_down}}},
      {"loop", {{"ticks", s.ticks}, {"events_folded", s.events_folded},
                {"lag_last_us", s.loop_lag.last_us}, {"lag_max_us", s.loop_lag.max_us},
                {"lag_p99_us", s.loop_lag.p99_us}}},
      {"commit_head", {{"seq", s.commit_head.seq}, {"hash", s.commit_head.hash_hex}}},
  };
  j["members"] = membersToJson(s)["members"];
  auto d = daemonsToJson(s);
  j["daemons"] = d["daemons"];
  j["desired"] = d["desired"];
  for (auto& [k, v] : s.sections.items()) j[k] = v;
  return j;
}

}  // namespace meshos::state
