// Node, the cluster-wide half: this node's state as gossip carries it (NodeReport), the
// peers' reports, placement and planLocal() every tick, and the set of daemons this node
// runs (its [runtime] local daemons plus the commit daemons placed here).
#include <spdlog/spdlog.h>

#include <algorithm>

#include "agent/node/node.h"
#include "agent/spec/interpolate.h"
#include "probes/inventory.h"
#include "probes/node_health.h"

namespace meshos::node {

namespace {

// Instance states that hold a slot: an instance in them is running or will be again.
bool holdsSlot(state::InstanceState s) {
  using S = state::InstanceState;
  return s == S::kWaiting || s == S::kStarting || s == S::kRunning || s == S::kReady || s == S::kBackingOff;
}

}  // namespace

void Node::onPeerState(const gossip::NodeStateUpdate& u) {
  auto report = state::decodeNodeReport(u.body);
  if (!report) {
    ++bad_node_states_;
    spdlog::warn("node state of {} ({}) version {} refused: {}", u.name, u.origin, u.version,
                 report.status().toString());
    record(chains::ChainName::kFailure, "node-state.refused",
           {{"node", u.name}, {"id", u.origin}, {"version", u.version}, {"error", report.status().toString()}});
    return;
  }
  report_seen_ms_[u.origin] = nowMs();
  // A peer's replicas that start, stop or become ready: watchers (the status page) hear it.
  auto was = state_.peer_states.find(u.origin);
  if (was == state_.peer_states.end() || was->second.report.daemons != report->daemons) {
    nlohmann::json daemons = nlohmann::json::object();
    for (const auto& [name, d] : report->daemons) daemons[name] = {{"running", d.running}, {"ready", d.ready}};
    publishEvent("daemons", {{"node", u.name}, {"id", u.origin}, {"daemons", daemons}});
  }
  state::fold(state_, state::PeerStateUpdated{u.origin, u.version, std::move(*report)});
  if (commit_sync_) scheduleCommitSync(0);  // its commit head may be news
}

void Node::startInventory() {
  if (inventory_) inventory_->stop();
  probes::InventoryProbe::Options o;
  o.interval_ms = config_.probes.inventory_interval_ms;
  inventory_ = std::make_unique<probes::InventoryProbe>(env_.workers, env_.timers, o, services_.sample_inventory,
                                                         [this](const Result<state::Inventory>& r) { onInventory(r); });
  inventory_->start();
}

void Node::startProbes() {
  startInventory();
  vivaldi_ = std::make_unique<probes::VivaldiClient>(probes::VivaldiConfig{}, env_.rng);
  reconcile::LocalRebalanceOptions r;
  r.enabled = config_.placement.rebalance;
  r.interval_ms = config_.placement.rebalance_interval_ms;
  r.abandon_after_ms = std::max<int64_t>(1000, config_.node.handoff_deadline_ms / 2);
  r.moves.cooldown_ms = config_.placement.rebalance_cooldown_ms;
  r.moves.hysteresis = static_cast<double>(config_.placement.rebalance_hysteresis_percent) / 100.0;
  rebalancer_ = std::make_unique<reconcile::LocalRebalancer>(identity_.id, r);
}

void Node::onInventory(const Result<state::Inventory>& sample) {
  state::ProbeSample p{"inventory", nowMs(), sample.isOk(), sample ? "" : sample.status().toString(), {}};
  if (sample) {
    p.values = probes::inventoryValues(*sample);
  } else if (inventory_->stats().consecutive_failures == 1) {  // once per failing streak
    spdlog::warn("inventory probe failed: {}", sample.status().toString());
    record(chains::ChainName::kFailure, "probe.failed", {{"probe", "inventory"}, {"error", sample.status().toString()}});
  }
  state::fold(state_, p);
}

void Node::updateCoordinate() {
  if (!gossip_ || !vivaldi_) return;
  for (const auto& m : gossip_->members()) {
    if (m.state != gossip::MemberState::kAlive) {
      if (rtt_fed_.erase(m.id)) vivaldi_->forget(m.id);
      continue;
    }
    // One Vivaldi update per new direct-ack RTT sample (measured in microseconds).
    if (m.rtt_us <= 0 || rtt_fed_[m.id] == m.rtt_samples) continue;
    auto it = state_.peer_states.find(m.id);
    if (it == state_.peer_states.end() || !it->second.report.coordinate) continue;
    rtt_fed_[m.id] = m.rtt_samples;
    (void)vivaldi_->update(m.id, *it->second.report.coordinate, static_cast<double>(m.rtt_us) / 1000.0);  // refusals are counted
  }
}

std::map<std::string, std::string> Node::nodeVars() const {
  std::map<std::string, std::string> vars = {{"node.name", config_.node.name}, {"node.id", identity_.id}};
  std::string address = gossip_ ? gossip_->advertiseAddress() : config_.gossip.bind.toString();
  vars["node.host"] = discovery::hostOf(address);  // the address DNS gives for this node
  for (const auto& [k, v] : config_.node.labels) vars["node.label." + k] = v;
  return vars;
}

std::map<std::string, reconcile::LocalDaemon> Node::placedInstances() const {
  std::map<std::string, reconcile::LocalDaemon> local;
  for (const auto& [id, inst] : state_.instances) {
    auto d = state_.desired.find(inst.daemon);
    if (d == state_.desired.end() || d->second.source != "placed") continue;
    if (!holdsSlot(inst.state)) continue;
    auto& l = local[inst.daemon];
    ++l.running;
    l.ready += inst.state == state::InstanceState::kReady;
  }
  return local;
}

// A critical daemon quarantined here: the node is unhealthy for placement until it runs
// again (its cooldown, or an operator's start).
std::string Node::criticalQuarantine() const {
  for (const auto& s : run_specs_) {
    if (!s.supervision.critical) continue;
    for (const auto& [id, inst] : state_.instances) {
      if (inst.daemon == s.name && inst.state == state::InstanceState::kQuarantined) {
        return "critical daemon " + s.name + " is quarantined";
      }
    }
  }
  return "";
}

state::NodeReport Node::buildReport() const {
  state::NodeReport r;
  r.version = MESHOS_VERSION;
  r.labels = config_.node.labels;
  if (inventory_ && inventory_->last()) {
    r.inventory = *inventory_->last();
    probes::CapacityOverride o;
    if (config_.node.cpu_millicores > 0) o.cpu_millicores = config_.node.cpu_millicores;
    if (config_.node.memory_bytes > 0) o.memory_bytes = config_.node.memory_bytes;
    auto cap = probes::capacityFor(r.inventory, o);
    r.cpu_millicores = cap.cpu_millicores;
    r.memory_bytes = cap.memory_bytes;
  }
  r.capabilities = probes::capabilitiesFor(config_.node.capabilities, r.inventory, services_.runtime_capabilities);
  if (vivaldi_) r.coordinate = vivaldi_->coordinate();
  r.maintenance = plan_.maintenance;
  r.maintenance_seq = plan_.maintenance_seq;
  r.isolated = plan_.isolated;
  r.view_digest = plan_.view_digest;
  r.storage_failing = storage_failure_.has_value();
  r.unhealthy = criticalQuarantine();
  if (rebalancer_) r.moves = rebalancer_->moves();
  if (commit_log_) {
    auto head = commit_log_->head();
    r.commit_seq = head.seq;
    if (head.seq > 0) r.commit_hash.assign(head.hash.begin(), head.hash.end());
  }
  const auto placed = placedInstances();
  for (const auto& [name, l] : placed) {
    uint64_t generation = 0;
    if (commit_log_) {
      auto it = commit_log_->desired().daemons.find(name);
      if (it != commit_log_->desired().daemons.end()) generation = it->second.updated_seq;
    }
    r.daemons[name] = {l.running, l.ready, generation};
  }
  for (const auto& [name, run] : rollouts_) {  // a daemon with no instance left still says what failed
    auto& d = r.daemons[name];
    // Until its new instance is ready, a node that moved reports the version it still
    // serves: the others must not count it done while its old process is stopping.
    d.version = run.updated_ms >= 0 ? run.previous_version : run.version;
    d.failed_version = run.failed_version;
  }
  for (const auto& [id, i] : state_.instances) {
    ++r.instances;
    r.ready += i.state == state::InstanceState::kReady;
  }
  return r;
}

void Node::publishNodeState() {
  if (!gossip_) return;
  state::NodeReport fresh = buildReport();
  noteReadySince(fresh);
  // self_report_ stays what the other nodes hold until a change is worth a broadcast: any
  // change but the live measurements at once; those no sooner than
  // measurementsRepublishMs() after the last publish (a restarted node's coordinate settles
  // over many probes).
  const int64_t now = nowMs();
  if (self_report_version_ > 0) {
    const auto change = state::reportChange(self_report_, fresh);
    if (change == state::ReportChange::kNone) return;
    if (change == state::ReportChange::kMeasurements) {
      const auto alive = std::count_if(state_.members.begin(), state_.members.end(),
                                       [](const auto& m) { return m.second.state == state::MemberState::kAlive; });
      if (now - report_published_ms_ < state::measurementsRepublishMs(static_cast<size_t>(alive))) return;
    }
  }
  self_report_ = std::move(fresh);
  Bytes body = state::encodeNodeReport(self_report_);
  if (body == gossip_state_) return;
  if (Status s = gossip_->setLocalState(body); !s) {
    spdlog::warn("node state not published: {}", s.toString());
    return;
  }
  gossip_state_ = std::move(body);
  report_published_ms_ = now;
  ++self_report_version_;
}

void Node::planPlacement() {
  if (!commit_log_) return;
  // Level-triggered but not wasteful: the plan depends on the state (members, peers' node
  // state, instances: structural_generation moves with each), the commit log and this node's
  // own report. Unless a deadline is running (handoff, drain, freeze), the same inputs give
  // the same plan, so it is not computed again.
  const auto head = commit_log_->head();
  PlanKey key{state_.structural_generation, head.seq, head.hash, self_report_version_};
  const bool timed = !plan_.handoffs.empty() || plan_.frozen || plan_.maintenance == state::Maintenance::kDraining ||
                     rollout_pending_;
  if (plan_key_ && *plan_key_ == key && !timed) {
    rebalance();
    return;
  }
  plan_key_ = key;
  reconcile::LocalInputs in;
  in.self_id = identity_.id;
  in.now_ms = nowMs();
  in.wall_ms = env_.clock.wallMs();
  in.deadlines = &wall_deadlines_;
  in.desired = &commit_log_->desired();
  in.nodes = peerViews();
  for (const auto& p : in.nodes) in.members_known += p.state != state::MemberState::kLeft;
  in.local = placedInstances();
  in.maintenance = plan_.maintenance;
  in.maintenance_seq = plan_.maintenance_seq;
  in.handoffs = plan_.handoffs;
  in.handoff_deadline_ms = config_.node.handoff_deadline_ms;
  in.vars = nodeVars();
  auto previous_maintenance = plan_.maintenance;
  plan_ = reconcile::planLocal(in, assigner_);
  placement_json_ = reconcile::localPlanToJson(plan_);
  if (plan_.maintenance != previous_maintenance) {
    spdlog::info("maintenance: {} -> {}", state::maintenanceName(previous_maintenance),
                 state::maintenanceName(plan_.maintenance));
    record(chains::ChainName::kLog, "maintenance",
           {{"from", state::maintenanceName(previous_maintenance)},
            {"to", state::maintenanceName(plan_.maintenance)}, {"seq", plan_.maintenance_seq}});
  }
  // A local daemon keeps its name: a commit daemon of the same name is not run here.
  std::vector<spec::DaemonSpec> placed;
  for (auto& s : plan_.run) {
    bool taken = std::any_of(config_specs_.begin(), config_specs_.end(),
                             [&](const spec::DaemonSpec& c) { return c.name == s.name; });
    if (taken) {
      for (auto& d : plan_.decisions) {
        if (d.daemon == s.name) d.why = "not run: a [runtime] local daemon has this name";
      }
      continue;
    }
    placed.push_back(s);
  }
  placed = gateRollouts(std::move(placed));
  if (placed != placed_specs_) {
    placed_specs_ = std::move(placed);
    updateRunSet();
  }
  forceRestarts();
  rebalance();
}

std::vector<reconcile::PeerView> Node::peerViews() const {
  std::vector<reconcile::PeerView> nodes;
  nodes.reserve(state_.members.size());
  for (const auto& [id, m] : state_.members) {
    reconcile::PeerView p{id, m.name, m.state, std::nullopt};
    if (id == identity_.id) {
      p.report = self_report_;
    } else if (auto it = state_.peer_states.find(id); it != state_.peer_states.end()) {
      p.report = it->second.report;
    }
    nodes.push_back(std::move(p));
  }
  return nodes;
}

void Node::rebalance() {
  const int64_t now = nowMs();
  if (!rebalancer_ || !rebalancer_->due(now)) return;
  const auto before = rebalancer_->moves();
  if (!rebalancer_->update(now, plan_, peerViews(), assigner_)) return;
  // What changed goes to the log chain; the new moves reach every node with the node state.
  for (const auto& [daemon, to] : rebalancer_->moves()) {
    if (before.count(daemon) && before.at(daemon) == to) continue;
    spdlog::info("rebalance: hands one instance of {} to {}", daemon, to);
    record(chains::ChainName::kLog, "rebalance.move", {{"daemon", daemon}, {"to", to}});
  }
  for (const auto& [daemon, to] : before) {
    if (rebalancer_->moves().count(daemon) && rebalancer_->moves().at(daemon) == to) continue;
    record(chains::ChainName::kLog, "rebalance.end", {{"daemon", daemon}, {"to", to}});
  }
  publishNodeState();
}

void Node::forceRestarts() {
  // A force-restart commit bumps a daemon's restart generation; the nodes running it then
  // restart its instances once. Generations seen before this agent started are not replayed.
  const bool first = !restarts_seeded_;
  restarts_seeded_ = true;
  for (const auto& [name, d] : commit_log_->desired().daemons) {
    uint64_t& seen = restart_seen_[name];
    if (d.restart_generation <= seen) continue;
    seen = d.restart_generation;
    bool here = std::any_of(placed_specs_.begin(), placed_specs_.end(),
                            [&](const spec::DaemonSpec& s) { return s.name == name; });
    if (first || !here || !supervisor_) continue;
    Status s = supervisor_->restart(name);
    spdlog::info("force restart of {} (commit {}): {}", name, d.restart_generation, s.toString());
    record(s ? chains::ChainName::kLog : chains::ChainName::kFailure, "daemon.force-restart",
           {{"daemon", name}, {"seq", d.restart_generation}, {"result", s.toString()}});
  }
}

void Node::updateRunSet() {
  auto entries = [](const std::vector<spec::DaemonSpec>& specs) {
    std::vector<state::DesiredDaemonsChanged::Entry> out;
    for (const auto& d : specs) {
      out.push_back({d.name, specGeneration(d), static_cast<uint32_t>(std::max<int64_t>(1, d.replicas)), false});
    }
    return out;
  };
  // Local daemons may use ${node.*} too; one that cannot be filled in is not run.
  std::vector<spec::DaemonSpec> local;
  const auto vars = nodeVars();
  for (const auto& c : config_specs_) {
    auto s = spec::interpolate(c, vars);
    if (!s) {
      spdlog::error("local daemon not run: {}", s.status().toString());
      record(chains::ChainName::kFailure, "daemon.interpolate", {{"daemon", c.name}, {"error", s.status().toString()}});
      continue;
    }
    local.push_back(std::move(*s));
  }
  run_specs_ = local;
  run_specs_.insert(run_specs_.end(), placed_specs_.begin(), placed_specs_.end());
  state::fold(state_, state::DesiredDaemonsChanged{"local", entries(local)});
  state::fold(state_, state::DesiredDaemonsChanged{"placed", entries(placed_specs_)});
}

nlohmann::json Node::nodesJson() const {
  nlohmann::json nodes = nlohmann::json::array();
  for (const auto& [id, m] : state_.members) {
    nlohmann::json n = {{"id", id}, {"name", m.name}, {"state", state::memberStateName(m.state)}};
    const state::NodeReport* r = nullptr;
    if (id == identity_.id) {
      r = &self_report_;
    } else if (auto it = state_.peer_states.find(id); it != state_.peer_states.end()) {
      r = &it->second.report;
    }
    if (r) n["node_state"] = state::nodeReportToJson(*r);
    probes::HealthInputs h;
    h.member_state = static_cast<gossip::MemberState>(static_cast<int>(m.state));
    h.storage_failing = id == identity_.id ? storage_failure_.has_value() : r && r->storage_failing;
    if (id == identity_.id) {
      h.report_age_ms = 0;
      h.probes_failing = inventory_ && inventory_->failing() ? 1 : 0;
      h.local_health_multiplier = gossip_ ? gossip_->localHealth() : 0;
    } else if (auto seen = report_seen_ms_.find(id); seen != report_seen_ms_.end()) {
      h.report_age_ms = nowMs() - seen->second;
    }
    auto verdict = probes::classify(h);
    n["health"] = probes::nodeHealthName(verdict.health);
    if (!verdict.reason.empty()) n["health_reason"] = verdict.reason;
    if (id != identity_.id && r && r->coordinate && vivaldi_) {
      n["rtt_estimate_ms"] = probes::estimateRttMs(vivaldi_->coordinate(), *r->coordinate);
    }
    nodes.push_back(std::move(n));
  }
  return nodes;
}

nlohmann::json Node::membersJson() {
  nlohmann::json j = state::membersToJson(currentSnapshot());
  std::map<std::string, nlohmann::json> by_id;
  for (auto& n : nodesJson()) {
    std::string id = n["id"].get<std::string>();
    by_id[id] = std::move(n);
  }
  std::map<std::string, std::string> keys;  // what `meshos-admin secret seal --to` seals to
  keys[identity_.id] = toBase64(identity_.key.public_key);
  if (gossip_) {
    for (const auto& m : gossip_->members())
      if (m.public_key.size() == 32) keys[m.id] = toBase64(m.public_key);
  }
  for (auto& m : j["members"]) {
    if (auto k = keys.find(m.value("id", "")); k != keys.end()) m["public_key"] = k->second;
    auto it = by_id.find(m.value("id", ""));
    if (it == by_id.end()) continue;
    auto& n = it->second;
    m["health"] = n["health"];
    if (n.contains("health_reason")) m["health_reason"] = n["health_reason"];
    if (n.contains("rtt_estimate_ms")) m["rtt_estimate_ms"] = n["rtt_estimate_ms"];
    if (n.contains("node_state")) {
      const auto& r = n["node_state"];
      m["maintenance"] = r["maintenance"];
      m["unhealthy"] = r["unhealthy"];
      m["instances"] = r["instances"];
      m["ready"] = r["ready"];
      m["commit_seq"] = r["commit_head"]["seq"];
      m["load1"] = r["inventory"]["load1"];
      m["memory_used_bytes"] = r["inventory"]["memory_used_bytes"];
      m["memory_total_bytes"] = r["inventory"]["memory_total_bytes"];
      m["capabilities"] = r["capabilities"];  // configured and detected (arch:, runtime:oci, ...)
    }
  }
  return j;
}

nlohmann::json Node::placementJson(const std::string& daemon) const {
  nlohmann::json j = reconcile::localPlanToJson(plan_);
  addPorts(j["decisions"], "daemon");
  nlohmann::json rollouts = nlohmann::json::array();
  for (const auto& [name, d] : commit_log_->desired().daemons) {
    if (!daemon.empty() && name != daemon) continue;
    auto r = rolloutJson(name);
    if (r.is_object() && r["state"] != "complete") rollouts.push_back(std::move(r));
  }
  j["rollouts"] = std::move(rollouts);
  if (daemon.empty()) return j;
  nlohmann::json one = nlohmann::json::array();
  for (auto& d : j["decisions"]) {
    if (d["daemon"] == daemon) one.push_back(d);
  }
  j["decisions"] = std::move(one);
  // The full explanation: every feasible node with its score, every other node and why.
  auto a = placement::explain(plan_.views, plan_.requests, daemon);
  if (!a) return j;
  std::map<std::string, std::string> names;
  for (const auto& v : plan_.views) names[v.id] = v.name;
  auto nameOf = [&](const std::string& id) { return names.count(id) ? names[id] : id; };
  nlohmann::json feasible = nlohmann::json::array();
  for (const auto& f : a->feasible) feasible.push_back({{"node", nameOf(f.node)}, {"score", f.score}});
  nlohmann::json excluded = nlohmann::json::object();
  for (const auto& [id, why] : a->excluded) excluded[nameOf(id)] = why;
  j["explain"] = {{"daemon", daemon}, {"feasible", std::move(feasible)}, {"excluded", std::move(excluded)}};
  return j;
}

}  // namespace meshos::node
